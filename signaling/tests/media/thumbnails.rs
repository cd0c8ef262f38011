//! Server-side thumbnails of public (non-E2EE) images, served with the
//! safe headers; bad requests get typed errors.

use std::io::Cursor;

use serde_json::Value;

use super::api::api_upload;
use super::*;

/// A 640 × 480 PNG gradient.
fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(640, 480, |x, y| {
        image::Rgb([(x / 3) as u8, (y / 2) as u8, 128])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn public_images_get_thumbnails_and_the_rest_typed_errors() {
    let server = start(test_config("media-thumbs")).await;
    let addr = server.http_addr;
    let alice = register_device(&server).await;
    let bob = register_device(&server).await;
    let id = api_upload(&server, &alice, "image/png", &png(), false).await;

    let path = format!("/api/media/{id}/thumbnail?width=160");
    let r = api(addr, "GET", &path, &bob.token, &Value::Null).await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("image/webp"));
    assert_safe_headers(&r);
    let thumb = image::load_from_memory_with_format(&r.body, image::ImageFormat::WebP).unwrap();
    assert_eq!((thumb.width(), thumb.height()), (160, 120));

    for (query, code) in [
        ("width=0", 400),
        ("width=5000", 400),
        ("format=gif", 400),
        ("colour=red", 400),
    ] {
        let path = format!("/api/media/{id}/thumbnail?{query}");
        let r = api(addr, "GET", &path, &bob.token, &Value::Null).await;
        assert_eq!(
            (r.status, r.error_code().as_str()),
            (code, "bad-request"),
            "{query}"
        );
    }
    // E2EE files are ciphertext, whatever type they declare.
    let sealed = api_upload(&server, &alice, "image/jpeg", &[0x5a; 4096], false).await;
    let r = api(
        addr,
        "GET",
        &format!("/api/media/{sealed}/thumbnail"),
        &bob.token,
        &Value::Null,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (422, "not-an-image"));
    // View-once media has none.
    let once = api_upload(&server, &alice, "image/png", &png(), true).await;
    let r = api(
        addr,
        "GET",
        &format!("/api/media/{once}/thumbnail"),
        &bob.token,
        &Value::Null,
    )
    .await;
    assert_eq!((r.status, r.error_code().as_str()), (409, "view-once-only"));
    // Without a token, nothing.
    let r = request(addr, "GET", &format!("/api/media/{id}/thumbnail"), &[], b"").await;
    assert_eq!(r.status, 401);
    server.shutdown().await;
}

#[tokio::test]
async fn a_thumbnail_is_made_once_and_never_outlives_its_media() {
    let server = start(test_config("media-thumb-cache")).await;
    let addr = server.http_addr;
    let alice = register_device(&server).await;
    let id = api_upload(&server, &alice, "image/png", &png(), false).await;
    let get = async |query: &str| {
        let path = format!("/api/media/{id}/thumbnail?{query}");
        api(addr, "GET", &path, &alice.token, &Value::Null).await
    };

    let first = get("width=160").await;
    assert_eq!(first.status, 200);
    let again = get("width=160").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body, "the cached thumbnail is the same");
    assert_safe_headers(&again);
    assert_eq!(media_counter(&server, "thumbnails_made").await, 1);
    assert_eq!(media_counter(&server, "thumbnail_cache_hits").await, 1);

    // Another size or format is another thumbnail.
    let jpeg = get("width=160&format=jpeg").await;
    assert_eq!(jpeg.header("content-type"), Some("image/jpeg"));
    let wide = get("width=320").await;
    let decoded = image::load_from_memory(&wide.body).unwrap();
    assert_eq!((decoded.width(), decoded.height()), (320, 240));
    assert_eq!(media_counter(&server, "thumbnails_made").await, 3);

    // Once the media is swept away, its cached thumbnail is not served.
    let store = &server.state.media.store;
    let ttl = store.config().media_ttl;
    let swept = store
        .sweep(std::time::SystemTime::now() + ttl + Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(swept.expired, 1);
    let gone = get("width=160").await;
    assert_eq!(
        (gone.status, gone.error_code().as_str()),
        (404, "not-found")
    );
    assert_eq!(media_counter(&server, "thumbnail_cache_hits").await, 1);
    server.shutdown().await;
}
