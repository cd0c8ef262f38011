//! The sans-IO TURN core: [`TurnServer`] is fed datagrams with an explicit
//! `now` and returns what to send; it never reads a clock or touches a
//! socket.
//!
//! A driver loops over:
//! * [`TurnServer::handle_client`] for every datagram (or stream frame, see
//!   [`crate::codec::stream_frame_len`]) from a client on a listener;
//! * [`TurnServer::handle_peer`] for every datagram on a relay socket;
//! * [`TurnServer::handle_timeout`] when [`TurnServer::poll_timeout`] is due;
//! * [`TurnServer::handle_connection_opened`] and
//!   [`TurnServer::handle_connection_closed`] when a TCP/TLS client comes
//!   and goes;
//! * [`TurnServer::poll_tcp_action`] after each call, for connections to
//!   open, join or close.
//!
//! Each input yields at most one [`Transmit`], borrowing the input or an
//! internal buffer, so the hot relay path allocates nothing. Relay sockets
//! come from the driver's [`RelayAllocator`].

mod allocation;
mod authenticate;
mod ledger;
mod relay;
mod relaying;
mod reply;
mod requests;
mod stats;
mod table;
mod tcp_relay;
mod types;
mod unallocated;

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Instant;

pub use ledger::AllocationLedger;
pub use relay::{RelayAllocator, RelayError};
pub use stats::Stats;
pub use tcp_relay::{BIND_TIMEOUT, CONNECT_DEADLINE, ConnectionId, TcpAction};
pub use types::{Destination, FiveTuple, OwnedTransmit, RelayTransport, Transmit, Transport};

use crate::auth::{CredentialStore, NonceIssuer};
use crate::codec::{Attribute, Class, Header, Message, Method, PacketKind, classify};
use crate::config::{ConfigError, TurnConfig};
use crate::peer_filter::PeerFilter;

use authenticate::{Rejected, authenticate};
use reply::{RequestInfo, code, write_unauthenticated};
use stats::Counters;
use table::{AllocationId, AllocationTable};
use tcp_relay::PeerConnections;
use unallocated::UnallocatedStreams;

/// Where the bytes of a pending transmit are.
#[derive(Debug)]
enum Payload {
    /// In `TurnServer::scratch`.
    Scratch,
    /// A range of the input datagram.
    Input(Range<usize>),
}

#[derive(Debug)]
struct Pending {
    destination: Destination,
    payload: Payload,
}

impl Pending {
    fn reply(tuple: FiveTuple) -> Self {
        Self {
            destination: Destination::Client(tuple),
            payload: Payload::Scratch,
        }
    }
}

/// The TURN server core. See the module docs for the driving loop.
#[derive(Debug)]
pub struct TurnServer<A: RelayAllocator> {
    config: TurnConfig,
    credentials: CredentialStore,
    nonces: NonceIssuer,
    filter: PeerFilter,
    allocator: A,
    table: AllocationTable,
    connections: PeerConnections,
    unallocated: UnallocatedStreams,
    epoch: Instant,
    unix_at_epoch: u64,
    scratch: Vec<u8>,
    counters: Counters,
    draining: bool,
}

impl<A: RelayAllocator> TurnServer<A> {
    /// A server with `config`, relay addresses from `allocator`, started at
    /// `now`, when the wall clock says `unix_now` (seconds since the Unix
    /// epoch; REST credential expiry is judged on it). Nonces use a fresh
    /// random secret.
    pub fn new(
        config: TurnConfig,
        allocator: A,
        now: Instant,
        unix_now: u64,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let credentials =
            CredentialStore::new(&config.realm, &config.static_users, &config.rest_secrets)
                .map_err(|source| ConfigError::BadPassword {
                    username: String::new(),
                    source,
                })?;
        Ok(Self {
            nonces: NonceIssuer::random(config.nonce_lifetime),
            filter: PeerFilter::new(config.allowed_peers.clone())
                .with_exact(config.allowed_peer_addrs.clone()),
            credentials,
            config,
            allocator,
            table: AllocationTable::default(),
            connections: PeerConnections::default(),
            unallocated: UnallocatedStreams::default(),
            epoch: now,
            unix_at_epoch: unix_now,
            scratch: Vec::with_capacity(2048),
            counters: Counters::default(),
            draining: false,
        })
    }

    /// Replaces the nonce secret (several processes behind one address, or
    /// deterministic tests).
    pub fn with_nonce_secret(mut self, secret: [u8; 32]) -> Self {
        self.nonces = NonceIssuer::new(secret, self.config.nonce_lifetime);
        self
    }

    /// Counts allocation quotas in `ledger`, shared with the other shards
    /// of one server. Call before the first allocation.
    pub fn with_ledger(mut self, ledger: AllocationLedger) -> Self {
        self.table = AllocationTable::with_ledger(ledger);
        self
    }

    /// Makes TCP connection ids of this core `shard + k × shards`, so a
    /// driver with several cores can route a ConnectionBind by its id.
    pub fn with_connection_shard(mut self, shard: u32, shards: u32) -> Self {
        self.connections = PeerConnections::for_shard(shard, shards);
        self
    }

    /// Refuses new allocations (508) while existing ones run out: the
    /// graceful shutdown of a node.
    pub fn set_draining(&mut self, draining: bool) {
        self.draining = draining;
    }

    /// Replaces the configuration (SIGHUP): credentials, quotas, lifetimes
    /// and the peer filter change; allocations stay.
    pub fn reconfigure(&mut self, config: TurnConfig) -> Result<(), ConfigError> {
        config.validate()?;
        let credentials =
            CredentialStore::new(&config.realm, &config.static_users, &config.rest_secrets)
                .map_err(|source| ConfigError::BadPassword {
                    username: String::new(),
                    source,
                })?;
        self.credentials = credentials;
        self.filter = PeerFilter::new(config.allowed_peers.clone())
            .with_exact(config.allowed_peer_addrs.clone());
        self.config = config;
        Ok(())
    }

    /// The configuration in force.
    pub fn config(&self) -> &TurnConfig {
        &self.config
    }

    /// The relay allocator.
    pub fn allocator(&self) -> &A {
        &self.allocator
    }

    /// The relay allocator, mutably.
    pub fn allocator_mut(&mut self) -> &mut A {
        &mut self.allocator
    }

    /// Re-anchors wall-clock time: at `now` the Unix time is `unix_now`.
    /// Drivers call it now and then so monotonic drift does not build up.
    pub fn set_wall_clock(&mut self, now: Instant, unix_now: u64) {
        self.unix_at_epoch = unix_now.saturating_sub(self.secs_since_epoch(now));
    }

    /// A datagram (or one stream frame) from a client.
    pub fn handle_client<'s>(
        &'s mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &'s [u8],
    ) -> Option<Transmit<'s>> {
        let mut buf = std::mem::take(&mut self.scratch);
        let pending = match classify(data) {
            PacketKind::Stun => self.on_stun(now, tuple, data, &mut buf),
            PacketKind::ChannelData => self.on_channel_data(now, tuple, data),
            PacketKind::Other => {
                self.counters.malformed += 1;
                None
            }
        };
        self.scratch = buf;
        self.finish(pending, data)
    }

    /// A datagram from `peer` on the relay socket `relay`.
    pub fn handle_peer<'s>(
        &'s mut self,
        now: Instant,
        relay: SocketAddr,
        peer: SocketAddr,
        data: &'s [u8],
    ) -> Option<Transmit<'s>> {
        let mut buf = std::mem::take(&mut self.scratch);
        let pending = self.on_peer_data(now, relay, peer, data, &mut buf);
        self.scratch = buf;
        self.finish(pending, data)
    }

    /// A TCP/TLS client connection opened at `now`. Unless it allocates or
    /// becomes a data connection within
    /// [`TurnConfig::allocate_timeout`], [`Self::poll_tcp_action`] asks to
    /// close it ([`TcpAction::CloseClient`]).
    pub fn handle_connection_opened(&mut self, now: Instant, tuple: FiveTuple) {
        self.unallocated_from(now, tuple);
    }

    /// A TCP/TLS client connection closed: its allocation goes (RFC 8656
    /// §3.1), and with a data connection its peer connection (RFC 6062).
    pub fn handle_connection_closed(&mut self, tuple: FiveTuple) {
        if let Some(id) = self.table.id_by_tuple(&tuple) {
            self.delete(id);
        }
        self.close_data_connection(&tuple);
        self.unallocated.stop(&tuple);
    }

    /// Expires allocations, permissions, channels, unbound TCP peer
    /// connections and client connections without an allocation due at
    /// `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        for (id, gone) in self.table.expire(now, self.config.channel_cooldown) {
            tracing::debug!(parent: &gone.span, "allocation expired");
            self.counters.allocations_deleted += 1;
            self.allocator.close(gone.relay);
            self.connections.close_allocation(id);
            self.unallocated_from(now, gone.five_tuple);
        }
        self.connections.expire(now);
        for tuple in self.unallocated.expire(now) {
            tracing::debug!(client = %tuple.client, "no allocation in time: closing the connection");
            self.counters.idle_connections_closed += 1;
            self.connections
                .push_action(TcpAction::CloseClient { tuple });
        }
    }

    /// When [`Self::handle_timeout`] next has work; `None` when nothing is
    /// held.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.table.next_timeout(),
            self.connections.next_timeout(),
            self.unallocated.next_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// `tuple` (if a stream) holds no allocation from `now`: it has
    /// [`TurnConfig::allocate_timeout`] to get one.
    fn unallocated_from(&mut self, now: Instant, tuple: FiveTuple) {
        let timeout = self.config.allocate_timeout;
        if !timeout.is_zero() {
            self.unallocated.start(tuple, now + timeout);
        }
    }

    /// Gauges and counters at `now`.
    pub fn stats(&self, now: Instant) -> Stats {
        let (permissions, channels) = self
            .table
            .iter()
            .filter(|a| a.is_alive(now))
            .map(|a| a.counts(now))
            .fold((0, 0), |(p, c), (ap, ac)| (p + ap, c + ac));
        let c = &self.counters;
        Stats {
            allocations: self.table.len(),
            permissions,
            channels,
            users: self.table.ledger().users(),
            timer_entries: self.table.timer_entries(),
            peer_connections: self.connections.len(),
            unallocated_connections: self.unallocated.len(),
            idle_connections_closed: c.idle_connections_closed,
            // The driver's figures, filled in over all shards.
            client_connections: 0,
            connections_refused: 0,
            allocations_created: c.allocations_created,
            allocations_deleted: c.allocations_deleted,
            auth_failures: c.auth_failures,
            denied_peers: c.denied_peers,
            malformed: c.malformed,
            rate_limited: c.rate_limited,
            redirected: c.redirected,
            packets_to_peers: c.packets_to_peers,
            bytes_to_peers: c.bytes_to_peers,
            packets_to_clients: c.packets_to_clients,
            bytes_to_clients: c.bytes_to_clients,
        }
    }

    fn finish<'s>(&'s self, pending: Option<Pending>, data: &'s [u8]) -> Option<Transmit<'s>> {
        let pending = pending?;
        let bytes = match pending.payload {
            Payload::Scratch => &self.scratch[..],
            Payload::Input(range) => data.get(range)?,
        };
        Some(Transmit {
            destination: pending.destination,
            data: bytes,
        })
    }

    fn secs_since_epoch(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.epoch).as_secs()
    }

    fn unix_now(&self, now: Instant) -> u64 {
        self.unix_at_epoch
            .saturating_add(self.secs_since_epoch(now))
    }

    /// The live allocation of a 5-tuple; an expired one still in the table
    /// is deleted on the spot, so expiry is exact without a timer.
    fn live_allocation(&mut self, tuple: &FiveTuple, now: Instant) -> Option<AllocationId> {
        let id = self.table.id_by_tuple(tuple)?;
        if self.table.get(id)?.is_alive(now) {
            return Some(id);
        }
        if let Some(tuple) = self.delete(id) {
            self.unallocated_from(now, tuple);
        }
        None
    }

    /// Deletes an allocation; returns its 5-tuple.
    fn delete(&mut self, id: AllocationId) -> Option<FiveTuple> {
        let gone = self.table.remove(id)?;
        tracing::debug!(parent: &gone.span, "allocation deleted");
        self.counters.allocations_deleted += 1;
        self.allocator.close(gone.relay);
        self.connections.close_allocation(id);
        Some(gone.five_tuple)
    }

    fn on_stun(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        data: &[u8],
        buf: &mut Vec<u8>,
    ) -> Option<Pending> {
        let policy = self.config.unauthenticated_replies;
        let msg = match Message::parse(data) {
            Ok(msg) => msg,
            Err(_) => {
                self.counters.malformed += 1;
                // Answer 400 when the header is sound and asks for an answer.
                let header = Header::decode(data).ok()?;
                if header.message_type.class != Class::Request {
                    return None;
                }
                let info = RequestInfo::of_header(&header, data.len(), tuple.transport);
                return write_unauthenticated(buf, &info, Some(code::BAD_REQUEST), &[], policy)
                    .then(|| Pending::reply(tuple));
            }
        };
        if msg.verify_fingerprint() == Some(false) {
            self.counters.malformed += 1;
            return None;
        }
        match msg.class() {
            Class::Request => self.on_request(now, tuple, &msg, buf),
            Class::Indication if msg.method() == Method::SEND => self.on_send(now, tuple, &msg),
            _ => None,
        }
    }

    fn on_request(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        buf: &mut Vec<u8>,
    ) -> Option<Pending> {
        let info = RequestInfo::of(msg, tuple.transport);
        let policy = self.config.unauthenticated_replies;
        let method = msg.method();
        if method == Method::BINDING {
            return self.on_binding(tuple, msg, &info, buf);
        }
        let is_turn = matches!(
            method,
            Method::ALLOCATE
                | Method::REFRESH
                | Method::CREATE_PERMISSION
                | Method::CHANNEL_BIND
                | Method::CONNECT
                | Method::CONNECTION_BIND
        );
        if !is_turn {
            return write_unauthenticated(buf, &info, Some(code::BAD_REQUEST), &[], policy)
                .then(|| Pending::reply(tuple));
        }
        let auth = match authenticate(
            msg,
            &self.credentials,
            &self.nonces,
            tuple.client.ip(),
            self.secs_since_epoch(now),
            self.unix_now(now),
        ) {
            Ok(auth) => auth,
            Err(rejected) => {
                if matches!(rejected, Rejected::Unauthorized | Rejected::BadRequest) {
                    self.counters.auth_failures += 1;
                }
                let nonce = self
                    .nonces
                    .issue(self.secs_since_epoch(now), tuple.client.ip());
                let extras = [
                    Attribute::Realm(&self.config.realm),
                    Attribute::Nonce(&nonce),
                ];
                let extras: &[_] = if rejected == Rejected::BadRequest {
                    &[]
                } else {
                    &extras
                };
                return write_unauthenticated(buf, &info, Some(rejected.code()), extras, policy)
                    .then(|| Pending::reply(tuple));
            }
        };
        let unknown = msg.unknown_comprehension_required();
        if !unknown.is_empty() {
            self.reply_error(
                buf,
                &info,
                &auth.key,
                code::UNKNOWN_ATTRIBUTE,
                &[Attribute::UnknownAttributes(unknown)],
            );
            return Some(Pending::reply(tuple));
        }
        match method {
            Method::ALLOCATE => self.on_allocate(now, tuple, msg, &info, &auth, buf),
            Method::REFRESH => self.on_refresh(now, tuple, msg, &info, &auth, buf),
            Method::CREATE_PERMISSION => {
                self.on_create_permission(now, tuple, msg, &info, &auth, buf)
            }
            Method::CHANNEL_BIND => self.on_channel_bind(now, tuple, msg, &info, &auth, buf),
            Method::CONNECT => {
                if !self.on_connect(now, tuple, msg, &info, &auth, buf) {
                    // Answered when the driver reports the connection.
                    return None;
                }
            }
            _ => self.on_connection_bind(now, tuple, msg, &info, &auth, buf),
        }
        Some(Pending::reply(tuple))
    }

    fn on_binding(
        &mut self,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        buf: &mut Vec<u8>,
    ) -> Option<Pending> {
        let policy = self.config.unauthenticated_replies;
        let unknown = msg.unknown_comprehension_required();
        let sent = if unknown.is_empty() {
            write_unauthenticated(
                buf,
                info,
                None,
                &[Attribute::XorMappedAddress(tuple.client)],
                policy,
            )
        } else {
            write_unauthenticated(
                buf,
                info,
                Some(code::UNKNOWN_ATTRIBUTE),
                &[Attribute::UnknownAttributes(unknown)],
                policy,
            )
        };
        sent.then(|| Pending::reply(tuple))
    }
}
