//! Settings of the TURN server, with the defaults and where they come from.
//!
//! The TOML/env/CLI layer of the binary fills this struct later; every
//! field has a default so an empty file works.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::Duration;

use thiserror::Error;

use crate::auth::{Secret, StaticUser};
use crate::codec::{MAX_CHANNEL_NUMBER, MIN_CHANNEL_NUMBER};
use crate::peer_filter::IpNet;

/// Upper bound on every configured lifetime (one day), so deadline
/// arithmetic on `Instant` can never overflow.
pub const MAX_LIFETIME: Duration = Duration::from_secs(86_400);

/// Which channel numbers ChannelBind accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChannelRange {
    /// 0x4000–0x7FFF, what coturn accepts and its own client uses (default).
    #[default]
    Compatible,
    /// 0x4000–0x4FFF, RFC 8656 §12 exactly.
    Strict,
}

impl ChannelRange {
    /// The highest accepted channel number.
    pub const fn max(self) -> u16 {
        match self {
            ChannelRange::Compatible => MAX_CHANNEL_NUMBER,
            ChannelRange::Strict => 0x4FFF,
        }
    }

    /// Whether `number` is accepted.
    pub const fn contains(self, number: u16) -> bool {
        number >= MIN_CHANNEL_NUMBER && number <= self.max()
    }
}

/// How large an answer to an unauthenticated request over UDP may be (a
/// spoofed source makes any answer a reflection).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UnauthenticatedReplies {
    /// The smallest answer that still works (default): no reason phrase, no
    /// SOFTWARE, a 16-character nonce. A 401 is then
    /// 48 bytes + the padded realm, about twice libwebrtc's 28-byte first
    /// Allocate; a Binding response is 32 or 44 bytes.
    #[default]
    Minimal,
    /// Never more bytes than the request. Requests too small for their
    /// answer are dropped, which breaks clients whose first Allocate is
    /// tiny (libwebrtc's is 28 bytes; no 401 fits in that) and plain
    /// 20-byte Binding requests.
    NoLargerThanRequest,
}

/// The most core threads `core_threads = 0` picks.
pub const MAX_AUTO_CORE_THREADS: usize = 8;

/// Everything the sans-IO core needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TurnConfig {
    /// REALM of the long-term credential mechanism. Default `"samtale"`.
    pub realm: String,
    /// Region label reported to signaling and metrics, e.g. `"eu-north-1"`.
    /// Default `"local"`.
    pub region: String,
    /// Public IPv4 address announced in XOR-RELAYED-ADDRESS in place of the
    /// relay socket's own address (a server behind 1:1 NAT). Default none.
    pub external_ipv4: Option<Ipv4Addr>,
    /// Public IPv6 address announced likewise. Default none.
    pub external_ipv6: Option<Ipv6Addr>,
    /// Ports the driver binds relay sockets on. Default 49152–65535, the
    /// range RFC 8656 §7.2 recommends.
    pub relay_ports: RangeInclusive<u16>,
    /// Threads that relay (the driver's setting; a reload does not change
    /// it). Each owns the allocations of the clients the kernel hashes to
    /// its share of the client UDP port (`SO_REUSEPORT`) and a slice of
    /// `relay_ports`. 0 (the default) means one per two CPUs, at least one,
    /// at most [`MAX_AUTO_CORE_THREADS`], and at least 1024 relay ports
    /// each.
    pub core_threads: usize,
    /// Allocation lifetime without a LIFETIME attribute, and the least one
    /// granted. Default 600 s (RFC 8656 §7.2).
    pub default_allocation_lifetime: Duration,
    /// Longest allocation lifetime granted. Default 3600 s (RFC 8656 §7.2).
    pub max_allocation_lifetime: Duration,
    /// Permission lifetime. Default 300 s (RFC 8656 §9, fixed there).
    pub permission_lifetime: Duration,
    /// Channel binding lifetime. Default 600 s (RFC 8656 §12).
    pub channel_lifetime: Duration,
    /// How long after its binding expires a channel number (and its peer)
    /// stays reserved. Default 300 s (RFC 8656 §12).
    pub channel_cooldown: Duration,
    /// How long a nonce stays valid before 438 (Stale Nonce). Default
    /// 600 s, as coturn's `stale-nonce`.
    pub nonce_lifetime: Duration,
    /// Allocations one user may hold (486 beyond). Default 10: a browser
    /// holds one per TURN URL and ICE restart.
    pub max_allocations_per_user: usize,
    /// Allocations the server holds in total (486 beyond). Default 10 000.
    pub max_allocations_total: usize,
    /// Permissions (peer IPs) per allocation (508 beyond). Default 32.
    pub max_permissions_per_allocation: usize,
    /// Channels per allocation (508 beyond). Default 32.
    pub max_channels_per_allocation: usize,
    /// Whether clients on TCP/TLS may allocate TCP relayed addresses
    /// (RFC 6062: Connect, ConnectionBind). Off: 442 Unsupported Transport
    /// Protocol. Default on, as coturn.
    pub tcp_relay: bool,
    /// TCP peer connections per TCP allocation, pending or joined (508
    /// beyond; an incoming one is closed). Default 32.
    pub max_connections_per_allocation: usize,
    /// Client TCP/TLS connections open at once, data connections and TLS
    /// handshakes included. Beyond, a new connection is closed at once.
    /// Default 20 000 (a TLS connection holds ~50–80 KiB). Read at start:
    /// a reload (SIGHUP) keeps the cap the server started with.
    pub max_client_connections: usize,
    /// How long a client TCP/TLS connection may stay open without an
    /// allocation: after it opens, and after its allocation ends. Then the
    /// server closes it. Default 60 s, as coturn's `max-allocate-timeout`;
    /// zero never closes; at most one day. A reload (SIGHUP) applies to
    /// deadlines that start after it.
    pub allocate_timeout: Duration,
    /// Relayed bytes per second per allocation, both directions together
    /// (0 = no cap). Over the cap packets are dropped. Default 2.5 MB/s
    /// (20 Mbit/s: a 32-person call's simulcast downlink fits).
    pub max_bandwidth_per_allocation: u64,
    /// Channel numbers ChannelBind accepts. Default [`ChannelRange::Compatible`].
    pub channel_range: ChannelRange,
    /// Peer addresses/ranges allowed although the deny-list refuses them
    /// (e.g. the SFU's private address). Default empty.
    pub allowed_peers: Vec<IpNet>,
    /// Exact peer transport addresses allowed despite the deny-list: their
    /// IP gets permissions but only these ports are relayed (the all-in-one
    /// samtale lists its SFU's media sockets here). Default none.
    pub allowed_peer_addrs: Vec<std::net::SocketAddr>,
    /// Other TURN nodes (of this region) to send new allocations to with
    /// 300 (Try Alternate) while this one drains, is full or is out of
    /// relay ports: one of the client's address family, picked by the
    /// request's transaction id (so a retransmission gets the same one),
    /// never the address the request came in on. UDP and TCP clients only
    /// (TLS would need ALTERNATE-DOMAIN). Browsers skip loopback alternates
    /// and ports below 1024 other than 53, 80 and 443. Default none: those
    /// allocations get 508/486.
    pub alternate_servers: Vec<std::net::SocketAddr>,
    /// Users with fixed passwords. Default none.
    pub static_users: Vec<StaticUser>,
    /// TURN REST API shared secrets (coturn's `static-auth-secret`); all are
    /// accepted, so a new one can be added before the old one is removed.
    /// Default none.
    pub rest_secrets: Vec<Secret>,
    /// SOFTWARE attribute in authenticated responses. Default none (no
    /// version advertised).
    pub software: Option<String>,
    /// Size policy for answers to unauthenticated UDP requests. Default
    /// [`UnauthenticatedReplies::Minimal`].
    pub unauthenticated_replies: UnauthenticatedReplies,
}

impl Default for TurnConfig {
    fn default() -> Self {
        Self {
            realm: "samtale".to_owned(),
            region: "local".to_owned(),
            external_ipv4: None,
            external_ipv6: None,
            relay_ports: 49152..=65535,
            core_threads: 0,
            default_allocation_lifetime: Duration::from_secs(600),
            max_allocation_lifetime: Duration::from_secs(3600),
            permission_lifetime: Duration::from_secs(300),
            channel_lifetime: Duration::from_secs(600),
            channel_cooldown: Duration::from_secs(300),
            nonce_lifetime: Duration::from_secs(600),
            max_allocations_per_user: 10,
            max_allocations_total: 10_000,
            max_permissions_per_allocation: 32,
            max_channels_per_allocation: 32,
            tcp_relay: true,
            max_connections_per_allocation: 32,
            allocate_timeout: Duration::from_secs(60),
            max_client_connections: 20_000,
            max_bandwidth_per_allocation: 2_500_000,
            channel_range: ChannelRange::Compatible,
            allowed_peers: Vec::new(),
            allowed_peer_addrs: Vec::new(),
            alternate_servers: Vec::new(),
            static_users: Vec::new(),
            rest_secrets: Vec::new(),
            software: None,
            unauthenticated_replies: UnauthenticatedReplies::Minimal,
        }
    }
}

/// A setting that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The realm is empty or longer than 763 bytes.
    #[error("realm must be 1 to 763 bytes")]
    BadRealm,
    /// A lifetime is zero, or the default exceeds the maximum.
    #[error("{0}")]
    BadLifetime(&'static str),
    /// The relay port range is empty.
    #[error("relay port range is empty")]
    EmptyPortRange,
    /// `max_client_connections` is 0: no TCP/TLS client could connect
    /// (leave out the TCP and TLS listeners instead).
    #[error("max_client_connections must be at least 1")]
    NoClientConnections,
    /// A static user's password holds a character SASLprep prohibits.
    #[error("static user {username:?}: {source}")]
    BadPassword {
        /// The user.
        username: String,
        /// What SASLprep refused.
        source: crate::saslprep::SaslPrepError,
    },
    /// An alternate server clients could not reach: port 0, an unspecified
    /// address, or an IPv4 address written as IPv4-mapped IPv6 (write it
    /// as IPv4: it is offered to IPv4 clients).
    #[error("alternate server {0} is not an address clients can reach")]
    BadAlternate(std::net::SocketAddr),
}

impl TurnConfig {
    /// Checks the settings that could make the server misbehave.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.realm.is_empty() || self.realm.len() > crate::codec::MAX_TEXT_LEN {
            return Err(ConfigError::BadRealm);
        }
        let zero = Duration::ZERO;
        if self.default_allocation_lifetime == zero
            || self.permission_lifetime == zero
            || self.channel_lifetime == zero
            || self.nonce_lifetime < Duration::from_secs(1)
        {
            return Err(ConfigError::BadLifetime("lifetimes must be positive"));
        }
        let longest = [
            self.max_allocation_lifetime,
            self.permission_lifetime,
            self.channel_lifetime,
            self.channel_cooldown,
            self.nonce_lifetime,
            self.allocate_timeout,
        ];
        if longest.iter().any(|l| *l > MAX_LIFETIME) {
            return Err(ConfigError::BadLifetime("lifetimes are at most one day"));
        }
        if self.default_allocation_lifetime > self.max_allocation_lifetime {
            return Err(ConfigError::BadLifetime(
                "default allocation lifetime exceeds the maximum",
            ));
        }
        if self.relay_ports.is_empty() {
            return Err(ConfigError::EmptyPortRange);
        }
        if self.max_client_connections == 0 {
            return Err(ConfigError::NoClientConnections);
        }
        for alternate in &self.alternate_servers {
            let ip = alternate.ip();
            if alternate.port() == 0 || ip.is_unspecified() || ip.to_canonical() != ip {
                return Err(ConfigError::BadAlternate(*alternate));
            }
        }
        for user in &self.static_users {
            crate::saslprep::saslprep(user.password.expose()).map_err(|source| {
                ConfigError::BadPassword {
                    username: user.username.clone(),
                    source,
                }
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_as_documented() {
        let c = TurnConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.default_allocation_lifetime, Duration::from_secs(600));
        assert_eq!(c.max_allocation_lifetime, Duration::from_secs(3600));
        assert_eq!(c.permission_lifetime, Duration::from_secs(300));
        assert_eq!(c.channel_lifetime, Duration::from_secs(600));
        assert_eq!(c.allocate_timeout, Duration::from_secs(60));
        assert_eq!(c.max_client_connections, 20_000);
        assert!(c.channel_range.contains(0x7FFF));
        assert!(!ChannelRange::Strict.contains(0x5000));
        assert!(!ChannelRange::Compatible.contains(0x3FFF));
    }

    #[test]
    fn refuses_unworkable_settings() {
        let bad = [
            TurnConfig {
                realm: String::new(),
                ..TurnConfig::default()
            },
            TurnConfig {
                default_allocation_lifetime: Duration::from_secs(7200),
                ..TurnConfig::default()
            },
            TurnConfig {
                permission_lifetime: Duration::ZERO,
                ..TurnConfig::default()
            },
            TurnConfig {
                max_allocation_lifetime: Duration::MAX,
                ..TurnConfig::default()
            },
            TurnConfig {
                allocate_timeout: Duration::MAX,
                ..TurnConfig::default()
            },
            TurnConfig {
                max_client_connections: 0,
                ..TurnConfig::default()
            },
            TurnConfig {
                static_users: vec![StaticUser {
                    username: "u".into(),
                    password: Secret::new("bell\u{0007}"),
                }],
                ..TurnConfig::default()
            },
        ];
        for config in bad {
            assert!(config.validate().is_err(), "{config:?}");
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let c = TurnConfig {
            rest_secrets: vec![Secret::new("rest-secret-value")],
            static_users: vec![StaticUser {
                username: "u".into(),
                password: Secret::new("static-password-value"),
            }],
            ..TurnConfig::default()
        };
        let text = format!("{c:?}");
        assert!(!text.contains("rest-secret-value"));
        assert!(!text.contains("static-password-value"));
    }
}
