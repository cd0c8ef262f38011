//! Multipart (resumable) uploads on the local backend and against s3s-fs:
//! a file uploaded in three parts reads back whole; an abandoned upload is
//! aborted by the sweeper (injected time) and its parts are gone.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{Backend, local_backend, s3_backend, send_presigned};
use samtale_media::index::{MediaIndex, MemoryIndex};
use samtale_media::media::{MediaConfig, MediaError, MediaStore};
use samtale_media::storage::{MIN_PART_SIZE, ObjectKey, StorageError};

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn local() {
                super::$name(super::local_backend().await).await;
            }
            #[tokio::test]
            async fn s3() {
                super::$name(super::s3_backend().await).await;
            }
        }
    )*};
}

on_both_backends!(
    three_parts_upload_and_read_back,
    abandoned_multipart_is_aborted_by_the_sweeper,
);

fn store(b: &Backend) -> (MediaStore, Arc<MemoryIndex>) {
    let index = Arc::new(MemoryIndex::new());
    let config = MediaConfig {
        multipart_part_size: MIN_PART_SIZE,
        ..MediaConfig::default()
    };
    (
        MediaStore::new(b.storage.clone(), index.clone(), config),
        index,
    )
}

/// Deterministic, not trivially repetitive bytes.
fn file_bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn etag(reply: &common::Reply) -> String {
    reply
        .headers
        .get("etag")
        .expect("part upload without ETag")
        .to_str()
        .unwrap()
        .to_owned()
}

async fn three_parts_upload_and_read_back(b: Backend) {
    let (media, index) = store(&b);
    let now = SystemTime::now();
    let part = MIN_PART_SIZE as usize;
    let body = file_bytes(2 * part + 123_457);
    let slot = media
        .request_multipart_upload("alice", "video/mp4", body.len() as u64, false, now)
        .await
        .unwrap();
    assert_eq!(slot.parts.len(), 3, "{}", b.name);
    assert_eq!(slot.part_size, MIN_PART_SIZE);
    let record = index.media(&slot.key).await.unwrap().unwrap();
    let upload_id = record.multipart.as_ref().unwrap().upload_id.clone();
    // Nothing visible under the key yet.
    assert!(matches!(
        b.storage.head(&slot.key).await,
        Err(StorageError::NotFound)
    ));

    let pieces: Vec<&[u8]> = body.chunks(part).collect();
    let mut etags = vec![String::new(); 3];
    // A part of the wrong length is refused (the length is signed).
    let r = send_presigned(&slot.parts[2], &pieces[2][..10]).await;
    assert_eq!(r.status, 403, "{}: short part accepted", b.name);
    // Out of order: 3, then 1.
    for i in [2, 0] {
        let r = send_presigned(&slot.parts[i], pieces[i]).await;
        assert_eq!(r.status, 200, "{}: part {} refused", b.name, i + 1);
        etags[i] = etag(&r);
    }
    // Completing with a part missing is refused before storage is asked.
    // (A completion naming a part never uploaded is checked on the local
    // backend below; s3s-fs drops the whole upload on such a completion,
    // where S3 keeps it.)
    assert!(matches!(
        media
            .complete_multipart_upload("alice", &slot.key, &etags[..2], now)
            .await,
        Err(MediaError::PartCount {
            expected: 3,
            got: 2
        })
    ));
    // Resume: the first URLs "expired"; fresh ones for the missing part.
    let fresh = media
        .presign_part_urls("alice", &slot.key, &[2], now + Duration::from_secs(1800))
        .await
        .unwrap();
    let r = send_presigned(&fresh[0], pieces[1]).await;
    assert_eq!(r.status, 200, "{}: resumed part refused", b.name);
    etags[1] = etag(&r);
    assert!(matches!(
        media.presign_part_urls("alice", &slot.key, &[4], now).await,
        Err(MediaError::InvalidPartNumber { part: 4, count: 3 })
    ));
    assert!(matches!(
        media
            .complete_multipart_upload("mallory", &slot.key, &etags, now)
            .await,
        Err(MediaError::NotOwner)
    ));

    media
        .complete_multipart_upload("alice", &slot.key, &etags, now)
        .await
        .unwrap();
    let record = index.media(&slot.key).await.unwrap().unwrap();
    assert_eq!(record.multipart, None);
    let stored = b
        .storage
        .get(&slot.key)
        .await
        .unwrap()
        .into_bytes(64 << 20)
        .await
        .unwrap();
    assert!(stored == body, "{}: content differs after assembly", b.name);
    let info = b.storage.head(&slot.key).await.unwrap();
    assert_eq!(
        info.content_type.as_deref(),
        Some("video/mp4"),
        "{}",
        b.name
    );
    // Recipients download it like any other media.
    let get = media.download_url(&slot.key, now).await.unwrap();
    assert_eq!(send_presigned(&get, b"").await.body.len(), body.len());
    // Nothing left of the parts.
    assert_eq!(
        b.files_containing(&upload_id),
        Vec::<std::path::PathBuf>::new(),
        "{}: part files left",
        b.name
    );
    // And the sweeper has nothing to abort.
    let r = media
        .sweep(now + Duration::from_secs(48 * 3600))
        .await
        .unwrap();
    assert_eq!((r.multipart_aborted, r.orphan_multipart), (0, 0), "{r:?}");
}

async fn abandoned_multipart_is_aborted_by_the_sweeper(b: Backend) {
    let (media, index) = store(&b);
    let cfg = media.config().clone();
    let t0 = SystemTime::now();
    let size = MIN_PART_SIZE + 1000;
    let slot = media
        .request_multipart_upload("alice", "application/zip", size, false, t0)
        .await
        .unwrap();
    assert_eq!(slot.parts.len(), 2);
    let upload_id = index
        .media(&slot.key)
        .await
        .unwrap()
        .unwrap()
        .multipart
        .unwrap()
        .upload_id;
    // Part 1 arrives, then the client disappears.
    let r = send_presigned(&slot.parts[0], &file_bytes(MIN_PART_SIZE as usize)).await;
    assert_eq!(r.status, 200, "{}", b.name);
    assert!(
        !b.files_containing(&upload_id).is_empty(),
        "{}: the part is stored somewhere",
        b.name
    );
    // Pending multipart uploads count against the quota.
    assert_eq!(media_bytes_held(&index, "alice").await, size);

    // Before the deadline nothing happens (the client may still resume).
    let r = media
        .sweep(t0 + cfg.multipart_deadline - Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(r.multipart_aborted, 0, "{}: {r:?}", b.name);
    assert!(
        media
            .presign_part_urls("alice", &slot.key, &[2], t0)
            .await
            .is_ok()
    );

    let r = media.sweep(t0 + cfg.multipart_deadline).await.unwrap();
    assert_eq!(
        (r.abandoned_uploads, r.multipart_aborted),
        (1, 1),
        "{}: {r:?}",
        b.name
    );
    assert_eq!(index.media(&slot.key).await.unwrap(), None);
    assert_eq!(media_bytes_held(&index, "alice").await, 0);
    // The parts are gone, and the upload can neither continue nor finish.
    assert_eq!(
        b.files_containing(&upload_id),
        Vec::<std::path::PathBuf>::new(),
        "{}: parts left after abort",
        b.name
    );
    let r = send_presigned(&slot.parts[1], &file_bytes(1000)).await;
    assert!(
        r.status == 403 || r.status == 404,
        "{}: part accepted after abort: {}",
        b.name,
        r.status
    );
    assert!(
        b.storage
            .complete_multipart(&slot.key, &upload_id, &["\"x\"".to_owned()])
            .await
            .is_err(),
        "{}",
        b.name
    );
    assert!(matches!(
        b.storage.head(&slot.key).await,
        Err(StorageError::NotFound)
    ));
    // Aborting again is harmless on the local backend (S3 answers
    // NoSuchUpload, which counts as done; s3s-fs answers 403 instead).
    if b.name == "local" {
        b.storage
            .abort_multipart(&slot.key, &upload_id)
            .await
            .unwrap();
    }
}

async fn media_bytes_held(index: &MemoryIndex, owner: &str) -> u64 {
    index.bytes_held_by(owner).await.unwrap()
}

#[tokio::test]
async fn untracked_local_multipart_upload_is_aborted_after_the_grace_period() {
    let b = local_backend().await;
    let (media, _) = store(&b);
    let cfg = media.config().clone();
    let now = SystemTime::now();
    // The index lost track of it (e.g. a restart with the in-memory index).
    let key = ObjectKey::new(format!("{}/lost", cfg.prefix)).unwrap();
    let id = b
        .storage
        .create_multipart(&key, "application/octet-stream")
        .await
        .unwrap();
    let put = b
        .storage
        .presign_upload_part(&key, &id, 1, 3, Duration::from_secs(60))
        .unwrap();
    assert_eq!(send_presigned(&put, b"abc").await.status, 200);
    // Outside the prefix: never touched.
    let foreign = ObjectKey::new("other/upload").unwrap();
    let foreign_id = b
        .storage
        .create_multipart(&foreign, "application/octet-stream")
        .await
        .unwrap();

    let r = media.sweep(now).await.unwrap();
    assert_eq!(r.orphan_multipart, 0, "{r:?}");
    let r = media
        .sweep(now + cfg.orphan_grace + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(r.orphan_multipart, 1, "{r:?}");
    assert!(b.files_containing(&id).is_empty());
    assert!(!b.files_containing(&foreign_id).is_empty());
}

#[tokio::test]
async fn local_multipart_refuses_bad_ids_and_etags() {
    let b = local_backend().await;
    let key = ObjectKey::new("media/x").unwrap();
    for bad in ["../../objects", "", "0123456789ABCDEF0123456789abcdef"] {
        assert!(matches!(
            b.storage
                .presign_upload_part(&key, bad, 1, 1, Duration::from_secs(60)),
            Err(StorageError::InvalidUploadId)
        ));
    }
    let id = b
        .storage
        .create_multipart(&key, "text/plain")
        .await
        .unwrap();
    assert!(matches!(
        b.storage
            .presign_upload_part(&key, &id, 0, 1, Duration::from_secs(60)),
        Err(StorageError::InvalidPart)
    ));
    assert!(matches!(
        b.storage
            .presign_upload_part(&key, &id, 10_001, 1, Duration::from_secs(60)),
        Err(StorageError::InvalidPart)
    ));
    let put = b
        .storage
        .presign_upload_part(&key, &id, 1, 2, Duration::from_secs(60))
        .unwrap();
    let r = send_presigned(&put, b"hi").await;
    assert_eq!(r.status, 200);
    // Another key cannot complete or abort this upload.
    let other = ObjectKey::new("media/y").unwrap();
    assert!(matches!(
        b.storage.complete_multipart(&other, &id, &[etag(&r)]).await,
        Err(StorageError::NotFound)
    ));
    b.storage.abort_multipart(&other, &id).await.unwrap();
    // A wrong or malformed ETag is an invalid part.
    for bad in ["\"00000000000000000000000000000000\"", "../x", ""] {
        assert!(matches!(
            b.storage
                .complete_multipart(&key, &id, &[bad.to_owned()])
                .await,
            Err(StorageError::InvalidPart)
        ));
    }
    b.storage
        .complete_multipart(&key, &id, &[etag(&r)])
        .await
        .unwrap();
    let body = b
        .storage
        .get(&key)
        .await
        .unwrap()
        .into_bytes(10)
        .await
        .unwrap();
    assert_eq!(body.as_ref(), b"hi");
}
