//! The bandwidth budget of a TCP allocation (RFC 6062): a token bucket
//! shared by both directions of all its data connections.

use std::time::{Duration, Instant};

/// A token bucket shared by both directions of every data connection of
/// one allocation (burst: one second's worth).
pub(super) struct Pace {
    bytes_per_sec: u64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    pub(super) fn new(bytes_per_sec: u64, now: Instant) -> Self {
        Pace {
            bytes_per_sec,
            tokens: bytes_per_sec as f64,
            at: now,
        }
    }

    /// Takes `n` bytes at `now`; returns how long to wait before reading
    /// on.
    pub(super) fn take(&mut self, n: usize, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_sec as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        // Connections sharing the budget pass times read a moment apart:
        // time never runs back.
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * rate).min(rate) - n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_lets_a_second_through_then_paces() {
        let now = Instant::now();
        let mut pace = Pace::new(1000, now);
        assert_eq!(pace.take(1000, now), Duration::ZERO);
        let wait = pace.take(500, now);
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(pace.take(0, now + wait), Duration::ZERO, "refilled");
        assert_eq!(Pace::new(0, now).take(1 << 30, now), Duration::ZERO);
    }
}
