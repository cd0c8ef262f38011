//! Which peers an allocation may reach: the deny-list of special-purpose
//! ranges (in every IPv6 disguise of an IPv4 address) and the operator's
//! allow-list, which wins over it.
//!
//! The allow-list matches the address as the client gave it, and also the
//! IPv4 address inside an IPv4-mapped one (a dual-stack socket sends
//! ::ffff:a.b.c.d to a.b.c.d). It does not look inside 6to4, Teredo or
//! NAT64 forms: those are routed by someone else's gateway, not to the
//! allowed host.

mod cidr;
mod ranges;

use std::net::{IpAddr, SocketAddr};

pub use cidr::{CidrError, IpNet};
pub use ranges::{Denied, DenyReason, Ipv4Embedding, deny_reason, embedded_ipv4};

/// The deny-list plus an allow-list of operator ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerFilter {
    allow: Vec<IpNet>,
    /// Exact transport addresses allowed despite the deny-list (the
    /// all-in-one samtale allows its own SFU's media port and nothing else
    /// on loopback).
    exact: Vec<SocketAddr>,
}

impl PeerFilter {
    /// A filter that allows exactly `allow` among the denied ranges.
    pub fn new(allow: Vec<IpNet>) -> Self {
        Self {
            allow,
            exact: Vec::new(),
        }
    }

    /// Adds exact `ip:port` exceptions: their IP may get permissions, but
    /// only those ports are relayed to or from (see [`Self::check_addr`]).
    pub fn with_exact(mut self, exact: Vec<SocketAddr>) -> Self {
        self.exact = exact;
        self
    }

    /// Whether a peer transport address may be relayed to or from: like
    /// [`Self::check`], except that an IP allowed only by an exact
    /// exception is allowed on its listed ports only.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), Denied> {
        let ip = addr.ip().to_canonical();
        if self.is_allowed(addr.ip())
            || self
                .exact
                .iter()
                .any(|e| e.ip() == ip && e.port() == addr.port())
        {
            return Ok(());
        }
        match deny_reason(addr.ip()) {
            Some(denied) => Err(denied),
            None => Ok(()),
        }
    }

    /// Parses allow-list entries such as "10.0.0.5", "10.1.0.0/16", "fd00::/8".
    pub fn parse_allow_list<S: AsRef<str>>(entries: &[S]) -> Result<Vec<IpNet>, CidrError> {
        entries.iter().map(|e| e.as_ref().parse()).collect()
    }

    /// The allow-list.
    pub fn allow_list(&self) -> &[IpNet] {
        &self.allow
    }

    /// Whether `ip` is on the allow-list (directly or IPv4-mapped).
    pub fn is_allowed(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allow
            .iter()
            .any(|net| net.contains(ip) || mapped.is_some_and(|v4| net.contains(v4)))
    }

    /// `Ok` when `ip` may be relayed to.
    pub fn check(&self, ip: IpAddr) -> Result<(), Denied> {
        if self.is_allowed(ip) || self.exact.iter().any(|e| e.ip() == ip.to_canonical()) {
            return Ok(());
        }
        match deny_reason(ip) {
            Some(denied) => Err(denied),
            None => Ok(()),
        }
    }
}
