//! TCP and TLS client connections (RFC 8656 §4), on tokio only until their
//! first frame: accept, run the TLS handshake, read up to the first whole
//! STUN message or ChannelData frame, which names the connection's core
//! thread, and hand the socket, what was read and the TLS session to that
//! thread, which polls the connection from then on (see
//! [`super::client_streams`]).

use std::time::Duration;

use tokio::io::AsyncRead;
use tokio::net::TcpListener;
use tokio_rustls::rustls::ServerConnection;
use tracing::{debug, warn};

use super::conn_limit::{ConnectionLimit, ConnectionSlot, out_of_resources};
use super::frames::FrameBuffer;
use super::tls::TlsSettings;
use super::{Event, EventSender, Shards};
use crate::codec::{Attribute, Message, Method, attr_type};
use crate::server::{FiveTuple, Transport};

pub(super) async fn accept(
    listener: TcpListener,
    transport: Transport,
    tls: Option<TlsSettings>,
    shards: Shards,
    limit: ConnectionLimit,
) {
    let Ok(server) = listener.local_addr() else {
        return;
    };
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                if shards.is_closed() {
                    return;
                }
                if out_of_resources(&e) {
                    // The pending connection stays queued and the listener
                    // readable: pause instead of spinning until files or
                    // memory come back.
                    warn!(error = %e, "accept: out of resources, pausing");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                } else {
                    debug!(error = %e, "accept failed");
                }
                continue;
            }
        };
        let Some(slot) = limit.try_take() else {
            debug!(%client, "max_client_connections reached: closing");
            continue;
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
                tokio::spawn(hand_to_core(stream, tuple, shards, slot));
            }
            Some(settings) => {
                let acceptor = settings.acceptor();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => hand_to_core(tls, tuple, shards, slot).await,
                        Ok(Err(e)) => debug!(%client, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%client, "TLS handshake timed out"),
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

/// How long accepting pauses when the process is out of files or memory.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a new connection may take to send its first whole frame: one
/// that sends nothing (or dribbles) holds no task longer.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads until `input` holds a whole first frame: where it lies, or `None`
/// if the stream ends (or is not STUN, or [`FIRST_FRAME_TIMEOUT`] passes)
/// first.
async fn read_first_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    input: &mut FrameBuffer,
    tuple: &FiveTuple,
) -> Option<std::ops::Range<usize>> {
    let read = tokio::time::timeout(FIRST_FRAME_TIMEOUT, read_until_frame(reader, input, tuple));
    match read.await {
        Ok(first) => first,
        Err(_) => {
            debug!(client = %tuple.client, "no first frame in time: closing");
            None
        }
    }
}

async fn read_until_frame<R: AsyncRead + Unpin>(
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

/// A connection as tokio holds it, and what the core thread takes of it.
trait HandOver: AsyncRead + Unpin {
    fn into_parts(self) -> (tokio::net::TcpStream, Option<Box<ServerConnection>>);
}

impl HandOver for tokio::net::TcpStream {
    fn into_parts(self) -> (tokio::net::TcpStream, Option<Box<ServerConnection>>) {
        (self, None)
    }
}

impl HandOver for tokio_rustls::server::TlsStream<tokio::net::TcpStream> {
    fn into_parts(self) -> (tokio::net::TcpStream, Option<Box<ServerConnection>>) {
        let (stream, session) = self.into_inner();
        (stream, Some(Box::new(session)))
    }
}

/// Reads a connection (for TLS, after the handshake) up to its first whole
/// frame and hands it, with everything read and its TLS session, to its
/// shard's core thread.
async fn hand_to_core<S: HandOver>(
    mut stream: S,
    tuple: FiveTuple,
    shards: Shards,
    slot: ConnectionSlot,
) {
    let mut input = FrameBuffer::new();
    let Some(first) = read_first_frame(&mut stream, &mut input, &tuple).await else {
        return;
    };
    let Some(events) = shard_of(&shards, input.bytes(first), &tuple) else {
        return;
    };
    let (stream, tls) = stream.into_parts();
    // Non-blocking, as the core thread's poller needs it.
    let Ok(stream) = stream.into_std() else {
        return;
    };
    events
        .send(Event::StreamAdopted {
            tuple,
            stream,
            input,
            tls,
            slot,
        })
        .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::io::AsyncWriteExt;

    use super::*;
    use crate::server::Transport;

    fn tuple() -> FiveTuple {
        FiveTuple {
            client: "192.0.2.1:1".parse().unwrap(),
            server: "192.0.2.2:3478".parse().unwrap(),
            transport: Transport::Tcp,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_that_sends_no_whole_frame_in_time_is_let_go() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        // Half a ChannelData header, then nothing.
        far.write_all(&[0x40, 0x00]).await.unwrap();
        let start = tokio::time::Instant::now();
        let mut input = FrameBuffer::new();
        assert_eq!(
            read_first_frame(&mut near, &mut input, &tuple()).await,
            None
        );
        assert_eq!(start.elapsed(), FIRST_FRAME_TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_frame_in_pieces_is_found() {
        let (mut near, mut far) = tokio::io::duplex(1024);
        let reading = tokio::spawn(async move {
            let mut input = FrameBuffer::new();
            let first = read_first_frame(&mut near, &mut input, &tuple()).await;
            first.map(|range| input.bytes(range).to_vec())
        });
        far.write_all(&[0x40, 0x01, 0x00]).await.unwrap();
        tokio::time::sleep(FIRST_FRAME_TIMEOUT / 2).await;
        far.write_all(&[0x02, 7, 7, 0, 0]).await.unwrap();
        assert_eq!(
            reading.await.unwrap(),
            Some(vec![0x40, 1, 0, 2, 7, 7, 0, 0])
        );
    }
}
