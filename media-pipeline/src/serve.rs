//! Headers for serving user uploads from samtale's own origin.
//!
//! Stored XSS must be impossible, whatever a user uploaded (an `.html`
//! page, an `.svg` with script): every user object is served
//!
//! * as `Content-Disposition: attachment` (browsers download, never render),
//! * with `X-Content-Type-Options: nosniff` (no guessing HTML from bytes),
//! * with `Content-Security-Policy: sandbox; default-src 'none'` (if it is
//!   rendered anyway, it runs in an opaque origin with no script, no
//!   requests),
//! * with a `Content-Type` from a short allow-list of inert media types
//!   (raster images, audio, video); everything else, HTML and SVG included,
//!   as `application/octet-stream`,
//! * `Cross-Origin-Resource-Policy: same-origin` and `Cache-Control:
//!   private, no-store` (view-once media must not stay in caches).

use http::HeaderValue;
use http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    HeaderMap, HeaderName, X_CONTENT_TYPE_OPTIONS,
};

/// The CSP put on every user object.
pub const USER_OBJECT_CSP: &str = "sandbox; default-src 'none'";

const SAFE_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "image/gif",
    "image/avif",
    "audio/ogg",
    "audio/opus",
    "audio/mpeg",
    "audio/mp4",
    "audio/webm",
    "video/mp4",
    "video/webm",
];

/// The content type to serve for a declared one: itself if it is an inert
/// media type on the allow-list (parameters dropped), else
/// `application/octet-stream`.
pub fn served_content_type(declared: Option<&str>) -> &'static str {
    let essence = declared
        .and_then(|d| d.split(';').next())
        .map(|d| d.trim().to_ascii_lowercase());
    essence
        .and_then(|e| SAFE_TYPES.iter().find(|t| **t == e).copied())
        .unwrap_or("application/octet-stream")
}

/// Response headers for a user object with the declared content type and,
/// if known, its length.
pub fn user_object_headers(declared_content_type: Option<&str>, length: Option<u64>) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(served_content_type(declared_content_type)),
    );
    h.insert(CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(USER_OBJECT_CSP),
    );
    h.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("same-origin"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    if let Some(len) = length {
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    }
    h
}
