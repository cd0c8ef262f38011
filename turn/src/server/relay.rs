//! How the core gets relay transport addresses without touching sockets:
//! the driver implements [`RelayAllocator`], binding a UDP socket per
//! allocation in its port range (tests use a counter).

use std::net::SocketAddr;

use thiserror::Error;

use super::types::{FiveTuple, RelayTransport};
use crate::codec::AddressFamily;

/// Why no relay address could be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The server has no address of this family (answered 440).
    #[error("address family not supported")]
    FamilyUnsupported,
    /// No port is free (answered 508).
    #[error("no relay port free")]
    Exhausted,
}

/// Opens and closes relay transport addresses for the core.
pub trait RelayAllocator {
    /// Opens a relay address of `family` and `transport` for the allocation
    /// of `client` (for TCP: a listening socket that peers may connect to,
    /// and the local address of connections to peers).
    /// The returned address identifies the relay in
    /// [`super::Destination::Peer`] and [`super::TurnServer::handle_peer`];
    /// the core announces it with the configured external IP when one is set.
    fn open(
        &mut self,
        family: AddressFamily,
        transport: RelayTransport,
        client: &FiveTuple,
    ) -> Result<SocketAddr, RelayError>;

    /// The allocation using `relay` is gone; the driver closes its socket.
    fn close(&mut self, relay: SocketAddr);
}
