//! Counters the SFU keeps for `/metrics`. Atomics, so readers need no lock.

use std::sync::atomic::{AtomicU64, Ordering};

/// Monotonic counters and gauges of one SFU.
#[derive(Debug, Default)]
pub struct SfuMetrics {
    /// RTP packets written toward subscribers.
    pub packets_forwarded: AtomicU64,
    /// RTP payload bytes written toward subscribers.
    pub bytes_forwarded: AtomicU64,
    /// RTP packets received from publishers.
    pub packets_received: AtomicU64,
    /// Keyframe requests (PLI/FIR) sent to publishers.
    pub keyframe_requests: AtomicU64,
    /// Keyframe requests suppressed by the throttle.
    pub keyframe_requests_throttled: AtomicU64,
    /// Simulcast layer switches.
    pub layer_switches: AtomicU64,
    /// Rooms currently open.
    pub rooms: AtomicU64,
    /// Participants currently joined.
    pub participants: AtomicU64,
    /// Datagrams no participant accepted.
    pub unrouted_datagrams: AtomicU64,
}

impl SfuMetrics {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, n: u64) {
        gauge.store(n, Ordering::Relaxed);
    }

    /// Reads one counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
