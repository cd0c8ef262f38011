//! TCP and TLS client connections: accept, split the byte stream into STUN
//! messages and ChannelData frames (RFC 8656 §4), write replies. A
//! connection whose ConnectionBind succeeds becomes a data connection
//! (RFC 6062 §5.4): from then on its bytes are relayed raw to and from the
//! peer connection it was joined with.
//!
//! A plain TCP connection is read here only up to its first frame, which
//! names its core thread; then that thread takes it over and polls it
//! itself (see [`super::client_streams`]). A TLS connection stays on its
//! tokio task, which hands frames to the core thread and writes its answers.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tracing::debug;

use super::frames::FrameBuffer;
use super::pump;
use super::tcp_relay::JoinTo;
use super::tls::TlsSettings;
use super::{Event, EventSender, Shards, StreamOut};
use crate::codec::{Attribute, Message, Method, attr_type};
use crate::server::{FiveTuple, Transport};

/// Frames queued toward one client before it counts as stuck.
const WRITE_QUEUE: usize = 512;
/// Queued frames gathered into one write, up to about this many bytes.
const WRITE_BATCH: usize = 64 * 1024;

/// Writes and flushes `out` (flushed: TLS may otherwise hold it back),
/// then empties it; false if the connection failed.
async fn write_out<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut Vec<u8>) -> bool {
    if out.is_empty() {
        return true;
    }
    let written = writer.write_all(out).await.is_ok() && writer.flush().await.is_ok();
    out.clear();
    written
}

pub(super) async fn accept(
    listener: TcpListener,
    transport: Transport,
    tls: Option<TlsSettings>,
    shards: Shards,
) {
    let Ok(server) = listener.local_addr() else {
        return;
    };
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                debug!(error = %e, "accept failed");
                if shards.is_closed() {
                    return;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let tuple = FiveTuple {
            client,
            server,
            transport,
        };
        let shards = shards.clone();
        match &tls {
            None => {
                tokio::spawn(hand_to_core(stream, tuple, shards));
            }
            Some(settings) => {
                let acceptor = settings.acceptor();
                tokio::spawn(async move {
                    match tokio::time::timeout(
                        std::time::Duration::from_secs(10),
                        acceptor.accept(stream),
                    )
                    .await
                    {
                        Ok(Ok(tls)) => hand_tls_to_core(tls, tuple, shards).await,
                        _ => debug!(%client, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

/// Whether a frame is a ConnectionBind request (its answer decides whether
/// the connection's next bytes are STUN at all).
pub(super) fn is_connection_bind(frame: &[u8]) -> bool {
    frame.get(..2) == Some(&[0x00, 0x0B][..])
}

/// The CONNECTION-ID of a ConnectionBind request, which names the shard
/// holding the peer connection.
fn connection_bind_id(frame: &[u8]) -> Option<u32> {
    if !is_connection_bind(frame) {
        return None;
    }
    let msg = Message::parse(frame).ok()?;
    match msg.decode(attr_type::CONNECTION_ID) {
        Ok(Some(Attribute::ConnectionId(id))) if msg.method() == Method::CONNECTION_BIND => {
            Some(id)
        }
        _ => None,
    }
}

/// The shard a connection belongs to, by its first frame: a data
/// connection's is the shard of its peer connection; any other's the one
/// its address hashes to.
fn shard_of<'a>(shards: &'a Shards, first: &[u8], tuple: &FiveTuple) -> Option<&'a EventSender> {
    match connection_bind_id(first) {
        Some(id) => shards.for_connection(id),
        None => shards.for_stream(tuple),
    }
}

/// Reads until `input` holds a whole first frame: where it lies, or `None`
/// if the stream ends (or is not STUN) first.
async fn read_first_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    input: &mut FrameBuffer,
    tuple: &FiveTuple,
) -> Option<std::ops::Range<usize>> {
    loop {
        match input.peek() {
            Ok(Some(first)) => return Some(first),
            Ok(None) => {}
            Err(_) => {
                debug!(client = %tuple.client, "not STUN or ChannelData: closing");
                return None;
            }
        }
        match input.read_from_async(reader).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads a plain TCP connection up to its first whole frame and hands it,
/// with everything read, to its shard's core thread.
async fn hand_to_core(mut stream: tokio::net::TcpStream, tuple: FiveTuple, shards: Shards) {
    let mut input = FrameBuffer::new();
    let Some(first) = read_first_frame(&mut stream, &mut input, &tuple).await else {
        return;
    };
    let Some(events) = shard_of(&shards, input.bytes(first), &tuple) else {
        return;
    };
    // Non-blocking, as the core thread's poller needs it.
    let Ok(stream) = stream.into_std() else {
        return;
    };
    events
        .send(Event::StreamAdopted {
            tuple,
            stream,
            input,
            tls: None,
        })
        .await;
}

/// Reads a TLS connection (handshake done) up to its first whole frame. A
/// data connection (it opens with a ConnectionBind) stays on this task;
/// any other goes to its shard's core thread with its TLS session.
async fn hand_tls_to_core(
    mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    tuple: FiveTuple,
    shards: Shards,
) {
    let mut input = FrameBuffer::new();
    let Some(first) = read_first_frame(&mut stream, &mut input, &tuple).await else {
        return;
    };
    if is_connection_bind(input.bytes(first)) {
        serve(stream, tuple, shards, input).await;
        return;
    }
    let Some(events) = shards.for_stream(&tuple) else {
        return;
    };
    let (stream, session) = stream.into_inner();
    let Ok(stream) = stream.into_std() else {
        return;
    };
    events
        .send(Event::StreamAdopted {
            tuple,
            stream,
            input,
            tls: Some(Box::new(session)),
        })
        .await;
}

/// Reads a TLS data connection's frames (`input`: what was read so far),
/// hands them to its shard, writes the answers, and relays raw bytes once
/// it is joined with a peer connection.
async fn serve<S>(stream: S, tuple: FiveTuple, shards: Shards, input: FrameBuffer)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut frames = Frames(input);
    let Some(first) = frames.next(&mut reader, &tuple).await else {
        return;
    };
    let Some(events) = shard_of(&shards, &first, &tuple).cloned() else {
        return;
    };
    let (tx, mut rx) = mpsc::channel::<StreamOut>(WRITE_QUEUE);
    if !events.send(Event::StreamOpened(tuple, tx)).await {
        return;
    }
    let resume = Arc::new(Notify::new());
    let resume_reader = resume.clone();
    let mut write = tokio::spawn(async move {
        // Frames queued together leave in one write (up to WRITE_BATCH).
        let mut out: Vec<u8> = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut next = Some(first);
            while let Some(item) = next.take() {
                match item {
                    StreamOut::Frame(frame) => {
                        if out.is_empty() {
                            out = frame;
                        } else {
                            out.extend_from_slice(&frame);
                        }
                        if out.len() < WRITE_BATCH {
                            next = rx.try_recv().ok();
                        }
                    }
                    StreamOut::Resume => {
                        resume.notify_one();
                        next = rx.try_recv().ok();
                    }
                    StreamOut::Join(join) => {
                        // The ConnectionBind answer goes out first.
                        if !write_out(&mut writer, &mut out).await {
                            return None;
                        }
                        return Some((writer, join));
                    }
                }
            }
            if !write_out(&mut writer, &mut out).await {
                return None;
            }
        }
        None
    });
    let mut frame = first;
    let joined = loop {
        let bind = is_connection_bind(&frame);
        if !events.send(Event::StreamFrame(tuple, frame)).await {
            break None;
        }
        if bind {
            // Read nothing more until the shard has answered: after a
            // success the client's bytes are no longer STUN.
            tokio::select! {
                joined = &mut write => break joined.ok().flatten(),
                () = resume_reader.notified() => {}
            }
        }
        match frames.next(&mut reader, &tuple).await {
            Some(next) => frame = next,
            None => break None,
        }
    };
    match joined {
        Some((writer, join)) => {
            let client = reader.unsplit(writer);
            let JoinTo { peer, stop, pace } = join;
            let relayed = pump::relay(client, peer, frames.rest(), pace, stop).await;
            events.send(Event::DataRelayed(relayed)).await;
        }
        None => write.abort(),
    }
    let _ = events.send(Event::StreamClosed(tuple)).await;
}

/// A tokio reader's frames (see [`FrameBuffer`]).
struct Frames(FrameBuffer);

impl Frames {
    #[cfg(test)]
    fn new() -> Self {
        Frames(FrameBuffer::new())
    }

    /// The next whole frame; `None` at the end of the stream, on a read
    /// error, or on bytes that are neither STUN nor ChannelData.
    async fn next<R: AsyncRead + Unpin>(
        &mut self,
        reader: &mut R,
        tuple: &FiveTuple,
    ) -> Option<Vec<u8>> {
        loop {
            match self.0.take() {
                Ok(Some(frame)) => return Some(self.0.bytes(frame).to_vec()),
                Ok(None) => {}
                Err(_) => {
                    debug!(client = %tuple.client, "not STUN or ChannelData: closing");
                    return None;
                }
            }
            match self.0.read_from_async(reader).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Bytes read past the last frame.
    fn rest(self) -> Vec<u8> {
        self.0.into_rest()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn tuple() -> FiveTuple {
        FiveTuple {
            client: "192.0.2.1:1".parse().unwrap(),
            server: "192.0.2.2:3478".parse().unwrap(),
            transport: Transport::Tcp,
        }
    }

    fn channel_data(i: u8, len: usize) -> Vec<u8> {
        let mut frame = vec![0x40, i, 0, 0];
        frame[2..4].copy_from_slice(&u16::try_from(len).unwrap().to_be_bytes());
        frame.extend(std::iter::repeat_n(i, len));
        frame.resize(frame.len().next_multiple_of(4), 0);
        frame
    }

    #[tokio::test]
    async fn frames_across_reads_come_out_whole_and_in_order() {
        // 12 frames of 1001 bytes (padded to 1008): they straddle every
        // 4 KiB read.
        let frames: Vec<Vec<u8>> = (0..12).map(|i| channel_data(i, 1001)).collect();
        let stream: Vec<u8> = frames.concat();
        let mut reader = &stream[..];
        let mut split = Frames::new();
        for want in &frames {
            assert_eq!(split.next(&mut reader, &tuple()).await.as_ref(), Some(want));
        }
        assert_eq!(
            split.next(&mut reader, &tuple()).await,
            None,
            "end of stream"
        );
        assert!(split.rest().is_empty());
    }

    #[tokio::test]
    async fn bytes_behind_the_last_frame_are_handed_over() {
        let mut stream = channel_data(1, 10);
        stream.extend_from_slice(b"raw after");
        let mut reader = &stream[..];
        let mut split = Frames::new();
        assert_eq!(
            split.next(&mut reader, &tuple()).await,
            Some(channel_data(1, 10))
        );
        assert_eq!(split.rest(), b"raw after");
    }

    #[tokio::test]
    async fn frames_larger_than_a_read_and_a_cut_frame() {
        let big = channel_data(7, 65_535);
        let small = channel_data(8, 3);
        let mut stream = [big.clone(), small.clone(), big.clone()].concat();
        // The stream ends in the middle of a fourth frame.
        stream.extend_from_slice(&channel_data(9, 100)[..50]);
        let mut reader = &stream[..];
        let mut split = Frames::new();
        for want in [&big, &small, &big] {
            assert_eq!(split.next(&mut reader, &tuple()).await.as_ref(), Some(want));
        }
        assert_eq!(split.next(&mut reader, &tuple()).await, None);
    }

    #[tokio::test]
    async fn garbage_ends_the_stream() {
        let stream = [0xFFu8; 64];
        let mut reader = &stream[..];
        assert_eq!(Frames::new().next(&mut reader, &tuple()).await, None);
    }
}
