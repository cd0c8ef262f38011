//! The TTL sweeper: run it periodically (e.g. every few minutes) with the
//! current time. It deletes expired media, abandoned uploads (aborting
//! their multipart uploads, which deletes the parts), consumed view-once
//! objects, expired grants, and objects and multipart uploads under the
//! prefix that no index entry knows (older than the grace period), so
//! nothing is orphaned.

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
    /// Multipart uploads of swept records aborted (also counted as
    /// abandoned or expired).
    pub multipart_aborted: usize,
    /// Multipart uploads without an index entry, aborted.
    pub orphan_multipart: usize,
    /// Grants forgotten.
    pub grants_dropped: usize,
}

impl MediaStore {
    /// Sweeps at `now`. Storage errors stop the sweep (the next one
    /// retries); deleting an object that is already gone is fine.
    pub async fn sweep(&self, now: SystemTime) -> Result<SweepReport, MediaError> {
        let mut report = SweepReport::default();
        for record in self.index.due_for_sweep(now).await? {
            if let Some(multipart) = &record.multipart {
                self.storage
                    .abort_multipart(&record.key, &multipart.upload_id)
                    .await?;
                report.multipart_aborted += 1;
            }
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
        let started_before = now.checked_sub(self.config.orphan_grace).unwrap_or(now);
        for upload in self
            .storage
            .stale_multipart_uploads(&prefix, started_before)
            .await?
        {
            let tracked = self
                .index
                .media(&upload.key)
                .await?
                .is_some_and(|r| r.multipart.is_some_and(|m| m.upload_id == upload.upload_id));
            if !tracked {
                self.storage
                    .abort_multipart(&upload.key, &upload.upload_id)
                    .await?;
                report.orphan_multipart += 1;
            }
        }
        if report != SweepReport::default() {
            tracing::info!(?report, "media sweep");
        }
        Ok(report)
    }
}
