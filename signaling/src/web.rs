//! The web client, embedded in the binary (no build step, nothing on disk).

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

const INDEX: &str = include_str!("../web/index.html");

/// (file name, content type, content)
const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript", include_str!("../web/app.js")),
    ("call.js", "text/javascript", include_str!("../web/call.js")),
    (
        "media.js",
        "text/javascript",
        include_str!("../web/media.js"),
    ),
    (
        "tiles.js",
        "text/javascript",
        include_str!("../web/tiles.js"),
    ),
    ("style.css", "text/css", include_str!("../web/style.css")),
];

/// Content-Security-Policy of the app: our own scripts and styles only.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; \
    frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn respond(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`
pub async fn index() -> Response {
    respond("text/html; charset=utf-8", INDEX)
}

/// `GET /app/{file}`
pub async fn asset(Path(file): Path<String>) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => respond(content_type, body),
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
