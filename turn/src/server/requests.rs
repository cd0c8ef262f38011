//! The authenticated TURN requests: Allocate, Refresh, CreatePermission and
//! ChannelBind (RFC 8656 §7–§11). Each writes exactly one response.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use super::TurnServer;
use super::allocation::{Allocation, BindRefusal};
use super::authenticate::Authenticated;
use super::relay::{RelayAllocator, RelayError};
use super::reply::{RequestInfo, code, write_authenticated};
use super::types::{FiveTuple, RelayTransport};
use crate::codec::{AddressFamily, Attribute, Message, attr_type};

/// IANA protocol numbers of the REQUESTED-TRANSPORTs served.
const UDP: u8 = 17;
const TCP: u8 = 6;

impl<A: RelayAllocator> TurnServer<A> {
    pub(super) fn reply_error(
        &self,
        buf: &mut Vec<u8>,
        info: &RequestInfo,
        key: &[u8],
        code: u16,
        attrs: &[Attribute<'_>],
    ) {
        write_authenticated(
            buf,
            info,
            Some(code),
            attrs,
            key,
            self.config.software.as_deref(),
        );
    }

    pub(super) fn reply_success(
        &self,
        buf: &mut Vec<u8>,
        info: &RequestInfo,
        key: &[u8],
        attrs: &[Attribute<'_>],
    ) {
        write_authenticated(buf, info, None, attrs, key, self.config.software.as_deref());
    }

    /// This node cannot take the allocation (draining, full, out of relay
    /// ports): 300 (Try Alternate) to a configured alternate server of the
    /// client's address family (RFC 8489 §10), else `fallback`. The
    /// transaction id picks it: requests spread evenly, a retransmission
    /// gets the same answer. Never this node itself. TLS clients get
    /// `fallback`: they would need ALTERNATE-DOMAIN to check the other
    /// node's certificate.
    fn refuse_for_capacity(
        &mut self,
        tuple: FiveTuple,
        info: &RequestInfo,
        key: &[u8],
        fallback: u16,
        buf: &mut Vec<u8>,
    ) {
        let itself = |a: &SocketAddr| *a == tuple.server || *a == self.announced(tuple.server);
        let v4 = tuple.client.ip().to_canonical().is_ipv4();
        let alternates: Vec<SocketAddr> = self
            .config
            .alternate_servers
            .iter()
            .filter(|a| a.is_ipv4() == v4 && !itself(a))
            .copied()
            .collect();
        if tuple.transport == super::Transport::Tls || alternates.is_empty() {
            return self.reply_error(buf, info, key, fallback, &[]);
        }
        let [a, b, c, d, e, f, g, h, ..] = info.tid.0;
        let pick = u64::from_le_bytes([a, b, c, d, e, f, g, h]) % alternates.len() as u64;
        let alternate = alternates[usize::try_from(pick).unwrap_or(0)];
        self.counters.redirected += 1;
        self.reply_error(
            buf,
            info,
            key,
            code::TRY_ALTERNATE,
            &[Attribute::AlternateServer(alternate)],
        );
    }

    /// RFC 8656 §7.2: max(default, min(requested, max)); absent → default.
    fn granted_lifetime(&self, requested: Option<u32>) -> Duration {
        let default = self.config.default_allocation_lifetime;
        match requested {
            None => default,
            Some(secs) => Duration::from_secs(u64::from(secs))
                .min(self.config.max_allocation_lifetime)
                .max(default),
        }
    }

    fn announced(&self, relay: SocketAddr) -> SocketAddr {
        let ip = match relay.ip() {
            IpAddr::V4(_) => self.config.external_ipv4.map(IpAddr::V4),
            IpAddr::V6(_) => self.config.external_ipv6.map(IpAddr::V6),
        };
        ip.map_or(relay, |ip| SocketAddr::new(ip, relay.port()))
    }

    pub(super) fn on_allocate(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) {
        let key = &auth.key;
        if let Some(id) = self.live_allocation(&tuple, now) {
            let Some(existing) = self.table.get(id) else {
                return;
            };
            if existing.allocate_tid == info.tid && existing.username == auth.username {
                // A retransmission: answer as before (RFC 8656 §7.2).
                let attrs = [
                    Attribute::XorRelayedAddress(existing.announced),
                    Attribute::Lifetime(existing.remaining_secs(now)),
                    Attribute::XorMappedAddress(tuple.client),
                ];
                return self.reply_success(buf, info, key, &attrs);
            }
            return self.reply_error(buf, info, key, code::ALLOCATION_MISMATCH, &[]);
        }
        let transport = match msg.decode(attr_type::REQUESTED_TRANSPORT) {
            Ok(Some(Attribute::RequestedTransport(UDP))) => RelayTransport::Udp,
            Ok(Some(Attribute::RequestedTransport(TCP))) if self.config.tcp_relay => {
                // RFC 6062 §5.1: only over TCP/TLS, and without the
                // UDP-only attributes.
                let udp_only = [
                    attr_type::DONT_FRAGMENT,
                    attr_type::EVEN_PORT,
                    attr_type::RESERVATION_TOKEN,
                ];
                if !tuple.transport.is_stream() || udp_only.iter().any(|t| msg.contains(*t)) {
                    return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
                }
                RelayTransport::Tcp
            }
            Ok(Some(_)) => {
                return self.reply_error(buf, info, key, code::UNSUPPORTED_TRANSPORT, &[]);
            }
            _ => return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]),
        };
        let family = match requested_family(msg) {
            Ok(family) => family.unwrap_or(AddressFamily::V4),
            Err(code) => return self.reply_error(buf, info, key, code, &[]),
        };
        let requested_lifetime = match msg.decode(attr_type::LIFETIME) {
            Ok(Some(Attribute::Lifetime(secs))) => Some(secs),
            Ok(_) => None,
            Err(_) => return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]),
        };
        if self.draining {
            // Shutting down: existing allocations live out their lifetime,
            // new ones go to another node.
            return self.refuse_for_capacity(tuple, info, key, code::INSUFFICIENT_CAPACITY, buf);
        }
        let reserved = self.table.ledger().try_reserve(
            &auth.quota_user,
            self.config.max_allocations_per_user,
            self.config.max_allocations_total,
        );
        if !reserved {
            let server_full = self.table.ledger().total() >= self.config.max_allocations_total;
            if server_full {
                return self.refuse_for_capacity(
                    tuple,
                    info,
                    key,
                    code::ALLOCATION_QUOTA_REACHED,
                    buf,
                );
            }
            return self.reply_error(buf, info, key, code::ALLOCATION_QUOTA_REACHED, &[]);
        }
        let relay = match self.allocator.open(family, transport, &tuple) {
            Ok(relay) => relay,
            Err(e) => {
                self.table.ledger().release(&auth.quota_user);
                return match e {
                    RelayError::FamilyUnsupported => {
                        self.reply_error(buf, info, key, code::ADDRESS_FAMILY_NOT_SUPPORTED, &[])
                    }
                    _ => {
                        self.refuse_for_capacity(tuple, info, key, code::INSUFFICIENT_CAPACITY, buf)
                    }
                };
            }
        };
        let lifetime = self.granted_lifetime(requested_lifetime);
        let announced = self.announced(relay);
        let allocation = Allocation::new(
            tuple,
            (relay, transport),
            announced,
            auth.username.clone(),
            auth.quota_user.clone(),
            info.tid,
            now + lifetime,
        );
        tracing::debug!(parent: &allocation.span, lifetime = lifetime.as_secs(), "allocation created");
        self.table.insert(allocation, self.config.channel_cooldown);
        self.unallocated.stop(&tuple);
        self.counters.allocations_created += 1;
        let attrs = [
            Attribute::XorRelayedAddress(announced),
            Attribute::Lifetime(u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX)),
            Attribute::XorMappedAddress(tuple.client),
        ];
        self.reply_success(buf, info, key, &attrs);
    }

    /// The live allocation of this 5-tuple, if it belongs to the
    /// authenticated user; otherwise answers 437 (no allocation) or 441
    /// (someone else's) and returns `None`.
    pub(super) fn own_allocation(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) -> Option<super::table::AllocationId> {
        let Some(id) = self.live_allocation(&tuple, now) else {
            self.reply_error(buf, info, &auth.key, code::ALLOCATION_MISMATCH, &[]);
            return None;
        };
        if self.table.get(id)?.username != auth.username {
            self.reply_error(buf, info, &auth.key, code::WRONG_CREDENTIALS, &[]);
            return None;
        }
        Some(id)
    }

    pub(super) fn on_refresh(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) {
        let key = &auth.key;
        let Some(id) = self.own_allocation(now, tuple, info, auth, buf) else {
            return;
        };
        let Some(allocation) = self.table.get(id) else {
            return;
        };
        match requested_family(msg) {
            Ok(Some(family)) if family != AddressFamily::of(&allocation.relay.ip()) => {
                return self.reply_error(buf, info, key, code::PEER_ADDRESS_FAMILY_MISMATCH, &[]);
            }
            Ok(_) => {}
            Err(code) => return self.reply_error(buf, info, key, code, &[]),
        }
        let requested = match msg.decode(attr_type::LIFETIME) {
            Ok(Some(Attribute::Lifetime(secs))) => Some(secs),
            Ok(_) => None,
            Err(_) => return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]),
        };
        if requested == Some(0) {
            if let Some(tuple) = self.delete(id) {
                self.unallocated_from(now, tuple);
            }
            return self.reply_success(buf, info, key, &[Attribute::Lifetime(0)]);
        }
        let lifetime = self.granted_lifetime(requested);
        if let Some(allocation) = self.table.get_mut(id) {
            allocation.expires_at = now + lifetime;
            tracing::debug!(parent: &allocation.span, lifetime = lifetime.as_secs(), "allocation refreshed");
        }
        self.table.reschedule(id, self.config.channel_cooldown);
        let secs = u32::try_from(lifetime.as_secs()).unwrap_or(u32::MAX);
        self.reply_success(buf, info, key, &[Attribute::Lifetime(secs)]);
    }

    pub(super) fn on_create_permission(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) {
        let key = &auth.key;
        let Some(id) = self.own_allocation(now, tuple, info, auth, buf) else {
            return;
        };
        let Some(allocation) = self.table.get(id) else {
            return;
        };
        let peers: Vec<IpAddr> = match msg.decode_all(attr_type::XOR_PEER_ADDRESS) {
            Ok(attrs) => attrs
                .iter()
                .filter_map(|a| match a {
                    Attribute::XorPeerAddress(addr) => Some(addr.ip()),
                    _ => None,
                })
                .collect(),
            Err(_) => return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]),
        };
        if peers.is_empty() {
            return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
        }
        let relay_family = AddressFamily::of(&allocation.relay.ip());
        if peers.iter().any(|ip| AddressFamily::of(ip) != relay_family) {
            return self.reply_error(buf, info, key, code::PEER_ADDRESS_FAMILY_MISMATCH, &[]);
        }
        if peers.iter().any(|ip| self.filter.check(*ip).is_err()) {
            self.counters.denied_peers += 1;
            return self.reply_error(buf, info, key, code::FORBIDDEN, &[]);
        }
        let wanted =
            allocation.active_permissions(now) + allocation.new_permission_count(&peers, now);
        if wanted > self.config.max_permissions_per_allocation {
            return self.reply_error(buf, info, key, code::INSUFFICIENT_CAPACITY, &[]);
        }
        let lifetime = self.config.permission_lifetime;
        if let Some(allocation) = self.table.get_mut(id) {
            allocation.install_permissions(&peers, now, lifetime);
            tracing::debug!(parent: &allocation.span, ?peers, "permissions installed");
        }
        self.table.reschedule(id, self.config.channel_cooldown);
        self.reply_success(buf, info, key, &[]);
    }

    pub(super) fn on_channel_bind(
        &mut self,
        now: Instant,
        tuple: FiveTuple,
        msg: &Message<'_>,
        info: &RequestInfo,
        auth: &Authenticated,
        buf: &mut Vec<u8>,
    ) {
        let key = &auth.key;
        let Some(id) = self.own_allocation(now, tuple, info, auth, buf) else {
            return;
        };
        let Some(allocation) = self.table.get(id) else {
            return;
        };
        if allocation.relay_transport == RelayTransport::Tcp {
            // TCP allocations relay over data connections only (RFC 6062 §5).
            return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
        }
        let (Ok(Some(Attribute::ChannelNumber(number))), Ok(Some(Attribute::XorPeerAddress(peer)))) = (
            msg.decode(attr_type::CHANNEL_NUMBER),
            msg.decode(attr_type::XOR_PEER_ADDRESS),
        ) else {
            return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
        };
        if !self.config.channel_range.contains(number) {
            return self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
        }
        if AddressFamily::of(&peer.ip()) != AddressFamily::of(&allocation.relay.ip()) {
            return self.reply_error(buf, info, key, code::PEER_ADDRESS_FAMILY_MISMATCH, &[]);
        }
        if self.filter.check_addr(peer).is_err() {
            self.counters.denied_peers += 1;
            return self.reply_error(buf, info, key, code::FORBIDDEN, &[]);
        }
        let c = &self.config;
        let (channel_lifetime, permission_lifetime, cooldown) = (
            c.channel_lifetime,
            c.permission_lifetime,
            c.channel_cooldown,
        );
        let (max_channels, max_permissions) = (
            c.max_channels_per_allocation,
            c.max_permissions_per_allocation,
        );
        let result = match self.table.get_mut(id) {
            Some(allocation) => allocation.bind_channel(
                number,
                peer,
                now,
                channel_lifetime,
                permission_lifetime,
                cooldown,
                max_channels,
                max_permissions,
            ),
            None => return,
        };
        match result {
            Ok(()) => {
                if let Some(allocation) = self.table.get(id) {
                    tracing::debug!(parent: &allocation.span, channel = number, %peer, "channel bound");
                }
                self.table.reschedule(id, cooldown);
                self.reply_success(buf, info, key, &[]);
            }
            Err(BindRefusal::Conflict) => {
                self.reply_error(buf, info, key, code::BAD_REQUEST, &[]);
            }
            Err(BindRefusal::Capacity) => {
                self.reply_error(buf, info, key, code::INSUFFICIENT_CAPACITY, &[]);
            }
        }
    }
}

/// REQUESTED-ADDRESS-FAMILY: `Ok(None)` when absent, `Err(440)` for a family
/// other than 0x01/0x02, `Err(400)` for a malformed value.
fn requested_family(msg: &Message<'_>) -> Result<Option<AddressFamily>, u16> {
    let Some(raw) = msg.get(attr_type::REQUESTED_ADDRESS_FAMILY) else {
        return Ok(None);
    };
    match raw.value {
        [family, _, _, _] => AddressFamily::from_u8(*family)
            .map(Some)
            .ok_or(code::ADDRESS_FAMILY_NOT_SUPPORTED),
        _ => Err(code::BAD_REQUEST),
    }
}
