//! samtale-qoe-lab: call-quality measurement.
//!
//! It will own the seeded sans-IO network emulator, the simulated Opus
//! pipeline, E-model and full-reference (PESQ/ViSQOL) scoring, scenario
//! reports, and the reusable WebRTC bot that joins rooms through the
//! signaling API for live runs and load tests.
