//! The driver around [`TurnServer`]: UDP, TCP and TLS listeners, one UDP
//! relay socket per allocation, timers, drain and reload.
//!
//! A core thread owns a core and polls its client UDP socket and every
//! relay socket itself (epoll through `mio`), draining each readable socket
//! with batched receives and sending client-bound datagrams in batches: no
//! channel, lock or task wake-up per packet (see [`event_loop`]). Several
//! core threads share the client port, each with its own clients (see
//! [`shards`]). Client TCP and TLS connections are polled by their shard's
//! thread too, and so are data connections with their peer connections
//! ([`client_streams`], [`splice`]). tokio only accepts connections, runs
//! TLS handshakes and connects to peers; it hands the core events over a
//! channel. Nothing here decides anything about TURN.

mod batch;
mod client_streams;
mod conn_limit;
mod event_loop;
mod frames;
mod pace;
mod relay;
mod send_batch;
mod shards;
mod slots;
mod splice;
mod stream;
mod tcp_relay;
#[cfg(test)]
mod test_tls;
pub mod tls;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, watch};

use crate::config::TurnConfig;
use crate::server::{AllocationLedger, ConnectionId, FiveTuple, Stats, Transport, TurnServer};

use event_loop::EventLoop;

pub use conn_limit::raise_open_file_limit;
pub use relay::SocketRelays;
pub use tls::TlsSettings;

/// Kernel socket buffers for client and relay sockets: bursts of media from
/// many sessions must queue in the kernel, not be dropped there.
pub const SOCKET_BUFFER: usize = 4 << 20;
/// Events queued toward the core thread before senders wait.
const EVENT_QUEUE: usize = 4096;

/// Tunes a UDP socket for relaying, best effort:
/// - grows its kernel buffers (the kernel caps them at
///   `net.core.rmem_max`/`wmem_max`);
/// - IPv4 datagrams leave with DF set and no path-MTU bookkeeping
///   (`IP_PMTUDISC_PROBE`). Linux's default already sets DF below the path
///   MTU but still draws a hashed IP ID for every datagram (5 % of the
///   relay's CPU under load); with PROBE the ID is 0, as for any DF packet.
///   Datagrams are never fragmented by us: WebRTC sizes media below the
///   path MTU (1200 bytes by default), and one larger than the interface
///   MTU is refused (`EMSGSIZE`) rather than split.
///
/// (On an IPv6 socket the IPv4 option covers its IPv4-mapped traffic, or
/// fails harmlessly.)
pub fn tune_udp_socket<S: std::os::fd::AsFd>(socket: &S) {
    let s = socket2::SockRef::from(socket);
    let _ = s.set_recv_buffer_size(SOCKET_BUFFER);
    let _ = s.set_send_buffer_size(SOCKET_BUFFER);
    let _ = rustix::net::sockopt::set_ip_mtu_discover(
        socket,
        rustix::net::sockopt::Ipv4PathMtuDiscovery::PROBE,
    );
}

/// What tokio tasks (accepted connections, TCP relays, controls) hand the
/// core thread.
enum Event {
    /// A client connection for the core thread to poll, with what was
    /// read of it (at least its first frame) and, over TLS, its session.
    StreamAdopted {
        tuple: FiveTuple,
        stream: std::net::TcpStream,
        input: frames::FrameBuffer,
        tls: Option<Box<tokio_rustls::rustls::ServerConnection>>,
        /// Its place under `max_client_connections`.
        slot: conn_limit::ConnectionSlot,
    },
    /// A Connect's connection attempt ended.
    PeerConnected(ConnectionId, std::io::Result<tokio::net::TcpStream>),
    /// A peer connected to a TCP relayed address.
    PeerIncoming {
        relay: SocketAddr,
        peer: SocketAddr,
        stream: tokio::net::TcpStream,
    },
    Control(Control),
}

/// Wakes a core thread's poller at most once until the core has looked at
/// its queue again: a burst of events from tokio costs one system call,
/// not one each.
struct CoreWaker {
    waker: mio::Waker,
    pending: std::sync::atomic::AtomicBool,
}

impl CoreWaker {
    fn new(poll: &mio::Poll) -> std::io::Result<Self> {
        Ok(CoreWaker {
            waker: mio::Waker::new(poll.registry(), event_loop::WAKER)?,
            pending: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// After queueing an event: wakes the core unless a wake-up it has not
    /// answered yet is pending (it will see this event too).
    fn wake(&self) {
        if !self.pending.swap(true, Ordering::SeqCst) && self.waker.wake().is_err() {
            // Not pending after all: the next sender tries again.
            self.pending.store(false, Ordering::SeqCst);
        }
    }

    /// Wakes the core whatever is pending (the queue closed).
    fn wake_always(&self) {
        self.pending.store(true, Ordering::SeqCst);
        if self.waker.wake().is_err() {
            self.pending.store(false, Ordering::SeqCst);
        }
    }

    /// The core is about to drain its queue: events queued from now on
    /// wake it again. (A read-modify-write, so it orders with the
    /// senders' swaps.)
    fn rearm(&self) {
        self.pending.swap(false, Ordering::SeqCst);
    }
}

/// Sends [`Event`]s to the core thread and wakes its poller. When the last
/// sender is dropped (its tokio runtime is gone) the core thread wakes,
/// finds the channel closed and stops, as a task on that runtime would.
struct EventSender {
    /// Always `Some` until dropped.
    tx: Option<mpsc::Sender<Event>>,
    waker: Arc<CoreWaker>,
}

impl Clone for EventSender {
    fn clone(&self) -> Self {
        EventSender {
            tx: self.tx.clone(),
            waker: self.waker.clone(),
        }
    }
}

impl EventSender {
    /// Queues `event` (waiting while the queue is full); false once the
    /// core has stopped.
    async fn send(&self, event: Event) -> bool {
        let Some(tx) = &self.tx else {
            return false;
        };
        let sent = tx.send(event).await.is_ok();
        self.waker.wake();
        sent
    }

    fn is_closed(&self) -> bool {
        self.tx.as_ref().is_none_or(mpsc::Sender::is_closed)
    }
}

impl Drop for EventSender {
    fn drop(&mut self) {
        // Close our end first, so the woken core sees the channel closed.
        drop(self.tx.take());
        self.waker.wake_always();
    }
}

/// Every shard's [`EventSender`]; a connection's events go to one.
#[derive(Clone)]
struct Shards(Arc<[EventSender]>);

impl Shards {
    fn for_stream(&self, tuple: &FiveTuple) -> Option<&EventSender> {
        self.0.get(shards::for_stream(tuple, self.0.len()))
    }

    /// The shard holding TCP peer connection `id` (ids carry their shard,
    /// see [`TurnServer::with_connection_shard`]).
    fn for_connection(&self, id: ConnectionId) -> Option<&EventSender> {
        let index = usize::try_from(id).ok()? % self.0.len().max(1);
        self.0.get(index)
    }

    fn is_closed(&self) -> bool {
        self.0.iter().all(EventSender::is_closed)
    }
}

/// Commands from the outside (signals, tests).
#[derive(Debug, Clone)]
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
    /// Latest statistics, summed over the core threads (refreshed every
    /// second).
    pub stats: Arc<Mutex<Stats>>,
    board: Arc<shards::StatsBoard>,
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

impl TurnHandle {
    /// Each core thread's latest statistics (their sum is [`Self::stats`]).
    pub fn shard_stats(&self) -> Vec<Stats> {
        self.board.per_shard()
    }
}

/// How many core threads a server started with `config` runs (see
/// [`shards`]: `core_threads`, or one per two CPUs within what the relay
/// ports allow).
pub fn core_thread_count(config: &TurnConfig) -> usize {
    shards::count(config)
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
    spawn_with_relay_ips(config, listeners, &[relay_ip])
}

/// Starts the server with relay sockets on each of `relay_ips` (one IPv4
/// and one IPv6 address at most: REQUESTED-ADDRESS-FAMILY picks, RFC 6156);
/// a family without an address is answered 440.
pub fn spawn_with_relay_ips(
    config: TurnConfig,
    listeners: Listeners,
    relay_ips: &[std::net::IpAddr],
) -> Result<TurnHandle, StartError> {
    config.validate()?;
    let udp = listeners.udp.into_std()?;
    let udp_addr = udp.local_addr()?;
    let sockets = shards::client_sockets(udp, shards::count(&config));
    let shard_count = sockets.len();
    let runtime = tokio::runtime::Handle::try_current().map_err(std::io::Error::other)?;
    let port_slices = shards::port_slices(&config.relay_ports, sockets.len());
    let ledger = AllocationLedger::new();
    let connections = conn_limit::ConnectionLimit::new(config.max_client_connections);
    let board = Arc::new(shards::StatsBoard::new(
        sockets.len(),
        ledger.clone(),
        connections.clone(),
    ));
    // One nonce secret and one clock: a nonce from one shard is good at all.
    let (nonce_secret, now, unix) = (rand::random::<[u8; 32]>(), Instant::now(), unix_now());
    let (stopped_tx, stopped) = watch::channel(false);
    let stopped_tx = Arc::new(stopped_tx);
    let running = Arc::new(AtomicUsize::new(sockets.len()));
    let mut senders = Vec::with_capacity(sockets.len());
    for (index, (udp, ports)) in sockets.into_iter().zip(port_slices).enumerate() {
        let server = TurnServer::new(
            config.clone(),
            SocketRelays::new(relay_ips, ports),
            now,
            unix,
        )?
        .with_nonce_secret(nonce_secret)
        .with_ledger(ledger.clone())
        .with_connection_shard(
            u32::try_from(index).unwrap_or(0),
            u32::try_from(shard_count).unwrap_or(1),
        );
        tune_udp_socket(&udp);
        udp.set_nonblocking(true)?;
        let udp = mio::net::UdpSocket::from_std(udp);
        let poll = mio::Poll::new()?;
        let waker = Arc::new(CoreWaker::new(&poll)?);
        let (events_tx, events) = mpsc::channel(EVENT_QUEUE);
        let tcp = tcp_relay::TcpRelays::new(runtime.clone(), events_tx.downgrade(), waker.clone());
        senders.push(EventSender {
            tx: Some(events_tx),
            waker: waker.clone(),
        });
        let core = EventLoop::new(
            server,
            poll,
            udp,
            (events, waker, tcp),
            (index, board.clone()),
        )?;
        let (running, stopped_tx, shard_board) =
            (running.clone(), stopped_tx.clone(), board.clone());
        std::thread::Builder::new()
            .name(format!("turn-core-{index}"))
            .spawn(move || {
                core.run();
                // However it stopped, this shard holds nothing now (its
                // allocations' quota went back with its table): the others
                // may finish a drain without it.
                shard_board.mark_draining(index);
                if running.fetch_sub(1, Ordering::AcqRel) == 1 {
                    let _ = stopped_tx.send(true);
                }
            })?;
    }
    let shards = Shards(senders.into());
    let tcp_addr = listeners.tcp.as_ref().and_then(|l| l.local_addr().ok());
    let tls_addr = listeners
        .tls
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok());
    if let Some(tcp) = listeners.tcp {
        let (shards, limit) = (shards.clone(), connections.clone());
        tokio::spawn(stream::accept(tcp, Transport::Tcp, None, shards, limit));
    }
    if let Some((tls, settings)) = listeners.tls {
        let (shards, limit) = (shards.clone(), connections);
        tokio::spawn(stream::accept(
            tls,
            Transport::Tls,
            Some(settings),
            shards,
            limit,
        ));
    }
    let (control, mut control_rx) = mpsc::channel::<Control>(16);
    tokio::spawn(async move {
        while let Some(c) = control_rx.recv().await {
            for shard in shards.0.iter() {
                // A shard that already stopped (drained) takes no more.
                shard.send(Event::Control(c.clone())).await;
            }
        }
        // The handle is gone; the server runs on as long as this runtime.
        std::future::pending::<()>().await;
    });
    Ok(TurnHandle {
        stats: board.total(),
        board,
        control,
        stopped,
        udp_addr,
        tcp_addr,
        tls_addr,
    })
}
