//! The sweeper timer: runs [`MediaStore::sweep`] every `sweep_interval`
//! until the server shuts down.
//!
//! [`MediaStore::sweep`]: samtale_media::media::MediaStore::sweep

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::MediaService;
use super::metrics::MediaMetrics;

/// Starts the timer; the task ends when `shutdown` turns true (or its
/// sender is dropped).
pub fn spawn(
    media: Arc<MediaService>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return;
                    }
                    continue;
                }
            }
            if *shutdown.borrow() {
                return;
            }
            match media.store.sweep(SystemTime::now()).await {
                Ok(report) => media.metrics.record_sweep(&report),
                Err(e) => {
                    MediaMetrics::inc(&media.metrics.sweep_failures);
                    tracing::warn!(error = %e, "media sweep failed; retrying at the next tick");
                }
            }
        }
    })
}
