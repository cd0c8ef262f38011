//! samtale-qoe-lab: call-quality measurement.
//!
//! * [`bot`]: the reusable WebRTC participant (joins rooms through the
//!   signaling API, sends Opus + VP8 or probes, measures what it receives);
//!   [`load`] benchmarks the SFU with it.
//! * [`netem`]: a seeded, sans-IO network emulator (random and
//!   Gilbert-Elliott loss, delay, jitter, rate limit, duplication).
//! * [`pipeline`]: reference speech → Opus (libopus 1.6.1) → RTP/RED →
//!   [`netem`] → adaptive jitter buffer → decoder with PLC/FEC → WAV.
//! * [`emodel`]: the ITU-T G.107 E-model.
//! * [`score`]: PESQ (P.862 / P.862.2) of degraded speech, and [`audio`] for
//!   the WAV handling, resampling, trimming and alignment it needs.
//!
//! Still to come (issue 5): ViSQOL, scenario files and HTML reports, live
//! mode through a UDP impairment proxy.

pub mod audio;
pub mod bot;
pub mod emodel;
pub mod load;
pub mod netem;
pub mod pipeline;
pub mod score;
