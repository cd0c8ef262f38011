//! Telling STUN from ChannelData, and finding message boundaries on a
//! TCP/TLS byte stream (RFC 8656 §12.4: ChannelData is padded there).

use super::channel_data::CHANNEL_DATA_HEADER_LEN;
use super::header::HEADER_LEN;

/// What the first byte of a datagram or frame says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    /// Leading bits 00: a STUN message.
    Stun,
    /// Leading bits 01: ChannelData.
    ChannelData,
    /// Leading bits 10 or 11 (or an empty buffer): neither.
    Other,
}

/// Classifies by the two leading bits (RFC 8656 §12).
pub fn classify(buf: &[u8]) -> PacketKind {
    match buf.first().map(|b| b >> 6) {
        Some(0b00) => PacketKind::Stun,
        Some(0b01) => PacketKind::ChannelData,
        _ => PacketKind::Other,
    }
}

/// Length of the first complete frame at the start of a stream buffer:
/// `Ok(Some(n))` when `buf` holds at least `n` bytes of it, `Ok(None)` when
/// more bytes are needed, `Err(())` when the stream cannot be STUN or
/// ChannelData (the driver closes the connection).
#[allow(clippy::result_unit_err)]
pub fn stream_frame_len(buf: &[u8]) -> Result<Option<usize>, ()> {
    let kind = classify(buf);
    let header_len = match kind {
        PacketKind::Stun => HEADER_LEN,
        PacketKind::ChannelData => CHANNEL_DATA_HEADER_LEN,
        PacketKind::Other if buf.is_empty() => return Ok(None),
        PacketKind::Other => return Err(()),
    };
    let Some(&[l0, l1]) = buf.get(2..4).and_then(|s| s.first_chunk()) else {
        return Ok(None);
    };
    let body = usize::from(u16::from_be_bytes([l0, l1]));
    let total = match kind {
        PacketKind::Stun => header_len + body,
        _ => (header_len + body).next_multiple_of(4),
    };
    Ok((buf.len() >= total).then_some(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_leading_bits() {
        assert_eq!(classify(&[0x00]), PacketKind::Stun);
        assert_eq!(classify(&[0x40]), PacketKind::ChannelData);
        assert_eq!(classify(&[0x80]), PacketKind::Other);
        assert_eq!(classify(&[]), PacketKind::Other);
    }

    #[test]
    fn frames_streams() {
        assert_eq!(stream_frame_len(&[]), Ok(None));
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00]), Ok(None));
        assert_eq!(stream_frame_len(&[0x40, 0x00, 0x00, 0x01, 9]), Ok(None));
        assert_eq!(
            stream_frame_len(&[0x40, 0, 0, 1, 9, 0, 0, 0, 7]),
            Ok(Some(8))
        );
        let mut stun = vec![0u8; 24];
        stun[3] = 4;
        assert_eq!(stream_frame_len(&stun[..23]), Ok(None));
        assert_eq!(stream_frame_len(&stun), Ok(Some(24)));
        assert_eq!(stream_frame_len(&[0xC0, 0, 0, 0]), Err(()));
    }
}
