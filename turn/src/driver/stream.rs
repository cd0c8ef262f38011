//! TCP and TLS client connections: accept, split the byte stream into STUN
//! messages and ChannelData frames (RFC 8656 §4), write replies.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tracing::debug;

use super::tls::TlsSettings;
use super::{Event, EventSender, MAX_PACKET, Shards};
use crate::codec::stream_frame_len;
use crate::server::{FiveTuple, Transport};

/// Frames queued toward one client before it counts as stuck.
const WRITE_QUEUE: usize = 512;

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
        let Some(events) = shards.for_stream(&tuple).cloned() else {
            return;
        };
        match &tls {
            None => {
                tokio::spawn(serve(stream, tuple, events));
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
                        Ok(Ok(tls)) => serve(tls, tuple, events).await,
                        _ => debug!(%client, "TLS handshake failed"),
                    }
                });
            }
        }
    }
}

async fn serve<S>(stream: S, tuple: FiveTuple, events: EventSender)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    if !events.send(Event::StreamOpened(tuple, tx)).await {
        return;
    }
    let write = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    read_frames(&mut reader, tuple, &events).await;
    write.abort();
    let _ = events.send(Event::StreamClosed(tuple)).await;
}

async fn read_frames<R: AsyncRead + Unpin>(reader: &mut R, tuple: FiveTuple, events: &EventSender) {
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; 16_384];
    loop {
        // Hand over every complete frame in the buffer.
        loop {
            match stream_frame_len(&buf) {
                Ok(Some(n)) if n <= buf.len() => {
                    let frame: Vec<u8> = buf.drain(..n).collect();
                    if !events.send(Event::StreamFrame(tuple, frame)).await {
                        return;
                    }
                }
                Ok(_) => break,
                Err(()) => {
                    debug!(client = %tuple.client, "not STUN or ChannelData: closing");
                    return;
                }
            }
        }
        if buf.len() > MAX_PACKET {
            return;
        }
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
