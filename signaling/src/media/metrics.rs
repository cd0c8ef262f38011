//! Media counters for `/metrics` (Prometheus text format).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use samtale_media::media::SweepReport;

/// What the media routes and the sweeper did since start.
#[derive(Debug, Default)]
pub struct MediaMetrics {
    /// Upload slots granted (single and multipart).
    pub slots_granted: AtomicU64,
    /// Uploads confirmed (single) or completed (multipart).
    pub uploads_stored: AtomicU64,
    /// Bytes of those uploads.
    pub bytes_stored: AtomicU64,
    /// Requests refused for size or quota.
    pub uploads_refused: AtomicU64,
    /// View-once downloads started.
    pub view_once_served: AtomicU64,
    /// Objects the sweeper deleted (expired, abandoned, consumed, orphans).
    pub swept_objects: AtomicU64,
    /// Sweeps that failed (retried at the next tick).
    pub sweep_failures: AtomicU64,
    /// Server-side thumbnails decoded and encoded.
    pub thumbnails_made: AtomicU64,
    /// Thumbnail requests answered from the cache.
    pub thumbnail_cache_hits: AtomicU64,
}

impl MediaMetrics {
    /// Adds one.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts what a sweep deleted.
    pub fn record_sweep(&self, report: &SweepReport) {
        let deleted = report.expired + report.abandoned_uploads + report.consumed + report.orphans;
        self.swept_objects
            .fetch_add(deleted as u64, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "slots_granted",
                "Upload slots granted.",
                &self.slots_granted,
            ),
            (
                "uploads_stored",
                "Uploads confirmed or completed.",
                &self.uploads_stored,
            ),
            (
                "bytes_stored",
                "Bytes of confirmed uploads.",
                &self.bytes_stored,
            ),
            (
                "uploads_refused",
                "Upload slots refused for size or quota.",
                &self.uploads_refused,
            ),
            (
                "view_once_served",
                "View-once downloads started.",
                &self.view_once_served,
            ),
            (
                "swept_objects",
                "Objects deleted by the sweeper.",
                &self.swept_objects,
            ),
            (
                "sweep_failures",
                "Sweeps that failed.",
                &self.sweep_failures,
            ),
            (
                "thumbnails_made",
                "Server-side thumbnails decoded and encoded.",
                &self.thumbnails_made,
            ),
            (
                "thumbnail_cache_hits",
                "Thumbnail requests answered from the cache.",
                &self.thumbnail_cache_hits,
            ),
        ] {
            let name = format!("samtale_media_{name}_total");
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}
