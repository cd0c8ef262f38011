//! The media flows signaling exposes: upload slots (size, type, quota),
//! confirmation, download URLs, view-once grants and the TTL sweeper.
//!
//! Every method takes the current time explicitly (`now`), so the whole
//! life of an object, expiry included, is testable without sleeping. The
//! presigned URLs themselves are signed with the storage backend's
//! [`Clock`](crate::Clock).

mod multipart;
mod sweep;
mod view_once;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::index::{IndexError, MediaIndex, MediaRecord, MediaState};
use crate::storage::{KeyError, ObjectKey, PresignedRequest, Storage, StorageError};

pub use multipart::MultipartSlot;
pub use sweep::SweepReport;
pub use view_once::{ViewOnceDownload, ViewOnceGrant};

/// Limits and lifetimes. Defaults in [`MediaConfig::default`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// Key prefix of every object this store creates (default `media`).
    pub prefix: String,
    /// Largest single upload (default 100 MiB).
    pub max_upload_bytes: u64,
    /// Bytes one user may hold at once (default 2 GiB).
    pub quota_bytes_per_user: u64,
    /// Lifetime of a presigned upload URL (default 15 min).
    pub upload_url_ttl: Duration,
    /// Time to confirm an upload before it counts as abandoned (default 1 h).
    pub upload_deadline: Duration,
    /// Bytes per part of a multipart upload (default 8 MiB; clamped to
    /// S3's 5 MiB..=5 GiB, and raised when a file would need more than
    /// 10 000 parts).
    pub multipart_part_size: u64,
    /// Time to complete a multipart upload before it is aborted as
    /// abandoned (default 24 h; a client resumes within it by asking for
    /// fresh part URLs).
    pub multipart_deadline: Duration,
    /// Lifetime of all media (default 30 days).
    pub media_ttl: Duration,
    /// Lifetime of a presigned download URL (default 1 h).
    pub download_url_ttl: Duration,
    /// Lifetime of a view-once grant (default 7 days).
    pub view_once_ttl: Duration,
    /// Age after which an object with no index entry is deleted (default
    /// 1 day; covers uploads in flight when their record was swept).
    pub orphan_grace: Duration,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            prefix: "media".into(),
            max_upload_bytes: 100 * 1024 * 1024,
            quota_bytes_per_user: 2 * 1024 * 1024 * 1024,
            upload_url_ttl: Duration::from_secs(15 * 60),
            upload_deadline: Duration::from_secs(3600),
            multipart_part_size: 8 * 1024 * 1024,
            multipart_deadline: Duration::from_secs(24 * 3600),
            media_ttl: Duration::from_secs(30 * 24 * 3600),
            download_url_ttl: Duration::from_secs(3600),
            view_once_ttl: Duration::from_secs(7 * 24 * 3600),
            orphan_grace: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a media operation failed. The HTTP layer maps these to statuses
/// (e.g. `Gone` → 410, `QuotaExceeded`/`TooLarge` → 413, `NotFound` and
/// `UnknownGrant` → 404, `NotOwner`/`WrongDevice` → 403).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The configured prefix is not a valid key.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// Bigger than the largest upload allowed.
    #[error("upload of {size} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Declared size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The user's quota would be exceeded.
    #[error("quota exceeded: {used} of {quota} bytes in use")]
    QuotaExceeded {
        /// Bytes already held.
        used: u64,
        /// The quota.
        quota: u64,
    },
    /// No such media.
    #[error("no such media")]
    NotFound,
    /// The media belongs to someone else.
    #[error("not the owner of this media")]
    NotOwner,
    /// The upload has not been confirmed (or was not received).
    #[error("media not uploaded")]
    NotUploaded,
    /// The stored object does not have the declared size (it was deleted).
    #[error("uploaded size {actual} differs from the declared {declared}")]
    SizeMismatch {
        /// Declared.
        declared: u64,
        /// Found.
        actual: u64,
    },
    /// View-once media is only served through grants.
    #[error("view-once media has no download URL")]
    ViewOnceOnly,
    /// Grants are only for view-once media.
    #[error("not view-once media")]
    NotViewOnce,
    /// The grant was already used or has expired (HTTP 410).
    #[error("gone: this view-once media was already viewed or has expired")]
    Gone,
    /// No such grant.
    #[error("unknown grant")]
    UnknownGrant,
    /// The grant belongs to another device.
    #[error("grant issued to another device")]
    WrongDevice,
    /// A multipart operation on media uploaded in one piece (or already
    /// completed).
    #[error("not a multipart upload in progress")]
    NotMultipart,
    /// A part number outside the upload's plan.
    #[error("part {part} is not in 1..={count}")]
    InvalidPartNumber {
        /// The part asked for.
        part: u16,
        /// The upload's number of parts.
        count: u16,
    },
    /// Completion named another number of parts than planned.
    #[error("{got} parts reported, {expected} expected")]
    PartCount {
        /// Parts in the plan.
        expected: u16,
        /// Parts reported.
        got: usize,
    },
}

/// A granted upload slot: PUT the bytes to `request`, then call
/// [`MediaStore::confirm_upload`] with `key`.
#[derive(Debug, Clone)]
pub struct UploadSlot {
    /// The new object's key.
    pub key: ObjectKey,
    /// The presigned PUT.
    pub request: PresignedRequest,
}

/// Media over a [`Storage`] and a [`MediaIndex`].
#[derive(Debug, Clone)]
pub struct MediaStore {
    storage: Arc<dyn Storage>,
    index: Arc<dyn MediaIndex>,
    config: MediaConfig,
}

impl MediaStore {
    /// A store over `storage` and `index`.
    pub fn new(storage: Arc<dyn Storage>, index: Arc<dyn MediaIndex>, config: MediaConfig) -> Self {
        Self {
            storage,
            index,
            config,
        }
    }

    /// The storage backend.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// The configuration.
    pub fn config(&self) -> &MediaConfig {
        &self.config
    }

    /// The index record of `key`, if any (e.g. to decide whether to
    /// thumbnail it).
    pub async fn record(&self, key: &ObjectKey) -> Result<Option<MediaRecord>, MediaError> {
        Ok(self.index.media(key).await?)
    }

    /// Grants an upload slot of exactly `size` bytes of `content_type` to
    /// `owner`, enforcing the size limit and the owner's quota (pending
    /// uploads count against it).
    pub async fn request_upload(
        &self,
        owner: &str,
        content_type: &str,
        size: u64,
        view_once: bool,
        now: SystemTime,
    ) -> Result<UploadSlot, MediaError> {
        self.check_new_upload(owner, size).await?;
        let key = ObjectKey::random(&self.config.prefix)?;
        let request =
            self.storage
                .presign_put(&key, content_type, size, self.config.upload_url_ttl)?;
        self.index
            .insert_media(MediaRecord {
                key: key.clone(),
                owner: owner.to_owned(),
                size,
                content_type: content_type.to_owned(),
                created_at: now,
                expires_at: now + self.config.media_ttl,
                state: MediaState::PendingUpload {
                    deadline: now + self.config.upload_deadline,
                },
                view_once,
                multipart: None,
            })
            .await?;
        Ok(UploadSlot { key, request })
    }

    /// The size limit and the owner's quota (pending uploads count).
    async fn check_new_upload(&self, owner: &str, size: u64) -> Result<(), MediaError> {
        if size > self.config.max_upload_bytes {
            return Err(MediaError::TooLarge {
                size,
                limit: self.config.max_upload_bytes,
            });
        }
        let used = self.index.bytes_held_by(owner).await?;
        if used.saturating_add(size) > self.config.quota_bytes_per_user {
            return Err(MediaError::QuotaExceeded {
                used,
                quota: self.config.quota_bytes_per_user,
            });
        }
        Ok(())
    }

    async fn owned_record(&self, owner: &str, key: &ObjectKey) -> Result<MediaRecord, MediaError> {
        let record = self.index.media(key).await?.ok_or(MediaError::NotFound)?;
        if record.owner != owner {
            return Err(MediaError::NotOwner);
        }
        Ok(record)
    }

    /// Confirms an upload: the object must exist with the declared size
    /// (otherwise it is deleted and the slot dropped).
    pub async fn confirm_upload(
        &self,
        owner: &str,
        key: &ObjectKey,
        now: SystemTime,
    ) -> Result<(), MediaError> {
        let record = self.owned_record(owner, key).await?;
        match record.state {
            MediaState::Stored => return Ok(()),
            MediaState::Consumed => return Err(MediaError::Gone),
            MediaState::PendingUpload { deadline } if deadline <= now => {
                return Err(MediaError::NotUploaded);
            }
            MediaState::PendingUpload { .. } => {}
        }
        if record.multipart.is_some() {
            // Finished with `complete_multipart_upload`.
            return Err(MediaError::NotUploaded);
        }
        self.mark_stored(record).await
    }

    /// Checks that the object exists with the declared size (deleting it
    /// and the record otherwise) and marks it stored.
    async fn mark_stored(&self, mut record: MediaRecord) -> Result<(), MediaError> {
        let key = &record.key;
        let info = match self.storage.head(key).await {
            Ok(info) => info,
            Err(StorageError::NotFound) => return Err(MediaError::NotUploaded),
            Err(e) => return Err(e.into()),
        };
        if info.size != record.size {
            self.storage.delete(key).await?;
            self.index.remove_media(key).await?;
            return Err(MediaError::SizeMismatch {
                declared: record.size,
                actual: info.size,
            });
        }
        record.state = MediaState::Stored;
        record.multipart = None;
        self.index.update_media(record).await?;
        Ok(())
    }

    /// A presigned GET for stored, non-view-once media (the caller decides
    /// who may see it).
    pub async fn download_url(
        &self,
        key: &ObjectKey,
        now: SystemTime,
    ) -> Result<PresignedRequest, MediaError> {
        let record = self.index.media(key).await?.ok_or(MediaError::NotFound)?;
        if record.expires_at <= now {
            return Err(MediaError::NotFound);
        }
        match record.state {
            MediaState::Stored if record.view_once => Err(MediaError::ViewOnceOnly),
            MediaState::Stored => {
                let ttl = self.config.download_url_ttl;
                Ok(self.storage.presign_get(key, ttl)?)
            }
            MediaState::PendingUpload { .. } => Err(MediaError::NotUploaded),
            MediaState::Consumed => Err(MediaError::Gone),
        }
    }
}
