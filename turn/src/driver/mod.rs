//! The tokio driver around [`TurnServer`]: UDP, TCP and TLS listeners,
//! one UDP relay socket per allocation, timers, drain and reload.
//!
//! One task owns the core. Client UDP is read in that task; TCP/TLS
//! connections and relay sockets have reader tasks that hand frames over a
//! channel. Nothing here decides anything about TURN.

mod relay;
mod stream;
pub mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::config::TurnConfig;
use crate::server::{Destination, FiveTuple, Stats, Transport, TurnServer};

pub use relay::SocketRelays;
pub use tls::TlsSettings;

/// Largest datagram or frame handled.
const MAX_PACKET: usize = 65_536;
/// Kernel socket buffers for client and relay sockets: bursts of media from
/// many sessions must queue in the kernel, not be dropped there.
pub const SOCKET_BUFFER: usize = 4 << 20;
/// Datagrams handled per wake-up before the other sources get a turn.
const BATCH: usize = 64;

/// Grows a UDP socket's kernel buffers (best effort: the kernel caps them at
/// `net.core.rmem_max`/`wmem_max`).
pub fn grow_buffers(socket: &UdpSocket) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
}

/// What reader tasks hand the core task.
enum Event {
    StreamOpened(FiveTuple, mpsc::Sender<Vec<u8>>),
    StreamFrame(FiveTuple, Vec<u8>),
    StreamClosed(FiveTuple),
    Peer {
        relay: SocketAddr,
        peer: SocketAddr,
        data: Vec<u8>,
    },
}

/// Commands from the outside (signals, tests).
#[derive(Debug)]
pub enum Control {
    /// Refuse new allocations; stop when the last one is gone.
    Drain,
    /// Apply a new configuration; existing allocations stay.
    Reconfigure(Box<TurnConfig>),
}

/// The sockets a server listens on.
pub struct Listeners {
    /// Client UDP (one socket; STUN and TURN over UDP).
    pub udp: UdpSocket,
    /// Client TCP (RFC 8656 §4 framing), optional.
    pub tcp: Option<TcpListener>,
    /// Client TLS over TCP, optional.
    pub tls: Option<(TcpListener, TlsSettings)>,
}

/// A running TURN server.
pub struct TurnHandle {
    /// Latest statistics (refreshed every second and on change of state).
    pub stats: Arc<Mutex<Stats>>,
    /// Send controls.
    pub control: mpsc::Sender<Control>,
    /// Becomes true when the server has stopped.
    pub stopped: watch::Receiver<bool>,
    /// The client UDP address.
    pub udp_addr: SocketAddr,
    /// The client TCP address.
    pub tcp_addr: Option<SocketAddr>,
    /// The client TLS address.
    pub tls_addr: Option<SocketAddr>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A listener has no local address.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts the server. Relay sockets are bound on `relay_ip` within
/// `config.relay_ports`.
pub fn spawn(
    config: TurnConfig,
    listeners: Listeners,
    relay_ip: std::net::IpAddr,
) -> Result<TurnHandle, StartError> {
    let (events_tx, events) = mpsc::channel(4096);
    let relays = SocketRelays::new(relay_ip, config.relay_ports.clone(), events_tx.clone());
    let sockets = relays.sockets();
    let now = Instant::now();
    let server = TurnServer::new(config, relays, now, unix_now())?;
    let udp_addr = listeners.udp.local_addr()?;
    grow_buffers(&listeners.udp);
    let tcp_addr = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok());
    let tls_addr = listeners
        .tls
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok());
    if let Some(tcp) = listeners.tcp {
        tokio::spawn(stream::accept(tcp, Transport::Tcp, None, events_tx.clone()));
    }
    if let Some((tls, settings)) = listeners.tls {
        tokio::spawn(stream::accept(
            tls,
            Transport::Tls,
            Some(settings),
            events_tx.clone(),
        ));
    }
    let stats = Arc::new(Mutex::new(Stats::default()));
    let (control, control_rx) = mpsc::channel(16);
    let (stopped_tx, stopped) = watch::channel(false);
    let core = Core {
        server,
        udp_addr,
        out: Outputs {
            udp: listeners.udp,
            streams: HashMap::new(),
            sockets,
        },
        stats: stats.clone(),
        draining: false,
    };
    tokio::spawn(async move {
        core.run(events, control_rx).await;
        let _ = stopped_tx.send(true);
    });
    Ok(TurnHandle {
        stats,
        control,
        stopped,
        udp_addr,
        tcp_addr,
        tls_addr,
    })
}

struct Core {
    server: TurnServer<SocketRelays>,
    udp_addr: SocketAddr,
    out: Outputs,
    stats: Arc<Mutex<Stats>>,
    draining: bool,
}

/// Where the core's transmits go: client UDP, client streams, relay sockets.
struct Outputs {
    udp: UdpSocket,
    streams: HashMap<FiveTuple, mpsc::Sender<Vec<u8>>>,
    sockets: relay::SocketMap,
}

impl Core {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut control: mpsc::Receiver<Control>,
    ) {
        let mut buf = vec![0u8; MAX_PACKET];
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let deadline = self.server.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(t.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                received = self.out.udp.recv_from(&mut buf) => match received {
                    Ok((n, client)) => {
                        self.client(client, n, &buf).await;
                        // Drain what else is queued without another wake-up.
                        for _ in 0..BATCH {
                            let Ok((n, client)) = self.out.udp.try_recv_from(&mut buf) else { break };
                            self.client(client, n, &buf).await;
                        }
                    }
                    Err(e) => debug!(error = %e, "udp receive failed"),
                },
                Some(event) = events.recv() => {
                    self.event(event).await;
                    for _ in 0..BATCH {
                        let Ok(event) = events.try_recv() else { break };
                        self.event(event).await;
                    }
                }
                Some(c) = control.recv() => self.control(c),
                _ = sleep => self.server.handle_timeout(Instant::now()),
                _ = tick.tick() => {
                    let now = Instant::now();
                    self.server.set_wall_clock(now, unix_now());
                    self.publish_stats(now);
                    if self.draining && self.server.stats(now).allocations == 0 {
                        info!("drained: no allocations left");
                        return;
                    }
                }
            }
        }
    }

    fn publish_stats(&self, now: Instant) {
        if let Ok(mut s) = self.stats.lock() {
            *s = self.server.stats(now);
        }
    }

    fn control(&mut self, control: Control) {
        match control {
            Control::Drain => {
                info!("draining: refusing new allocations");
                self.draining = true;
                self.server.set_draining(true);
            }
            Control::Reconfigure(config) => match self.server.reconfigure(*config) {
                Ok(()) => info!("configuration reloaded"),
                Err(e) => warn!(error = %e, "configuration not reloaded"),
            },
        }
    }

    /// One datagram from a client over UDP.
    async fn client(&mut self, client: SocketAddr, n: usize, buf: &[u8]) {
        let tuple = FiveTuple {
            client,
            server: self.udp_addr,
            transport: Transport::Udp,
        };
        let now = Instant::now();
        let Some(t) = self.server.handle_client(now, tuple, &buf[..n]) else {
            return;
        };
        self.out.send(t.destination, t.data).await;
    }

    async fn event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::StreamOpened(tuple, writer) => {
                self.out.streams.insert(tuple, writer);
            }
            Event::StreamFrame(tuple, data) => {
                if let Some(t) = self.server.handle_client(now, tuple, &data) {
                    self.out.send(t.destination, t.data).await;
                }
            }
            Event::StreamClosed(tuple) => {
                self.out.streams.remove(&tuple);
                self.server.handle_connection_closed(tuple);
            }
            Event::Peer { relay, peer, data } => {
                if let Some(t) = self.server.handle_peer(now, relay, peer, &data) {
                    self.out.send(t.destination, t.data).await;
                }
            }
        }
    }
}

impl Outputs {
    async fn send(&self, destination: Destination, data: &[u8]) {
        match destination {
            Destination::Client(tuple) if tuple.transport == Transport::Udp => {
                if let Err(e) = self.udp.send_to(data, tuple.client).await {
                    debug!(error = %e, "udp send failed");
                }
            }
            Destination::Client(tuple) => {
                if let Some(writer) = self.streams.get(&tuple) {
                    // A full queue means a stuck client: drop, as UDP would.
                    let _ = writer.try_send(data.to_vec());
                }
            }
            Destination::Peer { relay, peer } => {
                let socket = self
                    .sockets
                    .lock()
                    .ok()
                    .and_then(|m| m.get(&relay).cloned());
                if let Some(socket) = socket
                    && let Err(e) = socket.send_to(data, peer).await
                {
                    debug!(error = %e, "relay send failed");
                }
            }
        }
    }
}
