//! Untrusted ciphertext (whatever storage hands back) into the attachment
//! decryptor with a fixed key: never panics, streaming in pieces agrees
//! with decrypting whole, and the bytes as plaintext round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_media::attachment::{AttachmentKey, Decryptor, Encryptor, decrypt};

/// The key the seed corpus was encrypted with.
const KEY: [u8; 32] = [0x42; 32];

fuzz_target!(|data: &[u8]| {
    let key = AttachmentKey::from_bytes(KEY);
    let whole = decrypt(&key, data);

    // The same bytes fed in pieces of a size taken from the input.
    let piece = data.last().map_or(1, |b| usize::from(*b % 97) + 1);
    let mut dec = Decryptor::new(&key);
    let mut out = Vec::new();
    let mut streamed = Ok(());
    for chunk in data.chunks(piece) {
        streamed = dec.update(chunk, &mut out);
        if streamed.is_err() {
            break;
        }
    }
    let streamed = streamed.and_then(|()| dec.finish(&mut out)).map(|()| out);
    match (&whole, &streamed) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(_), Err(_)) => {}
        _ => panic!("whole {whole:?} vs streamed {streamed:?}"),
    }

    // And as plaintext: encrypt (small chunks) and decrypt back.
    let mut ct = Vec::new();
    let Ok(mut enc) = Encryptor::with_chunk_size(&key, 1024) else {
        return;
    };
    for chunk in data.chunks(piece) {
        if enc.update(chunk, &mut ct).is_err() {
            return;
        }
    }
    if enc.finish(&mut ct).is_err() {
        return;
    }
    assert_eq!(decrypt(&key, &ct).as_deref(), Ok(data));
});
