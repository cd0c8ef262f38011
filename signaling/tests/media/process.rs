//! The `samtale` binary as an operator runs it: `[media]` from a config
//! file, the S3 keys from the environment, logs at debug level. Media
//! flows through it, and the log shows no secret: not the S3 secret key,
//! not a presigned signature, not a view-once token, not an access token.

use std::net::SocketAddr;

use samtale::media::config::{S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV};
use samtale_messaging::client::Client;
use serde_json::{Value, json};

use super::*;
use crate::common::process::ServerProcess;
use crate::common::s3s::{ACCESS_KEY, BUCKET, S3s, SECRET_KEY};

/// Slot, PUT (to the bucket) and confirm; returns the id and the PUT's
/// signature.
async fn upload(addr: SocketAddr, token: &str, body: &[u8], view_once: bool) -> (String, String) {
    let slot = json!({"size": body.len(), "contentType": "image/jpeg", "viewOnce": view_once});
    let r = api(addr, "POST", "/api/media/uploads", token, &slot).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let url = v["upload"]["url"].as_str().unwrap();
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().to_owned();
    assert_eq!(send_presigned(addr, &v["upload"], body).await.status, 200);
    let id = v["id"].as_str().unwrap().to_owned();
    let confirm = format!("/api/media/{id}/confirm");
    assert_eq!(
        api(addr, "POST", &confirm, token, &Value::Null)
            .await
            .status,
        200
    );
    (id, signature)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_s3_media_from_its_config_and_logs_no_secret() {
    let s3 = S3s::start();
    let dir = temp_dir("media-process");
    let config = dir.join("samtale.toml");
    std::fs::write(
        &config,
        format!(
            "[media]\nbackend = \"s3\"\n\n[media.s3]\nendpoint = \"{}\"\nregion = \"us-east-1\"\nbucket = \"{BUCKET}\"\n",
            s3.endpoint
        ),
    )
    .unwrap();
    let log = dir.join("server.log");
    let server = ServerProcess::start_with(
        &dir.join("data"),
        &log,
        &["--config", config.to_str().unwrap()],
        &[
            (S3_ACCESS_KEY_ENV, ACCESS_KEY),
            (S3_SECRET_KEY_ENV, SECRET_KEY),
        ],
    );
    let addr: SocketAddr = server.url.strip_prefix("http://").unwrap().parse().unwrap();
    let alice = Client::register(&server.url, "Alice", "phone")
        .await
        .unwrap();
    let bob = Client::register(&server.url, "Bob", "phone").await.unwrap();

    let (id, put_signature) = upload(addr, alice.access_token(), b"public photo", false).await;
    let r = api(
        addr,
        "GET",
        &format!("/api/media/{id}"),
        bob.access_token(),
        &Value::Null,
    )
    .await;
    let download = &r.json()["download"];
    let get_signature = download["url"]
        .as_str()
        .unwrap()
        .split("X-Amz-Signature=")
        .nth(1)
        .unwrap()
        .to_owned();
    let got = send_presigned(addr, download, b"").await;
    assert_eq!(
        (got.status, got.body.as_slice()),
        (200, &b"public photo"[..])
    );

    let (once, _) = upload(addr, alice.access_token(), b"see me once", true).await;
    let devices = json!({"devices": [bob.caller().device_id.to_string()]});
    let r = api(
        addr,
        "POST",
        &format!("/api/media/{once}/grants"),
        alice.access_token(),
        &devices,
    )
    .await;
    let token = r.json()["grants"][0]["token"].as_str().unwrap().to_owned();
    let redeem = json!({"token": token});
    let r = api(
        addr,
        "POST",
        "/api/media/view-once",
        bob.access_token(),
        &redeem,
    )
    .await;
    assert_eq!((r.status, r.body.as_slice()), (200, &b"see me once"[..]));
    let r = api(
        addr,
        "POST",
        "/api/media/view-once",
        bob.access_token(),
        &redeem,
    )
    .await;
    assert_eq!(r.status, 410);
    assert!(!s3.object_file(&format!("media/{once}")).exists());
    drop(server);

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("DEBUG"), "the log is at debug level");
    for (what, secret) in [
        ("the S3 secret key", SECRET_KEY),
        ("a PUT signature", put_signature.as_str()),
        ("a GET signature", get_signature.as_str()),
        ("a view-once token", token.as_str()),
        ("an access token", alice.access_token()),
    ] {
        assert!(!text.contains(secret), "{what} in the log");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
