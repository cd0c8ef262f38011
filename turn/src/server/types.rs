//! What goes in and out of the core: transport 5-tuples and transmits.

use std::net::SocketAddr;

/// The client-facing transport of a 5-tuple.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Transport {
    /// UDP.
    Udp,
    /// TCP (ChannelData is padded to 4 bytes).
    Tcp,
    /// TLS over TCP (ChannelData is padded to 4 bytes).
    Tls,
}

impl Transport {
    /// Whether the transport is a byte stream (TCP or TLS).
    pub const fn is_stream(self) -> bool {
        matches!(self, Transport::Tcp | Transport::Tls)
    }
}

/// The transport between a relayed address and its peers (REQUESTED-TRANSPORT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RelayTransport {
    /// UDP (RFC 8656): datagrams, relayed by the core.
    Udp,
    /// TCP (RFC 6062): one TCP connection per peer, whose bytes the driver
    /// joins with a client data connection.
    Tcp,
}

/// Client address, server (listener) address and transport: what an
/// allocation is keyed by (RFC 8656 §2). Ordered only so it can sit in
/// timer heaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiveTuple {
    /// The client's address as seen by the server (its reflexive address).
    pub client: SocketAddr,
    /// The listener address the client reached.
    pub server: SocketAddr,
    /// The transport between them.
    pub transport: Transport,
}

/// Where a transmit goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// To a client over the listener of the 5-tuple.
    Client(FiveTuple),
    /// To a peer, sent from the relay socket at `relay`.
    Peer {
        /// The relay socket's local address (as the allocator gave it).
        relay: SocketAddr,
        /// The peer.
        peer: SocketAddr,
    },
}

/// One datagram (or stream frame) to send. Borrows the input or the core's
/// scratch buffer, so relaying allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit<'a> {
    /// Where to send it.
    pub destination: Destination,
    /// The bytes.
    pub data: &'a [u8],
}

impl Transmit<'_> {
    /// An owned copy (handy in tests and for queueing).
    pub fn to_owned(&self) -> OwnedTransmit {
        OwnedTransmit {
            destination: self.destination,
            data: self.data.to_vec(),
        }
    }
}

/// An owned [`Transmit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedTransmit {
    /// Where to send it.
    pub destination: Destination,
    /// The bytes.
    pub data: Vec<u8>,
}
