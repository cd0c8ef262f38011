//! Media against a real running samtale: the local backend's signed URLs
//! (PUT, GET, tampering, expiry, safe headers), the sweeper timer, and
//! state that survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::media_http::{Reply, request, send_presigned};
use common::server::*;
use futures_util::StreamExt;
use samtale::Running;
use samtale_media::ManualClock;
use samtale_media::index::MediaState;
use samtale_media::storage::{LocalSigner, LocalStorage, ObjectKey, PresignedRequest, Storage};
use serde_json::{Value, json};

fn presigned_json(r: &PresignedRequest) -> Value {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({"method": r.method.as_str(), "url": r.url, "headers": headers})
}

/// Uploads `body` through a slot granted straight by the store (no API
/// auth needed) and confirms it.
async fn upload(
    server: &Running,
    owner: &str,
    ct: &str,
    body: &[u8],
    view_once: bool,
) -> ObjectKey {
    let store = &server.state.media.store;
    let now = SystemTime::now();
    let slot = store
        .request_upload(owner, ct, body.len() as u64, view_once, now)
        .await
        .unwrap();
    let put = send_presigned(server.http_addr, &presigned_json(&slot.request), body).await;
    assert_eq!(put.status, 200, "{:?}", String::from_utf8_lossy(&put.body));
    store.confirm_upload(owner, &slot.key, now).await.unwrap();
    slot.key
}

fn object_file(data_dir: &Path, key: &ObjectKey) -> std::path::PathBuf {
    data_dir.join("media").join("objects").join(key.as_str())
}

/// The headers every user object must carry.
fn assert_safe_headers(r: &Reply) {
    assert_eq!(r.header("content-disposition"), Some("attachment"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
}

#[tokio::test]
async fn html_and_svg_uploads_are_served_as_inert_attachments() {
    let config = test_config("media-headers");
    let data_dir = config.data_dir.clone();
    let server = start(config).await;
    let page = b"<html><script>alert(document.cookie)</script></html>";
    let svg = br#"<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>"#;
    for (ct, body) in [("text/html", &page[..]), ("image/svg+xml", &svg[..])] {
        let key = upload(&server, "acct-1", ct, body, false).await;
        assert_eq!(std::fs::read(object_file(&data_dir, &key)).unwrap(), body);
        let get = server
            .state
            .media
            .store
            .download_url(&key, SystemTime::now())
            .await
            .unwrap();
        let r = request(server.http_addr, "GET", &get.url, &[], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, body);
        assert_safe_headers(&r);
        assert_eq!(
            r.header("content-type"),
            Some("application/octet-stream"),
            "{ct}"
        );
        let head = request(server.http_addr, "HEAD", &get.url, &[], b"").await;
        assert_eq!(head.status, 200);
        assert_safe_headers(&head);
    }
    // An inert image type keeps its type, still as an attachment.
    let key = upload(&server, "acct-1", "image/png", b"\x89PNG....", false).await;
    let get = server
        .state
        .media
        .store
        .download_url(&key, SystemTime::now())
        .await
        .unwrap();
    let r = request(server.http_addr, "GET", &get.url, &[], b"").await;
    assert_eq!(r.header("content-type"), Some("image/png"));
    assert_safe_headers(&r);
    server.shutdown().await;
}

/// A local backend signing with the server's persisted secret, at `clock`.
async fn forger(data_dir: &Path, base: &str, clock: Arc<ManualClock>) -> LocalStorage {
    let secret: [u8; 32] = std::fs::read(data_dir.join(samtale::media::LOCAL_SECRET_FILE))
        .unwrap()
        .try_into()
        .unwrap();
    let scratch = temp_dir("media-forger");
    LocalStorage::open(scratch, base, LocalSigner::new(secret), clock)
        .await
        .unwrap()
}

#[tokio::test]
async fn tampered_expired_and_mismatched_requests_are_refused() {
    let config = test_config("media-signatures");
    let data_dir = config.data_dir.clone();
    let server = start(config).await;
    let addr = server.http_addr;
    let store = &server.state.media.store;
    let key = upload(&server, "acct-1", "image/jpeg", b"0123456789", false).await;
    let get = store.download_url(&key, SystemTime::now()).await.unwrap();
    assert_eq!(request(addr, "GET", &get.url, &[], b"").await.status, 200);

    // One character of the signature changed.
    let sig_at = get.url.find("sig=").unwrap() + 4;
    let mut tampered = get.url.clone().into_bytes();
    tampered[sig_at] = if tampered[sig_at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let r = request(addr, "GET", &tampered, &[], b"").await;
    assert_eq!(r.status, 403, "{}", String::from_utf8_lossy(&r.body));
    // The signature of one object used for another.
    let other = upload(&server, "acct-1", "image/jpeg", b"abc", false).await;
    let moved = get.url.replace(key.as_str(), other.as_str());
    assert_eq!(request(addr, "GET", &moved, &[], b"").await.status, 403);
    // A later expiry under the same signature.
    let expires_at = get.url.find("expires=").unwrap() + 8;
    let mut later = get.url.clone().into_bytes();
    later[expires_at] = if later[expires_at] == b'9' {
        b'8'
    } else {
        b'9'
    };
    let later = String::from_utf8(later).unwrap();
    assert_eq!(request(addr, "GET", &later, &[], b"").await.status, 403);

    // Correctly signed with the server's secret, but expired an hour ago.
    let base = format!("http://{addr}{}", samtale::media::LOCAL_OBJECTS_PATH);
    let clock = Arc::new(ManualClock::new(
        SystemTime::now() - Duration::from_secs(7200),
    ));
    let forger = forger(&data_dir, &base, clock.clone()).await;
    let expired = forger.presign_get(&key, Duration::from_secs(3600)).unwrap();
    let r = request(addr, "GET", &expired.url, &[], b"").await;
    assert_eq!(r.status, 403);
    assert!(String::from_utf8_lossy(&r.body).contains("expired"));
    // The same, still valid: proves the forger signs like the server.
    clock.set(SystemTime::now());
    let fresh = forger.presign_get(&key, Duration::from_secs(3600)).unwrap();
    assert_eq!(request(addr, "GET", &fresh.url, &[], b"").await.status, 200);

    // Uploads: another content type, another length, a replay after expiry.
    let slot = store
        .request_upload("acct-1", "image/jpeg", 4, false, SystemTime::now())
        .await
        .unwrap();
    let url = &slot.request.url;
    let wrong_type = request(addr, "PUT", url, &[("Content-Type", "text/html")], b"abcd").await;
    assert_eq!(wrong_type.status, 403);
    let short = request(addr, "PUT", url, &[("Content-Type", "image/jpeg")], b"abc").await;
    assert_eq!(short.status, 403);
    let long = request(
        addr,
        "PUT",
        url,
        &[("Content-Type", "image/jpeg")],
        b"abcde",
    )
    .await;
    assert_eq!(long.status, 403);
    let not_put = request(addr, "DELETE", url, &[], b"").await;
    assert!(
        not_put.status == 405 || not_put.status == 403,
        "{}",
        not_put.status
    );
    assert!(
        !object_file(&data_dir, &slot.key).exists(),
        "nothing stored"
    );
    let r = request(addr, "PUT", url, &[("Content-Type", "image/jpeg")], b"abcd").await;
    assert_eq!(r.status, 200);
    assert!(object_file(&data_dir, &slot.key).exists());
    server.shutdown().await;
}

/// Polls `done` every 20 ms until it holds; fails after 10 s.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

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
    eventually("the sweeper deletes the expired object", async || {
        !file.exists() && state.media.store.record(&key).await.unwrap().is_none()
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
    let get = first
        .state
        .media
        .store
        .download_url(&key, SystemTime::now())
        .await
        .unwrap();
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
    let r = request(second.http_addr, "GET", &get.url, &[], b"").await;
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

#[tokio::test]
async fn s3_backend_hands_out_sigv4_urls_that_s3s_fs_accepts() {
    use samtale::media::config::{MediaBackend, S3Settings, S3UrlStyle, SecretString};
    let s3 = common::s3s::S3s::start();
    let mut config = test_config("media-s3");
    config.media.backend = MediaBackend::S3;
    config.media.s3 = Some(S3Settings {
        endpoint: s3.endpoint.clone(),
        region: "us-east-1".into(),
        bucket: common::s3s::BUCKET.into(),
        url_style: S3UrlStyle::Path,
        access_key: Some(common::s3s::ACCESS_KEY.into()),
        secret_key: Some(SecretString(common::s3s::SECRET_KEY.into())),
    });
    let server = start(config).await;
    let store = &server.state.media.store;
    let now = SystemTime::now();
    let body = b"<svg onload=alert(1)/>";
    let slot = store
        .request_upload("acct-1", "image/svg+xml", body.len() as u64, false, now)
        .await
        .unwrap();
    assert!(slot.request.url.starts_with(&s3.endpoint));
    assert!(slot.request.url.contains("X-Amz-Signature="));
    let put = presigned_json(&slot.request);
    // A changed content type breaks the signature; the signed one passes.
    let r = request(
        s3.addr,
        "PUT",
        &slot.request.url,
        &[("Content-Type", "text/html")],
        body,
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(send_presigned(s3.addr, &put, body).await.status, 200);
    store
        .confirm_upload("acct-1", &slot.key, now)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(s3.object_file(slot.key.as_str())).unwrap(),
        body
    );

    let get = store.download_url(&slot.key, now).await.unwrap();
    let r = request(s3.addr, "GET", &get.url, &[], b"").await;
    assert_eq!((r.status, r.body.as_slice()), (200, &body[..]));
    assert_eq!(r.header("content-disposition"), Some("attachment"));
    // samtale serves no local objects in S3 mode.
    let local = format!("{}/{}", samtale::media::LOCAL_OBJECTS_PATH, slot.key);
    assert_eq!(
        request(server.http_addr, "GET", &local, &[], b"")
            .await
            .status,
        404
    );
    server.shutdown().await;
}
