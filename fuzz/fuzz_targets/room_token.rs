//! Room tokens come from anyone who opens the join link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale::token::{RoomClaims, TokenSigner};

fuzz_target!(|data: &[u8]| {
    let signer = TokenSigner::new(b"fuzzing secret of thirty-two b..".to_vec());
    if let Ok(text) = std::str::from_utf8(data) {
        // Nothing but our own signatures may verify.
        assert!(signer.verify(text, 0).is_err() || text.contains('.'));
        // The server signs only valid room ids (`RoomId`: 1-64 of [A-Za-z0-9_-]).
        let room: String = text.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_').take(64).collect();
        let good = signer.sign(&RoomClaims { room, exp: 10 });
        assert!(signer.verify(&good, 1).is_ok());
    }
});
