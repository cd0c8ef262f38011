//! The media index contract, on the in-memory index and on the SQL index
//! (SQLite, and PostgreSQL when `initdb`/`pg_ctl` are there), and what only
//! the SQL index does: survive a reopen, serialise concurrent uses of one
//! object's grants.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The throwaway PostgreSQL server of the messaging tests.
#[path = "../../messaging/tests/common/pg.rs"]
mod pg;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use samtale_media::index::{
    GrantRecord, GrantUse, IndexError, MediaIndex, MediaRecord, MediaState, MemoryIndex,
    MultipartUpload, SqlIndex,
};
use samtale_media::storage::ObjectKey;

/// Whole milliseconds, the SQL index's precision.
fn t(ms: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + ms)
}

fn key(n: u8) -> ObjectKey {
    ObjectKey::new(format!("media/{n:032x}")).unwrap()
}

fn record(n: u8, owner: &str, size: u64, state: MediaState) -> MediaRecord {
    MediaRecord {
        key: key(n),
        owner: owner.into(),
        size,
        content_type: "image/jpeg; q=\"1\"".into(),
        created_at: t(0),
        expires_at: t(100_000),
        state,
        view_once: n.is_multiple_of(2),
        multipart: None,
    }
}

fn grant(token: u8, n: u8, device: &str, expires: u64) -> GrantRecord {
    GrantRecord {
        token_hash: [token; 32],
        key: key(n),
        device: device.into(),
        expires_at: t(expires),
        used: false,
    }
}

async fn contract(index: &dyn MediaIndex) {
    let pending = record(
        1,
        "alice",
        10,
        MediaState::PendingUpload { deadline: t(500) },
    );
    index.insert_media(pending.clone()).await.unwrap();
    assert_eq!(
        index.insert_media(pending.clone()).await,
        Err(IndexError::Duplicate)
    );
    assert_eq!(index.media(&key(1)).await.unwrap(), Some(pending.clone()));
    assert_eq!(index.media(&key(9)).await.unwrap(), None);
    assert_eq!(
        index
            .update_media(record(9, "x", 1, MediaState::Stored))
            .await,
        Err(IndexError::NotFound)
    );

    let mut multipart = record(
        2,
        "alice",
        20,
        MediaState::PendingUpload { deadline: t(900) },
    );
    multipart.multipart = Some(MultipartUpload {
        upload_id: "up-1".into(),
        part_size: 5 * 1024 * 1024,
        part_count: 3,
    });
    index.insert_media(multipart.clone()).await.unwrap();
    assert_eq!(index.media(&key(2)).await.unwrap(), Some(multipart.clone()));
    index
        .insert_media(record(3, "bob", 1000, MediaState::Stored))
        .await
        .unwrap();
    index
        .insert_media(record(4, "alice", 5, MediaState::Consumed))
        .await
        .unwrap();
    // Consumed media does not count against the quota.
    assert_eq!(index.bytes_held_by("alice").await.unwrap(), 30);
    assert_eq!(index.bytes_held_by("nobody").await.unwrap(), 0);

    // Completing the multipart upload clears its plan.
    let mut stored = multipart.clone();
    stored.state = MediaState::Stored;
    stored.multipart = None;
    index.update_media(stored.clone()).await.unwrap();
    assert_eq!(index.media(&key(2)).await.unwrap(), Some(stored));

    let due: Vec<ObjectKey> = index
        .due_for_sweep(t(400))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(due, vec![key(4)], "only the consumed one at t=400");
    let due: Vec<ObjectKey> = index
        .due_for_sweep(t(500))
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.key)
        .collect();
    assert_eq!(due, vec![key(1), key(4)], "the abandoned upload at t=500");
    assert_eq!(index.due_for_sweep(t(100_000)).await.unwrap().len(), 4);

    // Grants: two devices for object 3.
    index
        .insert_grant(grant(1, 3, "bob-phone", 1000))
        .await
        .unwrap();
    index
        .insert_grant(grant(2, 3, "bob-laptop", 1000))
        .await
        .unwrap();
    assert_eq!(
        index.insert_grant(grant(1, 3, "x", 1)).await,
        Err(IndexError::Duplicate)
    );
    assert_eq!(
        index.use_grant(&[7; 32], "bob-phone", t(10)).await.unwrap(),
        GrantUse::Unknown
    );
    assert_eq!(
        index
            .use_grant(&[1; 32], "bob-laptop", t(10))
            .await
            .unwrap(),
        GrantUse::WrongDevice
    );
    assert_eq!(
        index.use_grant(&[1; 32], "bob-phone", t(10)).await.unwrap(),
        GrantUse::Granted {
            key: key(3),
            remaining: 1
        }
    );
    assert_eq!(
        index.use_grant(&[1; 32], "bob-phone", t(11)).await.unwrap(),
        GrantUse::Gone
    );
    assert_eq!(
        index
            .use_grant(&[2; 32], "bob-laptop", t(1000))
            .await
            .unwrap(),
        GrantUse::Gone,
        "expired"
    );
    assert_eq!(index.drop_expired_grants(t(999)).await.unwrap(), 0);
    assert_eq!(index.drop_expired_grants(t(1000)).await.unwrap(), 2);
    assert_eq!(
        index.use_grant(&[1; 32], "bob-phone", t(11)).await.unwrap(),
        GrantUse::Unknown
    );

    index.remove_media(&key(1)).await.unwrap();
    index.remove_media(&key(1)).await.unwrap();
    assert_eq!(index.media(&key(1)).await.unwrap(), None);
}

#[tokio::test]
async fn memory_index_keeps_the_contract() {
    contract(&MemoryIndex::new()).await;
}

#[tokio::test]
async fn sqlite_index_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let index = SqlIndex::open_sqlite_dir(dir.path()).await.unwrap();
    contract(&index).await;
}

#[tokio::test]
async fn sqlite_index_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let index = SqlIndex::open_sqlite_dir(dir.path()).await.unwrap();
    let r = record(5, "carol", 42, MediaState::Stored);
    index.insert_media(r.clone()).await.unwrap();
    index
        .insert_grant(grant(5, 5, "dave-phone", 9000))
        .await
        .unwrap();
    index.close().await;
    drop(index);

    let reopened = SqlIndex::open_sqlite_dir(dir.path()).await.unwrap();
    assert_eq!(reopened.media(&key(5)).await.unwrap(), Some(r));
    assert_eq!(reopened.bytes_held_by("carol").await.unwrap(), 42);
    assert_eq!(
        reopened
            .use_grant(&[5; 32], "dave-phone", t(1))
            .await
            .unwrap(),
        GrantUse::Granted {
            key: key(5),
            remaining: 0
        }
    );
}

async fn concurrent_grant_uses_leave_exactly_one_last(index: Arc<dyn MediaIndex>) {
    index
        .insert_media(record(6, "erin", 1, MediaState::Stored))
        .await
        .unwrap();
    const DEVICES: u8 = 64;
    for d in 0..DEVICES {
        index
            .insert_grant(grant(100 + d, 6, &format!("dev-{d}"), 9000))
            .await
            .unwrap();
    }
    let uses = (0..DEVICES).map(|d| {
        let index = index.clone();
        tokio::spawn(async move {
            index
                .use_grant(&[100 + d; 32], &format!("dev-{d}"), t(1))
                .await
                .unwrap()
        })
    });
    let mut remaining: Vec<usize> = Vec::new();
    for u in uses {
        match u.await.unwrap() {
            GrantUse::Granted { remaining: r, .. } => remaining.push(r),
            other => panic!("unexpected {other:?}"),
        }
    }
    remaining.sort_unstable();
    let expected: Vec<usize> = (0..usize::from(DEVICES)).collect();
    assert_eq!(remaining, expected, "each use sees the ones before it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_serialises_concurrent_grant_uses() {
    let dir = tempfile::tempdir().unwrap();
    let index = SqlIndex::open_sqlite_dir(dir.path()).await.unwrap();
    concurrent_grant_uses_leave_exactly_one_last(Arc::new(index)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_index_keeps_the_contract_and_serialises_grant_uses() {
    let Some(cluster) = pg::PgCluster::start() else {
        return;
    };
    let index = SqlIndex::connect(&cluster.url()).await.unwrap();
    contract(&index).await;
    concurrent_grant_uses_leave_exactly_one_last(Arc::new(index.clone())).await;
    grant_use_waits_for_the_object_row_lock(&index, &cluster.url()).await;
    // The schema is created idempotently on every connect.
    index.close().await;
    let again = SqlIndex::connect(&cluster.url()).await.unwrap();
    assert_eq!(again.bytes_held_by("erin").await.unwrap(), 1);
    again.close().await;
}

/// While another transaction holds the object's row (as a concurrent
/// grant use does), a grant use of the same object waits for it: that is
/// what makes "remaining" exact under PostgreSQL's read-committed.
async fn grant_use_waits_for_the_object_row_lock(index: &SqlIndex, url: &str) {
    use sqlx::Connection;
    index
        .insert_media(record(7, "frank", 1, MediaState::Stored))
        .await
        .unwrap();
    index
        .insert_grant(grant(7, 7, "dev-7", 9000))
        .await
        .unwrap();
    let mut other = sqlx::AnyConnection::connect(url).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("UPDATE media_objects SET state = state WHERE object_key = $1")
        .bind(key(7).as_str().to_owned())
        .execute(&mut *tx)
        .await
        .unwrap();
    let mut waiting = {
        let index = index.clone();
        tokio::spawn(async move { index.use_grant(&[7; 32], "dev-7", t(1)).await.unwrap() })
    };
    // A use that did not wait would finish in milliseconds.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut waiting).await;
    assert!(
        early.is_err(),
        "the grant use did not wait for the row lock"
    );
    tx.commit().await.unwrap();
    let used = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the grant use still waits after the commit")
        .unwrap();
    assert_eq!(
        used,
        GrantUse::Granted {
            key: key(7),
            remaining: 0
        }
    );
}
