//! Uploaded `.html` and `.svg` files are served as inert attachments, both
//! by the header function and through the local backend's HTTP handler.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{local_backend, send_presigned};
use samtale_media::serve::{USER_OBJECT_CSP, user_object_headers};
use samtale_media::storage::ObjectKey;

fn check(headers: &http::HeaderMap, what: &str) {
    let get = |n: &str| headers.get(n).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        get("content-disposition").as_deref(),
        Some("attachment"),
        "{what}"
    );
    assert_eq!(
        get("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        get("content-security-policy").as_deref(),
        Some(USER_OBJECT_CSP),
        "{what}"
    );
    assert_eq!(USER_OBJECT_CSP, "sandbox; default-src 'none'");
    assert_eq!(
        get("content-type").as_deref(),
        Some("application/octet-stream"),
        "{what}"
    );
}

#[test]
fn html_and_svg_are_attachments_with_nosniff_and_csp() {
    for ct in [
        "text/html",
        "text/html; charset=utf-8",
        "image/svg+xml",
        "TEXT/HTML",
        "application/xhtml+xml",
    ] {
        check(&user_object_headers(Some(ct), Some(10)), ct);
    }
    check(&user_object_headers(None, None), "no type");
    // Inert media keep their type, still as attachments.
    let h = user_object_headers(Some("image/jpeg"), Some(3));
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["content-disposition"], "attachment");
    assert_eq!(h["content-length"], "3");
}

#[tokio::test]
async fn local_backend_serves_uploaded_html_and_svg_safely() {
    let b = local_backend().await;
    let files: [(&str, &str, &[u8]); 2] = [
        (
            "page.html",
            "text/html",
            b"<script>alert(document.cookie)</script>",
        ),
        (
            "pic.svg",
            "image/svg+xml",
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
        ),
    ];
    for (name, ct, body) in files {
        let key = ObjectKey::new(format!("media/{name}")).unwrap();
        b.storage
            .put(&key, ct, Bytes::from_static(body))
            .await
            .unwrap();
        let get = b
            .storage
            .presign_get(&key, Duration::from_secs(60))
            .unwrap();
        let r = send_presigned(&get, b"").await;
        assert_eq!(r.status, 200);
        check(&r.headers, name);
        assert_eq!(r.body.as_ref(), body);
    }
}
