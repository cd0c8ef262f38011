//! The tokio driver: one UDP socket, one task, the sans-IO [`Sfu`] inside.
//!
//! Signaling talks to it through [`SfuHandle`] (commands with replies) and
//! reads [`SfuEvent`]s from the channel [`spawn`] returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use str0m::net::Protocol;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use crate::{Output, ParticipantId, RoomId, Sfu, SfuConfig, SfuError, SfuEvent, SfuMetrics};

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
    mut config: SfuConfig,
    socket: UdpSocket,
) -> std::io::Result<(SfuHandle, mpsc::UnboundedReceiver<SfuEvent>)> {
    let local = socket.local_addr()?;
    if config.announce_addrs.is_empty() {
        config.announce_addrs.push(local);
    }
    let media_addr = config.announce_addrs[0];
    let max_participants = config.max_participants_per_room;
    let sfu = Sfu::new(config, Instant::now());
    let metrics = sfu.metrics();
    let (commands, command_rx) = mpsc::channel(256);
    let (events, event_rx) = mpsc::unbounded_channel();
    tokio::spawn(run(sfu, socket, media_addr, command_rx, events));
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
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::UnboundedSender<SfuEvent>,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let deadline = flush(&mut sfu, &socket, &events).await;
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
            command = commands.recv() => {
                let Some(command) = command else {
                    sfu.shutdown(Instant::now());
                    flush(&mut sfu, &socket, &events).await;
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
    events: &mpsc::UnboundedSender<SfuEvent>,
) -> Instant {
    loop {
        match sfu.poll_output() {
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
