//! [`PcmSink`]: decodes the Opus audio a bot receives (libopus via the
//! `opus` crate) into 48 kHz mono PCM per publisher, and measures the
//! receiver side: loss from RTP sequence gaps, RFC 3550 interarrival
//! jitter, concealment.
//!
//! Frames are placed on the RTP timeline, not by arrival time: a missing
//! frame is concealed by libopus PLC (or, with `fec`, recovered from the
//! next packet's in-band FEC data) when the next packet arrives. That is a
//! receiver with an unbounded jitter buffer, so what is scored is the
//! network's loss as the decoder conceals it, not late-packet discards.
//!
//! The delay such a receiver would add is measured alongside: every packet
//! also goes through the pipeline's adaptive jitter buffer
//! ([`JitterBuffer`], 95th-percentile target, its playout clock ticking
//! every 20 ms from the first arrival), and each frame it plays from a
//! packet contributes playout time − that packet's arrival time to
//! [`ReceivedAudio::jitter_buffer_delay_ms`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use opus::{Channels, Decoder};

use crate::pipeline::jitter::{JitterBuffer, JitterConfig, Playout};
use crate::pipeline::rtp::RtpPacket;

/// Samples per 20 ms frame at 48 kHz.
const FRAME: usize = 960;
/// The longest gap concealed frame by frame (1 s); longer gaps become
/// silence, as a receiver would stop concealing.
const MAX_CONCEALED_GAP: u64 = 50;

/// What one publisher's audio gave this receiver.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ReceivedAudio {
    /// Decoded PCM, 48 kHz mono, from the first received frame on.
    #[serde(skip)]
    pub pcm: Vec<i16>,
    /// Packets received and decoded.
    pub received: u64,
    /// Packets expected from the sequence numbers (last − first + 1).
    pub expected: u64,
    /// Duplicates or packets older than one already played.
    pub late: u64,
    /// Missing frames recovered from in-band FEC.
    pub fec_recovered: u64,
    /// Missing frames concealed by PLC (or silence past 1 s).
    pub concealed: u64,
    /// Packets libopus refused to decode (concealed instead).
    pub decode_errors: u64,
    /// RFC 3550 interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Jitter-buffer delay (playout − arrival) of the frames an adaptive
    /// jitter buffer played from packets.
    ///
    /// This covers the whole call, start included: a sender that queued
    /// packets while the connection came up delivers them in a burst, and
    /// the buffer's target follows that burst for its 2 s window.
    pub jitter_buffer_delay_ms: DelayStats,
    /// The same after the first [`STEADY_AFTER_FRAMES`] frames played
    /// (one target window): the steady-state figure.
    pub jitter_buffer_delay_steady_ms: DelayStats,
    /// Packets that adaptive jitter buffer received after their playout
    /// time (discarded there; this sink still decodes them).
    pub jitter_buffer_late: u64,
    #[serde(skip)]
    delays_ms: Vec<f64>,
    #[serde(skip)]
    last_seq: Option<u64>,
    #[serde(skip)]
    last_transit: Option<f64>,
}

/// Frames played before [`ReceivedAudio::jitter_buffer_delay_steady_ms`]
/// starts counting: one window of the buffer's target (100 frames, 2 s).
pub const STEADY_AFTER_FRAMES: usize = 100;

/// Mean and 95th percentile of a delay, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DelayStats {
    /// Mean, ms.
    pub mean: f64,
    /// 95th percentile (nearest rank), ms.
    pub p95: f64,
    /// Frames measured.
    pub frames: u64,
}

impl DelayStats {
    fn of(values: &[f64]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((sorted.len() as f64 * 0.95).ceil() as usize).clamp(1, sorted.len());
        Self {
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
            p95: sorted[rank - 1],
            frames: sorted.len() as u64,
        }
    }
}

impl ReceivedAudio {
    /// Lost fraction: 1 − received / expected.
    pub fn loss(&self) -> f64 {
        if self.expected == 0 {
            0.0
        } else {
            1.0 - self.received as f64 / self.expected as f64
        }
    }

    /// Concealed (not FEC-recovered) frames per frame played.
    pub fn concealment_ratio(&self) -> f64 {
        let played = self.received + self.concealed + self.fec_recovered;
        self.concealed as f64 / played.max(1) as f64
    }
}

struct Track {
    audio: ReceivedAudio,
    decoder: Option<Decoder>,
    jitter: JitterMeter,
}

/// The pipeline's jitter buffer, fed the received packets, its playout
/// clock run up to each arrival (nothing changes between arrivals, so
/// ticking late is exact). Only its timing is used.
struct JitterMeter {
    buffer: JitterBuffer,
    frame: std::time::Duration,
    /// Next playout tick, from the first arrival on.
    next_tick: Option<std::time::Duration>,
    /// Arrival time of each held packet, by 16-bit sequence number.
    arrivals: HashMap<u16, std::time::Duration>,
}

impl JitterMeter {
    fn new() -> Self {
        let cfg = JitterConfig::default();
        Self {
            buffer: JitterBuffer::new(cfg),
            frame: cfg.frame,
            next_tick: None,
            arrivals: HashMap::new(),
        }
    }

    /// Plays every tick due before `now`, recording delays into `a`.
    fn run_until(&mut self, now: std::time::Duration, a: &mut ReceivedAudio) {
        while let Some(tick) = self.next_tick.filter(|t| *t <= now) {
            if let Some(Playout::Packet { .. }) = self.buffer.pop(tick)
                && let Some(played) = self.buffer.next_frame().map(|n| (n - 1) as u16)
                && let Some(arrived) = self.arrivals.remove(&played)
            {
                a.delays_ms
                    .push(tick.saturating_sub(arrived).as_secs_f64() * 1000.0);
            }
            self.next_tick = Some(tick + self.frame);
        }
        // Bound memory: drop arrivals far behind the playout point.
        if self.arrivals.len() > 1024
            && let Some(next) = self.buffer.next_frame()
        {
            let next = next as u16;
            self.arrivals
                .retain(|seq, _| next.wrapping_sub(*seq) as i16 <= 0);
        }
    }

    fn packet(&mut self, now: std::time::Duration, seq: u16, a: &mut ReceivedAudio) {
        self.run_until(now, a);
        let late_before = self.buffer.stats().late;
        self.arrivals.insert(seq, now);
        self.buffer.insert(
            now,
            RtpPacket {
                seq,
                timestamp: 0,
                payload: Vec::new(),
                redundant: Vec::new(),
            },
        );
        if self.buffer.stats().late > late_before {
            a.jitter_buffer_late += 1;
            self.arrivals.remove(&seq);
        }
        if self.next_tick.is_none() {
            self.next_tick = Some(now);
        }
    }
}

/// A shared, cloneable sink a bot decodes received audio into (see
/// [`crate::bot::Bot::join_with`]).
#[derive(Clone)]
pub struct PcmSink {
    tracks: Arc<Mutex<HashMap<String, Track>>>,
    fec: bool,
    epoch: Instant,
}

impl std::fmt::Debug for PcmSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcmSink").field("fec", &self.fec).finish()
    }
}

impl PcmSink {
    /// A sink; with `fec`, a missing frame is decoded from the next
    /// packet's in-band FEC data (libopus conceals if there is none).
    pub fn new(fec: bool) -> Self {
        Self {
            tracks: Arc::default(),
            fec,
            epoch: Instant::now(),
        }
    }

    /// What has been received so far, per publisher id.
    pub fn snapshot(&self) -> HashMap<String, ReceivedAudio> {
        self.tracks
            .lock()
            .map(|t| {
                t.iter()
                    .map(|(k, v)| {
                        let mut a = v.audio.clone();
                        a.jitter_buffer_delay_ms = DelayStats::of(&a.delays_ms);
                        a.jitter_buffer_delay_steady_ms = DelayStats::of(
                            a.delays_ms.get(STEADY_AFTER_FRAMES..).unwrap_or_default(),
                        );
                        (k.clone(), a)
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Feeds one received Opus packet: its publisher, extended RTP
    /// sequence number, RTP timestamp (48 kHz) and arrival time.
    pub fn push(&self, publisher: &str, seq: u64, rtp_time: u64, arrival: Instant, payload: &[u8]) {
        let Ok(mut tracks) = self.tracks.lock() else {
            return;
        };
        let track = tracks.entry(publisher.to_owned()).or_insert_with(|| Track {
            audio: ReceivedAudio::default(),
            decoder: Decoder::new(48_000, Channels::Mono).ok(),
            jitter: JitterMeter::new(),
        });
        let a = &mut track.audio;
        let now = arrival.saturating_duration_since(self.epoch);
        track.jitter.packet(now, seq as u16, a);
        if a.last_seq.is_some_and(|last| seq <= last) {
            a.late += 1;
            return;
        }
        // RFC 3550 §6.4.1: J += (|D| − J) / 16, in timestamp units.
        let arrival_ts = arrival.saturating_duration_since(self.epoch).as_secs_f64() * 48_000.0;
        let transit = arrival_ts - rtp_time as f64;
        if let Some(prev) = a.last_transit {
            let d = (transit - prev).abs();
            a.jitter_ms += (d / 48.0 - a.jitter_ms) / 16.0;
        }
        a.last_transit = Some(transit);
        let gap = a.last_seq.map_or(0, |last| seq - last - 1);
        a.expected += gap + 1;
        a.received += 1;
        a.last_seq = Some(seq);
        let mut pcm = [0i16; FRAME];
        for i in 0..gap {
            let n = match &mut track.decoder {
                Some(d) if i >= gap.saturating_sub(MAX_CONCEALED_GAP) => {
                    if self.fec && i + 1 == gap {
                        a.fec_recovered += 1;
                        d.decode(payload, &mut pcm, true).unwrap_or(0)
                    } else {
                        a.concealed += 1;
                        d.decode(&[], &mut pcm, false).unwrap_or(0)
                    }
                }
                _ => {
                    a.concealed += 1;
                    0
                }
            };
            a.pcm.extend_from_slice(&pcm[..n.min(FRAME)]);
            a.pcm.resize(a.pcm.len() + FRAME - n.min(FRAME), 0);
        }
        let n = match &mut track.decoder {
            Some(d) => match d.decode(payload, &mut pcm, false) {
                Ok(n) => n,
                Err(_) => {
                    a.decode_errors += 1;
                    d.decode(&[], &mut pcm, false).unwrap_or(0)
                }
            },
            None => 0,
        };
        a.pcm.extend_from_slice(&pcm[..n.min(FRAME)]);
        a.pcm.resize(a.pcm.len() + FRAME - n.min(FRAME), 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opus::{Application, Encoder};

    #[test]
    fn gaps_are_concealed_or_recovered_and_counted() {
        let mut enc = Encoder::new(48_000, Channels::Mono, Application::Voip).unwrap();
        enc.set_inband_fec(true).unwrap();
        enc.set_packet_loss_perc(20).unwrap();
        let tone: Vec<i16> = (0..FRAME * 20)
            .map(|i| ((i as f64 * 0.05).sin() * 8000.0) as i16)
            .collect();
        let packets: Vec<Vec<u8>> = tone
            .chunks(FRAME)
            .map(|c| enc.encode_vec(c, 400).unwrap())
            .collect();
        for fec in [false, true] {
            let sink = PcmSink::new(fec);
            let t0 = Instant::now();
            for (i, p) in packets.iter().enumerate() {
                if i == 5 || i == 9 || i == 10 {
                    continue; // lost
                }
                let seq = 1000 + i as u64;
                sink.push("p1", seq, i as u64 * 960, t0, p);
                if i == 12 {
                    sink.push("p1", seq, i as u64 * 960, t0, p); // duplicate
                }
            }
            let a = &sink.snapshot()["p1"];
            assert_eq!((a.received, a.expected, a.late), (17, 20, 1));
            assert!((a.loss() - 0.15).abs() < 1e-9);
            assert_eq!(a.pcm.len(), 20 * FRAME, "the timeline has no holes");
            if fec {
                // The frame right before a received packet comes from FEC.
                assert_eq!((a.fec_recovered, a.concealed), (2, 1));
            } else {
                assert_eq!((a.fec_recovered, a.concealed), (0, 3));
            }
            assert_eq!(a.decode_errors, 0);
        }
    }

    #[test]
    fn jitter_buffer_delay_follows_the_jitter() {
        let t0 = Instant::now();
        let payload = {
            let mut enc = Encoder::new(48_000, Channels::Mono, Application::Voip).unwrap();
            enc.encode_vec(&[0i16; FRAME], 400).unwrap()
        };
        let run = |jitter_ms: u64| {
            let sink = PcmSink::new(false);
            for i in 0..300u64 {
                // Every fourth packet is `jitter_ms` late (no reordering).
                let late = if i % 4 == 1 { jitter_ms } else { 0 };
                let at = t0 + std::time::Duration::from_millis(20 * i + late);
                sink.push("p", 5000 + i, i * 960, at, &payload);
            }
            sink.snapshot()["p"].clone()
        };
        let steady = run(0);
        let jittery = run(60);
        let (s, j) = (
            steady.jitter_buffer_delay_ms,
            jittery.jitter_buffer_delay_ms,
        );
        assert!(s.frames > 250 && j.frames > 200, "{s:?} {j:?}");
        // Steady: the 20 ms minimum target; 60 ms spikes on a quarter of
        // the packets: the 95th-percentile target follows them.
        assert!((15.0..=45.0).contains(&s.mean), "{s:?}");
        assert!(j.p95 >= 60.0 && j.p95 < 200.0 && j.mean > s.mean, "{j:?}");
        assert_eq!(steady.jitter_buffer_late, 0);
        let json = serde_json::to_value(&jittery).unwrap();
        assert!(json["jitter_buffer_delay_ms"]["p95"].as_f64().unwrap() > 0.0);
    }
}
