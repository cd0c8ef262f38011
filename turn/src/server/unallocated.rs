//! Client TCP/TLS connections that hold no allocation. Each must allocate
//! (or become a data connection, RFC 6062) within
//! [`crate::config::TurnConfig::allocate_timeout`] of opening, or of its
//! allocation's end, or the server closes it: as coturn's
//! `max-allocate-timeout` (60 s by default). Without this, a connection that
//! only sends Binding requests, or outlives its allocation, holds a socket
//! and a slot forever.
//!
//! UDP clients hold nothing without an allocation, so only stream 5-tuples
//! are tracked.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use foldhash::HashMap;

use super::types::FiveTuple;

/// Deadlines of connections without an allocation.
#[derive(Debug, Default)]
pub(super) struct UnallocatedStreams {
    deadlines: HashMap<FiveTuple, Instant>,
    /// Earliest first; an entry whose deadline no longer matches
    /// `deadlines` is stale and skipped.
    timers: BinaryHeap<Reverse<(Instant, FiveTuple)>>,
}

impl UnallocatedStreams {
    /// `tuple` holds no allocation from now on and must get one by
    /// `deadline`. UDP tuples are ignored.
    pub fn start(&mut self, tuple: FiveTuple, deadline: Instant) {
        if !tuple.transport.is_stream() {
            return;
        }
        self.deadlines.insert(tuple, deadline);
        self.timers.push(Reverse((deadline, tuple)));
        self.compact_if_bloated();
    }

    /// `tuple` got an allocation, became a data connection or closed.
    pub fn stop(&mut self, tuple: &FiveTuple) {
        self.deadlines.remove(tuple);
    }

    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Connections whose deadline is due at `now`; they are forgotten.
    pub fn expire(&mut self, now: Instant) -> Vec<FiveTuple> {
        let mut due = Vec::new();
        while let Some(Reverse((at, tuple))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.deadlines.get(&tuple) == Some(&at) {
                self.deadlines.remove(&tuple);
                due.push(tuple);
            }
        }
        due
    }

    /// Connections waiting for an allocation.
    pub fn len(&self) -> usize {
        self.deadlines.len()
    }

    /// Timer entries (stale ones included), for tests of boundedness.
    #[cfg(test)]
    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    /// A connection that allocates and frees again and again leaves a
    /// stale entry each time: rebuild once they outnumber the live ones.
    fn compact_if_bloated(&mut self) {
        if self.timers.len() > 2 * self.deadlines.len() + 64 {
            self.timers = self
                .deadlines
                .iter()
                .map(|(tuple, at)| Reverse((*at, *tuple)))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::server::types::Transport;
    use std::time::Duration;

    fn stream(port: u16) -> FiveTuple {
        FiveTuple {
            client: ([198, 51, 100, 1], port).into(),
            server: ([192, 0, 2, 1], 3478).into(),
            transport: Transport::Tcp,
        }
    }

    #[test]
    fn churn_on_one_connection_keeps_the_timer_heap_bounded() {
        let mut idle = UnallocatedStreams::default();
        let t0 = Instant::now();
        let tuple = stream(5000);
        for i in 0..10_000u64 {
            idle.start(tuple, t0 + Duration::from_millis(i));
            idle.stop(&tuple);
            // At most two per live entry, plus 64 of slack, plus this one.
            assert!(
                idle.timer_entries() <= 2 + 64 + 1,
                "{}",
                idle.timer_entries()
            );
        }
        idle.start(tuple, t0 + Duration::from_secs(60));
        assert_eq!(idle.len(), 1);
        assert!(idle.expire(t0 + Duration::from_secs(59)).is_empty());
        assert_eq!(idle.expire(t0 + Duration::from_secs(60)), vec![tuple]);
        assert_eq!(idle.len(), 0);
    }

    #[test]
    fn a_restarted_deadline_replaces_the_old_one_and_udp_is_ignored() {
        let mut idle = UnallocatedStreams::default();
        let t0 = Instant::now();
        let (a, b) = (stream(1), stream(2));
        idle.start(a, t0 + Duration::from_secs(10));
        idle.start(b, t0 + Duration::from_secs(20));
        idle.start(a, t0 + Duration::from_secs(30));
        idle.start(
            FiveTuple {
                transport: Transport::Udp,
                ..stream(3)
            },
            t0,
        );
        assert_eq!(idle.len(), 2);
        assert!(idle.expire(t0 + Duration::from_secs(10)).is_empty());
        assert_eq!(idle.expire(t0 + Duration::from_secs(30)), vec![b, a]);
        assert_eq!(idle.next_timeout(), None);
    }
}
