//! The S3 backend, configured like an operator would, against s3s-fs.

use std::time::SystemTime;

use super::*;

#[tokio::test]
async fn s3_backend_hands_out_sigv4_urls_that_s3s_fs_accepts() {
    let s3 = common::s3s::S3s::start();
    let server = start(s3_config("media-s3", &s3)).await;
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
        server.http_addr,
        "PUT",
        &slot.request.url,
        &[("Content-Type", "text/html")],
        body,
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        send_presigned(server.http_addr, &put, body).await.status,
        200
    );
    store
        .confirm_upload("acct-1", &slot.key, now)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(s3.object_file(slot.key.as_str())).unwrap(),
        body
    );

    let get = store.download_url(&slot.key, now).await.unwrap();
    let r = request(server.http_addr, "GET", &get.url, &[], b"").await;
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
