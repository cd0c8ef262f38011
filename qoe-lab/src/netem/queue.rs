//! [`NetemQueue`]: holds packets in flight and hands them out when due.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Duration;

use super::{Fate, Netem, NetemConfig, NetemError};

/// Packets in flight through a [`Netem`], ordered by arrival time (ties in
/// the order they were pushed).
#[derive(Debug)]
pub struct NetemQueue<P> {
    net: Netem,
    heap: BinaryHeap<InFlight<P>>,
    order: u64,
}

#[derive(Debug)]
struct InFlight<P> {
    at: Duration,
    order: u64,
    packet: P,
}

impl<P> PartialEq for InFlight<P> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl<P> Eq for InFlight<P> {}
impl<P> PartialOrd for InFlight<P> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<P> Ord for InFlight<P> {
    // Reversed: the earliest arrival is the heap's maximum.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}

impl<P: Clone> NetemQueue<P> {
    /// A queue over a fresh emulator.
    pub fn new(config: NetemConfig) -> Result<Self, NetemError> {
        Ok(Self {
            net: Netem::new(config)?,
            heap: BinaryHeap::new(),
            order: 0,
        })
    }

    /// The emulator (for its stats).
    pub fn netem(&self) -> &Netem {
        &self.net
    }

    /// Sends `packet` (`size` bytes on the wire) at `now`.
    pub fn push(&mut self, now: Duration, packet: P, size: usize) -> Result<Fate, NetemError> {
        let fate = self.net.send(now, size)?;
        if let Fate::Delivered { at, duplicate } = fate {
            if let Some(copy_at) = duplicate {
                self.insert(copy_at, packet.clone());
            }
            self.insert(at, packet);
        }
        Ok(fate)
    }

    fn insert(&mut self, at: Duration, packet: P) {
        self.order += 1;
        self.heap.push(InFlight {
            at,
            order: self.order,
            packet,
        });
    }

    /// The next packet due at or before `now`, with its arrival time.
    pub fn poll(&mut self, now: Duration) -> Option<(Duration, P)> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|f| (f.at, f.packet))
    }

    /// When the next packet arrives, if any is in flight.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.heap.peek().map(|f| f.at)
    }

    /// Packets in flight.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}
