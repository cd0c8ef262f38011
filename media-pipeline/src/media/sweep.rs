//! The TTL sweeper: run it periodically (e.g. every few minutes) with the
//! current time. It deletes expired media, abandoned uploads, consumed
//! view-once objects, expired grants, and objects under the prefix that no
//! index entry knows (older than the grace period), so nothing is orphaned.

use std::collections::HashSet;
use std::time::SystemTime;

use super::{MediaError, MediaStore};
use crate::index::MediaState;

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Media past its TTL, deleted.
    pub expired: usize,
    /// Uploads never confirmed in time, deleted.
    pub abandoned_uploads: usize,
    /// View-once objects whose grants were all used, deleted.
    pub consumed: usize,
    /// Objects without an index entry, deleted.
    pub orphans: usize,
    /// Grants forgotten.
    pub grants_dropped: usize,
}

impl MediaStore {
    /// Sweeps at `now`. Storage errors stop the sweep (the next one
    /// retries); deleting an object that is already gone is fine.
    pub async fn sweep(&self, now: SystemTime) -> Result<SweepReport, MediaError> {
        let mut report = SweepReport::default();
        for record in self.index.due_for_sweep(now).await? {
            self.storage.delete(&record.key).await?;
            self.index.remove_media(&record.key).await?;
            match record.state {
                _ if record.expires_at <= now => report.expired += 1,
                MediaState::PendingUpload { .. } => report.abandoned_uploads += 1,
                MediaState::Consumed => report.consumed += 1,
                MediaState::Stored => report.expired += 1,
            }
        }
        report.grants_dropped = self.index.drop_expired_grants(now).await?;

        let prefix = format!("{}/", self.config.prefix);
        let listed = self.storage.list(&prefix).await?;
        let mut known = HashSet::new();
        for info in &listed {
            if self.index.media(&info.key).await?.is_some() {
                known.insert(info.key.clone());
            }
        }
        for info in listed {
            if known.contains(&info.key) {
                continue;
            }
            let old_enough = info
                .last_modified
                .is_none_or(|t| t + self.config.orphan_grace <= now);
            if old_enough {
                self.storage.delete(&info.key).await?;
                report.orphans += 1;
            }
        }
        if report != SweepReport::default() {
            tracing::info!(?report, "media sweep");
        }
        Ok(report)
    }
}
