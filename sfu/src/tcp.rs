//! ICE-TCP transport: RFC 4571 framing (a 16-bit big-endian length before
//! each packet) over the TCP connections browsers open to our passive
//! candidate. Pure framing here; the driver owns the sockets.

/// Largest framed packet accepted. Media and DTLS packets stay under the
/// path MTU; anything larger is an attack or a bug, and closes the connection.
pub const MAX_FRAME: usize = 4096;

/// A stream that is not RFC 4571.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FramingError {
    /// A frame longer than [`MAX_FRAME`].
    #[error("frame of {0} bytes exceeds {MAX_FRAME}")]
    TooLarge(usize),
    /// A zero-length frame.
    #[error("empty frame")]
    Empty,
}

/// Splits a TCP byte stream into packets.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    buf: Vec<u8>,
}

impl FrameDecoder {
    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete packet, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let Some(header) = self.buf.get(..2) else {
            return Ok(None);
        };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if len == 0 {
            return Err(FramingError::Empty);
        }
        if len > MAX_FRAME {
            return Err(FramingError::TooLarge(len));
        }
        if self.buf.len() < 2 + len {
            return Ok(None);
        }
        let frame = self.buf[2..2 + len].to_vec();
        self.buf.drain(..2 + len);
        Ok(Some(frame))
    }
}

/// Frames one packet, or `None` when it is too large to frame.
pub fn encode_frame(packet: &[u8]) -> Option<Vec<u8>> {
    let len = u16::try_from(packet.len()).ok()?;
    let mut out = Vec::with_capacity(packet.len() + 2);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(packet);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_and_joined_in_one() {
        let mut d = FrameDecoder::default();
        let mut stream = encode_frame(b"hello").unwrap();
        stream.extend(encode_frame(b"world!").unwrap());
        d.push(&stream[..3]);
        assert_eq!(d.next_frame(), Ok(None));
        d.push(&stream[3..]);
        assert_eq!(d.next_frame(), Ok(Some(b"hello".to_vec())));
        assert_eq!(d.next_frame(), Ok(Some(b"world!".to_vec())));
        assert_eq!(d.next_frame(), Ok(None));
    }

    #[test]
    fn oversized_and_empty_frames_are_errors() {
        let mut d = FrameDecoder::default();
        d.push(&[0xff, 0xff, 1]);
        assert_eq!(d.next_frame(), Err(FramingError::TooLarge(65535)));
        let mut d = FrameDecoder::default();
        d.push(&[0, 0]);
        assert_eq!(d.next_frame(), Err(FramingError::Empty));
        assert!(encode_frame(&vec![0; 70_000]).is_none());
    }
}
