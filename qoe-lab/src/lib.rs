//! samtale-qoe-lab: call-quality measurement.
//!
//! Today it holds the reusable WebRTC [`bot`]: a participant without a
//! browser that joins rooms through the signaling API, sends decodable Opus +
//! VP8 (or timestamped probes) and measures what it receives. It is the load
//! and live-QoE client. Coming with the QoE issue: the seeded sans-IO network
//! emulator, the simulated Opus pipeline, E-model and PESQ/ViSQOL scoring, and
//! scenario reports.

pub mod bot;
pub mod load;
