//! Every WebSocket frame a client sends goes through this parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale::protocol::ClientMessage;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<ClientMessage>(data);
});
