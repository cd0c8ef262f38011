//! The sweeper timer, and what survives a restart.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use samtale_media::index::MediaState;

use super::*;

#[tokio::test]
async fn sweeper_timer_deletes_expired_media_and_stops_on_shutdown() {
    let mut config = test_config("media-sweeper");
    config.media.ttl = Duration::from_secs(1);
    config.media.sweep_interval = Duration::from_millis(50);
    let data_dir = config.data_dir.clone();
    let server = start(config).await;
    let key = upload(&server, "acct-1", "image/jpeg", b"short-lived", false).await;
    let file = object_file(&data_dir, &key);
    assert!(file.exists());
    let state = server.state.clone();
    // The counter moves after the deletion: wait for all three.
    eventually("the sweeper deletes the expired object", async || {
        !file.exists()
            && state.media.store.record(&key).await.unwrap().is_none()
            && media_counter(&server, "swept_objects").await >= 1
    })
    .await;
    assert!(state.media.sweeper_running());
    server.shutdown().await;
    assert!(
        !state.media.sweeper_running(),
        "sweeper stopped with the server"
    );
}

#[tokio::test]
async fn records_grants_and_signed_urls_survive_a_restart() {
    let config = test_config("media-restart");
    let data_dir = config.data_dir.clone();
    let first = start(config.clone()).await;
    let key = upload(
        &first,
        "acct-1",
        "image/jpeg",
        b"kept across restarts",
        false,
    )
    .await;
    let get = download_url(&first, &key).await;
    let once = upload(&first, "acct-1", "image/jpeg", b"see me once", true).await;
    let grants = first
        .state
        .media
        .store
        .issue_view_once_grants("acct-1", &once, &["dev-b".to_owned()], SystemTime::now())
        .await
        .unwrap();
    first.shutdown().await;

    let second = start(config).await;
    let store = &second.state.media.store;
    let record = store.record(&key).await.unwrap().unwrap();
    assert_eq!((record.state, record.size), (MediaState::Stored, 20));
    assert_eq!(store.storage().head(&key).await.unwrap().size, 20);
    // A URL signed before the restart still verifies (persisted secret).
    let path = &get.url[get.url.find(samtale::media::LOCAL_OBJECTS_PATH).unwrap()..];
    let r = request(second.http_addr, "GET", path, &[], b"").await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (200, &b"kept across restarts"[..])
    );
    // The grant issued before the restart still works, once.
    let mut download = store
        .redeem_view_once(&grants[0].token, "dev-b", SystemTime::now())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Some(chunk) = download.next().await {
        seen.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(seen, b"see me once");
    assert!(
        !object_file(&data_dir, &once).exists(),
        "view-once object deleted"
    );
    second.shutdown().await;
}
