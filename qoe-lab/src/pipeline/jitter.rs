//! An adaptive jitter buffer (sans-IO, explicit time).
//!
//! Packets go in with their arrival time; a playout clock pulls one frame
//! per frame period. The target delay is the `percentile` of the relative
//! transit time (arrival − media time − the window's minimum) over the last
//! `window` packets, clamped to [`min_delay`, `max_delay`]. When the current
//! playout delay is below target the buffer stretches (one concealed frame
//! without consuming a packet); when it is more than two frames above
//! target and the next two frames are buffered, it drops one frame. Late
//! packets (behind the playout point) are counted and discarded. RED copies
//! fill frames whose primary is missing; the following packet is offered for
//! Opus in-band FEC.
//!
//! [`min_delay`]: JitterConfig::min_delay
//! [`max_delay`]: JitterConfig::max_delay

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::rtp::RtpPacket;

/// Most frames held; older ones are dropped first (bounds memory on
/// garbage input).
const CAPACITY: usize = 512;

/// Tuning of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JitterConfig {
    /// Frame duration (20 ms for the pipeline's Opus frames).
    pub frame: Duration,
    /// Smallest target delay.
    pub min_delay: Duration,
    /// Largest target delay.
    pub max_delay: Duration,
    /// Delay before the first frame plays.
    pub initial_delay: Duration,
    /// Share of packets the target should have on time (0..1).
    pub percentile: f64,
    /// Packets in the transit-time window (100 = 2 s at 20 ms).
    pub window: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            frame: Duration::from_millis(20),
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(500),
            initial_delay: Duration::from_millis(40),
            percentile: 0.95,
            window: 100,
        }
    }
}

/// What to play for one frame period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Playout {
    /// Decode this payload: the frame's own packet, or a RED copy of it.
    Packet {
        /// Opus packet.
        payload: Vec<u8>,
        /// Whether it came from a RED block.
        redundant: bool,
    },
    /// The frame is missing; `following` is the next frame's packet if it
    /// has arrived (for in-band FEC).
    Missing {
        /// Next frame's Opus packet.
        following: Option<Vec<u8>>,
    },
    /// Buffer growth: conceal one frame without consuming a packet.
    Stretch,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct JitterStats {
    /// Packets that arrived after their frame was played.
    pub late: u64,
    /// Packets already held.
    pub duplicates: u64,
    /// Frames played from RED copies.
    pub from_red: u64,
    /// Frames missing at playout.
    pub missing: u64,
    /// Concealed frames inserted to grow the delay.
    pub stretched: u64,
    /// Frames dropped to shrink the delay.
    pub skipped: u64,
    /// Sum of playout delays (ms) over `pops`, for the mean.
    pub delay_ms_sum: f64,
    /// Frame periods served after playout started.
    pub pops: u64,
}

impl JitterStats {
    /// Mean playout delay above the fastest packet, in ms.
    pub fn mean_delay_ms(&self) -> f64 {
        if self.pops == 0 {
            0.0
        } else {
            self.delay_ms_sum / self.pops as f64
        }
    }
}

#[derive(Debug)]
struct Slot {
    payload: Vec<u8>,
    redundant: bool,
}

/// The buffer. See the module docs.
#[derive(Debug)]
pub struct JitterBuffer {
    cfg: JitterConfig,
    frames: BTreeMap<i64, Slot>,
    highest: Option<i64>,
    next: Option<i64>,
    start_at: Option<Duration>,
    transits: VecDeque<f64>,
    target: Duration,
    stats: JitterStats,
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(cfg: JitterConfig) -> Self {
        Self {
            target: cfg.initial_delay,
            cfg,
            frames: BTreeMap::new(),
            highest: None,
            next: None,
            start_at: None,
            transits: VecDeque::new(),
            stats: JitterStats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// The current target delay.
    pub fn target(&self) -> Duration {
        self.target
    }

    /// The extended sequence number of the next frame to play, once
    /// playout has started. The first packet's number is its own
    /// sequence number; later ones unwrap around it.
    pub fn next_frame(&self) -> Option<i64> {
        self.next
    }

    fn unwrap_seq(&mut self, seq: u16) -> i64 {
        let ext = match self.highest {
            None => i64::from(seq),
            Some(h) => h + i64::from(seq.wrapping_sub(h as u16) as i16),
        };
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        ext
    }

    fn media_secs(&self, ext: i64) -> f64 {
        ext as f64 * self.cfg.frame.as_secs_f64()
    }

    fn min_transit(&self) -> f64 {
        self.transits.iter().copied().fold(f64::INFINITY, f64::min)
    }

    /// A packet arrived at `now`.
    pub fn insert(&mut self, now: Duration, packet: RtpPacket) {
        let ext = self.unwrap_seq(packet.seq);
        self.transits
            .push_back(now.as_secs_f64() - self.media_secs(ext));
        while self.transits.len() > self.cfg.window.max(1) {
            self.transits.pop_front();
        }
        self.update_target();
        if self.start_at.is_none() {
            self.start_at = Some(now + self.cfg.initial_delay);
        }
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        match self.frames.get(&ext) {
            Some(slot) if !slot.redundant => self.stats.duplicates += 1,
            _ => {
                self.frames.insert(
                    ext,
                    Slot {
                        payload: packet.payload,
                        redundant: false,
                    },
                );
            }
        }
        for red in packet.redundant {
            let idx = ext - i64::from(red.distance);
            if self.next.is_none_or(|n| idx >= n) && !self.frames.contains_key(&idx) {
                self.frames.insert(
                    idx,
                    Slot {
                        payload: red.payload,
                        redundant: true,
                    },
                );
            }
        }
        while self.frames.len() > CAPACITY {
            self.frames.pop_first();
        }
    }

    fn update_target(&mut self) {
        let min = self.min_transit();
        let mut rel: Vec<f64> = self.transits.iter().map(|t| t - min).collect();
        rel.sort_by(f64::total_cmp);
        let idx = ((rel.len() as f64 * self.cfg.percentile).ceil() as usize)
            .clamp(1, rel.len().max(1))
            - 1;
        let q = rel.get(idx).copied().unwrap_or(0.0);
        let target = Duration::from_secs_f64(q.max(0.0));
        self.target = target.clamp(
            self.cfg.min_delay,
            self.cfg.max_delay.max(self.cfg.min_delay),
        );
    }

    /// The playout clock's tick at `now`: what to play for this frame
    /// period, or `None` before playout starts (or with nothing ever
    /// received).
    pub fn pop(&mut self, now: Duration) -> Option<Playout> {
        if self.start_at.is_none_or(|s| now < s) {
            return None;
        }
        let next = match self.next {
            Some(n) => n,
            None => *self.frames.keys().next()?,
        };
        self.next = Some(next);
        let delay = now.as_secs_f64() - self.media_secs(next) - self.min_transit();
        self.stats.pops += 1;
        self.stats.delay_ms_sum += delay * 1000.0;
        let frame = self.cfg.frame.as_secs_f64();
        let target = self.target.as_secs_f64();
        if delay + 1e-9 < target && self.stats.pops > 1 {
            self.stats.stretched += 1;
            return Some(Playout::Stretch);
        }
        let mut next = next;
        if delay > target + 2.0 * frame
            && self.frames.contains_key(&next)
            && self.frames.contains_key(&(next + 1))
        {
            self.frames.remove(&next);
            self.stats.skipped += 1;
            next += 1;
        }
        self.next = Some(next + 1);
        let out = match self.frames.remove(&next) {
            Some(slot) => {
                if slot.redundant {
                    self.stats.from_red += 1;
                }
                Playout::Packet {
                    payload: slot.payload,
                    redundant: slot.redundant,
                }
            }
            None => {
                self.stats.missing += 1;
                let following = self
                    .frames
                    .get(&(next + 1))
                    .filter(|s| !s.redundant)
                    .map(|s| s.payload.clone());
                Playout::Missing { following }
            }
        };
        // Frames behind the playout point can never play.
        while self
            .frames
            .first_key_value()
            .is_some_and(|(k, _)| *k <= next)
        {
            self.frames.pop_first();
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::rtp::Packetizer;

    const F: Duration = Duration::from_millis(20);

    fn packets(n: usize, red: usize) -> Vec<RtpPacket> {
        let mut p = Packetizer::new(65_530, 0, 960, red);
        (0..n).map(|i| p.packetize(vec![i as u8])).collect()
    }

    #[test]
    fn steady_stream_plays_in_order_across_wrap() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut played = Vec::new();
        for (i, p) in packets(50, 0).into_iter().enumerate() {
            let t = F * i as u32 + Duration::from_millis(30);
            jb.insert(t, p);
            if let Some(Playout::Packet { payload, .. }) = jb.pop(t) {
                played.push(payload[0]);
            }
        }
        assert_eq!(played, (0..played.len() as u8).collect::<Vec<_>>());
        assert!(played.len() >= 47);
        let s = jb.stats();
        assert_eq!((s.late, s.missing, s.stretched, s.skipped), (0, 0, 0, 0));
    }

    /// Packet i arrives at i · 20 ms (unless removed); ticks every 20 ms.
    fn drive(mut ps: Vec<RtpPacket>, missing: usize, ticks: usize) -> Vec<Playout> {
        ps.remove(missing);
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = Vec::new();
        for tick in 0..ticks as u32 {
            let now = F * tick;
            for p in ps
                .iter()
                .filter(|p| u32::from(p.seq.wrapping_sub(65_530)) == tick)
            {
                jb.insert(now, p.clone());
            }
            out.extend(jb.pop(now));
        }
        out
    }

    #[test]
    fn red_fills_a_gap_and_next_packet_is_offered_for_fec() {
        let out = drive(packets(8, 1), 2, 8);
        assert_eq!(
            out[2],
            Playout::Packet {
                payload: vec![2],
                redundant: true
            }
        );
        let out = drive(packets(8, 0), 2, 8);
        assert_eq!(
            out[2],
            Playout::Missing {
                following: Some(vec![3])
            }
        );
        assert_eq!(
            out[3],
            Playout::Packet {
                payload: vec![3],
                redundant: false
            }
        );
    }

    #[test]
    fn target_grows_with_jitter_and_late_packets_are_dropped() {
        let mut jb = JitterBuffer::new(JitterConfig::default());
        for (i, p) in packets(100, 0).into_iter().enumerate() {
            // Every fifth packet is 90 ms late.
            let extra = if i % 5 == 4 {
                Duration::from_millis(90)
            } else {
                Duration::ZERO
            };
            jb.insert(F * i as u32 + extra, p);
        }
        assert!(
            jb.target() >= Duration::from_millis(89),
            "{:?}",
            jb.target()
        );
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let ps = packets(3, 0);
        jb.insert(Duration::ZERO, ps[1].clone());
        let _ = jb.pop(Duration::from_millis(40));
        jb.insert(Duration::from_millis(41), ps[0].clone());
        jb.insert(Duration::from_millis(42), ps[1].clone());
        assert_eq!(jb.stats().late, 2);
    }
}
