//! The read side of a client's TCP/TLS byte stream (RFC 8656 §4): bytes
//! in, whole STUN messages and ChannelData frames out. Frames are taken
//! from a read position; what is left is moved to the front only before
//! the next read, so each byte is moved at most once. Used by the core
//! thread's connections (blocking-free `Read`) and by tokio's (`AsyncRead`).

use std::ops::Range;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::codec::stream_frame_len;

/// Free room kept in the buffer before each read.
const READ_ROOM: usize = 4096;

/// The stream's bytes are neither STUN nor ChannelData.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct NotStun;

/// Bytes read from a client stream and not yet taken as frames.
#[derive(Debug, Default)]
pub(super) struct FrameBuffer {
    buf: Vec<u8>,
    start: usize,
}

impl FrameBuffer {
    pub(super) fn new() -> Self {
        FrameBuffer {
            buf: Vec::with_capacity(READ_ROOM),
            start: 0,
        }
    }

    /// Where the next whole frame lies in [`Self::bytes`], without taking
    /// it; `None` until it is all read. A frame's 16-bit length bounds it
    /// (at most 65 552 bytes), so the buffer never holds more than one
    /// unfinished frame.
    pub(super) fn peek(&self) -> Result<Option<Range<usize>>, NotStun> {
        let pending = self.buf.get(self.start..).unwrap_or_default();
        match stream_frame_len(pending) {
            Ok(Some(n)) if n <= pending.len() => Ok(Some(self.start..self.start + n)),
            Ok(_) => Ok(None),
            Err(()) => Err(NotStun),
        }
    }

    /// Takes the next whole frame (see [`Self::peek`]).
    pub(super) fn take(&mut self) -> Result<Option<Range<usize>>, NotStun> {
        let frame = self.peek()?;
        if let Some(range) = &frame {
            self.start = range.end;
        }
        Ok(frame)
    }

    /// The bytes of a range [`Self::peek`] or [`Self::take`] returned.
    pub(super) fn bytes(&self, range: Range<usize>) -> &[u8] {
        self.buf.get(range).unwrap_or_default()
    }

    /// Moves the unfinished rest to the front and makes room for a read;
    /// after a large frame, gives the room back.
    fn make_room(&mut self) {
        self.buf.drain(..self.start);
        self.start = 0;
        if self.buf.capacity() > 4 * READ_ROOM && self.buf.len() < READ_ROOM {
            self.buf.shrink_to(2 * READ_ROOM);
        }
        self.buf.reserve(READ_ROOM);
    }

    /// One read from a non-blocking reader into the free room: the bytes
    /// read (0 at the end of the stream), or its error (`WouldBlock` when
    /// nothing is there).
    pub(super) fn read_from<R: std::io::Read>(&mut self, reader: &mut R) -> std::io::Result<usize> {
        self.make_room();
        let filled = self.buf.len();
        // Zeroing the room costs less than the read itself.
        self.buf.resize(self.buf.capacity(), 0);
        let read = reader.read(self.buf.get_mut(filled..).unwrap_or_default());
        self.buf.truncate(filled + *read.as_ref().unwrap_or(&0));
        read
    }

    /// One read from a tokio reader, straight into the free room.
    pub(super) async fn read_from_async<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
    ) -> std::io::Result<usize> {
        self.make_room();
        reader.read_buf(&mut self.buf).await
    }

    /// Bytes read past the last frame taken.
    pub(super) fn into_rest(mut self) -> Vec<u8> {
        self.buf.drain(..self.start);
        self.buf.shrink_to_fit();
        self.buf
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn channel_data(i: u8, len: usize) -> Vec<u8> {
        let mut frame = vec![0x40, i, 0, 0];
        frame[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        frame.extend(std::iter::repeat_n(i, len));
        frame.resize(frame.len().next_multiple_of(4), 0);
        frame
    }

    /// A reader that hands out at most `step` bytes per read, then
    /// `WouldBlock` once, then the rest.
    struct Trickle<'a> {
        data: &'a [u8],
        step: usize,
        blocked: bool,
    }

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.blocked = !self.blocked;
            if self.blocked && !self.data.is_empty() {
                return Err(std::io::ErrorKind::WouldBlock.into());
            }
            let n = self.step.min(out.len()).min(self.data.len());
            out[..n].copy_from_slice(&self.data[..n]);
            self.data = &self.data[n..];
            Ok(n)
        }
    }

    #[test]
    fn frames_across_small_reads_come_out_whole_and_in_order() {
        let frames: Vec<Vec<u8>> = [1001, 65_535, 3, 0, 7000]
            .iter()
            .enumerate()
            .map(|(i, &len)| channel_data(u8::try_from(i).unwrap(), len))
            .collect();
        let stream = frames.concat();
        let mut reader = Trickle {
            data: &stream,
            step: 1500,
            blocked: false,
        };
        let mut buffer = FrameBuffer::new();
        let mut got = Vec::new();
        loop {
            if let Some(range) = buffer.take().unwrap() {
                got.push(buffer.bytes(range).to_vec());
                continue;
            }
            match buffer.read_from(&mut reader) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, frames);
        assert!(buffer.into_rest().is_empty());
    }

    #[test]
    fn peek_leaves_the_frame_and_the_rest_is_handed_over() {
        let mut stream = channel_data(1, 10);
        stream.extend_from_slice(b"raw after");
        let mut buffer = FrameBuffer::new();
        buffer.read_from(&mut &stream[..]).unwrap();
        let peeked = buffer.peek().unwrap().unwrap();
        assert_eq!(buffer.take().unwrap(), Some(peeked.clone()));
        assert_eq!(buffer.bytes(peeked), channel_data(1, 10));
        assert_eq!(buffer.into_rest(), b"raw after");
    }

    #[test]
    fn garbage_is_not_stun() {
        let mut buffer = FrameBuffer::new();
        buffer.read_from(&mut &[0xFFu8; 64][..]).unwrap();
        assert_eq!(buffer.peek(), Err(NotStun));
    }
}
