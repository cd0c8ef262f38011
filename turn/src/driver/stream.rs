//! TCP and TLS client connections (RFC 8656 §4), on tokio only until their
//! first frame: accept, run the TLS handshake, read up to the first whole
//! STUN message or ChannelData frame, which names the connection's core
//! thread, and hand the socket, what was read and the TLS session to that
//! thread, which polls the connection from then on (see
//! [`super::client_streams`]).

use tokio::io::AsyncRead;
use tokio::net::TcpListener;
use tracing::debug;

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

/// Reads a TLS connection (handshake done) up to its first whole frame and
/// hands it, with what was read and its TLS session, to its shard's core
/// thread.
async fn hand_tls_to_core(
    mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    tuple: FiveTuple,
    shards: Shards,
) {
    let mut input = FrameBuffer::new();
    let Some(first) = read_first_frame(&mut stream, &mut input, &tuple).await else {
        return;
    };
    let Some(events) = shard_of(&shards, input.bytes(first), &tuple) else {
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
