//! Keeps one outgoing stream continuous while its source changes.
//!
//! A subscriber sees one SSRC per subscribed track. When the SFU switches
//! simulcast layers (or the publisher restarts its stream), sequence
//! numbers, RTP timestamps and VP8 PictureID/TL0PICIDX jump; the rewriter
//! rebases them so the receiver sees an unbroken stream.

use std::time::Instant;

use str0m::rtp::{SeqNo, Ssrc};

/// First outgoing sequence number. Below 2^16 so the SRTP rollover counter
/// starts at 0 as a fresh receiver expects.
const FIRST_SEQ: u64 = 1000;

/// Values one packet carries out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rewritten {
    /// Outgoing extended sequence number.
    pub seq: SeqNo,
    /// Outgoing RTP timestamp.
    pub timestamp: u32,
    /// Outgoing VP8 PictureID (15 bits), when the packet has one.
    pub picture_id: Option<u16>,
    /// Outgoing VP8 TL0PICIDX, when the packet has one.
    pub tl0_pic_idx: Option<u8>,
}

/// Per-subscription rewriting state.
#[derive(Debug)]
pub struct StreamRewriter {
    clock_rate: u32,
    source: Option<Ssrc>,
    /// First incoming sequence number of the current source.
    source_start: u64,
    seq_offset: i64,
    ts_offset: u32,
    pid_offset: u16,
    tl0_offset: u8,
    last: Option<Last>,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    seq: u64,
    timestamp: u32,
    picture_id: u16,
    tl0: u8,
    at: Instant,
}

impl StreamRewriter {
    /// A rewriter for a stream with the given RTP clock rate.
    pub fn new(clock_rate: u32) -> Self {
        StreamRewriter {
            clock_rate: clock_rate.max(1),
            source: None,
            source_start: 0,
            seq_offset: 0,
            ts_offset: 0,
            pid_offset: 0,
            tl0_offset: 0,
            last: None,
        }
    }

    /// The SSRC currently forwarded.
    pub fn source(&self) -> Option<Ssrc> {
        self.source
    }

    /// Rewrites one packet from `ssrc`. A new `ssrc` starts a new source:
    /// its first packet follows the last one sent. Packets older than the
    /// start of the current source are dropped (`None`).
    pub fn rewrite(
        &mut self,
        ssrc: Ssrc,
        seq: u64,
        timestamp: u32,
        picture_id: Option<u16>,
        tl0: Option<u8>,
        now: Instant,
    ) -> Option<Rewritten> {
        if self.source != Some(ssrc) {
            self.start_source(ssrc, seq, timestamp, picture_id, tl0, now);
        } else if seq < self.source_start {
            return None;
        }
        let out_seq = (seq as i64 + self.seq_offset).max(0) as u64;
        let out = Rewritten {
            seq: out_seq.into(),
            timestamp: timestamp.wrapping_add(self.ts_offset),
            picture_id: picture_id.map(|p| p.wrapping_add(self.pid_offset) & 0x7fff),
            tl0_pic_idx: tl0.map(|t| t.wrapping_add(self.tl0_offset)),
        };
        let newer = self.last.is_none_or(|l| out_seq > l.seq);
        if newer {
            let prev = self.last;
            self.last = Some(Last {
                seq: out_seq,
                timestamp: out.timestamp,
                picture_id: out.picture_id.or(prev.map(|l| l.picture_id)).unwrap_or(0),
                tl0: out.tl0_pic_idx.or(prev.map(|l| l.tl0)).unwrap_or(0),
                at: now,
            });
        }
        Some(out)
    }

    fn start_source(
        &mut self,
        ssrc: Ssrc,
        seq: u64,
        timestamp: u32,
        picture_id: Option<u16>,
        tl0: Option<u8>,
        now: Instant,
    ) {
        self.source = Some(ssrc);
        self.source_start = seq;
        match self.last {
            None => {
                self.seq_offset = FIRST_SEQ as i64 - seq as i64;
                self.ts_offset = 0;
                self.pid_offset = 0;
                self.tl0_offset = 0;
            }
            Some(last) => {
                self.seq_offset = (last.seq + 1) as i64 - seq as i64;
                // Advance the clock by the wall time since the last packet
                // (at least one tick) so timestamps keep increasing.
                let elapsed = now.saturating_duration_since(last.at);
                let ticks = (elapsed.as_micros() as u64 * u64::from(self.clock_rate) / 1_000_000)
                    .max(1) as u32;
                self.ts_offset = last.timestamp.wrapping_add(ticks).wrapping_sub(timestamp);
                if let Some(p) = picture_id {
                    self.pid_offset = last.picture_id.wrapping_add(1).wrapping_sub(p);
                }
                if let Some(t) = tl0 {
                    self.tl0_offset = last.tl0.wrapping_add(1).wrapping_sub(t);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn continuous_across_a_source_switch() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        let a = Ssrc::from(1);
        let b = Ssrc::from(2);
        let p1 = r.rewrite(a, 5000, 100, Some(7), Some(3), t0).unwrap();
        assert_eq!(*p1.seq, FIRST_SEQ);
        let p2 = r.rewrite(a, 5001, 3100, Some(8), Some(4), t0).unwrap();
        assert_eq!(*p2.seq, FIRST_SEQ + 1);
        // Switch to b 100 ms later: sequence, timestamp and picture id continue.
        let t1 = t0 + Duration::from_millis(100);
        let q1 = r.rewrite(b, 70, 999_999, Some(500), Some(200), t1).unwrap();
        assert_eq!(*q1.seq, FIRST_SEQ + 2);
        assert_eq!(q1.timestamp, 3100 + 9000);
        assert_eq!(q1.picture_id, Some(9));
        assert_eq!(q1.tl0_pic_idx, Some(5));
        let q2 = r
            .rewrite(b, 71, 1_002_999, Some(501), Some(201), t1)
            .unwrap();
        assert_eq!(*q2.seq, FIRST_SEQ + 3);
        assert_eq!(q2.timestamp, 3100 + 9000 + 3000);
        // A straggler from before b's start is dropped.
        assert!(r.rewrite(b, 69, 0, None, None, t1).is_none());
        // Reordered packets keep their gaps, so the receiver can NACK.
        let q4 = r.rewrite(b, 73, 1_002_999, None, None, t1).unwrap();
        assert_eq!(*q4.seq, FIRST_SEQ + 5);
    }

    #[test]
    fn picture_id_wraps_in_15_bits() {
        let t0 = Instant::now();
        let mut r = StreamRewriter::new(90_000);
        r.rewrite(Ssrc::from(1), 1, 0, Some(0x7fff), None, t0);
        let p = r.rewrite(Ssrc::from(2), 1, 0, Some(10), None, t0).unwrap();
        assert_eq!(p.picture_id, Some(0));
    }
}
