//! Every messaging request (HTTP body or WebSocket frame) and every access
//! token or challenge a client presents goes through these parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale::msg::auth::AuthKeys;
use samtale::msg::parse_op;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // First line: the operation name; the rest: its JSON body.
    let (name, body) = text.split_once('\n').unwrap_or((&text, ""));
    if let Ok(params) = serde_json::from_str::<serde_json::Value>(body) {
        let _ = parse_op(name, params);
    }
    let keys = AuthKeys::new([7; 32]);
    let _ = keys.verify(&text);
    let _ = keys.check_challenge(&text);
});
