//! Configuration: one TOML file, every key optional, overridable by
//! environment (`SAMTALE_*`) and command-line flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Who may create rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RoomCreation {
    /// Open when the server listens on loopback, admin token otherwise.
    #[default]
    Auto,
    /// Anyone who can reach the server.
    Open,
    /// Only holders of `admin_token`.
    AdminToken,
}

/// An ICE server handed to clients.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:` / `turn:` / `turns:` URLs.
    pub urls: Vec<String>,
    /// TURN username (static); ephemeral credentials come with the TURN server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// TURN password (static).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

/// A TURN node run elsewhere (the `samtale-turn` binary) that shares
/// `turn_secret`; clients get credentials for the nodes of their region.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TurnNode {
    /// `turn:`/`turns:` URLs of the node.
    pub urls: Vec<String>,
    /// Region label, e.g. `eu-north-1`.
    pub region: String,
}

/// Everything the `samtale` process needs. See `samtale.example.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// HTTP/WebSocket listen address. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// URL people open, used in join links. Default: derived from `listen`.
    pub public_url: Option<String>,
    /// UDP address of the SFU's media socket. Default `127.0.0.1:0`
    /// (any free port on loopback; set a fixed port for firewalls).
    pub media_listen: SocketAddr,
    /// Address announced in ICE candidates (public IP behind NAT, or a QoE
    /// proxy). Default: the bound media address.
    pub announce_addr: Option<SocketAddr>,
    /// Also accept media over TCP (ICE-TCP, RFC 6544) on the media port, for
    /// networks that block UDP. Default on.
    pub media_tcp: bool,
    /// Where state lives: secrets, the messaging SQLite file
    /// (`messaging.sqlite3`) and local media. Default `./data`.
    pub data_dir: PathBuf,
    /// Messaging database URL: `postgres://user:pass@host/db` to scale out,
    /// or `sqlite://path?mode=rwc`. Default: `messaging.sqlite3` in
    /// `data_dir`.
    pub messaging_database: Option<String>,
    /// NATS server linking the nodes that share one messaging database, e.g.
    /// `nats://nats.internal:4222`: a message committed through one node is
    /// pushed at once to the recipient's WebSocket on another. Default
    /// none (one node; others would see it on their next store read).
    pub messaging_nats_url: Option<String>,
    /// Who may create rooms. Default `auto`.
    pub room_creation: RoomCreation,
    /// Bearer token for room creation when it is not open.
    pub admin_token: Option<String>,
    /// Lifetime of room tokens. Default 24 h.
    #[serde(with = "seconds")]
    pub room_token_ttl: Duration,
    /// Participants per room. Default 32.
    pub max_participants: usize,
    /// ICE servers handed to clients. Default none (the SFU is reachable directly).
    pub ice_servers: Vec<IceServer>,
    /// Run a TURN server inside samtale (UDP and TCP on `turn_listen`).
    /// It relays only to this process's own SFU. Default on.
    pub turn_embedded: bool,
    /// Address of the embedded TURN server. Default `127.0.0.1:0` (any free
    /// port; the URL handed to clients names the bound one).
    pub turn_listen: SocketAddr,
    /// Address announced in the embedded server's URLs and relayed
    /// addresses (public IP). Default: the bound address.
    pub turn_announce_ip: Option<IpAddr>,
    /// TURN REST-API shared secret (coturn `use-auth-secret`), also used by
    /// `turn_servers`. Default: generated and kept in the data directory.
    pub turn_secret: Option<String>,
    /// Lifetime of the TURN credentials handed to clients. Default 6 h.
    #[serde(with = "seconds")]
    pub turn_credential_ttl: Duration,
    /// TURN nodes run elsewhere, picked by the client's region hint.
    pub turn_servers: Vec<TurnNode>,
    /// TLS certificate chain (PEM). With `tls_key`, serve HTTPS/WSS.
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Largest WebSocket message accepted, bytes. Default 64 KiB (an SDP offer
    /// with simulcast is ~6 KiB).
    pub max_message_bytes: usize,
    /// How long a client has to send `join` after connecting. Default 10 s.
    #[serde(with = "seconds")]
    pub join_timeout: Duration,
    /// How long shutdown waits for clients to hear about it. Default 2 s.
    #[serde(with = "seconds")]
    pub shutdown_grace: Duration,
    /// `[media]`: storage backend, limits, TTL, sweeper (docs/MEDIA.md).
    pub media: crate::media::MediaSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            media_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            announce_addr: None,
            media_tcp: true,
            data_dir: PathBuf::from("data"),
            messaging_database: None,
            messaging_nats_url: None,
            room_creation: RoomCreation::Auto,
            admin_token: None,
            room_token_ttl: Duration::from_secs(24 * 3600),
            max_participants: 32,
            ice_servers: Vec::new(),
            turn_embedded: true,
            turn_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            turn_announce_ip: None,
            turn_secret: None,
            turn_credential_ttl: Duration::from_secs(6 * 3600),
            turn_servers: Vec::new(),
            tls_cert: None,
            tls_key: None,
            max_message_bytes: 64 * 1024,
            join_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(2),
            media: crate::media::MediaSettings::default(),
        }
    }
}

/// A config file that could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading the file failed.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys.
    #[error("invalid config {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Settings contradict each other.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Invalid(message) => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config =
            toml::from_str(text).map_err(|e| ConfigError::Invalid(e.message().to_owned()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks settings that only make sense together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "tls_cert and tls_key go together".into(),
            ));
        }
        if self.room_creation == RoomCreation::AdminToken && self.admin_token.is_none() {
            return Err(ConfigError::Invalid(
                "room_creation = \"admin-token\" needs admin_token".into(),
            ));
        }
        self.media.validate().map_err(ConfigError::Invalid)?;
        if !(1..=32).contains(&self.max_participants) {
            return Err(ConfigError::Invalid(
                "max_participants must be 1 to 32".into(),
            ));
        }
        Ok(())
    }

    /// Whether anyone may create rooms.
    pub fn room_creation_open(&self) -> bool {
        match self.room_creation {
            RoomCreation::Open => true,
            RoomCreation::AdminToken => false,
            RoomCreation::Auto => self.admin_token.is_none() && is_loopback(self.listen.ip()),
        }
    }

    /// Whether TLS is configured.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some()
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.is_loopback()
}

pub(crate) mod seconds {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = f64::deserialize(d)?;
        if !(0.0..=1e9).contains(&s) {
            return Err(serde::de::Error::custom("seconds out of range"));
        }
        Ok(Duration::from_secs_f64(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.listen.port(), 8080);
        assert!(c.room_creation_open());
        assert_eq!(c.max_participants, 32);
    }

    #[test]
    fn unknown_keys_and_contradictions_are_errors() {
        assert!(Config::from_toml("lisen = \"1.2.3.4:1\"").is_err());
        assert!(Config::from_toml("tls_cert = \"a.pem\"").is_err());
        assert!(Config::from_toml("max_participants = 33").is_err());
        let c = Config::from_toml("listen = \"0.0.0.0:8080\"").unwrap();
        assert!(!c.room_creation_open(), "non-loopback is closed by default");
        let c = Config::from_toml("listen = \"0.0.0.0:8080\"\nroom_creation = \"open\"").unwrap();
        assert!(c.room_creation_open());
    }
}
