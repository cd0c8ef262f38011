//! TCP allocations (RFC 6062): Connect, ConnectionBind and
//! ConnectionAttempt. The core keeps the state of every peer connection and
//! tells the driver what to open, join and close ([`TcpAction`]); the bytes
//! of a joined connection flow in the driver and never through the core.
//!
//! A peer connection is *connecting* (a Connect request waits for the
//! driver's outcome), then *awaiting bind* (30 s for the client's
//! ConnectionBind on a new connection, §5.2/§5.3), then *joined* with that
//! data connection until either side closes or the allocation goes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foldhash::HashMap;

use super::authenticate::Authenticated;
use super::relay::RelayAllocator;
use super::reply::{RequestInfo, code, write_authenticated};
use super::table::AllocationId;
use super::types::{Destination, FiveTuple, RelayTransport, Transmit};
use super::{Payload, TurnServer};
use crate::auth::LongTermKey;
use crate::codec::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};

/// Names a peer connection in CONNECTION-ID.
pub type ConnectionId = u32;

/// How long a connected peer waits for the client's ConnectionBind
/// (RFC 6062 §5.2, §5.3).
pub const BIND_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a Connect may wait for the driver's outcome before the core
/// gives the attempt up (unanswered, as the client has given up by then:
/// its own transaction times out after 39.5 s). Drivers bound attempts
/// more tightly and answer 447 themselves; this only frees the slot if one
/// never reports.
pub const CONNECT_DEADLINE: Duration = Duration::from_secs(40);

/// What the driver must do for TCP relaying; see [`TurnServer::poll_tcp_action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpAction {
    /// Open a TCP connection from the relayed address `relay` to `peer`,
    /// then report [`TurnServer::handle_peer_connected`] or
    /// [`TurnServer::handle_peer_connect_failed`] (the driver bounds the
    /// attempt in time).
    Connect {
        /// The new connection.
        id: ConnectionId,
        /// Local address of the connection: the allocation's relay.
        relay: SocketAddr,
        /// Where to connect.
        peer: SocketAddr,
    },
    /// From now on the client connection `data` carries the raw bytes of
    /// peer connection `id`, both ways. Its next bytes are no longer STUN.
    Join {
        /// The peer connection.
        id: ConnectionId,
        /// The allocation's relayed address: its data connections share
        /// one bandwidth budget.
        relay: SocketAddr,
        /// The client's data connection.
        data: FiveTuple,
        /// The allocation's bandwidth cap, both directions together (0: none).
        bytes_per_sec: u64,
    },
    /// Close peer connection `id`, and its data connection if joined (the
    /// allocation is gone, the bind timed out, or the other side closed).
    Close {
        /// The peer connection.
        id: ConnectionId,
    },
    /// Close the client connection `data` once its answer is written: an
    /// authenticated ConnectionBind there was refused (a data connection
    /// gets one try, so ids cannot be guessed at message rate).
    Refuse {
        /// The client connection.
        data: FiveTuple,
    },
    /// Write what is queued for the client connection `tuple` (as much as
    /// the kernel takes), then close it: it held no allocation for
    /// [`crate::config::TurnConfig::allocate_timeout`].
    CloseClient {
        /// The client connection.
        tuple: FiveTuple,
    },
}

/// The long-term key a deferred Connect answer is signed with (never
/// printed).
#[derive(Clone)]
struct HeldKey(LongTermKey);

impl std::fmt::Debug for HeldKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HeldKey(..)")
    }
}

#[derive(Debug)]
enum State {
    /// A Connect request waits for the driver's outcome.
    Connecting {
        request: RequestInfo,
        key: HeldKey,
        deadline: Instant,
    },
    /// Connected; the client's ConnectionBind is due by `deadline`.
    AwaitingBind { deadline: Instant },
    /// Joined with the client's data connection.
    Joined { data: FiveTuple },
}

#[derive(Debug)]
struct PeerConnection {
    allocation: AllocationId,
    peer: SocketAddr,
    state: State,
}

/// Every peer connection of this core, with bind deadlines and the actions
/// the driver has not collected yet.
#[derive(Debug)]
pub(crate) struct PeerConnections {
    by_id: HashMap<ConnectionId, PeerConnection>,
    by_data: HashMap<FiveTuple, ConnectionId>,
    by_allocation: HashMap<AllocationId, Vec<ConnectionId>>,
    deadlines: BinaryHeap<Reverse<(Instant, ConnectionId)>>,
    actions: VecDeque<TcpAction>,
    /// Ids are `shard + k × shards`: the driver routes a data connection to
    /// the shard that holds its peer connection by the id alone.
    shard: u32,
    shards: u32,
}

impl Default for PeerConnections {
    fn default() -> Self {
        Self::for_shard(0, 1)
    }
}

impl PeerConnections {
    pub fn for_shard(shard: u32, shards: u32) -> Self {
        let shards = shards.max(1);
        PeerConnections {
            by_id: HashMap::default(),
            by_data: HashMap::default(),
            by_allocation: HashMap::default(),
            deadlines: BinaryHeap::new(),
            actions: VecDeque::new(),
            shard: shard % shards,
            shards,
        }
    }

    /// Peer connections held (any state).
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// A fresh, unguessable id of this shard.
    fn new_id(&self) -> ConnectionId {
        loop {
            let r = rand::random::<u32>();
            let id = u64::from(r / self.shards) * u64::from(self.shards) + u64::from(self.shard);
            if let Ok(id) = ConnectionId::try_from(id)
                && !self.by_id.contains_key(&id)
            {
                return id;
            }
        }
    }

    fn of_allocation(&self, allocation: AllocationId) -> impl Iterator<Item = &PeerConnection> {
        self.by_allocation
            .get(&allocation)
            .into_iter()
            .flatten()
            .filter_map(|id| self.by_id.get(id))
    }

    fn insert(&mut self, allocation: AllocationId, peer: SocketAddr, state: State) -> ConnectionId {
        let id = self.new_id();
        if let State::AwaitingBind { deadline } | State::Connecting { deadline, .. } = state {
            self.push_deadline(deadline, id);
        }
        self.by_id.insert(
            id,
            PeerConnection {
                allocation,
                peer,
                state,
            },
        );
        self.by_allocation.entry(allocation).or_default().push(id);
        id
    }

    /// Schedules a deadline; entries of connections gone or moved on are
    /// skipped when due, and the heap is rebuilt if they pile up (Connects
    /// failing fast, for instance).
    fn push_deadline(&mut self, deadline: Instant, id: ConnectionId) {
        self.deadlines.push(Reverse((deadline, id)));
        if self.deadlines.len() > 2 * self.by_id.len() + 64 {
            let live = self.by_id.iter().filter_map(|(id, c)| match c.state {
                State::AwaitingBind { deadline } | State::Connecting { deadline, .. } => {
                    Some(Reverse((deadline, *id)))
                }
                State::Joined { .. } => None,
            });
            self.deadlines = live.collect();
        }
    }

    /// Forgets `id` (no action for the driver).
    fn forget(&mut self, id: ConnectionId) -> Option<PeerConnection> {
        let gone = self.by_id.remove(&id)?;
        if let State::Joined { data } = gone.state {
            self.by_data.remove(&data);
        }
        if let Some(ids) = self.by_allocation.get_mut(&gone.allocation) {
            ids.retain(|other| *other != id);
            if ids.is_empty() {
                self.by_allocation.remove(&gone.allocation);
            }
        }
        Some(gone)
    }

    /// Forgets `id` and tells the driver to close it.
    fn close(&mut self, id: ConnectionId) {
        if self.forget(id).is_some() {
            self.actions.push_back(TcpAction::Close { id });
        }
    }

    /// Queues an action for the driver.
    pub fn push_action(&mut self, action: TcpAction) {
        self.actions.push_back(action);
    }

    /// Closes every peer connection of a deleted allocation.
    pub fn close_allocation(&mut self, allocation: AllocationId) {
        for id in self.by_allocation.remove(&allocation).unwrap_or_default() {
            self.close(id);
        }
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.peek().map(|Reverse((at, _))| *at)
    }

    /// Closes connections whose ConnectionBind (or Connect outcome) did not
    /// come in time.
    pub fn expire(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.deadlines.peek().copied() {
            if at > now {
                break;
            }
            self.deadlines.pop();
            let due = matches!(
                self.by_id.get(&id).map(|c| &c.state),
                Some(State::AwaitingBind { deadline } | State::Connecting { deadline, .. })
                    if *deadline <= now
            );
            if due {
                self.close(id);
            }
        }
    }
}

impl<A: RelayAllocator> TurnServer<A> {
    /// The next thing the driver must do for TCP relaying, if any. Drivers
    /// collect these after every call into the core.
    pub fn poll_tcp_action(&mut self) -> Option<TcpAction> {
        self.connections.actions.pop_front()
    }

    /// A Connect request (RFC 6062 §5.2). Returns false when the answer is
    /// deferred until the driver reports the connection's outcome.
    pub(super) fn on_connect(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) -> bool {
        let key = &auth.key;
        let Some(id) = self.own_allocation(now, tuple, info, auth, buf) else {
            return true;
        };
        let Some(allocation) = self.table.get(id) else {
            return true;
        };
        if allocation.relay_transport != RelayTransport::Tcp {
            self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
            return true;
        }
        let Ok(Some(Attribute::XorPeerAddress(peer))) = msg.decode(attr_type::XOR_PEER_ADDRESS)
        else {
            self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
            return true;
        };
        if AddressFamily::of(&peer.ip()) != AddressFamily::of(&allocation.relay.ip()) {
            self.reply_error(buf, info, key, code::PEER_ADDRESS_FAMILY_MISMATCH, &[]);
            return true;
        }
        if self.filter.check_addr(peer).is_err() {
            self.counters.denied_peers += 1;
            self.reply_error(buf, info, key, code::FORBIDDEN, &[]);
            return true;
        }
        if self.connections.of_allocation(id).any(|c| c.peer == peer) {
            self.reply_error(buf, info, key, code::CONNECTION_ALREADY_EXISTS, &[]);
            return true;
        }
        if self.connections.of_allocation(id).count() >= self.config.max_connections_per_allocation
        {
            self.reply_error(buf, info, key, code::INSUFFICIENT_CAPACITY, &[]);
            return true;
        }
        let relay = allocation.relay;
        let state = State::Connecting {
            request: *info,
            key: HeldKey(*key),
            deadline: now + CONNECT_DEADLINE,
        };
        let connection = self.connections.insert(id, peer, state);
        tracing::debug!(parent: &allocation.span, connection, %peer, "connecting to peer");
        self.connections.actions.push_back(TcpAction::Connect {
            id: connection,
            relay,
            peer,
        });
        false
    }

    /// The driver connected peer connection `id`: answers its Connect with
    /// CONNECTION-ID (or closes it if the allocation went meanwhile).
    pub fn handle_peer_connected(
        &mut self,
        now: Instant,
        id: ConnectionId,
    ) -> Option<Transmit<'_>> {
        let (request, key, allocation) = self.take_connecting(id)?;
        let Some(control) = self.live_control(allocation, now) else {
            self.connections.close(id);
            return None;
        };
        let deadline = now + BIND_TIMEOUT;
        if let Some(c) = self.connections.by_id.get_mut(&id) {
            c.state = State::AwaitingBind { deadline };
            self.connections.push_deadline(deadline, id);
        }
        self.answer_connect(
            &request,
            &key,
            None,
            &[Attribute::ConnectionId(id)],
            control,
        )
    }

    /// The driver could not connect peer connection `id` (refused, timed
    /// out): answers its Connect with 447.
    pub fn handle_peer_connect_failed(
        &mut self,
        now: Instant,
        id: ConnectionId,
    ) -> Option<Transmit<'_>> {
        let (request, key, allocation) = self.take_connecting(id)?;
        // Nothing to close: the driver holds no connection for a failure.
        self.connections.forget(id);
        let control = self.live_control(allocation, now)?;
        self.answer_connect(&request, &key, Some(code::CONNECTION_FAILED), &[], control)
    }

    /// A peer connected to the TCP relayed address `relay` (RFC 6062 §5.3).
    /// If the allocation has a permission for the peer's IP, the connection
    /// is kept under the returned id and the client is told with a
    /// ConnectionAttempt indication; otherwise `None`: close it.
    pub fn handle_peer_incoming(
        &mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
    ) -> Option<(ConnectionId, Transmit<'_>)> {
        let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
        let id = self.table.id_by_relay(&relay)?;
        let allocation = self.table.get(id)?;
        let control = allocation.five_tuple;
        let permitted = allocation.relay_transport == RelayTransport::Tcp
            && allocation.is_alive(now)
            && allocation.has_permission(peer.ip(), now);
        if !permitted {
            return None;
        }
        if self.filter.check_addr(peer).is_err() {
            self.counters.denied_peers += 1;
            return None;
        }
        if self.connections.of_allocation(id).count() >= self.config.max_connections_per_allocation
        {
            return None;
        }
        let deadline = now + BIND_TIMEOUT;
        let connection = self
            .connections
            .insert(id, peer, State::AwaitingBind { deadline });
        tracing::debug!(parent: &allocation.span, connection, %peer, "peer connected");
        let mut b = MessageBuilder::with_buffer(
            std::mem::take(&mut self.scratch),
            MessageType::new(Method::CONNECTION_ATTEMPT, Class::Indication),
            TransactionId::random(),
        );
        b.add(&Attribute::XorPeerAddress(peer));
        b.add(&Attribute::ConnectionId(connection));
        self.scratch = b.finish();
        let transmit = self.reply_to(control)?;
        Some((connection, transmit))
    }

    /// A ConnectionBind request on a new client connection (RFC 6062 §5.4).
    /// It must be the connection's first message (the driver routes the
    /// connection to the core holding the id by it). An authenticated
    /// ConnectionBind that fails closes the connection after its 400.
    pub(super) fn on_connection_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) {
        let key = &auth.key;
        let fresh_stream = tuple.transport.is_stream()
            && self.table.id_by_tuple(&tuple).is_none()
            && !self.connections.by_data.contains_key(&tuple);
        let id = match msg.decode(attr_type::CONNECTION_ID) {
            Ok(Some(Attribute::ConnectionId(id))) => Some(id),
            _ => None,
        };
        let bindable = id.and_then(|id| {
            let c = self.connections.by_id.get(&id)?;
            let allocation = self.table.get(c.allocation)?;
            let owner = allocation.username == auth.username && allocation.is_alive(now);
            let awaiting = matches!(c.state, State::AwaitingBind { .. });
            (awaiting && owner).then_some((id, allocation.relay))
        });
        let (true, Some((id, relay))) = (fresh_stream, bindable) else {
            if fresh_stream {
                self.connections
                    .actions
                    .push_back(TcpAction::Refuse { data: tuple });
            }
            return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
        };
        if let Some(c) = self.connections.by_id.get_mut(&id) {
            c.state = State::Joined { data: tuple };
            if let Some(a) = self.table.get(c.allocation) {
                tracing::debug!(parent: &a.span, connection = id, "data connection joined");
            }
        }
        self.connections.by_data.insert(tuple, id);
        self.unallocated.stop(&tuple);
        self.connections.actions.push_back(TcpAction::Join {
            id,
            relay,
            data: tuple,
            bytes_per_sec: self.config.max_bandwidth_per_allocation,
        });
        self.reply_success(buf, info, key, &[]);
    }

    /// A data connection ended after relaying these bytes.
    pub fn record_data_connection(&mut self, to_peer: u64, to_client: u64) {
        self.counters.bytes_to_peers += to_peer;
        self.counters.bytes_to_clients += to_client;
    }

    /// A client stream closed: if it was a data connection, its peer
    /// connection goes with it.
    pub(super) fn close_data_connection(&mut self, tuple: &FiveTuple) {
        if let Some(id) = self.connections.by_data.get(tuple).copied() {
            self.connections.close(id);
        }
    }

    /// The deferred answer to a Connect, signed with the request's key.
    fn answer_connect(
        &mut self,
        request: &RequestInfo,
        key: &HeldKey,
        code: Option<u16>,
        attrs: &[Attribute<'_>],
        control: FiveTuple,
    ) -> Option<Transmit<'_>> {
        let mut buf = std::mem::take(&mut self.scratch);
        write_authenticated(
            &mut buf,
            request,
            code,
            attrs,
            &key.0,
            self.config.software.as_deref(),
        );
        self.scratch = buf;
        self.reply_to(control)
    }

    /// Takes a connecting entry's request; `None` if `id` is not connecting.
    fn take_connecting(
        &mut self,
        id: ConnectionId,
    ) -> Option<(RequestInfo, HeldKey, AllocationId)> {
        let c = self.connections.by_id.get(&id)?;
        match &c.state {
            State::Connecting { request, key, .. } => Some((*request, key.clone(), c.allocation)),
            _ => None,
        }
    }

    /// The control connection of a live allocation.
    fn live_control(&self, allocation: AllocationId, now: Instant) -> Option<FiveTuple> {
        self.table
            .get(allocation)
            .filter(|a| a.is_alive(now))
            .map(|a| a.five_tuple)
    }

    /// The scratch buffer, sent to `tuple`.
    fn reply_to(&self, tuple: FiveTuple) -> Option<Transmit<'_>> {
        self.finish(
            Some(super::Pending {
                destination: Destination::Client(tuple),
                payload: Payload::Scratch,
            }),
            &[],
        )
    }
}
