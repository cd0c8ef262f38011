//! Counters and gauges for `/metrics` and for tests that prove state stays
//! bounded.

/// A snapshot of the core's state and counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live allocations.
    pub allocations: usize,
    /// Active permissions over all allocations.
    pub permissions: usize,
    /// Active channels over all allocations.
    pub channels: usize,
    /// Users holding at least one allocation.
    pub users: usize,
    /// Entries in the timer heap (bounded by a small multiple of allocations).
    pub timer_entries: usize,
    /// TCP peer connections of TCP allocations (RFC 6062): connecting,
    /// awaiting ConnectionBind or joined.
    pub peer_connections: usize,
    /// Client TCP/TLS connections holding no allocation (yet, or any
    /// more), each closed unless it allocates in time.
    pub unallocated_connections: usize,
    /// Client TCP/TLS connections closed for holding no allocation past
    /// the allocate timeout.
    pub idle_connections_closed: u64,
    /// Client TCP/TLS connections open, data connections and handshakes
    /// included (the driver's figure, over all shards).
    pub client_connections: usize,
    /// Client TCP/TLS connections closed on arrival because
    /// `max_client_connections` were open (the driver's figure).
    pub connections_refused: u64,
    /// Allocations created since start.
    pub allocations_created: u64,
    /// Allocations gone since start (expired, refreshed to 0, closed).
    pub allocations_deleted: u64,
    /// Requests refused for bad credentials: a 401 or 400 to a request that
    /// carried MESSAGE-INTEGRITY (not the first challenge, not 438).
    pub auth_failures: u64,
    /// CreatePermission/ChannelBind refused because of the peer filter.
    pub denied_peers: u64,
    /// Datagrams dropped as unparseable.
    pub malformed: u64,
    /// Packets dropped by the per-allocation bandwidth cap.
    pub rate_limited: u64,
    /// 300 (Try Alternate) answers: Allocates sent to an alternate server
    /// because this node was draining or full (a retransmitted request is
    /// answered, and counted, again).
    pub redirected: u64,
    /// Packets relayed client → peer.
    pub packets_to_peers: u64,
    /// Payload bytes relayed client → peer.
    pub bytes_to_peers: u64,
    /// Packets relayed peer → client.
    pub packets_to_clients: u64,
    /// Payload bytes relayed peer → client.
    pub bytes_to_clients: u64,
}

impl Stats {
    /// Adds another shard's figures. `users` is not additive (one user can
    /// hold allocations on several shards): the caller sets it.
    pub fn add(&mut self, other: &Stats) {
        self.allocations += other.allocations;
        self.permissions += other.permissions;
        self.channels += other.channels;
        self.timer_entries += other.timer_entries;
        self.peer_connections += other.peer_connections;
        self.unallocated_connections += other.unallocated_connections;
        self.idle_connections_closed += other.idle_connections_closed;
        self.allocations_created += other.allocations_created;
        self.allocations_deleted += other.allocations_deleted;
        self.auth_failures += other.auth_failures;
        self.denied_peers += other.denied_peers;
        self.malformed += other.malformed;
        self.rate_limited += other.rate_limited;
        self.redirected += other.redirected;
        self.packets_to_peers += other.packets_to_peers;
        self.bytes_to_peers += other.bytes_to_peers;
        self.packets_to_clients += other.packets_to_clients;
        self.bytes_to_clients += other.bytes_to_clients;
    }
}

/// The counting part of [`Stats`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub allocations_created: u64,
    pub allocations_deleted: u64,
    pub auth_failures: u64,
    pub denied_peers: u64,
    pub malformed: u64,
    /// Packets dropped by the per-allocation bandwidth cap.
    pub rate_limited: u64,
    pub redirected: u64,
    pub idle_connections_closed: u64,
    pub packets_to_peers: u64,
    pub bytes_to_peers: u64,
    pub packets_to_clients: u64,
    pub bytes_to_clients: u64,
}
