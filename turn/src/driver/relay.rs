//! Relay sockets: one UDP socket per allocation, bound in the configured
//! port range by [`SocketRelays`] (the core's [`RelayAllocator`]) and
//! polled by the event loop through [`RelaySockets`]. A TCP allocation
//! (RFC 6062) gets a listening TCP socket instead, handed to
//! [`super::tcp_relay::TcpRelays`].
//!
//! The allocator only binds and closes; the event loop picks newly bound
//! sockets up after each call into the core ([`SocketRelays::take_changes`])
//! and registers them with its poller, so no socket is shared between them.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;

// A fast, per-process randomly seeded hash (looked up for every packet).

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use super::slots::Slots;

use crate::codec::AddressFamily;
use crate::server::{FiveTuple, RelayAllocator, RelayError, RelayTransport};

/// A relay bound by the allocator, not yet picked up by the event loop.
pub(super) enum BoundRelay {
    Udp(UdpSocket),
    /// A TCP listener, and the UDP socket that keeps the same port number
    /// from becoming a UDP relay: relay addresses must be unique, whatever
    /// their transport.
    Tcp(std::net::TcpListener, std::net::UdpSocket),
}

/// The driver's [`RelayAllocator`].
pub struct SocketRelays {
    /// Relay IPs, at most one per address family.
    ips: Vec<IpAddr>,
    ports: RangeInclusive<u16>,
    next: u16,
    opened: Vec<(SocketAddr, BoundRelay)>,
    closed: Vec<SocketAddr>,
    open: usize,
}

impl std::fmt::Debug for SocketRelays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRelays")
            .field("ips", &self.ips)
            .field("ports", &self.ports)
            .field("open", &self.open)
            .finish()
    }
}

impl SocketRelays {
    /// Relays on `ips` (the first of each family counts) in `ports`.
    pub(super) fn new(ips: &[IpAddr], ports: RangeInclusive<u16>) -> Self {
        let mut unique: Vec<IpAddr> = Vec::new();
        for ip in ips {
            if !unique.iter().any(|u| u.is_ipv4() == ip.is_ipv4()) {
                unique.push(*ip);
            }
        }
        SocketRelays {
            next: even_at_or_after(*ports.start()),
            ips: unique,
            ports,
            opened: Vec::new(),
            closed: Vec::new(),
            open: 0,
        }
    }

    /// Sockets bound and relay addresses closed since the last call.
    pub(super) fn has_changes(&self) -> bool {
        !self.opened.is_empty() || !self.closed.is_empty()
    }

    /// Applies the opened and closed relays to `sockets` (UDP) and `tcp`.
    pub(super) fn take_changes(
        &mut self,
        sockets: &mut RelaySockets,
        tcp: &mut super::tcp_relay::TcpRelays,
    ) {
        for relay in self.closed.drain(..) {
            sockets.remove(relay);
            tcp.close_listener(relay);
        }
        for (relay, bound) in self.opened.drain(..) {
            match bound {
                BoundRelay::Udp(socket) => sockets.insert(relay, socket),
                BoundRelay::Tcp(listener, placeholder) => {
                    tcp.listen(relay, listener, placeholder);
                }
            }
        }
    }

    /// Binds the next free even port of the range (relay ports are always
    /// even, which satisfies EVEN-PORT requests, RFC 8656 §14.6).
    fn bind_next(
        &mut self,
        ip: IpAddr,
        transport: RelayTransport,
    ) -> Option<(SocketAddr, BoundRelay)> {
        let (start, end) = (even_at_or_after(*self.ports.start()), *self.ports.end());
        let span = (u32::from(end).saturating_sub(u32::from(start))) / 2 + 1;
        for _ in 0..span.min(32_768) {
            let port = self.next;
            self.next = match port.checked_add(2) {
                Some(n) if n <= end => n,
                _ => start,
            };
            if port > end {
                continue;
            }
            let bound = match transport {
                RelayTransport::Udp => bind_udp(SocketAddr::new(ip, port))
                    .map(|(addr, s)| (addr, BoundRelay::Udp(UdpSocket::from_std(s)))),
                RelayTransport::Tcp => bind_tcp(SocketAddr::new(ip, port)),
            };
            match bound {
                Ok(pair) => return Some(pair),
                Err(e) => tracing::debug!(port, error = %e, "relay port unavailable"),
            }
        }
        None
    }
}

impl RelayAllocator for SocketRelays {
    fn open(
        &mut self,
        family: AddressFamily,
        transport: RelayTransport,
        _client: &FiveTuple,
    ) -> Result<SocketAddr, RelayError> {
        let ip = self
            .ips
            .iter()
            .copied()
            .find(|ip| ip.is_ipv4() == (family == AddressFamily::V4))
            .ok_or(RelayError::FamilyUnsupported)?;
        let (addr, socket) = self.bind_next(ip, transport).ok_or(RelayError::Exhausted)?;
        self.opened.push((addr, socket));
        self.open += 1;
        Ok(addr)
    }

    fn close(&mut self, relay: SocketAddr) {
        self.open = self.open.saturating_sub(1);
        if let Some(i) = self.opened.iter().position(|(a, _)| *a == relay) {
            self.opened.swap_remove(i);
        } else {
            self.closed.push(relay);
        }
    }
}

/// The relay sockets the event loop polls: tokens from `first_token` on
/// name slots; relay addresses find them for sending.
pub(super) struct RelaySockets {
    registry: Registry,
    first_token: usize,
    sockets: Slots<SocketAddr, UdpSocket>,
}

impl RelaySockets {
    pub(super) fn new(registry: Registry, first_token: usize) -> Self {
        RelaySockets {
            registry,
            first_token,
            sockets: Slots::new(),
        }
    }

    fn insert(&mut self, relay: SocketAddr, mut socket: UdpSocket) {
        let token = Token(self.first_token + self.sockets.next_slot());
        if let Err(e) = self
            .registry
            .register(&mut socket, token, Interest::READABLE)
        {
            tracing::warn!(%relay, error = %e, "relay socket not polled");
        }
        self.sockets.insert(relay, socket);
    }

    fn remove(&mut self, relay: SocketAddr) {
        let Some(slot) = self.sockets.slot_of(&relay) else {
            return;
        };
        if let Some((_, mut socket)) = self.sockets.remove(slot) {
            let _ = self.registry.deregister(&mut socket);
        }
    }

    /// The socket polled under `token`, with its relay address.
    pub(super) fn by_token(&self, token: Token) -> Option<(SocketAddr, &UdpSocket)> {
        self.sockets.get(token.0.checked_sub(self.first_token)?)
    }

    /// The socket of the relay address `relay`.
    pub(super) fn by_addr(&self, relay: &SocketAddr) -> Option<&UdpSocket> {
        let (_, socket) = self.sockets.get(self.sockets.slot_of(relay)?)?;
        Some(socket)
    }
}

fn bind_udp(addr: SocketAddr) -> std::io::Result<(SocketAddr, std::net::UdpSocket)> {
    let s = std::net::UdpSocket::bind(addr)?;
    s.set_nonblocking(true)?;
    let addr = s.local_addr()?;
    super::tune_udp_socket(&s);
    Ok((addr, s))
}

/// A TCP relay: a listener for peers' connections, bound with
/// `SO_REUSEPORT` so connections to peers can leave from the same address
/// (RFC 6062 §5.2), and the UDP port of the same number held.
fn bind_tcp(addr: SocketAddr) -> std::io::Result<(SocketAddr, BoundRelay)> {
    use socket2::{Domain, Protocol, Socket, Type};
    let (addr, placeholder) = bind_udp(addr)?;
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok((addr, BoundRelay::Tcp(socket.into(), placeholder)))
}

fn even_at_or_after(port: u16) -> u16 {
    if port.is_multiple_of(2) {
        port
    } else {
        port.saturating_add(1)
    }
}
