//! Multipart (resumable) uploads of large files.
//!
//! The flow: [`MediaStore::request_multipart_upload`] checks size and quota
//! like a single upload, starts a multipart upload in storage, records its
//! id in the index and returns one presigned PUT per part (each signed for
//! its exact length). The client PUTs the parts in any order, in parallel
//! if it likes, keeping each answer's `ETag`; after a network break it
//! asks [`MediaStore::presign_part_urls`] for fresh URLs of the parts it
//! is missing and carries on (resuming). [`MediaStore::complete_multipart_upload`]
//! with the ETags in part order assembles the object and checks its size.
//! An upload not completed within [`MediaConfig::multipart_deadline`]
//! (or cancelled with [`MediaStore::abort_multipart_upload`]) is aborted
//! and its parts deleted by the sweeper.
//!
//! [`MediaConfig::multipart_deadline`]: super::MediaConfig::multipart_deadline

use std::time::SystemTime;

use super::{MediaError, MediaStore};
use crate::index::{MediaRecord, MediaState, MultipartUpload};
use crate::storage::{MAX_PART_SIZE, MAX_PARTS, MIN_PART_SIZE, ObjectKey, PresignedRequest};

/// A granted multipart upload slot.
#[derive(Debug, Clone)]
pub struct MultipartSlot {
    /// The new object's key.
    pub key: ObjectKey,
    /// Bytes per part; the last part holds the rest.
    pub part_size: u64,
    /// One presigned PUT per part, `parts[i]` for part `i + 1`.
    pub parts: Vec<PresignedRequest>,
}

/// Part size and count for `size` bytes with a wanted part size: at least
/// S3's 5 MiB, at most 5 GiB, and large enough for 10 000 parts; one part
/// for an empty file. `None` if `size` cannot fit in 10 000 parts of 5 GiB.
pub(crate) fn plan_parts(size: u64, wanted_part_size: u64) -> Option<(u64, u16)> {
    let max_parts = u64::from(MAX_PARTS);
    let part_size = wanted_part_size
        .clamp(MIN_PART_SIZE, MAX_PART_SIZE)
        .max(size.div_ceil(max_parts));
    if part_size > MAX_PART_SIZE {
        return None;
    }
    let count = size.div_ceil(part_size).max(1);
    Some((part_size, u16::try_from(count).ok()?))
}

impl MediaStore {
    /// Grants a multipart upload of exactly `size` bytes of `content_type`
    /// to `owner` (same limits as [`request_upload`](Self::request_upload)).
    pub async fn request_multipart_upload(
        &self,
        owner: &str,
        content_type: &str,
        size: u64,
        view_once: bool,
        now: SystemTime,
    ) -> Result<MultipartSlot, MediaError> {
        self.check_new_upload(owner, size).await?;
        let (part_size, part_count) =
            plan_parts(size, self.config.multipart_part_size).ok_or(MediaError::TooLarge {
                size,
                limit: MAX_PART_SIZE * u64::from(MAX_PARTS),
            })?;
        let key = ObjectKey::random(&self.config.prefix)?;
        let upload_id = self.storage.create_multipart(&key, content_type).await?;
        let multipart = MultipartUpload {
            upload_id,
            part_size,
            part_count,
        };
        let presigned = (1..=part_count)
            .map(|n| self.presign_part(&key, &multipart, size, n))
            .collect::<Result<Vec<_>, _>>();
        let inserted = match presigned {
            Ok(parts) => self
                .index
                .insert_media(MediaRecord {
                    key: key.clone(),
                    owner: owner.to_owned(),
                    size,
                    content_type: content_type.to_owned(),
                    created_at: now,
                    expires_at: now + self.config.media_ttl,
                    state: MediaState::PendingUpload {
                        deadline: now + self.config.multipart_deadline,
                    },
                    view_once,
                    multipart: Some(multipart.clone()),
                })
                .await
                .map(|()| parts)
                .map_err(MediaError::from),
            Err(e) => Err(e),
        };
        match inserted {
            Ok(parts) => Ok(MultipartSlot {
                key,
                part_size,
                parts,
            }),
            Err(e) => {
                // Not tracked: do not leave it behind.
                if let Err(abort) = self
                    .storage
                    .abort_multipart(&key, &multipart.upload_id)
                    .await
                {
                    tracing::warn!(error = %abort, "aborting an untracked multipart upload failed");
                }
                Err(e)
            }
        }
    }

    fn presign_part(
        &self,
        key: &ObjectKey,
        multipart: &MultipartUpload,
        size: u64,
        part_number: u16,
    ) -> Result<PresignedRequest, MediaError> {
        let len = multipart
            .part_len(size, part_number)
            .ok_or(MediaError::InvalidPartNumber {
                part: part_number,
                count: multipart.part_count,
            })?;
        Ok(self.storage.presign_upload_part(
            key,
            &multipart.upload_id,
            part_number,
            len,
            self.config.upload_url_ttl,
        )?)
    }

    /// The owner's multipart upload in progress for `key`.
    async fn pending_multipart(
        &self,
        owner: &str,
        key: &ObjectKey,
        now: SystemTime,
    ) -> Result<(MediaRecord, MultipartUpload), MediaError> {
        let record = self.owned_record(owner, key).await?;
        match record.state {
            MediaState::PendingUpload { deadline } if deadline > now => {}
            MediaState::PendingUpload { .. } => return Err(MediaError::NotUploaded),
            MediaState::Stored => return Err(MediaError::NotMultipart),
            MediaState::Consumed => return Err(MediaError::Gone),
        }
        let multipart = record.multipart.clone().ok_or(MediaError::NotMultipart)?;
        Ok((record, multipart))
    }

    /// Fresh presigned PUTs for some parts of an upload in progress (to
    /// resume after the first URLs expired or a part failed).
    pub async fn presign_part_urls(
        &self,
        owner: &str,
        key: &ObjectKey,
        part_numbers: &[u16],
        now: SystemTime,
    ) -> Result<Vec<PresignedRequest>, MediaError> {
        let (record, multipart) = self.pending_multipart(owner, key, now).await?;
        part_numbers
            .iter()
            .map(|&n| self.presign_part(key, &multipart, record.size, n))
            .collect()
    }

    /// Completes an upload with the ETags its part uploads answered, in
    /// part order. A part missing or with another ETag leaves the upload in
    /// progress (upload the part again and retry); an object of the wrong
    /// total size is deleted.
    pub async fn complete_multipart_upload(
        &self,
        owner: &str,
        key: &ObjectKey,
        etags: &[String],
        now: SystemTime,
    ) -> Result<(), MediaError> {
        let (record, multipart) = self.pending_multipart(owner, key, now).await?;
        if etags.len() != usize::from(multipart.part_count) {
            return Err(MediaError::PartCount {
                expected: multipart.part_count,
                got: etags.len(),
            });
        }
        self.storage
            .complete_multipart(key, &multipart.upload_id, etags)
            .await?;
        self.mark_stored(record).await
    }

    /// Cancels an upload in progress: its parts and record are deleted.
    pub async fn abort_multipart_upload(
        &self,
        owner: &str,
        key: &ObjectKey,
        now: SystemTime,
    ) -> Result<(), MediaError> {
        let (_, multipart) = self.pending_multipart(owner, key, now).await?;
        self.storage
            .abort_multipart(key, &multipart.upload_id)
            .await?;
        self.index.remove_media(key).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_respect_s3_limits() {
        assert_eq!(plan_parts(0, 8 * MIB), Some((8 * MIB, 1)));
        assert_eq!(plan_parts(8 * MIB, 8 * MIB), Some((8 * MIB, 1)));
        assert_eq!(plan_parts(8 * MIB + 1, 8 * MIB), Some((8 * MIB, 2)));
        // Below S3's minimum part size: raised to 5 MiB.
        assert_eq!(plan_parts(11 * MIB, MIB), Some((5 * MIB, 3)));
        // More than 10 000 parts: the part size grows.
        let (size, count) = plan_parts(100_000 * MIB, 5 * MIB).unwrap();
        assert_eq!((size, count), (10 * MIB, 10_000));
        assert_eq!(plan_parts(MAX_PART_SIZE * 10_000 + 1, 5 * MIB), None);
        let mp = MultipartUpload {
            upload_id: "x".into(),
            part_size: 5 * MIB,
            part_count: 3,
        };
        let total = 11 * MIB;
        assert_eq!(mp.part_len(total, 1), Some(5 * MIB));
        assert_eq!(mp.part_len(total, 3), Some(MIB));
        assert_eq!(mp.part_len(total, 0), None);
        assert_eq!(mp.part_len(total, 4), None);
    }
}
