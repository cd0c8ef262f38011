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
//! * [`score`]: PESQ (P.862 / P.862.2) and ViSQOL (v3.1 speech mode) of
//!   degraded speech, and [`audio`] for the WAV handling, resampling,
//!   trimming and alignment it needs.
//! * [`scenario`] (TOML matrices) and [`report`] (JSON, CSV, PNG plots and
//!   HTML of a scenario run).
//! * [`proxy`]: a UDP impairment proxy (tokio) built on
//!   [`netem::NetemQueue`], and [`live`]: two bots through samtale and the
//!   proxy, received speech decoded ([`bot::PcmSink`]) and scored.

pub mod audio;
pub mod bot;
pub mod emodel;
pub mod live;
pub mod load;
pub mod netem;
pub mod pipeline;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod score;
