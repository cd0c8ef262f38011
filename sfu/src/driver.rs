//! The tokio driver: one UDP socket, one task, the sans-IO [`Sfu`] inside.
//!
//! Signaling talks to it through [`SfuHandle`] (commands with replies) and
//! reads [`SfuEvent`]s from the channel [`spawn`] returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use std::collections::HashMap;

use str0m::net::Protocol;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::tcp::{FrameDecoder, encode_frame};
use crate::{Output, ParticipantId, RoomId, Sfu, SfuConfig, SfuError, SfuEvent, SfuMetrics};

/// Framed packets queued toward one ICE-TCP connection before it counts as stuck.
const TCP_QUEUE: usize = 256;

/// What the ICE-TCP tasks tell the SFU task.
enum TcpEvent {
    Opened(SocketAddr, mpsc::Sender<Vec<u8>>),
    Packet(SocketAddr, Vec<u8>),
    Closed(SocketAddr),
}

/// Largest datagram read from the socket.
const MAX_DATAGRAM: usize = 2048;
/// Datagrams handled per wake-up before outputs are flushed.
const RECV_BATCH: usize = 64;

type Reply<T> = oneshot::Sender<Result<T, SfuError>>;

enum Command {
    Join(RoomId, Reply<ParticipantId>),
    Offer(ParticipantId, String, Reply<String>),
    Answer(ParticipantId, String, Reply<()>),
    RestartIce(ParticipantId, Reply<()>),
    VideoWidth(ParticipantId, ParticipantId, u32, Reply<()>),
    LayerWidths(ParticipantId, Vec<(String, u32)>, Reply<()>),
    Leave(ParticipantId, Reply<()>),
    Shutdown(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to the running SFU.
#[derive(Clone)]
pub struct SfuHandle {
    commands: mpsc::Sender<Command>,
    metrics: Arc<SfuMetrics>,
    media_addr: SocketAddr,
    max_participants: usize,
}

impl SfuHandle {
    /// Shared counters.
    pub fn metrics(&self) -> &SfuMetrics {
        &self.metrics
    }

    /// The address put in ICE candidates.
    pub fn media_addr(&self) -> SocketAddr {
        self.media_addr
    }

    /// Room size limit.
    pub fn max_participants(&self) -> usize {
        self.max_participants
    }

    async fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, SfuError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(make(tx))
            .await
            .map_err(|_| SfuError::DriverGone)?;
        rx.await.map_err(|_| SfuError::DriverGone)?
    }

    /// See [`Sfu::join`].
    pub async fn join(&self, room: RoomId) -> Result<ParticipantId, SfuError> {
        self.call(|r| Command::Join(room, r)).await
    }

    /// See [`Sfu::accept_offer`].
    pub async fn offer(&self, id: ParticipantId, sdp: String) -> Result<String, SfuError> {
        self.call(|r| Command::Offer(id, sdp, r)).await
    }

    /// See [`Sfu::accept_answer`].
    pub async fn answer(&self, id: ParticipantId, sdp: String) -> Result<(), SfuError> {
        self.call(|r| Command::Answer(id, sdp, r)).await
    }

    /// See [`Sfu::restart_ice`].
    pub async fn restart_ice(&self, id: ParticipantId) -> Result<(), SfuError> {
        self.call(|r| Command::RestartIce(id, r)).await
    }

    /// See [`Sfu::set_video_width`].
    pub async fn video_width(
        &self,
        subscriber: ParticipantId,
        publisher: ParticipantId,
        width: u32,
    ) -> Result<(), SfuError> {
        self.call(|r| Command::VideoWidth(subscriber, publisher, width, r))
            .await
    }

    /// See [`Sfu::set_layer_widths`].
    pub async fn layer_widths(
        &self,
        publisher: ParticipantId,
        widths: Vec<(String, u32)>,
    ) -> Result<(), SfuError> {
        self.call(|r| Command::LayerWidths(publisher, widths, r))
            .await
    }

    /// See [`Sfu::leave`].
    pub async fn leave(&self, id: ParticipantId) -> Result<(), SfuError> {
        self.call(|r| Command::Leave(id, r)).await
    }

    /// Removes everyone and stops taking participants.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the SFU on `socket`. When `config.announce_addrs` is empty the
/// socket's own address is announced.
pub fn spawn(
    config: SfuConfig,
    socket: UdpSocket,
) -> std::io::Result<(SfuHandle, mpsc::UnboundedReceiver<SfuEvent>)> {
    spawn_with_tcp(config, socket, None)
}

/// Like [`spawn`], plus ICE-TCP on `tcp` (a passive candidate at its
/// address, or at `config.tcp_announce_addrs` when set).
pub fn spawn_with_tcp(
    mut config: SfuConfig,
    socket: UdpSocket,
    tcp: Option<TcpListener>,
) -> std::io::Result<(SfuHandle, mpsc::UnboundedReceiver<SfuEvent>)> {
    let local = socket.local_addr()?;
    if config.announce_addrs.is_empty() {
        config.announce_addrs.push(local);
    }
    let (tcp_events, tcp_rx) = mpsc::channel(1024);
    let mut tcp_addr = None;
    if let Some(listener) = tcp {
        let bound = listener.local_addr()?;
        if config.tcp_announce_addrs.is_empty() {
            config.tcp_announce_addrs.push(bound);
        }
        tcp_addr = config.tcp_announce_addrs.first().copied();
        tokio::spawn(accept_tcp(listener, tcp_events));
    }
    let media_addr = config.announce_addrs[0];
    let max_participants = config.max_participants_per_room;
    let sfu = Sfu::new(config, Instant::now());
    let metrics = sfu.metrics();
    let (commands, command_rx) = mpsc::channel(256);
    let (events, event_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(
        sfu, socket, media_addr, tcp_addr, tcp_rx, command_rx, events,
    ));
    let handle = SfuHandle {
        commands,
        metrics,
        media_addr,
        max_participants,
    };
    Ok((handle, event_rx))
}

async fn run(
    mut sfu: Sfu,
    socket: UdpSocket,
    media_addr: SocketAddr,
    tcp_addr: Option<SocketAddr>,
    mut tcp_rx: mpsc::Receiver<TcpEvent>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut tcp_conns: HashMap<SocketAddr, mpsc::Sender<Vec<u8>>> = HashMap::new();
    loop {
        let deadline = flush(&mut sfu, &socket, &tcp_conns, &events).await;
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                match received {
                    Ok((n, source)) => {
                        sfu.handle_receive(Instant::now(), Protocol::Udp, source, media_addr, &buf[..n]);
                        // Drain what else is queued without waiting.
                        for _ in 0..RECV_BATCH {
                            match socket.try_recv_from(&mut buf) {
                                Ok((n, source)) => {
                                    sfu.handle_receive(Instant::now(), Protocol::Udp, source, media_addr, &buf[..n]);
                                }
                                Err(_) => break,
                            }
                        }
                    }
                    Err(e) => debug!(error = %e, "udp receive failed"),
                }
            }
            Some(event) = tcp_rx.recv(), if tcp_addr.is_some() => match event {
                TcpEvent::Opened(peer, writer) => {
                    tcp_conns.insert(peer, writer);
                }
                TcpEvent::Packet(peer, data) => {
                    if let Some(local) = tcp_addr {
                        sfu.handle_receive(Instant::now(), Protocol::Tcp, peer, local, &data);
                    }
                }
                TcpEvent::Closed(peer) => {
                    tcp_conns.remove(&peer);
                }
            },
            command = commands.recv() => {
                let Some(command) = command else {
                    sfu.shutdown(Instant::now());
                    flush(&mut sfu, &socket, &tcp_conns, &events).await;
                    return;
                };
                handle_command(&mut sfu, command);
            }
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
        let now = Instant::now();
        if now >= deadline {
            sfu.handle_timeout(now);
        }
    }
}

fn handle_command(sfu: &mut Sfu, command: Command) {
    let now = Instant::now();
    match command {
        Command::Join(room, reply) => {
            let _ = reply.send(sfu.join(now, room));
        }
        Command::Offer(id, sdp, reply) => {
            let _ = reply.send(sfu.accept_offer(now, id, &sdp));
        }
        Command::Answer(id, sdp, reply) => {
            let _ = reply.send(sfu.accept_answer(now, id, &sdp));
        }
        Command::RestartIce(id, reply) => {
            let _ = reply.send(sfu.restart_ice(id));
        }
        Command::VideoWidth(sub, publisher, width, reply) => {
            let _ = reply.send(sfu.set_video_width(now, sub, publisher, width));
        }
        Command::LayerWidths(id, widths, reply) => {
            let _ = reply.send(sfu.set_layer_widths(id, widths));
        }
        Command::Leave(id, reply) => {
            let _ = reply.send(sfu.leave(now, id));
        }
        Command::Shutdown(done) => {
            sfu.shutdown(now);
            let _ = done.send(());
        }
    }
}

/// Sends everything the core has to send; returns its next deadline.
async fn flush(
    sfu: &mut Sfu,
    socket: &UdpSocket,
    tcp_conns: &HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    events: &mpsc::UnboundedSender<SfuEvent>,
) -> Instant {
    loop {
        match sfu.poll_output() {
            Output::Transmit(t) if t.proto == Protocol::Tcp => {
                let conn = tcp_conns.get(&t.destination);
                if let (Some(conn), Some(frame)) = (conn, encode_frame(&t.contents)) {
                    // A full queue means a stuck connection: drop, like UDP would.
                    let _ = conn.try_send(frame);
                }
            }
            Output::Transmit(t) => {
                if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                    warn!(error = %e, "udp send failed");
                }
            }
            Output::Event(e) => {
                let _ = events.send(e);
            }
            Output::Timeout(t) => return t,
        }
    }
}

async fn accept_tcp(listener: TcpListener, events: mpsc::Sender<TcpEvent>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_tcp(stream, peer, events.clone()));
            }
            Err(e) => {
                debug!(error = %e, "ice-tcp accept failed");
                if events.is_closed() {
                    return;
                }
            }
        }
    }
}

/// Reads RFC 4571 frames from one connection and writes the SFU's frames to it.
async fn serve_tcp(stream: TcpStream, peer: SocketAddr, events: mpsc::Sender<TcpEvent>) {
    let (mut reader, mut writer) = stream.into_split();
    let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
    if events.send(TcpEvent::Opened(peer, out_tx)).await.is_err() {
        return;
    }
    let write_task = tokio::spawn(async move {
        while let Some(frame) = out_rx.recv().await {
            if writer.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let mut decoder = FrameDecoder::default();
    let mut buf = vec![0u8; 8192];
    'read: loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.push(&buf[..n]);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    if events.send(TcpEvent::Packet(peer, frame)).await.is_err() {
                        break 'read;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    debug!(%peer, error = %e, "ice-tcp framing error, closing");
                    break 'read;
                }
            }
        }
    }
    write_task.abort();
    let _ = events.send(TcpEvent::Closed(peer)).await;
}
