//! samtale-turn: the EU TURN/STUN server (RFC 8656 / RFC 8489, with TCP
//! allocations per RFC 6062).
//!
//! * [`codec`]: our STUN/TURN message codec and ChannelData framing,
//!   checked against the RFC 5769 vectors.
//! * [`auth`]: the long-term credential mechanism, stateless nonces and the
//!   TURN REST API credentials. [`mint_rest_credentials`] is what signaling
//!   calls to fill an ICE-servers list.
//! * [`saslprep`]: the subset of SASLprep passwords need.
//! * [`peer_filter`]: which peer addresses may be relayed to (deny-list of
//!   special-purpose ranges in every IPv6 disguise, operator allow-list).
//! * [`server`]: the sans-IO allocation core, [`server::TurnServer`], fed
//!   with datagrams and an explicit `Instant`.
//! * [`driver`]: the sockets around it: UDP/TCP/TLS listeners, relay
//!   sockets, core threads, drain and reload.
//! * [`config`] and [`file_config`]: settings with documented defaults, and
//!   the TOML file of the `samtale-turn` binary.
//! * [`ops`]: `/metrics` and `/healthz`.

pub mod auth;
pub mod codec;
pub mod config;
pub mod driver;
pub mod file_config;
pub mod ops;
pub mod peer_filter;
pub mod saslprep;
pub mod server;

pub use auth::{RestCredentials, mint_rest_credentials};
