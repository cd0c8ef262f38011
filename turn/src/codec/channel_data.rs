//! ChannelData framing (RFC 8656 §12.4): a 4-byte header (channel number,
//! length) followed by application data, padded to 4 bytes over streams.

use super::error::ChannelDataError;

/// Size of the ChannelData header.
pub const CHANNEL_DATA_HEADER_LEN: usize = 4;
/// Lowest channel number (RFC 8656 §12).
pub const MIN_CHANNEL_NUMBER: u16 = 0x4000;
/// Highest channel number any peer may use: 0x7FFF, the range coturn and its
/// client accept. RFC 8656 narrows it to 0x4FFF (see
/// [`crate::config::ChannelRange`]).
pub const MAX_CHANNEL_NUMBER: u16 = 0x7FFF;

/// A decoded ChannelData message borrowing its datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelData<'a> {
    /// The channel number (0x4000..=0x7FFF).
    pub channel: u16,
    /// The application data.
    pub data: &'a [u8],
}

impl<'a> ChannelData<'a> {
    /// Parses one ChannelData message. Up to 3 bytes of padding after the
    /// data are accepted (streams must pad; over UDP padding is optional).
    pub fn parse(buf: &'a [u8]) -> Result<Self, ChannelDataError> {
        let Some(&[c0, c1, l0, l1]) = buf.first_chunk::<CHANNEL_DATA_HEADER_LEN>() else {
            return Err(ChannelDataError::Truncated {
                needed: CHANNEL_DATA_HEADER_LEN,
                available: buf.len(),
            });
        };
        let channel = u16::from_be_bytes([c0, c1]);
        if !(MIN_CHANNEL_NUMBER..=MAX_CHANNEL_NUMBER).contains(&channel) {
            return Err(ChannelDataError::BadChannelNumber { number: channel });
        }
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let end = CHANNEL_DATA_HEADER_LEN + len;
        if buf.len() < end {
            return Err(ChannelDataError::Truncated {
                needed: end,
                available: buf.len(),
            });
        }
        let extra = buf.len() - end;
        if extra > 3 {
            return Err(ChannelDataError::TrailingBytes { extra });
        }
        Ok(Self {
            channel,
            data: &buf[CHANNEL_DATA_HEADER_LEN..end],
        })
    }

    /// Writes a ChannelData message into `out` (cleared first), padding the
    /// data to 4 bytes when `pad` (required over TCP/TLS). Data longer than
    /// 65535 bytes is refused with `false`.
    pub fn encode_into(channel: u16, data: &[u8], pad: bool, out: &mut Vec<u8>) -> bool {
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        out.clear();
        out.extend_from_slice(&channel.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(data);
        if pad {
            out.resize(out.len().next_multiple_of(4), 0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_and_without_padding() {
        for pad in [false, true] {
            let mut out = Vec::new();
            assert!(ChannelData::encode_into(0x4001, b"hello", pad, &mut out));
            assert_eq!(out.len(), if pad { 12 } else { 9 });
            let cd = ChannelData::parse(&out).unwrap();
            assert_eq!(cd.channel, 0x4001);
            assert_eq!(cd.data, b"hello");
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(
            ChannelData::parse(&[0x40, 0]),
            Err(ChannelDataError::Truncated { .. })
        ));
        assert!(matches!(
            ChannelData::parse(&[0x80, 0, 0, 0]),
            Err(ChannelDataError::BadChannelNumber { .. })
        ));
        assert!(matches!(
            ChannelData::parse(&[0x40, 0, 0, 8, 1, 2]),
            Err(ChannelDataError::Truncated { .. })
        ));
        assert!(matches!(
            ChannelData::parse(&[0x40, 0, 0, 0, 1, 2, 3, 4]),
            Err(ChannelDataError::TrailingBytes { extra: 4 })
        ));
    }
}
