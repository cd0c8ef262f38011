//! The one place the SFU looks inside RTP payloads.
//!
//! Forwarding needs two facts a payload may carry: "this packet starts a
//! keyframe" (to switch simulcast layers cleanly) and the VP8 payload
//! descriptor (to keep PictureID/TL0PICIDX continuous across a switch).
//! Everything else is read from RTP headers and extensions. With end-to-end
//! encryption the frame body becomes opaque; an E2EE-aware inspector (for
//! example one reading the Dependency Descriptor extension) replaces
//! [`CodecInspector`] through the [`PayloadInspector`] trait.

use str0m::format::Codec;
use str0m::rtp::Vp8Descriptor;

/// What the SFU needs to know about one incoming video packet.
#[derive(Debug, Clone, Copy, Default)]
pub struct PacketInfo {
    /// The packet is the first packet of a keyframe.
    pub keyframe_start: bool,
    /// The VP8 payload descriptor, when the codec is VP8 and it parsed.
    pub vp8: Option<Vp8Descriptor>,
}

/// Reads [`PacketInfo`] out of an RTP payload. Must never panic: the
/// payload comes from the network.
pub trait PayloadInspector: Send + 'static {
    /// Inspects one RTP payload (without the RTP header).
    fn inspect(&self, codec: Codec, payload: &[u8]) -> PacketInfo;
}

/// Reads plaintext codec payloads (VP8 today).
#[derive(Debug, Default, Clone, Copy)]
pub struct CodecInspector;

impl PayloadInspector for CodecInspector {
    fn inspect(&self, codec: Codec, payload: &[u8]) -> PacketInfo {
        match codec {
            Codec::Vp8 => PacketInfo {
                keyframe_start: vp8_is_keyframe_start(payload),
                vp8: Vp8Descriptor::parse(payload).ok(),
            },
            _ => PacketInfo::default(),
        }
    }
}

/// Length of the VP8 RTP payload descriptor (RFC 7741 §4.2), or `None` when
/// the payload is too short or malformed.
pub fn vp8_descriptor_len(payload: &[u8]) -> Option<usize> {
    let first = *payload.first()?;
    let mut len = 1;
    if first & 0x80 != 0 {
        let ext = *payload.get(len)?;
        len += 1;
        if ext & 0x80 != 0 {
            let pid = *payload.get(len)?;
            len += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if ext & 0x40 != 0 {
            len += 1;
        }
        if ext & 0x30 != 0 {
            len += 1;
        }
    }
    (len < payload.len()).then_some(len)
}

/// True when the packet starts partition 0 of a VP8 keyframe: descriptor S=1,
/// PID=0 and the payload header's P bit (inverse key frame flag) clear
/// (RFC 7741 §4.3).
pub fn vp8_is_keyframe_start(payload: &[u8]) -> bool {
    let Some(len) = vp8_descriptor_len(payload) else {
        return false;
    };
    let start_of_partition = payload[0] & 0x10 != 0;
    let partition_index = payload[0] & 0x07;
    start_of_partition && partition_index == 0 && payload[len] & 0x01 == 0
}

/// The primary (newest) block of an RFC 2198 RED payload, for subscribers
/// that did not negotiate RED. Returns the block's payload type and bytes.
pub fn red_primary(payload: &[u8]) -> Option<(u8, &[u8])> {
    let mut pos = 0;
    let mut redundant_len = 0usize;
    loop {
        let header = *payload.get(pos)?;
        if header & 0x80 == 0 {
            // Last (primary) header: one byte, F=0.
            let pt = header & 0x7f;
            let start = pos + 1 + redundant_len;
            let block = payload.get(start..)?;
            return (!block.is_empty()).then_some((pt, block));
        }
        let b = payload.get(pos + 2..pos + 4)?;
        redundant_len += (usize::from(b[0] & 0x03) << 8) | usize::from(b[1]);
        pos += 4;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_detection() {
        // X=1 S=1 PID=0; I=1 (15-bit picture id); picture id; payload P=0.
        let key = [0x90, 0x80, 0x81, 0x23, 0x10, 0x02, 0x00];
        assert_eq!(vp8_descriptor_len(&key), Some(4));
        assert!(vp8_is_keyframe_start(&key));
        // Same but P=1 (delta frame).
        let delta = [0x90, 0x80, 0x81, 0x23, 0x11, 0x02, 0x00];
        assert!(!vp8_is_keyframe_start(&delta));
        // Not the start of a partition.
        let cont = [0x80, 0x80, 0x81, 0x23, 0x10];
        assert!(!vp8_is_keyframe_start(&cont));
        // Minimal descriptor.
        assert!(vp8_is_keyframe_start(&[0x10, 0x00]));
    }

    #[test]
    fn vp8_garbage_never_panics() {
        for len in 0..6 {
            for b in [0x00u8, 0xff, 0x90, 0x80] {
                let p = vec![b; len];
                let _ = vp8_is_keyframe_start(&p);
                let _ = CodecInspector.inspect(Codec::Vp8, &p);
            }
        }
        assert_eq!(vp8_descriptor_len(&[0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn red_primary_block() {
        // One redundant block (pt 111, ts offset 960, len 3) then primary pt 111.
        let red = [0xef, 0x0f, 0x00, 0x03, 0x6f, 1, 2, 3, 9, 9];
        assert_eq!(red_primary(&red), Some((111, &[9u8, 9][..])));
        // Only a primary.
        assert_eq!(red_primary(&[0x6f, 7]), Some((111, &[7u8][..])));
        // Truncated.
        assert_eq!(red_primary(&[0xef, 0x0f]), None);
        assert_eq!(red_primary(&[0xef, 0x0f, 0x00, 0x09, 0x6f, 1]), None);
        assert_eq!(red_primary(&[]), None);
    }
}
