//! Relay sockets: one UDP socket per allocation, bound in the configured
//! port range; a reader task per socket hands peer datagrams to the core.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Event, MAX_PACKET};
use crate::codec::AddressFamily;
use crate::server::{FiveTuple, RelayAllocator, RelayError};

/// Relay address → socket, shared with the core task for sending.
pub(super) type SocketMap = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

/// The driver's [`RelayAllocator`].
pub struct SocketRelays {
    ip: IpAddr,
    ports: RangeInclusive<u16>,
    next: u16,
    sockets: SocketMap,
    readers: HashMap<SocketAddr, JoinHandle<()>>,
    events: mpsc::Sender<Event>,
}

impl std::fmt::Debug for SocketRelays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketRelays")
            .field("ip", &self.ip)
            .field("ports", &self.ports)
            .field("open", &self.readers.len())
            .finish()
    }
}

impl SocketRelays {
    pub(super) fn new(ip: IpAddr, ports: RangeInclusive<u16>, events: mpsc::Sender<Event>) -> Self {
        SocketRelays {
            next: even_at_or_after(*ports.start()),
            ip,
            ports,
            sockets: Arc::default(),
            readers: HashMap::new(),
            events,
        }
    }

    pub(super) fn sockets(&self) -> SocketMap {
        self.sockets.clone()
    }

    /// Binds the next free even port of the range (relay ports are always
    /// even, which satisfies EVEN-PORT requests, RFC 8656 §14.6).
    fn bind_next(&mut self) -> Option<(SocketAddr, UdpSocket)> {
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
            let bound = std::net::UdpSocket::bind(SocketAddr::new(self.ip, port)).and_then(|s| {
                s.set_nonblocking(true)?;
                let addr = s.local_addr()?;
                let socket = UdpSocket::from_std(s)?;
                super::grow_buffers(&socket);
                Ok((addr, socket))
            });
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
        _client: &FiveTuple,
    ) -> Result<SocketAddr, RelayError> {
        let wanted = match family {
            AddressFamily::V4 => self.ip.is_ipv4(),
            AddressFamily::V6 => self.ip.is_ipv6(),
        };
        if !wanted {
            return Err(RelayError::FamilyUnsupported);
        }
        let (addr, socket) = self.bind_next().ok_or(RelayError::Exhausted)?;
        let socket = Arc::new(socket);
        if let Ok(mut map) = self.sockets.lock() {
            map.insert(addr, socket.clone());
        }
        let events = self.events.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; MAX_PACKET];
            loop {
                let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                // IPv4-mapped sources on a dual-stack socket become plain IPv4.
                let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                let event = Event::Peer {
                    relay: addr,
                    peer,
                    data: buf[..n].to_vec(),
                };
                if events.send(event).await.is_err() {
                    return;
                }
            }
        });
        self.readers.insert(addr, reader);
        Ok(addr)
    }

    fn close(&mut self, relay: SocketAddr) {
        if let Some(reader) = self.readers.remove(&relay) {
            reader.abort();
        }
        if let Ok(mut map) = self.sockets.lock() {
            map.remove(&relay);
        }
    }
}

fn even_at_or_after(port: u16) -> u16 {
    if port.is_multiple_of(2) {
        port
    } else {
        port.saturating_add(1)
    }
}
