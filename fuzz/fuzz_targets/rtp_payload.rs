//! The SFU's only look inside RTP payloads: VP8 descriptor/keyframe and RED.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_sfu::inspect::{CodecInspector, PayloadInspector, red_primary, vp8_descriptor_len};
use samtale_sfu::str0m::format::Codec;

fuzz_target!(|data: &[u8]| {
    let info = CodecInspector.inspect(Codec::Vp8, data);
    if info.keyframe_start {
        assert!(vp8_descriptor_len(data).is_some());
    }
    if let Some(len) = vp8_descriptor_len(data) {
        assert!(len < data.len());
    }
    if let Some((pt, block)) = red_primary(data) {
        assert!(pt < 128 && !block.is_empty() && block.len() <= data.len());
    }
});
