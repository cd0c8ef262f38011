//! The media index: what was uploaded, by whom, until when, and the
//! view-once grants. The sweeper and the view-once flow work over it.
//!
//! Two implementations: [`SqlIndex`] (sqlx; a SQLite file in the data
//! directory by default, PostgreSQL for scale-out) survives restarts, so
//! outstanding grants and downloads keep working; [`MemoryIndex`] lives in
//! the process and is **lost on restart** (objects then look orphaned and
//! the sweeper deletes them after the grace period), for tests and tools.
//! Every method takes explicit time where time matters.

mod sql;
mod sql_codec;

pub use sql::{SQLITE_FILE, SqlIndex};

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::storage::ObjectKey;

/// Where an object is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaState {
    /// An upload slot was granted; the object is not confirmed yet. After
    /// `deadline` the upload counts as abandoned.
    PendingUpload {
        /// When the slot is abandoned.
        deadline: SystemTime,
    },
    /// Uploaded and confirmed.
    Stored,
    /// View-once: every grant was used; the object is being deleted.
    Consumed,
}

/// One stored (or being uploaded) object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRecord {
    /// The object key.
    pub key: ObjectKey,
    /// The uploader (an opaque user id).
    pub owner: String,
    /// The declared (and after confirmation, verified) size.
    pub size: u64,
    /// The declared content type.
    pub content_type: String,
    /// When the slot was granted.
    pub created_at: SystemTime,
    /// When the media expires and is swept.
    pub expires_at: SystemTime,
    /// Upload / stored / consumed.
    pub state: MediaState,
    /// Downloads only through single-use grants.
    pub view_once: bool,
    /// While a multipart upload is in progress: its id and plan, so the
    /// sweeper can abort it when abandoned. `None` once completed.
    pub multipart: Option<MultipartUpload>,
}

/// A multipart upload the index tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUpload {
    /// The storage backend's upload id.
    pub upload_id: String,
    /// Bytes per part (all but the last).
    pub part_size: u64,
    /// Number of parts.
    pub part_count: u16,
}

impl MultipartUpload {
    /// The exact length of part `part_number` (1-based) of an object of
    /// `total` bytes, or `None` outside 1..=`part_count`.
    pub fn part_len(&self, total: u64, part_number: u16) -> Option<u64> {
        if part_number == 0 || part_number > self.part_count {
            return None;
        }
        let start = u64::from(part_number - 1) * self.part_size;
        Some(total.saturating_sub(start).min(self.part_size))
    }
}

/// A single-use download grant for one recipient device. Only the SHA-256
/// of the token is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRecord {
    /// SHA-256 of the bearer token.
    pub token_hash: [u8; 32],
    /// The object.
    pub key: ObjectKey,
    /// The recipient device it was issued to.
    pub device: String,
    /// When it stops working (used or not, it is forgotten after this).
    pub expires_at: SystemTime,
    /// Whether it was used.
    pub used: bool,
}

/// The outcome of trying to use a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantUse {
    /// No such grant (never issued, or already forgotten).
    Unknown,
    /// Issued to another device; left untouched.
    WrongDevice,
    /// Already used, or expired.
    Gone,
    /// Now marked used. `remaining` unused grants are left for the object.
    Granted {
        /// The object.
        key: ObjectKey,
        /// Unused grants left for it.
        remaining: usize,
    },
}

/// Index failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IndexError {
    /// A record with that key already exists.
    #[error("duplicate index entry")]
    Duplicate,
    /// No record with that key.
    #[error("no such index entry")]
    NotFound,
    /// The backing store failed.
    #[error("index backend: {0}")]
    Backend(String),
}

/// The media index. Implementations must make [`use_grant`](Self::use_grant)
/// atomic: two concurrent uses of one token must not both get `Granted`.
#[async_trait]
pub trait MediaIndex: Send + Sync + Debug {
    /// Adds a record; [`IndexError::Duplicate`] if the key exists.
    async fn insert_media(&self, record: MediaRecord) -> Result<(), IndexError>;
    /// The record for `key`, if any.
    async fn media(&self, key: &ObjectKey) -> Result<Option<MediaRecord>, IndexError>;
    /// Replaces the record for `record.key`.
    async fn update_media(&self, record: MediaRecord) -> Result<(), IndexError>;
    /// Removes a record (absent is fine). Its grants stay until they expire,
    /// so that a later use answers "gone" rather than "unknown".
    async fn remove_media(&self, key: &ObjectKey) -> Result<(), IndexError>;
    /// Sum of the sizes of `owner`'s records that are not consumed (quota).
    async fn bytes_held_by(&self, owner: &str) -> Result<u64, IndexError>;
    /// Records due for sweeping at `now`: expired, abandoned uploads
    /// (deadline passed) and consumed view-once objects.
    async fn due_for_sweep(&self, now: SystemTime) -> Result<Vec<MediaRecord>, IndexError>;
    /// Adds a grant.
    async fn insert_grant(&self, grant: GrantRecord) -> Result<(), IndexError>;
    /// Atomically uses the grant with this token hash for `device` at `now`.
    async fn use_grant(
        &self,
        token_hash: &[u8; 32],
        device: &str,
        now: SystemTime,
    ) -> Result<GrantUse, IndexError>;
    /// Forgets grants that expired by `now`; returns how many.
    async fn drop_expired_grants(&self, now: SystemTime) -> Result<usize, IndexError>;
}

#[derive(Debug, Default)]
struct Inner {
    media: HashMap<ObjectKey, MediaRecord>,
    grants: HashMap<[u8; 32], GrantRecord>,
}

/// An in-process [`MediaIndex`] (see the module docs: not persistent).
#[derive(Debug, Default)]
pub struct MemoryIndex {
    inner: Mutex<Inner>,
}

impl MemoryIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl MediaIndex for MemoryIndex {
    async fn insert_media(&self, record: MediaRecord) -> Result<(), IndexError> {
        let mut inner = self.lock();
        if inner.media.contains_key(&record.key) {
            return Err(IndexError::Duplicate);
        }
        inner.media.insert(record.key.clone(), record);
        Ok(())
    }

    async fn media(&self, key: &ObjectKey) -> Result<Option<MediaRecord>, IndexError> {
        Ok(self.lock().media.get(key).cloned())
    }

    async fn update_media(&self, record: MediaRecord) -> Result<(), IndexError> {
        let mut inner = self.lock();
        let slot = inner
            .media
            .get_mut(&record.key)
            .ok_or(IndexError::NotFound)?;
        *slot = record;
        Ok(())
    }

    async fn remove_media(&self, key: &ObjectKey) -> Result<(), IndexError> {
        self.lock().media.remove(key);
        Ok(())
    }

    async fn bytes_held_by(&self, owner: &str) -> Result<u64, IndexError> {
        Ok(self
            .lock()
            .media
            .values()
            .filter(|r| r.owner == owner && r.state != MediaState::Consumed)
            .map(|r| r.size)
            .sum())
    }

    async fn due_for_sweep(&self, now: SystemTime) -> Result<Vec<MediaRecord>, IndexError> {
        let mut due: Vec<MediaRecord> = self
            .lock()
            .media
            .values()
            .filter(|r| {
                r.expires_at <= now
                    || match r.state {
                        MediaState::PendingUpload { deadline } => deadline <= now,
                        MediaState::Consumed => true,
                        MediaState::Stored => false,
                    }
            })
            .cloned()
            .collect();
        due.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(due)
    }

    async fn insert_grant(&self, grant: GrantRecord) -> Result<(), IndexError> {
        let mut inner = self.lock();
        if inner.grants.contains_key(&grant.token_hash) {
            return Err(IndexError::Duplicate);
        }
        inner.grants.insert(grant.token_hash, grant);
        Ok(())
    }

    async fn use_grant(
        &self,
        token_hash: &[u8; 32],
        device: &str,
        now: SystemTime,
    ) -> Result<GrantUse, IndexError> {
        let mut inner = self.lock();
        let Some(grant) = inner.grants.get_mut(token_hash) else {
            return Ok(GrantUse::Unknown);
        };
        if grant.device != device {
            return Ok(GrantUse::WrongDevice);
        }
        if grant.used || grant.expires_at <= now {
            return Ok(GrantUse::Gone);
        }
        grant.used = true;
        let key = grant.key.clone();
        let remaining = inner
            .grants
            .values()
            .filter(|g| g.key == key && !g.used && g.expires_at > now)
            .count();
        Ok(GrantUse::Granted { key, remaining })
    }

    async fn drop_expired_grants(&self, now: SystemTime) -> Result<usize, IndexError> {
        let mut inner = self.lock();
        let before = inner.grants.len();
        inner.grants.retain(|_, g| g.expires_at > now);
        Ok(before - inner.grants.len())
    }
}
