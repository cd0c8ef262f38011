//! Media against a real running samtale: the local backend's signed URLs
//! (PUT, GET, tampering, expiry, safe headers), the sweeper timer, state
//! that survives a restart, the S3 backend against s3s-fs, and the JSON
//! API of an authenticated device.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

#[path = "../common/mod.rs"]
mod common;

mod api;
mod e2ee;
mod lifecycle;
mod local_urls;
mod process;
mod s3;
mod thumbnails;
mod view_once;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use common::media_http::{Reply, request, send_presigned};
pub use common::server::*;
use samtale::Running;
use samtale_media::storage::{ObjectKey, PresignedRequest};
use serde_json::{Value, json};

pub fn presigned_json(r: &PresignedRequest) -> Value {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({"method": r.method.as_str(), "url": r.url, "headers": headers})
}

/// Uploads `body` through a slot granted straight by the store (no API
/// auth needed) and confirms it.
pub async fn upload(
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

/// The value of counter `samtale_media_<name>_total` on `/metrics`.
pub async fn media_counter(server: &Running, name: &str) -> u64 {
    let r = request(server.http_addr, "GET", "/metrics", &[], b"").await;
    let text = String::from_utf8(r.body).unwrap();
    let prefix = format!("samtale_media_{name}_total ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in /metrics"))
        .parse()
        .unwrap()
}

/// A presigned GET for stored media, straight from the store.
pub async fn download_url(server: &Running, key: &ObjectKey) -> PresignedRequest {
    let store = &server.state.media.store;
    store.download_url(key, SystemTime::now()).await.unwrap()
}

pub fn object_file(data_dir: &Path, key: &ObjectKey) -> PathBuf {
    data_dir.join("media").join("objects").join(key.as_str())
}

/// The headers every user object must carry.
pub fn assert_safe_headers(r: &Reply) {
    assert_eq!(r.header("content-disposition"), Some("attachment"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("sandbox") && csp.contains("default-src 'none'"),
        "{csp}"
    );
}

/// Polls `done` every 20 ms until it holds; fails after 10 s.
pub async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A config whose media live in the S3 bucket of `s3`.
pub fn s3_config(tag: &str, s3: &common::s3s::S3s) -> samtale::Config {
    use samtale::media::config::{MediaBackend, S3Settings, S3UrlStyle, SecretString};
    let mut config = test_config(tag);
    config.media.backend = MediaBackend::S3;
    config.media.s3 = Some(S3Settings {
        endpoint: s3.endpoint.clone(),
        region: "us-east-1".into(),
        bucket: common::s3s::BUCKET.into(),
        url_style: S3UrlStyle::Path,
        access_key: Some(common::s3s::ACCESS_KEY.into()),
        secret_key: Some(SecretString(common::s3s::SECRET_KEY.into())),
    });
    config
}

/// A registered device and its bearer token.
pub struct Device {
    pub account: String,
    pub device: String,
    pub token: String,
}

/// Registers a new account with one device (the messaging login flow).
pub async fn register_device(server: &Running) -> Device {
    let url = format!("http://{}", server.http_addr);
    let client = samtale_messaging::client::Client::register(&url, "Media Tester", "phone")
        .await
        .unwrap();
    let caller = client.caller();
    Device {
        account: caller.account_id.to_string(),
        device: caller.device_id.to_string(),
        token: client.access_token().to_owned(),
    }
}

/// A JSON API call with `who`'s token.
pub use common::media_http::api;
