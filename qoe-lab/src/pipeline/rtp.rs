//! RTP-like packets of Opus frames, optionally with RED (RFC 2198)
//! redundancy: each packet repeats the previous `depth` frames' payloads.

/// IPv4 (20) + UDP (8) header bytes, for bitrates "on the wire".
pub const IP_UDP_OVERHEAD: usize = 28;
/// RTP fixed header bytes (no CSRCs or extensions).
pub const RTP_HEADER: usize = 12;

/// A redundant copy of an earlier frame carried in a RED packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redundant {
    /// How many frames before the primary this copy is (1 = previous).
    pub distance: u16,
    /// The earlier frame's Opus payload.
    pub payload: Vec<u8>,
}

/// One packet: RTP sequence number and timestamp (48 kHz clock), the
/// primary Opus payload and any redundant copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpPacket {
    /// RTP sequence number (wraps).
    pub seq: u16,
    /// RTP timestamp (wraps).
    pub timestamp: u32,
    /// This frame's Opus packet.
    pub payload: Vec<u8>,
    /// RED blocks, nearest first.
    pub redundant: Vec<Redundant>,
}

impl RtpPacket {
    /// Bytes on the wire: IP/UDP + RTP header + payloads, plus RFC 2198
    /// block headers when RED is used (4 bytes per redundant block and one
    /// for the primary).
    pub fn wire_size(&self, red: bool) -> usize {
        let red_headers = if red { 1 + 4 * self.redundant.len() } else { 0 };
        IP_UDP_OVERHEAD
            + RTP_HEADER
            + red_headers
            + self.payload.len()
            + self
                .redundant
                .iter()
                .map(|r| r.payload.len())
                .sum::<usize>()
    }
}

/// Turns encoded frames into packets.
#[derive(Debug)]
pub struct Packetizer {
    seq: u16,
    timestamp: u32,
    samples_per_frame: u32,
    red_depth: usize,
    history: Vec<Vec<u8>>,
}

impl Packetizer {
    /// Starts at `seq`/`timestamp`; `red_depth` earlier frames ride along.
    pub fn new(seq: u16, timestamp: u32, samples_per_frame: u32, red_depth: usize) -> Self {
        Self {
            seq,
            timestamp,
            samples_per_frame,
            red_depth,
            history: Vec::new(),
        }
    }

    /// Packs the next frame.
    pub fn packetize(&mut self, payload: Vec<u8>) -> RtpPacket {
        let redundant = self
            .history
            .iter()
            .rev()
            .take(self.red_depth)
            .enumerate()
            .map(|(i, p)| Redundant {
                distance: i as u16 + 1,
                payload: p.clone(),
            })
            .collect();
        if self.red_depth > 0 {
            self.history.push(payload.clone());
            if self.history.len() > self.red_depth {
                self.history.remove(0);
            }
        }
        let packet = RtpPacket {
            seq: self.seq,
            timestamp: self.timestamp,
            payload,
            redundant,
        };
        self.seq = self.seq.wrapping_add(1);
        self.timestamp = self.timestamp.wrapping_add(self.samples_per_frame);
        packet
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_carries_previous_frames_and_sequence_wraps() {
        let mut p = Packetizer::new(u16::MAX, u32::MAX - 100, 960, 2);
        let a = p.packetize(vec![1]);
        let b = p.packetize(vec![2]);
        let c = p.packetize(vec![3, 3]);
        assert_eq!((a.seq, b.seq, c.seq), (u16::MAX, 0, 1));
        assert_eq!(b.timestamp, (u32::MAX - 100).wrapping_add(960));
        assert!(a.redundant.is_empty());
        assert_eq!(
            c.redundant,
            vec![
                Redundant {
                    distance: 1,
                    payload: vec![2]
                },
                Redundant {
                    distance: 2,
                    payload: vec![1]
                }
            ]
        );
        assert_eq!(c.wire_size(true), 28 + 12 + 9 + 2 + 2);
        assert_eq!(a.wire_size(false), 28 + 12 + 1);
    }
}
