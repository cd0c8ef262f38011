//! SFU settings with documented defaults.

use std::net::SocketAddr;
use std::time::Duration;

/// Settings of the SFU core. Every field has a default; see [`SfuConfig::default`].
#[derive(Debug, Clone)]
pub struct SfuConfig {
    /// Addresses put in ICE host candidates (the public/announced address of
    /// the media socket). Empty means "the bound socket address".
    pub announce_addrs: Vec<SocketAddr>,
    /// Addresses put in passive ICE-TCP host candidates (RFC 6544), for
    /// networks that block UDP. Empty means no TCP candidate.
    pub tcp_announce_addrs: Vec<SocketAddr>,
    /// Participants per room. Default 32 (the product's small-room limit).
    pub max_participants_per_room: usize,
    /// Minimum spacing of keyframe requests (PLI/FIR) sent to one publisher
    /// layer. Default 500 ms: libwebrtc itself rate-limits keyframes to
    /// roughly that, and more requests only cost bandwidth.
    pub keyframe_request_interval: Duration,
    /// How long a participant whose ICE went away may come back (ICE
    /// restart) before it is removed. Default 10 s.
    pub disconnect_grace: Duration,
    /// How long a participant may take from joining to a working media
    /// path. Default 30 s.
    pub connect_timeout: Duration,
    /// Starting bandwidth estimate toward each subscriber, bits/s. Default
    /// 1 Mbit/s (str0m's BWE then probes up toward `max_bitrate`).
    pub initial_bitrate: u64,
    /// Upper bound the BWE probes toward per subscriber, bits/s. Default 8 Mbit/s.
    pub max_bitrate: u64,
    /// Negotiate RED (RFC 2198) for Opus. Default on.
    pub audio_red: bool,
    /// How often the active speaker is re-evaluated. Default 300 ms.
    pub speaker_interval: Duration,
    /// How often simulcast layers are re-selected even without a new
    /// estimate (layer bitrates drift). Default 1 s.
    pub layer_reselect_interval: Duration,
}

impl Default for SfuConfig {
    fn default() -> Self {
        SfuConfig {
            announce_addrs: Vec::new(),
            tcp_announce_addrs: Vec::new(),
            max_participants_per_room: 32,
            keyframe_request_interval: Duration::from_millis(500),
            disconnect_grace: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(30),
            initial_bitrate: 1_000_000,
            max_bitrate: 8_000_000,
            audio_red: true,
            speaker_interval: Duration::from_millis(300),
            layer_reselect_interval: Duration::from_secs(1),
        }
    }
}
