//! Active-speaker detection from the RTP audio-level extension (RFC 6464).

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::ParticipantId;

/// Loudness above which a participant counts as speaking: -50 dBov.
const SPEECH_DBOV: u8 = 50;
/// A challenger must be this much louder (dB) than the current speaker.
const SWITCH_MARGIN_DB: u32 = 3;
/// Fewer samples than this in the window count as silence.
const MIN_SAMPLES: usize = 10;

/// Ranks participants by recent loudness and names the active speaker.
#[derive(Debug)]
pub struct SpeakerDetector {
    window: Duration,
    levels: HashMap<ParticipantId, VecDeque<(Instant, u8)>>,
    current: Option<ParticipantId>,
}

impl SpeakerDetector {
    /// A detector averaging over `window`.
    pub fn new(window: Duration) -> Self {
        SpeakerDetector {
            window,
            levels: HashMap::new(),
            current: None,
        }
    }

    /// Records one audio level: `dbov` as carried on the wire, 0 (loudest)
    /// to 127 (silence).
    pub fn record(&mut self, who: ParticipantId, now: Instant, dbov: u8) {
        let q = self.levels.entry(who).or_default();
        q.push_back((now, dbov.min(127)));
        while q
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) > self.window)
        {
            q.pop_front();
        }
    }

    /// Forgets a participant that left.
    pub fn remove(&mut self, who: ParticipantId) {
        self.levels.remove(&who);
        if self.current == Some(who) {
            self.current = None;
        }
    }

    /// The current active speaker.
    pub fn current(&self) -> Option<ParticipantId> {
        self.current
    }

    /// Re-evaluates at `now`. Returns the new speaker when it changed.
    /// A silent room keeps its last speaker highlighted.
    pub fn evaluate(&mut self, now: Instant) -> Option<ParticipantId> {
        let window = self.window;
        let loudness = |q: &VecDeque<(Instant, u8)>| -> Option<u32> {
            let recent: Vec<u32> = q
                .iter()
                .filter(|(t, _)| now.saturating_duration_since(*t) <= window)
                .map(|(_, l)| 127 - u32::from(*l))
                .collect();
            (recent.len() >= MIN_SAMPLES).then(|| recent.iter().sum::<u32>() / recent.len() as u32)
        };
        let loudest = self
            .levels
            .iter()
            .filter_map(|(p, q)| loudness(q).map(|l| (*p, l)))
            .filter(|(_, l)| *l >= 127 - u32::from(SPEECH_DBOV))
            .max_by_key(|(p, l)| (*l, std::cmp::Reverse(*p)))?;
        let current_loudness = self
            .current
            .and_then(|c| self.levels.get(&c))
            .and_then(loudness)
            .filter(|l| *l >= 127 - u32::from(SPEECH_DBOV));
        let switch = match (self.current, current_loudness) {
            (Some(c), _) if c == loudest.0 => false,
            (_, Some(cur)) => loudest.1 >= cur + SWITCH_MARGIN_DB,
            (_, None) => true,
        };
        if switch {
            self.current = Some(loudest.0);
            self.current
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(d: &mut SpeakerDetector, who: u64, t0: Instant, from_ms: u64, dbov: u8) {
        for i in 0..25 {
            d.record(
                ParticipantId(who),
                t0 + Duration::from_millis(from_ms + i * 20),
                dbov,
            );
        }
    }

    #[test]
    fn loudest_speaker_wins_with_hysteresis() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(Duration::from_millis(500));
        feed(&mut d, 1, t0, 0, 30);
        feed(&mut d, 2, t0, 0, 127);
        assert_eq!(
            d.evaluate(t0 + Duration::from_millis(500)),
            Some(ParticipantId(1))
        );
        // 2 speaks only 1 dB louder: no switch.
        feed(&mut d, 1, t0, 500, 30);
        feed(&mut d, 2, t0, 500, 29);
        assert_eq!(d.evaluate(t0 + Duration::from_millis(1000)), None);
        assert_eq!(d.current(), Some(ParticipantId(1)));
        // 2 is much louder and 1 falls silent: switch.
        feed(&mut d, 1, t0, 1000, 127);
        feed(&mut d, 2, t0, 1000, 20);
        assert_eq!(
            d.evaluate(t0 + Duration::from_millis(1500)),
            Some(ParticipantId(2))
        );
    }

    #[test]
    fn silence_names_nobody_new() {
        let t0 = Instant::now();
        let mut d = SpeakerDetector::new(Duration::from_millis(500));
        feed(&mut d, 1, t0, 0, 127);
        assert_eq!(d.evaluate(t0 + Duration::from_millis(500)), None);
        assert_eq!(d.current(), None);
        d.remove(ParticipantId(1));
    }
}
