//! Throttling of keyframe requests toward publishers.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Lets at most one request per key through per interval. Every subscriber
/// of a layer asks for keyframes when it loses packets; the publisher needs
/// to hear it once.
#[derive(Debug)]
pub struct KeyframeThrottle<K> {
    interval: Duration,
    last_sent: HashMap<K, Instant>,
}

impl<K: Hash + Eq> KeyframeThrottle<K> {
    /// A throttle with the given minimum spacing.
    pub fn new(interval: Duration) -> Self {
        KeyframeThrottle {
            interval,
            last_sent: HashMap::new(),
        }
    }

    /// Whether a request for `key` may go out at `now`; records it if so.
    pub fn allow(&mut self, key: K, now: Instant) -> bool {
        match self.last_sent.get(&key) {
            Some(last) if now.saturating_duration_since(*last) < self.interval => false,
            _ => {
                self.last_sent.insert(key, now);
                true
            }
        }
    }

    /// Drops the state of keys that no longer exist.
    pub fn retain(&mut self, mut keep: impl FnMut(&K) -> bool) {
        self.last_sent.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_interval_per_key() {
        let t0 = Instant::now();
        let mut t = KeyframeThrottle::new(Duration::from_millis(500));
        assert!(t.allow("a", t0));
        assert!(!t.allow("a", t0 + Duration::from_millis(499)));
        assert!(t.allow("b", t0 + Duration::from_millis(1)));
        assert!(t.allow("a", t0 + Duration::from_millis(500)));
        assert!(!t.allow("a", t0 + Duration::from_millis(900)));
    }
}
