//! View-once media over the API, on the local backend and on S3: one
//! grant per recipient device, streamed through samtale, a second use is
//! 410, and the object is gone from storage once every grant was used.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::api::api_upload;
use super::*;

async fn redeem(server: &Running, who: &Device, token: &str) -> Reply {
    let body = json!({"token": token});
    api(
        server.http_addr,
        "POST",
        "/api/media/view-once",
        &who.token,
        &body,
    )
    .await
}

/// Runs the view-once story on `server`; `stored(key)` is where the
/// backend keeps the object's bytes.
async fn view_once_story(server: &Running, stored: impl Fn(&str) -> PathBuf) {
    let addr = server.http_addr;
    let alice = register_device(server).await;
    let bob_phone = register_device(server).await;
    let bob_laptop = register_device(server).await;
    let secret = b"a photo to see once".to_vec();
    let id = api_upload(server, &alice, "image/jpeg", &secret, true).await;
    let file = stored(&format!("media/{id}"));
    assert_eq!(std::fs::read(&file).unwrap(), secret);

    // No replayable URL for view-once media.
    let r = api(
        addr,
        "GET",
        &format!("/api/media/{id}"),
        &bob_phone.token,
        &Value::Null,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "view-once-only"));

    // Only the owner issues grants, one per device.
    let grants = format!("/api/media/{id}/grants");
    let devices = json!({"devices": [bob_phone.device, bob_laptop.device]});
    let r = api(addr, "POST", &grants, &bob_phone.token, &devices).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "not-owner"));
    for bad in [json!({"devices": []}), json!({"devices": ["not-a-device"]})] {
        let r = api(addr, "POST", &grants, &alice.token, &bad).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad-device"),
            "{bad}"
        );
    }
    let r = api(addr, "POST", &grants, &alice.token, &devices).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let issued = r.json()["grants"].as_array().unwrap().clone();
    let token_for = |device: &str| {
        issued
            .iter()
            .find(|g| g["device"] == device)
            .and_then(|g| g["token"].as_str())
            .unwrap()
            .to_owned()
    };
    let phone_token = token_for(&bob_phone.device);
    let laptop_token = token_for(&bob_laptop.device);

    // A grant works only for its device, and an unknown one not at all.
    let r = redeem(server, &bob_laptop, &phone_token).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "wrong-device"));
    let r = redeem(server, &bob_phone, "no-such-grant").await;
    assert_eq!((r.status, r.error_code().as_str()), (404, "unknown-grant"));

    // First view: the bytes, with the safe headers; the laptop's grant
    // keeps the object alive.
    let r = redeem(server, &bob_phone, &phone_token).await;
    assert_eq!((r.status, &r.body), (200, &secret));
    assert_safe_headers(&r);
    assert_eq!(r.header("cache-control"), Some("private, no-store"));
    // Chunked, so the end of the body is sent after the deletion.
    assert_eq!(r.header("content-length"), None);
    let again = redeem(server, &bob_phone, &phone_token).await;
    assert_eq!((again.status, again.error_code().as_str()), (410, "gone"));
    assert!(file.exists(), "the laptop has not viewed it yet");

    // Last view: the object is deleted before the stream ends.
    let r = redeem(server, &bob_laptop, &laptop_token).await;
    assert_eq!((r.status, &r.body), (200, &secret));
    assert!(!file.exists(), "view-once object still in storage");
    let again = redeem(server, &bob_laptop, &laptop_token).await;
    assert_eq!(again.status, 410);
    assert_eq!(media_counter(server, "view_once_served").await, 2);
}

#[tokio::test]
async fn view_once_on_the_local_backend() {
    let config = test_config("media-view-once");
    let objects = config.data_dir.join("media/objects");
    let server = start(config).await;
    view_once_story(&server, |key| objects.join(key)).await;
    server.shutdown().await;
}

#[tokio::test]
async fn view_once_on_s3() {
    let s3 = common::s3s::S3s::start();
    let server = start(s3_config("media-view-once-s3", &s3)).await;
    view_once_story(&server, |key| s3.object_file(key)).await;
    server.shutdown().await;
}
