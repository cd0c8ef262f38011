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
            next: *ports.start(),
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

    fn bind_next(&mut self) -> Option<(SocketAddr, UdpSocket)> {
        let span = u32::from(*self.ports.end()) - u32::from(*self.ports.start()) + 1;
        for _ in 0..span.min(65_536) {
            let port = self.next;
            self.next = if port >= *self.ports.end() {
                *self.ports.start()
            } else {
                port + 1
            };
            let Ok(std_socket) = std::net::UdpSocket::bind(SocketAddr::new(self.ip, port)) else {
                continue;
            };
            if std_socket.set_nonblocking(true).is_err() {
                continue;
            }
            if let (Ok(socket), Ok(addr)) = (
                UdpSocket::from_std(std_socket.try_clone().ok()?),
                std_socket.local_addr(),
            ) {
                return Some((addr, socket));
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
