//! The local backend's presigned URLs as samtale serves them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use samtale_media::ManualClock;
use samtale_media::storage::{LocalSigner, LocalStorage, Storage};

use super::*;

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
        let get = download_url(&server, &key).await;
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
    let get = download_url(&server, &key).await;
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
    let get = download_url(&server, &key).await;
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
    assert_eq!((r.status, r.error_code().as_str()), (403, "forbidden"));
    let message = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("expired"), "{message}");
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
