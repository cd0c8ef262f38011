//! Every datagram and stream frame a TURN client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_turn::codec::{ChannelData, Message, stream_frame_len};

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::parse(data) {
        let _ = msg.check_comprehension();
        for attr in msg.attributes() {
            let _ = msg.decode(attr.attr_type);
        }
    }
    let _ = ChannelData::parse(data);
    if let Ok(Some(n)) = stream_frame_len(data) {
        assert!(n >= 4);
    }
});
