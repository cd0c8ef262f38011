//! A core thread: one epoll loop (`mio`) that owns a [`TurnServer`], its
//! client UDP socket and its relay sockets (one shard, see [`super::shards`]).
//!
//! Each turn it waits for readiness, then drains every readable socket in
//! batches ([`RecvBatch`], `recvmmsg`), feeds each datagram to the core and
//! queues the transmit: to a UDP client into a [`SendBatch`] flushed with
//! `sendmmsg` at the end of the turn (or when full), to a peer into one
//! flushed when the next transmit leaves by another relay socket. Equal
//! datagrams to one destination go as one GSO train. Plain TCP client
//! connections are polled here too, and what the core answers them leaves in
//! one write per connection at the end of the turn. Events from tokio (new
//! TCP connections, TLS frames, TCP relay connections, controls) arrive on
//! a channel with a [`mio::Waker`]. Timers are the poll timeout.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use tokio::sync::mpsc::{self, error::TryRecvError};
use tracing::{debug, info, warn};

use super::batch::{BATCH, RecvBatch};
use super::client_streams::ClientStreams;
use super::frames::NotStun;
use super::relay::{RelaySockets, SocketRelays};
use super::send_batch::SendBatch;
use super::shards::StatsBoard;
use super::splice::Splices;
use super::stream::is_connection_bind;
use super::tcp_relay::TcpRelays;
use super::{Control, CoreWaker, Event, unix_now};
use crate::server::{Destination, FiveTuple, Transmit, Transport, TurnServer};

/// The poller's token for the tokio-side [`mio::Waker`].
pub(super) const WAKER: Token = Token(0);
const CLIENT_UDP: Token = Token(1);
const FIRST_RELAY_TOKEN: usize = 2;
/// Client TCP connections' tokens start here, above any relay socket's.
const FIRST_STREAM_TOKEN: usize = 1 << 24;
/// Joined data connections' tokens start here, above any client
/// connection's.
const FIRST_SPLICE_TOKEN: usize = 1 << 28;
/// Reads from one client TCP connection per turn before the others get
/// theirs.
const READS_PER_TURN: usize = 8;
/// Receive batches from one socket per turn before the others get theirs.
const BATCHES_PER_TURN: usize = 4;
/// Tokio-side events handled per turn.
const EVENTS_PER_TURN: usize = 256;
/// How often statistics are published and the wall clock re-read.
const TICK: Duration = Duration::from_secs(1);

/// Where the core's transmits go: client UDP (batched), client streams,
/// relay sockets (batched while consecutive transmits leave by one).
struct Outputs {
    udp: UdpSocket,
    to_clients: SendBatch,
    /// Datagrams for peers queued on the relay socket of `to_peers_from`:
    /// a burst from one client to its peer leaves as one GSO train.
    to_peers: SendBatch,
    to_peers_from: Option<SocketAddr>,
    streams: ClientStreams,
    splices: Splices,
    relays: RelaySockets,
    tcp: TcpRelays,
}

impl Outputs {
    fn send(&mut self, transmit: Transmit<'_>) {
        match transmit.destination {
            Destination::Client(tuple) if tuple.transport == Transport::Udp => {
                if self.to_clients.push(tuple.client, transmit.data) {
                    self.to_clients.flush(&self.udp);
                }
            }
            Destination::Client(tuple) => self.streams.send(&tuple, transmit.data),
            Destination::Peer { relay, peer } => {
                if self.to_peers_from != Some(relay) {
                    self.flush_to_peers();
                    self.to_peers_from = Some(relay);
                }
                if self.to_peers.push(peer, transmit.data) {
                    self.flush_to_peers();
                }
            }
        }
    }

    /// Sends what is queued for peers (a relay gone meanwhile takes its
    /// datagrams with it).
    fn flush_to_peers(&mut self) {
        match self
            .to_peers_from
            .and_then(|relay| self.relays.by_addr(&relay))
        {
            Some(socket) => {
                self.to_peers.flush(socket);
            }
            None => self.to_peers.discard(),
        }
    }

    /// Sends everything queued, at the end of a turn.
    fn flush(&mut self) {
        self.flush_to_peers();
        self.to_clients.flush(&self.udp);
        self.streams.flush();
    }
}

/// The core thread's state.
pub(super) struct EventLoop {
    server: TurnServer<SocketRelays>,
    poll: Poll,
    udp_addr: SocketAddr,
    out: Outputs,
    events: mpsc::Receiver<Event>,
    /// Rearmed before each look at the queue. Kept so the waker's file
    /// descriptor outlives the last sender: closing it would drop a
    /// wake-up not yet collected.
    waker: Arc<CoreWaker>,
    /// This shard's index on the board.
    shard: usize,
    board: Arc<StatsBoard>,
    draining: bool,
    /// Sockets that may still hold input: looked at next turn without
    /// waiting (the poller is edge-triggered).
    carry: Vec<Token>,
}

impl EventLoop {
    /// Registers the client socket; relay sockets register as they open.
    pub(super) fn new(
        server: TurnServer<SocketRelays>,
        poll: Poll,
        mut udp: UdpSocket,
        (events, waker, tcp): (mpsc::Receiver<Event>, Arc<CoreWaker>, TcpRelays),
        (shard, board): (usize, Arc<StatsBoard>),
    ) -> std::io::Result<Self> {
        poll.registry()
            .register(&mut udp, CLIENT_UDP, Interest::READABLE)?;
        let relays = RelaySockets::new(poll.registry().try_clone()?, FIRST_RELAY_TOKEN);
        let streams = ClientStreams::new(poll.registry().try_clone()?, FIRST_STREAM_TOKEN);
        let splices = Splices::new(poll.registry().try_clone()?, FIRST_SPLICE_TOKEN);
        Ok(EventLoop {
            server,
            udp_addr: udp.local_addr()?,
            poll,
            out: Outputs {
                udp,
                to_clients: SendBatch::new(),
                to_peers: SendBatch::new(),
                to_peers_from: None,
                streams,
                splices,
                relays,
                tcp,
            },
            events,
            waker,
            shard,
            board,
            draining: false,
            carry: Vec::new(),
        })
    }

    /// Runs until drained, or until every tokio-side sender is gone.
    pub(super) fn run(mut self) {
        // Built here: its kernel headers hold raw pointers, so it stays on
        // this thread.
        let mut recv = RecvBatch::new();
        let mut events = Events::with_capacity(1024);
        let mut ready: Vec<Token> = Vec::new();
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let timeout = if self.carry.is_empty() {
                let due = [self.server.poll_timeout(), self.out.splices.next_due()]
                    .into_iter()
                    .flatten()
                    .fold(next_tick, Instant::min);
                due.saturating_duration_since(now)
            } else {
                Duration::ZERO
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout))
                && e.kind() != std::io::ErrorKind::Interrupted
            {
                warn!(error = %e, "poll failed: TURN core stopping");
                return;
            }
            ready.clear();
            ready.append(&mut self.carry);
            ready.extend(events.iter().map(|e| e.token()));
            for &token in &ready {
                let more = match token {
                    WAKER => match self.tokio_events() {
                        Some(more) => more,
                        None => return,
                    },
                    CLIENT_UDP => self.drain_client(&mut recv),
                    // (Splice tokens lie above client connections'.)
                    splice if self.out.splices.owns(splice) => {
                        let more = self.out.splices.pump(splice, Instant::now());
                        self.sync_relays();
                        more
                    }
                    stream if self.out.streams.owns(stream) => {
                        self.out.streams.writable(stream);
                        self.drain_stream(stream)
                    }
                    relay => self.drain_relay(&mut recv, relay),
                };
                if more {
                    self.revisit(token);
                }
            }
            self.out.flush();
            // Writes that failed closed their connections.
            self.sync_relays();
            let (to_peers, to_clients) = self.out.splices.take_unreported();
            if to_peers + to_clients > 0 {
                self.server.record_data_connection(to_peers, to_clients);
            }
            let now = Instant::now();
            let mut due = Vec::new();
            self.out.splices.take_due(now, &mut due);
            for token in due {
                self.revisit(token);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= now) {
                self.server.handle_timeout(now);
                self.sync_relays();
            }
            if now >= next_tick {
                next_tick = now + TICK;
                // A safety net: a wake-up that never came costs at most a
                // tick.
                match self.tokio_events() {
                    None => return,
                    Some(true) => self.revisit(WAKER),
                    Some(false) => {}
                }
                self.out.flush();
                self.sync_relays();
                self.server.set_wall_clock(now, unix_now());
                let stats = self.server.stats(now);
                self.board.publish(self.shard, stats);
                // A drained shard keeps its client socket until every shard
                // is drained (see `StatsBoard::all_drained`).
                let done = self.draining && self.board.all_drained();
                if done {
                    info!(shard = self.shard, "drained: no allocations left");
                    return;
                }
            }
        }
    }

    /// Looks at `token` again next turn without waiting.
    fn revisit(&mut self, token: Token) {
        if !self.carry.contains(&token) {
            self.carry.push(token);
        }
    }

    /// Registers relay sockets the core opened, closes the ones it gave up,
    /// carries out its TCP relay decisions, and tells it of client
    /// connections closed here. Called after every call into the core.
    fn sync_relays(&mut self) {
        loop {
            if self.server.allocator().has_changes() {
                // Queued datagrams leave before their relay socket may close.
                self.out.flush_to_peers();
                let out = &mut self.out;
                self.server
                    .allocator_mut()
                    .take_changes(&mut out.relays, &mut out.tcp);
            }
            while let Some(action) = self.server.poll_tcp_action() {
                let out = &mut self.out;
                out.tcp.act(action, &mut out.streams, &mut out.splices);
            }
            if let Some(tuple) = self.out.splices.take_ended() {
                self.connection_gone(tuple);
                continue;
            }
            match self.out.streams.take_closed() {
                Some(tuple) => self.connection_gone(tuple),
                None => return,
            }
        }
    }

    /// Tells the core a client connection ended. A successor on the same
    /// 5-tuple (the client reconnected from the same port before the old
    /// end was seen) is new to the core again: it gets its own time to
    /// allocate.
    fn connection_gone(&mut self, tuple: FiveTuple) {
        self.server.handle_connection_closed(tuple);
        if self.out.streams.holds(&tuple) {
            self.server.handle_connection_opened(Instant::now(), tuple);
        }
    }

    /// Handles a client TCP connection's whole frames and reads more; true
    /// if it may still hold input. After a ConnectionBind nothing more is
    /// handled until the core has answered it: after a success the client's
    /// bytes are no longer STUN, and the connection leaves this thread.
    fn drain_stream(&mut self, token: Token) -> bool {
        let mut reads = 0;
        loop {
            let Some(conn) = self.out.streams.get_mut(token) else {
                return false;
            };
            let tuple = conn.tuple;
            // Taken out while its frames are handled (the core's answers go
            // to this connection's other half).
            let mut input = std::mem::take(&mut conn.input);
            let mut bind = None;
            let outcome = loop {
                match input.take() {
                    Ok(Some(range)) => {
                        let frame = input.bytes(range);
                        if is_connection_bind(frame) {
                            bind = Some(frame.to_vec());
                            break Ok(());
                        }
                        if let Some(t) = self.server.handle_client(Instant::now(), tuple, frame) {
                            self.out.send(t);
                        }
                        self.sync_relays();
                    }
                    Ok(None) => break Ok(()),
                    Err(NotStun) => break Err(NotStun),
                }
            };
            let Some(conn) = self.out.streams.get_mut(token) else {
                return false;
            };
            conn.input = input;
            if outcome.is_err() {
                debug!(client = %tuple.client, "not STUN or ChannelData: closing");
                self.out.streams.close(token);
                self.sync_relays();
                return false;
            }
            if let Some(frame) = bind {
                // A Join takes the connection with what it holds; a refusal
                // closes it once the answer is out.
                if let Some(t) = self.server.handle_client(Instant::now(), tuple, &frame) {
                    self.out.send(t);
                }
                self.sync_relays();
                continue;
            }
            if reads == READS_PER_TURN {
                return true;
            }
            reads += 1;
            let read = conn.read();
            self.out.streams.after_read(token);
            let ended = match read {
                Ok(0) => Some(true),
                Ok(_) => None,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => None,
                Err(e) => {
                    debug!(client = %tuple.client, error = %e, "client read failed");
                    Some(false)
                }
            };
            if let Some(ended) = ended {
                // At its end the answers still go; after a failure not.
                if ended {
                    self.out.streams.finish(token);
                } else {
                    self.out.streams.close(token);
                }
                self.sync_relays();
                return false;
            }
        }
    }

    /// Reads the client UDP socket; true if it may still hold datagrams.
    fn drain_client(&mut self, recv: &mut RecvBatch) -> bool {
        for _ in 0..BATCHES_PER_TURN {
            let n = match recv.recv(&self.out.udp, self.udp_addr.is_ipv6()) {
                Ok(n) => n,
                Err(e) => {
                    debug!(error = %e, "udp receive failed");
                    return false;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let Some((client, data)) = recv.get(i) else {
                    continue;
                };
                let tuple = FiveTuple {
                    client,
                    server: self.udp_addr,
                    transport: Transport::Udp,
                };
                if !data.is_empty()
                    && let Some(t) = self.server.handle_client(now, tuple, data)
                {
                    self.out.send(t);
                }
                self.sync_relays();
            }
            if n < BATCH {
                return false;
            }
        }
        true
    }

    /// Reads one relay socket; true if it may still hold datagrams.
    fn drain_relay(&mut self, recv: &mut RecvBatch, token: Token) -> bool {
        for _ in 0..BATCHES_PER_TURN {
            let Some((relay, socket)) = self.out.relays.by_token(token) else {
                return false;
            };
            let n = match recv.recv(socket, relay.is_ipv6()) {
                Ok(n) => n,
                Err(e) => {
                    debug!(error = %e, %relay, "relay receive failed");
                    return false;
                }
            };
            let now = Instant::now();
            for i in 0..n {
                let Some((peer, data)) = recv.get(i) else {
                    continue;
                };
                // IPv4-mapped sources on a dual-stack socket become plain IPv4.
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                if !data.is_empty()
                    && let Some(t) = self.server.handle_peer(now, relay, peer, data)
                {
                    self.out.send(t);
                }
            }
            self.sync_relays();
            if n < BATCH {
                return false;
            }
        }
        true
    }

    /// Handles queued tokio-side events: `Some(true)` if more are queued,
    /// `None` once every sender is gone.
    fn tokio_events(&mut self) -> Option<bool> {
        self.waker.rearm();
        for _ in 0..EVENTS_PER_TURN {
            match self.events.try_recv() {
                Ok(event) => self.event(event),
                Err(TryRecvError::Empty) => return Some(false),
                Err(TryRecvError::Disconnected) => return None,
            }
        }
        Some(true)
    }

    fn event(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::StreamAdopted {
                tuple,
                stream,
                input,
                tls,
                slot,
            } => {
                // Its first frames are already read: handled next turn.
                if let Some(token) = self.out.streams.adopt(stream, tuple, input, tls, slot) {
                    self.server.handle_connection_opened(now, tuple);
                    self.revisit(token);
                }
            }
            Event::PeerConnected(id, outcome) => {
                let connected = outcome.is_ok();
                if self.out.tcp.connected(id, outcome) {
                    let answer = if connected {
                        self.server.handle_peer_connected(now, id)
                    } else {
                        self.server.handle_peer_connect_failed(now, id)
                    };
                    if let Some(t) = answer {
                        self.out.send(t);
                    }
                    self.sync_relays();
                }
            }
            Event::PeerIncoming {
                relay,
                peer,
                stream,
            } => {
                if let Some((id, t)) = self.server.handle_peer_incoming(now, relay, peer) {
                    self.out.send(t);
                    self.out.tcp.accepted(id, stream);
                }
                self.sync_relays();
            }
            Event::Control(control) => self.control(control),
        }
    }

    fn control(&mut self, control: Control) {
        match control {
            Control::Drain => {
                info!("draining: refusing new allocations");
                self.draining = true;
                self.server.set_draining(true);
                self.board.mark_draining(self.shard);
            }
            Control::Reconfigure(config) => match self.server.reconfigure(*config) {
                Ok(()) => info!("configuration reloaded"),
                Err(e) => warn!(error = %e, "configuration not reloaded"),
            },
        }
    }
}
