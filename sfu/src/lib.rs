//! samtale-sfu: a selective forwarding unit on str0m.
//!
//! [`Sfu`] is a sans-IO core: rooms of up to 32 participants, each with one
//! str0m `Rtc` in RTP mode behind one shared UDP socket (ICE-lite). It
//! forwards every publisher's RTP to every other participant, picks the
//! simulcast layer per subscriber from its bandwidth estimate and the size it
//! shows the video at, throttles keyframe requests toward publishers, lets
//! str0m answer NACKs from its RTX cache, and ranks the active speaker from
//! the audio-level extension. Payloads are never decoded; the only look
//! inside them is the [`PayloadInspector`] (keyframe start, VP8 descriptor),
//! replaceable for end-to-end-encrypted media.
//!
//! [`driver`] runs the core on tokio with a real socket.

mod config;
mod core;
pub mod driver;
mod error;
mod ids;
pub mod inspect;
pub mod keyframe;
pub mod layers;
mod metrics;
mod participant;
pub mod rewrite;
pub mod speaker;
pub mod tcp;

pub use config::SfuConfig;
pub use core::{LeaveReason, Output, Sfu, SfuEvent};
pub use error::SfuError;
pub use ids::{ParticipantId, RoomId, TrackKey};
pub use inspect::{CodecInspector, PacketInfo, PayloadInspector};
pub use metrics::SfuMetrics;
pub use str0m;
