//! The `samtale-turn` TOML file: listeners plus every [`TurnConfig`]
//! setting. Every key is optional; see `turn/samtale-turn.example.toml`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::{Secret, StaticUser};
use crate::config::{ChannelRange, TurnConfig};
use crate::peer_filter::PeerFilter;

/// The file as written by operators.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// Client UDP listener. Default `0.0.0.0:3478` (RFC 8489 port).
    pub listen_udp: SocketAddr,
    /// Client TCP listener. Default the same address over TCP; `""` disables.
    pub listen_tcp: Option<SocketAddr>,
    /// Client TLS listener (needs `tls_cert`/`tls_key`). Default `0.0.0.0:5349`
    /// when a certificate is configured.
    pub listen_tls: Option<SocketAddr>,
    /// Certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// IP the relay sockets bind to. Default: the UDP listener's IP, or
    /// 127.0.0.1 when that is unspecified and no `external_ip` is set.
    pub relay_ip: Option<IpAddr>,
    /// A second relay IP of the other family (usually IPv6), for clients
    /// that ask for it with REQUESTED-ADDRESS-FAMILY (RFC 6156). None by
    /// default: such requests are answered 440.
    pub relay_ip_other_family: Option<IpAddr>,
    /// Public address announced as the relayed address (behind 1:1 NAT).
    pub external_ip: Option<IpAddr>,
    /// Relay port range, `"49152-65535"` by default.
    pub relay_ports: String,
    /// Relaying threads; 0 (default) = one per two CPUs (at least 1, at
    /// most 8, and at least 1024 relay ports each). Read at start only.
    pub core_threads: usize,
    /// Realm. Default `samtale`.
    pub realm: String,
    /// Region label, e.g. `eu-north-1`. Default `local`.
    pub region: String,
    /// REST-API shared secrets (coturn `use-auth-secret`); several for rotation.
    pub rest_secrets: Vec<String>,
    /// Static users, `"name:password"`.
    pub users: Vec<String>,
    /// Peers allowed despite the deny-list: addresses or CIDR ranges, or
    /// exact `ip:port` transport addresses (only those ports are relayed).
    pub allowed_peers: Vec<String>,
    /// `compatible` (0x4000–0x7FFF, default) or `strict` (0x4000–0x4FFF).
    pub channel_range: String,
    /// Allocations per user. Default 10.
    pub max_allocations_per_user: usize,
    /// Allocations in total. Default 10 000.
    pub max_allocations_total: usize,
    /// Permissions per allocation. Default 32.
    pub max_permissions_per_allocation: usize,
    /// Relayed bytes per second per allocation, both directions (0 = no
    /// cap). Default 2 500 000 (20 Mbit/s).
    pub max_bandwidth_per_allocation: u64,
    /// Nodes to send new UDP/TCP clients' allocations to (300 Try
    /// Alternate, one of the client's family) while this one drains, is
    /// full or is out of relay ports, e.g. `["192.0.2.5:3478"]`. Default
    /// none (508/486).
    pub alternate_servers: Vec<SocketAddr>,
    /// TCP relayed addresses for TCP/TLS clients (RFC 6062). Default true.
    pub tcp_relay: bool,
    /// TCP peer connections per TCP allocation. Default 32.
    pub max_connections_per_allocation: usize,
    /// Seconds a client TCP/TLS connection may stay open without an
    /// allocation (after it opens, and after its allocation ends). Default
    /// 60, as coturn's `max-allocate-timeout`; 0 never closes.
    pub allocate_timeout_seconds: u64,
    /// Client TCP/TLS connections open at once (handshakes and data
    /// connections included); beyond, new ones are closed. Default 20 000.
    pub max_client_connections: usize,
    /// Metrics and health endpoint (`/metrics`, `/healthz`). Default
    /// `127.0.0.1:9641`; `""` disables.
    #[serde(deserialize_with = "address_or_empty")]
    pub metrics_listen: Option<SocketAddr>,
    /// Longest drain on SIGTERM, seconds. Default 60.
    pub drain_seconds: u64,
}

impl Default for FileConfig {
    fn default() -> Self {
        let t = TurnConfig::default();
        FileConfig {
            listen_udp: SocketAddr::from(([0, 0, 0, 0], 3478)),
            listen_tcp: None,
            listen_tls: None,
            tls_cert: None,
            tls_key: None,
            relay_ip: None,
            relay_ip_other_family: None,
            external_ip: None,
            relay_ports: format!("{}-{}", t.relay_ports.start(), t.relay_ports.end()),
            core_threads: t.core_threads,
            realm: t.realm,
            region: t.region,
            rest_secrets: Vec::new(),
            users: Vec::new(),
            allowed_peers: Vec::new(),
            channel_range: "compatible".into(),
            max_allocations_per_user: t.max_allocations_per_user,
            max_allocations_total: t.max_allocations_total,
            max_permissions_per_allocation: t.max_permissions_per_allocation,
            max_bandwidth_per_allocation: t.max_bandwidth_per_allocation,
            alternate_servers: Vec::new(),
            tcp_relay: t.tcp_relay,
            max_connections_per_allocation: t.max_connections_per_allocation,
            allocate_timeout_seconds: t.allocate_timeout.as_secs(),
            max_client_connections: t.max_client_connections,
            metrics_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9641))),
            drain_seconds: 60,
        }
    }
}

/// An address, or `""` for none (the endpoint is off).
fn address_or_empty<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = <String as serde::Deserialize>::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    text.trim()
        .parse()
        .map(Some)
        .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
}

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileConfigError {
    /// Unreadable file.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// Invalid TOML or unknown keys.
    #[error("invalid config: {0}")]
    Parse(String),
    /// A value that does not parse or contradicts another.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl FileConfig {
    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Self, FileConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| FileConfigError::Read(path.to_owned(), e))?;
        Self::parse(&text)
    }

    /// Parses TOML text.
    pub fn parse(text: &str) -> Result<Self, FileConfigError> {
        toml::from_str(text).map_err(|e| FileConfigError::Parse(e.message().to_owned()))
    }

    /// The relay IP in force.
    pub fn relay_ip(&self) -> IpAddr {
        self.relay_ip.unwrap_or_else(|| {
            let ip = self.listen_udp.ip();
            if ip.is_unspecified() {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                ip
            }
        })
    }

    /// Every relay IP in force: [`Self::relay_ip`], then the other family's.
    pub fn relay_ips(&self) -> Vec<IpAddr> {
        let first = self.relay_ip();
        let mut ips = vec![first];
        ips.extend(
            self.relay_ip_other_family
                .filter(|ip| ip.is_ipv4() != first.is_ipv4()),
        );
        ips
    }

    /// The core's settings.
    pub fn turn_config(&self) -> Result<TurnConfig, FileConfigError> {
        let invalid = |m: String| FileConfigError::Invalid(m);
        let (lo, hi) = self
            .relay_ports
            .split_once('-')
            .and_then(|(a, b)| Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?)))
            .filter(|(a, b)| a <= b && *a > 0)
            .ok_or_else(|| {
                invalid(format!(
                    "relay_ports {:?}: want \"LOW-HIGH\"",
                    self.relay_ports
                ))
            })?;
        let users = self
            .users
            .iter()
            .map(|u| {
                u.split_once(':')
                    .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                    .map(|(n, p)| StaticUser {
                        username: n.to_owned(),
                        password: Secret::new(p),
                    })
                    .ok_or_else(|| invalid("users entries are \"name:password\"".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (exact, nets): (Vec<&String>, Vec<&String>) = self
            .allowed_peers
            .iter()
            .partition(|e| e.parse::<SocketAddr>().is_ok());
        let allowed = PeerFilter::parse_allow_list(&nets)
            .map_err(|e| invalid(format!("allowed_peers: {e}")))?;
        let allowed_peer_addrs = exact.iter().filter_map(|e| e.parse().ok()).collect();
        let channel_range = match self.channel_range.as_str() {
            "compatible" => ChannelRange::Compatible,
            "strict" => ChannelRange::Strict,
            other => {
                return Err(invalid(format!(
                    "channel_range {other:?}: compatible or strict"
                )));
            }
        };
        let (external_ipv4, external_ipv6) = match self.external_ip {
            Some(IpAddr::V4(v4)) => (Some(v4), None),
            Some(IpAddr::V6(v6)) => (None, Some(v6)),
            None => (None, None),
        };
        let config = TurnConfig {
            realm: self.realm.clone(),
            region: self.region.clone(),
            external_ipv4,
            external_ipv6,
            relay_ports: lo..=hi,
            core_threads: self.core_threads,
            max_allocations_per_user: self.max_allocations_per_user,
            max_allocations_total: self.max_allocations_total,
            max_permissions_per_allocation: self.max_permissions_per_allocation,
            max_bandwidth_per_allocation: self.max_bandwidth_per_allocation,
            tcp_relay: self.tcp_relay,
            max_connections_per_allocation: self.max_connections_per_allocation,
            allocate_timeout: Duration::from_secs(self.allocate_timeout_seconds),
            max_client_connections: self.max_client_connections,
            alternate_servers: self.alternate_servers.clone(),
            channel_range,
            allowed_peers: allowed,
            allowed_peer_addrs,
            static_users: users,
            rest_secrets: self.rest_secrets.iter().map(Secret::new).collect(),
            ..TurnConfig::default()
        };
        config.validate().map_err(|e| invalid(e.to_string()))?;
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(invalid("tls_cert and tls_key go together".into()));
        }
        Ok(config)
    }

    /// How long SIGTERM waits for allocations to end.
    pub fn drain(&self) -> Duration {
        Duration::from_secs(self.drain_seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_works_and_garbage_does_not() {
        let c = FileConfig::parse("").unwrap();
        let t = c.turn_config().unwrap();
        assert_eq!(t.relay_ports, 49152..=65535);
        assert!(FileConfig::parse("lisen_udp = 1").is_err());
        let bad = FileConfig::parse("relay_ports = \"9-2\"").unwrap();
        assert!(bad.turn_config().is_err());
        let bad = FileConfig::parse("users = [\"nopassword\"]").unwrap();
        assert!(bad.turn_config().is_err());
        let bad = FileConfig::parse("allowed_peers = [\"10.0.0.0/99\"]").unwrap();
        assert!(bad.turn_config().is_err());
    }

    #[test]
    fn values_reach_the_core() {
        let c = FileConfig::parse(
            "realm = \"eu\"\nregion = \"eu-north-1\"\nrest_secrets = [\"s1\", \"s2\"]\nusers = [\"u:p\"]\nallowed_peers = [\"127.0.0.1\"]\nchannel_range = \"strict\"\nrelay_ports = \"50000-50010\"\nexternal_ip = \"203.0.113.9\"\nallocate_timeout_seconds = 15",
        )
        .unwrap();
        let t = c.turn_config().unwrap();
        assert_eq!((t.realm.as_str(), t.region.as_str()), ("eu", "eu-north-1"));
        assert_eq!(t.rest_secrets.len(), 2);
        assert_eq!(t.channel_range, ChannelRange::Strict);
        assert_eq!(t.relay_ports, 50000..=50010);
        assert_eq!(t.external_ipv4, Some("203.0.113.9".parse().unwrap()));
        assert_eq!(t.allocate_timeout, Duration::from_secs(15));
        assert_eq!(
            FileConfig::default().metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9641)))
        );
        let off = FileConfig::parse("metrics_listen = \"\"").unwrap();
        assert_eq!(off.metrics_listen, None);
        let on = FileConfig::parse("metrics_listen = \"127.0.0.1:9000\"").unwrap();
        assert_eq!(
            on.metrics_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 9000)))
        );
        assert!(FileConfig::parse("metrics_listen = \"nowhere\"").is_err());
    }

    /// Every key the example file documents (commented out, with its
    /// default) parses and gives a usable config.
    #[test]
    fn the_example_file_uncommented_parses() {
        let example = include_str!("../samtale-turn.example.toml");
        let keys: Vec<&str> = example
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| {
                let key = line.split(" = ").next().unwrap_or_default();
                line.contains(" = ") && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            })
            .collect();
        assert!(
            keys.iter()
                .any(|k| k.starts_with("allocate_timeout_seconds"))
        );
        let text = keys.join("\n");
        let config = FileConfig::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        config.turn_config().unwrap();
    }
}
