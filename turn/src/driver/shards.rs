//! Several core threads ("shards") behind one client UDP port.
//!
//! Each extra shard binds its own client socket on the listener's address
//! with `SO_REUSEPORT`. The kernel hashes every client's 4-tuple to one
//! socket of the group, so a client's requests, its allocation and its
//! relay sockets all stay on one thread and the hot path shares nothing.
//! Relay ports are cut into one slice per shard. Quotas are counted in one
//! shared [`AllocationLedger`], nonces use one secret and one clock (a
//! client's next TCP connection may land elsewhere), statistics are
//! summed. A TCP/TLS connection goes to the shard its client address
//! hashes to.
//!
//! What an operator should know:
//! - The listener gets `SO_REUSEPORT` after it is bound: another process of
//!   the same user that binds the same port with `SO_REUSEPORT` would join
//!   the group. Run the server under its own user, as usual.
//! - Relay ports run out per shard: with `n` shards a shard answers 508
//!   when its own slice is used up.

use std::hash::{Hash, Hasher};
use std::net::UdpSocket;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::{info, warn};

use super::conn_limit::ConnectionLimit;
use crate::config::{MAX_AUTO_CORE_THREADS, TurnConfig};
use crate::server::{AllocationLedger, FiveTuple, Stats};

/// Relay ports per shard at the least when the count is automatic.
const AUTO_PORTS_PER_SHARD: usize = 1024;

/// How many shards `config` asks for, within what its relay ports allow
/// (every shard needs an even port, its slice at least 2 ports).
pub(super) fn count(config: &TurnConfig) -> usize {
    let ports = usize::from(*config.relay_ports.end())
        .saturating_sub(usize::from(*config.relay_ports.start()))
        + 1;
    let wanted = match config.core_threads {
        // Half the CPUs: most of relaying's CPU is the kernel's (delivery
        // into the receiving socket runs on the sending thread), and the
        // other half serves the kernel's own work and everything else. On
        // 2 CPUs one thread relayed 50 sessions at 1.5-1.6x the messages per
        // CPU-second of two (BENCHMARKS.md).
        0 => (std::thread::available_parallelism().map_or(1, std::num::NonZero::get) / 2)
            .min(MAX_AUTO_CORE_THREADS)
            .min(ports / AUTO_PORTS_PER_SHARD),
        n => n,
    };
    wanted.min(ports / 2).max(1)
}

/// `ports` cut into `n` consecutive slices (`n` from [`count`]).
pub(super) fn port_slices(ports: &RangeInclusive<u16>, n: usize) -> Vec<RangeInclusive<u16>> {
    let (start, end) = (u32::from(*ports.start()), u32::from(*ports.end()));
    let len = end + 1 - start;
    let n = u32::try_from(n.max(1)).unwrap_or(1);
    (0..n)
        .map(|i| {
            let lo = start + i * len / n;
            let hi = start + (i + 1) * len / n - 1;
            let port = |p: u32| u16::try_from(p).unwrap_or(u16::MAX);
            port(lo)..=port(hi)
        })
        .collect()
}

/// The listener and up to `n - 1` more sockets on its address, sharing it
/// with `SO_REUSEPORT`. Fewer if the system refuses: the server then runs
/// with as many shards as it got.
pub(super) fn client_sockets(first: UdpSocket, n: usize) -> Vec<UdpSocket> {
    let Ok(addr) = first.local_addr() else {
        return vec![first];
    };
    if n <= 1 {
        return vec![first];
    }
    let listener = socket2::SockRef::from(&first);
    if let Err(e) = listener.set_reuse_port(true) {
        warn!(error = %e, "SO_REUSEPORT refused: one core thread");
        return vec![first];
    }
    let only_v6 = addr.is_ipv6() && listener.only_v6().unwrap_or(false);
    let mut sockets = vec![first];
    while sockets.len() < n {
        match bind_reuse_port(addr, only_v6) {
            Ok(socket) => sockets.push(socket),
            Err(e) => {
                warn!(error = %e, %addr, shards = sockets.len(), "cannot share the client port further");
                break;
            }
        }
    }
    info!(shards = sockets.len(), %addr, "core threads share the client port");
    sockets
}

fn bind_reuse_port(addr: std::net::SocketAddr, only_v6: bool) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(only_v6)?;
    }
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// The shard a TCP/TLS connection belongs to.
pub(super) fn for_stream(tuple: &FiveTuple, shards: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    tuple.client.hash(&mut hasher);
    usize::try_from(hasher.finish() % u64::try_from(shards.max(1)).unwrap_or(1)).unwrap_or(0)
}

/// Where shards publish their statistics, summed for `/metrics`, and
/// agree on when a drain is over.
pub(super) struct StatsBoard {
    total: Arc<Mutex<Stats>>,
    shards: Mutex<Vec<Stats>>,
    draining: Mutex<Vec<bool>>,
    ledger: AllocationLedger,
    connections: ConnectionLimit,
}

impl StatsBoard {
    pub(super) fn new(
        shards: usize,
        ledger: AllocationLedger,
        connections: ConnectionLimit,
    ) -> Self {
        StatsBoard {
            total: Arc::new(Mutex::new(Stats::default())),
            shards: Mutex::new(vec![Stats::default(); shards]),
            draining: Mutex::new(vec![false; shards]),
            ledger,
            connections,
        }
    }

    /// The summed view the handle exposes.
    pub(super) fn total(&self) -> Arc<Mutex<Stats>> {
        self.total.clone()
    }

    /// Each shard's latest figures.
    pub(super) fn per_shard(&self) -> Vec<Stats> {
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Shard `index` refuses new allocations from now on.
    pub(super) fn mark_draining(&self, index: usize) {
        let mut draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flag) = draining.get_mut(index) {
            *flag = true;
        }
    }

    /// Every shard drains and no allocation is left anywhere (the ledger
    /// counts at once, unlike the published figures). Then, and only then,
    /// may shards close their share of the client port: closing one earlier
    /// would make the kernel rehash other shards' clients.
    pub(super) fn all_drained(&self) -> bool {
        let draining = self.draining.lock().unwrap_or_else(PoisonError::into_inner);
        draining.iter().all(|d| *d) && self.ledger.total() == 0
    }

    /// Records shard `index`'s figures and refreshes the sum.
    pub(super) fn publish(&self, index: usize, stats: Stats) {
        let mut shards = self.shards.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = shards.get_mut(index) {
            *slot = stats;
        }
        let mut sum = Stats::default();
        for shard in shards.iter() {
            sum.add(shard);
        }
        sum.users = self.ledger.users();
        sum.client_connections = self.connections.open();
        sum.connections_refused = self.connections.refused();
        *self.total.lock().unwrap_or_else(PoisonError::into_inner) = sum;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn port_slices_cover_the_range_once_and_each_holds_an_even_port() {
        for (ports, n) in [
            (49152..=65535u16, 8),
            (40000..=40003, 2),
            (3..=9, 3),
            (10..=10, 1),
        ] {
            let slices = port_slices(&ports, n);
            assert_eq!(slices.len(), n);
            assert_eq!(slices[0].start(), ports.start());
            assert_eq!(slices[n - 1].end(), ports.end());
            for pair in slices.windows(2) {
                assert_eq!(*pair[0].end() + 1, *pair[1].start(), "{ports:?} / {n}");
            }
            for slice in &slices {
                assert!(slice.clone().any(|p| p % 2 == 0), "{slice:?} of {ports:?}");
            }
        }
    }

    #[test]
    fn the_count_follows_the_setting_within_the_ports() {
        let config = |core_threads, relay_ports| TurnConfig {
            core_threads,
            relay_ports,
            ..TurnConfig::default()
        };
        assert_eq!(count(&config(3, 49152..=65535)), 3);
        assert_eq!(count(&config(3, 40000..=40003)), 2, "two ports each");
        assert_eq!(count(&config(0, 40000..=40099)), 1, "auto wants 1024 each");
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            count(&config(0, 49152..=65535)),
            (cpus / 2).clamp(1, MAX_AUTO_CORE_THREADS)
        );
    }

    #[test]
    fn sockets_share_the_listener_address() {
        let first = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = first.local_addr().unwrap();
        let sockets = client_sockets(first, 3);
        assert_eq!(sockets.len(), 3);
        for socket in &sockets {
            assert_eq!(socket.local_addr().unwrap(), addr);
        }
    }
}
