//! Pair codes, QR payloads and signed device lists come from other devices
//! or the server.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_messaging::crypto::{PairCode, QrPayload, SignedDeviceList};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = text.parse::<PairCode>();
    let _ = QrPayload::parse(&text);
    if let Ok(list) = serde_json::from_slice::<SignedDeviceList>(data) {
        let _ = list.verify_successor(None);
        let _ = list.verify_successor(Some(&list.list));
    }
});
