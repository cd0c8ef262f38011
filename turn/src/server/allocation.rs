//! One allocation: its relay address, lifetime, permissions and channels,
//! all judged against an explicit `now`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

// A fast, per-process randomly seeded hash (looked up for every packet).
use foldhash::HashMap;

use super::types::{FiveTuple, RelayTransport};
use crate::codec::TransactionId;

/// A channel binding. It relays while `now < expires_at` and keeps its
/// number and peer reserved until `expires_at + cooldown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Channel {
    pub peer: SocketAddr,
    pub expires_at: Instant,
}

/// Why a ChannelBind cannot be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BindRefusal {
    /// The number or the peer is bound (or cooling down) to something else.
    Conflict,
    /// Too many channels or permissions.
    Capacity,
}

#[derive(Debug)]
pub(crate) struct Allocation {
    pub five_tuple: FiveTuple,
    pub relay: SocketAddr,
    pub relay_transport: RelayTransport,
    pub announced: SocketAddr,
    pub username: String,
    pub quota_user: String,
    pub allocate_tid: TransactionId,
    pub expires_at: Instant,
    /// When the timer heap will next look at this allocation.
    pub scheduled_at: Instant,
    permissions: HashMap<IpAddr, Instant>,
    channels: HashMap<u16, Channel>,
    channel_by_peer: HashMap<SocketAddr, u16>,
    /// Bytes that may still be relayed now (token bucket, both directions).
    bandwidth_tokens: f64,
    bandwidth_at: Option<Instant>,
    /// The allocation's `tracing` span: its life-cycle events (never its
    /// packets) are logged inside it, with relay, client and user.
    pub span: tracing::Span,
}

impl Allocation {
    /// Takes `bytes` from the allocation's bandwidth budget of
    /// `bytes_per_sec` (burst: one second's worth). False = over the cap:
    /// drop the packet, as a congested link would.
    pub fn take_bandwidth(&mut self, bytes: usize, bytes_per_sec: u64, now: Instant) -> bool {
        if bytes_per_sec == 0 {
            return true;
        }
        let rate = bytes_per_sec as f64;
        let elapsed = self
            .bandwidth_at
            .map_or(1.0, |t| now.saturating_duration_since(t).as_secs_f64());
        self.bandwidth_at = Some(now);
        self.bandwidth_tokens = (self.bandwidth_tokens + elapsed * rate).min(rate);
        if self.bandwidth_tokens >= bytes as f64 {
            self.bandwidth_tokens -= bytes as f64;
            true
        } else {
            false
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn new(
        five_tuple: FiveTuple,
        (relay, relay_transport): (SocketAddr, RelayTransport),
        announced: SocketAddr,
        username: String,
        quota_user: String,
        allocate_tid: TransactionId,
        expires_at: Instant,
    ) -> Self {
        let span = tracing::info_span!(
            "allocation",
            %relay,
            client = %five_tuple.client,
            transport = ?five_tuple.transport,
            user = %username,
        );
        Self {
            span,
            five_tuple,
            relay,
            relay_transport,
            announced,
            username,
            quota_user,
            allocate_tid,
            expires_at,
            scheduled_at: expires_at,
            permissions: HashMap::default(),
            channels: HashMap::default(),
            channel_by_peer: HashMap::default(),
            bandwidth_tokens: 0.0,
            bandwidth_at: None,
        }
    }

    pub fn is_alive(&self, now: Instant) -> bool {
        now < self.expires_at
    }

    /// Seconds left, rounded down, for LIFETIME in a retransmitted answer.
    pub fn remaining_secs(&self, now: Instant) -> u32 {
        u32::try_from(self.expires_at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
    }

    pub fn has_permission(&self, ip: IpAddr, now: Instant) -> bool {
        self.permissions.get(&ip).is_some_and(|exp| now < *exp)
    }

    /// How many of `ips` would be new permissions (not active now).
    pub fn new_permission_count(&self, ips: &[IpAddr], now: Instant) -> usize {
        let mut seen: Vec<IpAddr> = Vec::with_capacity(ips.len());
        ips.iter()
            .filter(|ip| {
                let new = !self.has_permission(**ip, now) && !seen.contains(ip);
                seen.push(**ip);
                new
            })
            .count()
    }

    /// Active permissions after `now`.
    pub fn active_permissions(&self, now: Instant) -> usize {
        self.permissions.values().filter(|exp| now < **exp).count()
    }

    /// Installs or refreshes permissions; the caller checked the quota.
    pub fn install_permissions(&mut self, ips: &[IpAddr], now: Instant, lifetime: Duration) {
        for ip in ips {
            self.permissions.insert(*ip, now + lifetime);
        }
    }

    /// The active channel bound to `peer`.
    pub fn channel_for_peer(&self, peer: &SocketAddr, now: Instant) -> Option<u16> {
        let number = *self.channel_by_peer.get(peer)?;
        let channel = self.channels.get(&number)?;
        (channel.peer == *peer && now < channel.expires_at).then_some(number)
    }

    /// The peer of an active channel.
    pub fn peer_for_channel(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        let channel = self.channels.get(&number)?;
        (now < channel.expires_at).then_some(channel.peer)
    }

    /// Binds or refreshes `number` to `peer`, and installs or refreshes the
    /// permission for the peer's IP (RFC 8656 §11.2).
    #[allow(clippy::too_many_arguments)]
    pub fn bind_channel(
        &mut self,
        number: u16,
        peer: SocketAddr,
        now: Instant,
        channel_lifetime: Duration,
        permission_lifetime: Duration,
        cooldown: Duration,
        max_channels: usize,
        max_permissions: usize,
    ) -> Result<(), BindRefusal> {
        let reserved = |c: &Channel| now < c.expires_at + cooldown;
        if let Some(existing) = self.channels.get(&number)
            && reserved(existing)
            && existing.peer != peer
        {
            return Err(BindRefusal::Conflict);
        }
        if let Some(other) = self.channel_by_peer.get(&peer)
            && *other != number
            && self.channels.get(other).is_some_and(reserved)
        {
            return Err(BindRefusal::Conflict);
        }
        let is_new_channel = !self.channels.get(&number).is_some_and(reserved);
        if is_new_channel && self.reserved_channels(now, cooldown) >= max_channels {
            return Err(BindRefusal::Capacity);
        }
        if !self.has_permission(peer.ip(), now) && self.active_permissions(now) >= max_permissions {
            return Err(BindRefusal::Capacity);
        }
        let previous = self.channels.insert(
            number,
            Channel {
                peer,
                expires_at: now + channel_lifetime,
            },
        );
        // A number reused after its cooldown (not yet swept) drops the old
        // peer's index entry, and a peer moving to a new number drops its old one.
        if let Some(previous) = previous
            && previous.peer != peer
        {
            self.channel_by_peer.remove(&previous.peer);
        }
        if let Some(old_number) = self.channel_by_peer.insert(peer, number)
            && old_number != number
        {
            self.channels.remove(&old_number);
        }
        self.install_permissions(&[peer.ip()], now, permission_lifetime);
        Ok(())
    }

    fn reserved_channels(&self, now: Instant, cooldown: Duration) -> usize {
        self.channels
            .values()
            .filter(|c| now < c.expires_at + cooldown)
            .count()
    }

    /// Drops permissions and channels whose time has passed; returns the
    /// next instant something here changes (allocation expiry included).
    pub fn sweep(&mut self, now: Instant, cooldown: Duration) -> Instant {
        self.permissions.retain(|_, exp| now < *exp);
        self.channels.retain(|_, c| now < c.expires_at + cooldown);
        let channels = &self.channels;
        self.channel_by_peer
            .retain(|_, number| channels.contains_key(number));
        self.next_deadline(cooldown)
    }

    /// The earliest future event: allocation expiry, a permission expiry or
    /// the end of a channel's reservation.
    pub fn next_deadline(&self, cooldown: Duration) -> Instant {
        let permissions = self.permissions.values().copied();
        let channels = self.channels.values().map(|c| c.expires_at + cooldown);
        permissions
            .chain(channels)
            .fold(self.expires_at, Instant::min)
    }

    /// (permissions, channels) active at `now`, for statistics.
    pub fn counts(&self, now: Instant) -> (usize, usize) {
        let channels = self
            .channels
            .values()
            .filter(|c| now < c.expires_at)
            .count();
        (self.active_permissions(now), channels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::Transport;

    const MIN: Duration = Duration::from_secs(60);

    fn allocation(now: Instant) -> Allocation {
        let addr: SocketAddr = "192.0.2.1:1".parse().unwrap();
        Allocation::new(
            FiveTuple {
                client: addr,
                server: addr,
                transport: Transport::Udp,
            },
            (addr, RelayTransport::Udp),
            addr,
            "u".into(),
            "u".into(),
            TransactionId([0; 12]),
            now + 60 * MIN,
        )
    }

    #[test]
    fn reusing_a_number_after_cooldown_forgets_the_old_peer() {
        let t0 = Instant::now();
        let mut a = allocation(t0);
        let p1: SocketAddr = "8.8.8.8:1".parse().unwrap();
        let p2: SocketAddr = "9.9.9.9:1".parse().unwrap();
        let bind = |a: &mut Allocation, n, p, now| {
            a.bind_channel(n, p, now, 10 * MIN, 5 * MIN, 5 * MIN, 8, 8)
        };
        assert_eq!(bind(&mut a, 0x4000, p1, t0), Ok(()));
        // Past expiry + cooldown, but never swept: the number is free.
        let later = t0 + 15 * MIN;
        assert_eq!(bind(&mut a, 0x4000, p2, later), Ok(()));
        assert_eq!(a.channel_for_peer(&p2, later), Some(0x4000));
        assert_eq!(a.channel_for_peer(&p1, later), None);
        assert_eq!(a.peer_for_channel(0x4000, later), Some(p2));
        // The peer moves to a new number: the old one is released.
        let later = later + 16 * MIN;
        assert_eq!(bind(&mut a, 0x4001, p2, later), Ok(()));
        assert_eq!(a.peer_for_channel(0x4000, later), None);
        assert_eq!(a.channel_for_peer(&p2, later), Some(0x4001));
    }
}
