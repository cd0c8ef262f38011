//! samtale-turn: the EU TURN/STUN server (RFC 8656 / RFC 8489).
//!
//! It will own a sans-IO allocation core (allocations, permissions, channels,
//! lifetimes, quotas, peer-address filtering), the STUN codec, the long-term
//! and REST-API credential mechanisms, and UDP/TCP/TLS listeners around the
//! core. Signaling uses only its credential minting. Nothing is built yet.
