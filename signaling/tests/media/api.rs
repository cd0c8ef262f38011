//! The media JSON API as an authenticated device uses it: slot → PUT →
//! confirm → download, limits, bad input, multipart.

use serde_json::{Value, json};

use super::*;

/// `POST /api/media/uploads`.
async fn slot(server: &Running, who: &Device, size: usize, ct: &str, view_once: bool) -> Reply {
    let body = json!({"size": size, "contentType": ct, "viewOnce": view_once});
    api(
        server.http_addr,
        "POST",
        "/api/media/uploads",
        &who.token,
        &body,
    )
    .await
}

/// Slot, PUT and confirm; returns the media id.
pub async fn api_upload(
    server: &Running,
    who: &Device,
    ct: &str,
    body: &[u8],
    view_once: bool,
) -> String {
    let r = slot(server, who, body.len(), ct, view_once).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    let put = send_presigned(server.http_addr, &v["upload"], body).await;
    assert_eq!(put.status, 200);
    let path = format!("/api/media/{id}/confirm");
    let r = api(server.http_addr, "POST", &path, &who.token, &Value::Null).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    id
}

#[tokio::test]
async fn upload_confirm_and_download_over_the_api() {
    let config = test_config("media-api");
    let data_dir = config.data_dir.clone();
    let server = start(config).await;
    let addr = server.http_addr;
    let alice = register_device(&server).await;
    let bob = register_device(&server).await;

    // No token, a wrong token: 401 before anything else.
    let body = json!({"size": 3, "contentType": "image/png"});
    let r = request(
        addr,
        "POST",
        "/api/media/uploads",
        &[],
        body.to_string().as_bytes(),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (401, "unauthorized"));
    let r = api(addr, "POST", "/api/media/uploads", "not-a-token", &body).await;
    assert_eq!(r.status, 401);

    let photo = b"\x89PNG not really, but bytes".to_vec();
    let r = slot(&server, &alice, photo.len(), "image/png", false).await;
    assert_eq!(r.status, 201);
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    let confirm = format!("/api/media/{id}/confirm");
    // Confirming before the bytes arrived; someone else confirming.
    let r = api(addr, "POST", &confirm, &alice.token, &Value::Null).await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "not-uploaded"));
    assert_eq!(send_presigned(addr, &v["upload"], &photo).await.status, 200);
    let r = api(addr, "POST", &confirm, &bob.token, &Value::Null).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "not-owner"));
    let r = api(addr, "POST", &confirm, &alice.token, &Value::Null).await;
    assert_eq!(r.status, 200);
    let key = format!("media/{id}");
    assert_eq!(
        std::fs::read(data_dir.join("media/objects").join(&key)).unwrap(),
        photo
    );
    assert_eq!(media_counter(&server, "uploads_stored").await, 1);
    assert_eq!(
        media_counter(&server, "bytes_stored").await,
        photo.len() as u64
    );

    // Bob, given the id in a message, downloads it.
    let r = api(
        addr,
        "GET",
        &format!("/api/media/{id}"),
        &bob.token,
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 200);
    let got = send_presigned(addr, &r.json()["download"], b"").await;
    assert_eq!((got.status, &got.body), (200, &photo));
    assert_safe_headers(&got);

    // Unknown and malformed ids.
    for path in [
        "/api/media/0123456789abcdef0123456789abcdef",
        "/api/media/..%2Fetc",
    ] {
        let r = api(addr, "GET", path, &bob.token, &Value::Null).await;
        assert_eq!(r.status, 404, "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn size_quota_and_bad_input_get_typed_errors() {
    let mut config = test_config("media-limits");
    config.media.max_upload_bytes = 1000;
    config.media.quota_bytes_per_account = 1500;
    let server = start(config).await;
    let addr = server.http_addr;
    let alice = register_device(&server).await;
    let carol = register_device(&server).await;

    let r = slot(&server, &alice, 1001, "image/jpeg", false).await;
    assert_eq!((r.status, r.error_code().as_str()), (413, "too-large"));
    assert_eq!(
        slot(&server, &alice, 1000, "image/jpeg", false)
            .await
            .status,
        201
    );
    // The pending upload counts against the quota.
    let r = slot(&server, &alice, 600, "image/jpeg", false).await;
    assert_eq!((r.status, r.error_code().as_str()), (403, "quota-exceeded"));
    assert_eq!(
        slot(&server, &alice, 500, "image/jpeg", false).await.status,
        201
    );
    // Quotas are per account.
    assert_eq!(
        slot(&server, &carol, 600, "image/jpeg", false).await.status,
        201
    );
    assert_eq!(media_counter(&server, "slots_granted").await, 3);
    assert_eq!(media_counter(&server, "uploads_refused").await, 2);

    let r = slot(&server, &carol, 10, "", false).await;
    assert_eq!(
        (r.status, r.error_code().as_str()),
        (400, "bad-content-type")
    );
    let r = slot(&server, &carol, 10, "text/html\u{1}", false).await;
    assert_eq!(r.status, 400);
    for bad in [
        json!({"size": -1, "contentType": "a/b"}),
        json!({"contentType": "a/b"}),
        json!({"size": 1, "contentType": "a/b", "extra": 1}),
        json!("x"),
    ] {
        let r = api(addr, "POST", "/api/media/uploads", &carol.token, &bad).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (400, "bad-json"),
            "{bad}"
        );
    }
    let r = request(
        addr,
        "POST",
        "/api/media/uploads",
        &[("Authorization", &format!("Bearer {}", carol.token))],
        b"{not json",
    )
    .await;
    assert_eq!(r.status, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn multipart_upload_resumes_and_completes_over_the_api() {
    let config = test_config("media-multipart");
    let data_dir = config.data_dir.clone();
    let server = start(config).await;
    let addr = server.http_addr;
    let alice = register_device(&server).await;
    let file: Vec<u8> = (0..11 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let body = json!({"size": file.len(), "contentType": "video/mp4"});
    let r = api(addr, "POST", "/api/media/multipart", &alice.token, &body).await;
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let v = r.json();
    let id = v["id"].as_str().unwrap().to_owned();
    let part_size = v["partSize"].as_u64().unwrap() as usize;
    let parts = v["parts"].as_array().unwrap();
    assert_eq!(parts.len(), file.len().div_ceil(part_size));
    assert_eq!(parts[1]["partNumber"], 2);

    // Part 1 with the first URL; part 2 after "a network break", with a
    // fresh URL.
    let first = send_presigned(addr, &parts[0], &file[..part_size]).await;
    assert_eq!(first.status, 200);
    let path = format!("/api/media/{id}/parts");
    let r = api(addr, "POST", &path, &alice.token, &json!({"parts": [2]})).await;
    assert_eq!(r.status, 200);
    let fresh = &r.json()["parts"][0];
    assert_eq!(fresh["partNumber"], 2);
    let second = send_presigned(addr, fresh, &file[part_size..]).await;
    assert_eq!(second.status, 200);
    let r = api(addr, "POST", &path, &alice.token, &json!({"parts": [3]})).await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid-part"));

    let etag = |r: &Reply| r.header("etag").unwrap().to_owned();
    let complete = format!("/api/media/{id}/complete");
    let r = api(
        addr,
        "POST",
        &complete,
        &alice.token,
        &json!({"etags": [etag(&first)]}),
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (400, "invalid-part"));
    let etags = json!({"etags": [etag(&first), etag(&second)]});
    let r = api(addr, "POST", &complete, &alice.token, &etags).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));

    let r = api(
        addr,
        "GET",
        &format!("/api/media/{id}"),
        &alice.token,
        &Value::Null,
    )
    .await;
    let got = send_presigned(addr, &r.json()["download"], b"").await;
    assert_eq!(got.status, 200);
    assert!(got.body == file, "downloaded bytes differ");

    // An aborted upload is gone.
    let r = api(addr, "POST", "/api/media/multipart", &alice.token, &body).await;
    let other = r.json()["id"].as_str().unwrap().to_owned();
    let r = api(
        addr,
        "POST",
        &format!("/api/media/{other}/abort"),
        &alice.token,
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 204);
    let r = api(
        addr,
        "POST",
        &format!("/api/media/{other}/complete"),
        &alice.token,
        &etags,
    )
    .await;
    assert_eq!(r.status, 404);
    server.shutdown().await;
    // 11 MiB per run: do not leave it behind.
    let _ = std::fs::remove_dir_all(data_dir);
}
