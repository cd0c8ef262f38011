//! Upload slots, view-once grants and the TTL sweeper, on the local
//! backend and against s3s-fs, with injected time.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::{Backend, local_backend, s3_backend, send_presigned};
use futures_util::StreamExt;
use samtale_media::index::MemoryIndex;
use samtale_media::media::{MediaConfig, MediaError, MediaStore, SweepReport, ViewOnceDownload};
use samtale_media::storage::{ObjectKey, StorageError};

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
    view_once_is_served_once_per_device_then_deleted,
    sweeper_deletes_what_expired
);

fn store(b: &Backend) -> MediaStore {
    MediaStore::new(
        b.storage.clone(),
        Arc::new(MemoryIndex::new()),
        MediaConfig::default(),
    )
}

async fn read_all(mut d: ViewOnceDownload) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = d.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

/// Uploads `body` through a slot, as a client would, and confirms it.
async fn upload(
    media: &MediaStore,
    owner: &str,
    body: &[u8],
    view_once: bool,
    now: SystemTime,
) -> ObjectKey {
    let slot = media
        .request_upload(owner, "image/jpeg", body.len() as u64, view_once, now)
        .await
        .unwrap();
    let r = send_presigned(&slot.request, body).await;
    assert_eq!(r.status, 200, "upload refused");
    media.confirm_upload(owner, &slot.key, now).await.unwrap();
    slot.key
}

async fn view_once_is_served_once_per_device_then_deleted(b: Backend) {
    let media = store(&b);
    let now = SystemTime::now();
    let body: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let key = upload(&media, "alice", &body, true, now).await;

    // View-once media has no replayable presigned URL.
    assert!(matches!(
        media.download_url(&key, now).await,
        Err(MediaError::ViewOnceOnly)
    ));
    assert!(matches!(
        media
            .issue_view_once_grants("mallory", &key, &["m1".into()], now)
            .await,
        Err(MediaError::NotOwner)
    ));
    let devices = ["bob-phone".to_owned(), "bob-laptop".to_owned()];
    let grants = media
        .issue_view_once_grants("alice", &key, &devices, now)
        .await
        .unwrap();
    assert_eq!(grants.len(), 2);
    assert!(
        !format!("{grants:?}").contains(&grants[0].token),
        "tokens are not printed"
    );

    // Another device cannot use bob-phone's grant, and that costs nothing.
    assert!(matches!(
        media.redeem_view_once(&grants[0].token, "eve", now).await,
        Err(MediaError::WrongDevice)
    ));
    assert!(matches!(
        media
            .redeem_view_once("no-such-token", "bob-phone", now)
            .await,
        Err(MediaError::UnknownGrant)
    ));

    let first = media
        .redeem_view_once(&grants[0].token, "bob-phone", now)
        .await
        .unwrap();
    assert_eq!(first.content_type, "image/jpeg");
    assert_eq!(read_all(first).await, body);
    assert!(matches!(
        media
            .redeem_view_once(&grants[0].token, "bob-phone", now)
            .await,
        Err(MediaError::Gone)
    ));
    // Still there for the other device.
    assert!(
        b.storage.head(&key).await.is_ok(),
        "{}: deleted too early",
        b.name
    );

    let second = media
        .redeem_view_once(&grants[1].token, "bob-laptop", now)
        .await
        .unwrap();
    assert_eq!(read_all(second).await, body);
    // The last view deleted the object before the stream ended.
    assert!(
        matches!(b.storage.head(&key).await, Err(StorageError::NotFound)),
        "{}: object still in storage",
        b.name
    );
    for (g, device) in grants.iter().zip(&devices) {
        assert!(matches!(
            media.redeem_view_once(&g.token, device, now).await,
            Err(MediaError::Gone)
        ));
    }
    // Nothing left for the sweeper but the used grants' tombstones.
    let later = now + Duration::from_secs(8 * 24 * 3600);
    let report = media.sweep(later).await.unwrap();
    assert_eq!(report.grants_dropped, 2);
    assert_eq!((report.expired, report.orphans), (0, 0));
}

async fn sweeper_deletes_what_expired(b: Backend) {
    let media = store(&b);
    let cfg = media.config().clone();
    let t0 = SystemTime::now();

    let kept = upload(&media, "alice", b"kept", false, t0).await;
    let old = upload(
        &media,
        "alice",
        b"old",
        false,
        t0 - Duration::from_secs(3600),
    )
    .await;
    // A slot never used, and one uploaded but never confirmed.
    let never = media
        .request_upload("alice", "image/png", 5, false, t0)
        .await
        .unwrap();
    let unconfirmed = media
        .request_upload("alice", "image/png", 5, false, t0)
        .await
        .unwrap();
    assert_eq!(
        send_presigned(&unconfirmed.request, b"12345").await.status,
        200
    );
    // An object no index entry knows (e.g. the index was lost).
    let orphan = ObjectKey::new(format!("{}/orphan", cfg.prefix)).unwrap();
    b.storage
        .put(&orphan, "image/png", Bytes::from_static(b"o"))
        .await
        .unwrap();
    // Outside the media prefix: never touched.
    let foreign = ObjectKey::new("other/file").unwrap();
    b.storage
        .put(&foreign, "image/png", Bytes::from_static(b"f"))
        .await
        .unwrap();
    // View-once media whose grants expire unused.
    let vo = upload(&media, "alice", b"vo", true, t0).await;
    media
        .issue_view_once_grants("alice", &vo, &["d".into()], t0)
        .await
        .unwrap();

    // Right away: nothing is due.
    assert_eq!(media.sweep(t0).await.unwrap(), SweepReport::default());

    // After the upload deadline: both abandoned slots go.
    let t1 = t0 + cfg.upload_deadline;
    let r = media.sweep(t1).await.unwrap();
    assert_eq!(r.abandoned_uploads, 2, "{}: {r:?}", b.name);
    assert!(matches!(
        b.storage.head(&unconfirmed.key).await,
        Err(StorageError::NotFound)
    ));
    assert!(matches!(
        media.confirm_upload("alice", &never.key, t1).await,
        Err(MediaError::NotFound)
    ));

    // After the orphan grace period (measured from the object's mtime).
    let r = media
        .sweep(t0 + cfg.orphan_grace + Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(r.orphans, 1, "{}: {r:?}", b.name);
    assert!(matches!(
        b.storage.head(&orphan).await,
        Err(StorageError::NotFound)
    ));

    // After the view-once TTL: the unviewed object and its grant go.
    let r = media.sweep(t0 + cfg.view_once_ttl).await.unwrap();
    assert_eq!((r.expired, r.grants_dropped), (1, 1), "{}: {r:?}", b.name);
    assert!(matches!(
        b.storage.head(&vo).await,
        Err(StorageError::NotFound)
    ));

    // After the media TTL of the older upload, then of the other one.
    let r = media
        .sweep(t0 + cfg.media_ttl - Duration::from_secs(1800))
        .await
        .unwrap();
    assert_eq!(r.expired, 1, "{}: {r:?}", b.name);
    assert!(matches!(
        b.storage.head(&old).await,
        Err(StorageError::NotFound)
    ));
    assert!(b.storage.head(&kept).await.is_ok());
    assert!(media.download_url(&kept, t0).await.is_ok());
    let r = media.sweep(t0 + cfg.media_ttl).await.unwrap();
    assert_eq!(r.expired, 1, "{}: {r:?}", b.name);
    assert!(
        b.storage
            .list(&format!("{}/", cfg.prefix))
            .await
            .unwrap()
            .is_empty(),
        "nothing orphaned"
    );
    assert!(b.storage.head(&foreign).await.is_ok(), "outside the prefix");
}

#[tokio::test]
async fn upload_slots_enforce_size_quota_and_exact_length() {
    let b = local_backend().await;
    let config = MediaConfig {
        max_upload_bytes: 1000,
        quota_bytes_per_user: 1500,
        ..MediaConfig::default()
    };
    let media = MediaStore::new(b.storage.clone(), Arc::new(MemoryIndex::new()), config);
    let now = SystemTime::now();
    assert!(matches!(
        media
            .request_upload("u", "image/png", 1001, false, now)
            .await,
        Err(MediaError::TooLarge {
            size: 1001,
            limit: 1000
        })
    ));
    let first = media
        .request_upload("u", "image/png", 1000, false, now)
        .await
        .unwrap();
    // Pending uploads count against the quota.
    assert!(matches!(
        media
            .request_upload("u", "image/png", 600, false, now)
            .await,
        Err(MediaError::QuotaExceeded {
            used: 1000,
            quota: 1500
        })
    ));
    assert!(
        media
            .request_upload("other", "image/png", 600, false, now)
            .await
            .is_ok()
    );
    // Confirming before uploading, or as someone else, fails.
    assert!(matches!(
        media.confirm_upload("u", &first.key, now).await,
        Err(MediaError::NotUploaded)
    ));
    assert!(matches!(
        media.confirm_upload("x", &first.key, now).await,
        Err(MediaError::NotOwner)
    ));
    assert!(matches!(
        media.download_url(&first.key, now).await,
        Err(MediaError::NotUploaded)
    ));
    assert_eq!(
        send_presigned(&first.request, &[0u8; 1000]).await.status,
        200
    );
    media.confirm_upload("u", &first.key, now).await.unwrap();
    let get = media.download_url(&first.key, now).await.unwrap();
    assert_eq!(send_presigned(&get, b"").await.body.len(), 1000);
    // A server-side write of the wrong size is caught at confirmation.
    let slot = media
        .request_upload("other", "image/png", 10, false, now)
        .await
        .unwrap();
    b.storage
        .put(&slot.key, "image/png", Bytes::from_static(b"short"))
        .await
        .unwrap();
    assert!(matches!(
        media.confirm_upload("other", &slot.key, now).await,
        Err(MediaError::SizeMismatch {
            declared: 10,
            actual: 5
        })
    ));
    assert!(matches!(
        b.storage.head(&slot.key).await,
        Err(StorageError::NotFound)
    ));
}

#[tokio::test]
async fn a_dropped_view_once_download_still_deletes_the_object() {
    let b = local_backend().await;
    let media = store(&b);
    let now = SystemTime::now();
    let key = upload(&media, "a", &[1u8; 300_000], true, now).await;
    let grants = media
        .issue_view_once_grants("a", &key, &["d".into()], now)
        .await
        .unwrap();
    let mut dl = media
        .redeem_view_once(&grants[0].token, "d", now)
        .await
        .unwrap();
    let _first_chunk = dl.next().await.unwrap().unwrap();
    drop(dl); // the client went away mid-download
    // Whether the background delete ran yet or not, the sweeper finishes it
    // and the grant stays used.
    assert!(matches!(
        media.redeem_view_once(&grants[0].token, "d", now).await,
        Err(MediaError::Gone)
    ));
    media.sweep(now).await.unwrap();
    assert!(matches!(
        b.storage.head(&key).await,
        Err(StorageError::NotFound)
    ));
}
