//! The routes that carry media bytes, each answered with the safe headers
//! of [`user_object_headers`] (`attachment`, `nosniff`, sandboxing CSP):
//!
//! * `GET`/`HEAD`/`PUT` [`LOCAL_OBJECTS_PATH`]`/<key>?…`: the local
//!   backend's presigned URLs, verified (HMAC, constant time, expiry,
//!   signed type and length) by `LocalStorage::handle`.
//! * `POST /api/media/view-once`: redeems a single-use grant for the
//!   caller's device and streams the object through samtale (on both
//!   backends); a second use is 410 and the object is deleted once every
//!   grant is used.
//! * `GET /api/media/<id>/thumbnail`: a server-side thumbnail of stored,
//!   non-view-once, non-E2EE images, made once and then served from
//!   [`super::thumb_cache`].
//!
//! [`LOCAL_OBJECTS_PATH`]: super::LOCAL_OBJECTS_PATH

use std::time::{Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use samtale_media::index::MediaState;
use samtale_media::media::{MediaError, MediaStore};
use samtale_media::serve::user_object_headers;
use samtale_media::storage::ObjectKey;
use samtale_media::thumbnail::{OutputFormat, ThumbnailLimits, ThumbnailSpec, thumbnails};
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;

use super::MediaApiError;
use super::MediaService;
use super::auth::MediaCaller;
use super::metrics::MediaMetrics;
use super::routes::key_of;
use super::thumb_cache::ThumbKey;
use crate::app::Shared;

/// Largest thumbnail side a client may ask for.
const MAX_THUMBNAIL_SIDE: u32 = 2048;
/// How long fetching an original for a thumbnail may take.
const FETCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The local backend's presigned GET/HEAD/PUT.
pub async fn local_object(
    State(state): State<Shared>,
    Path(key): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(local) = &state.media.local else {
        return MediaApiError::new(StatusCode::NOT_FOUND, "not-found", "no local media backend")
            .into_response();
    };
    let query = uri.query().unwrap_or_default();
    let response = local.handle(&method, &key, query, &headers, body).await;
    if response.status().is_success() {
        return response.map(Body::new);
    }
    // The backend explains refusals in a line of text; answer in the
    // API's JSON error shape instead.
    let status = response.status();
    let text = axum::body::to_bytes(Body::new(response.into_body()), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "bad-request",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not-found",
        StatusCode::METHOD_NOT_ALLOWED => "method-not-allowed",
        _ => "internal",
    };
    MediaApiError::new(status, code, text).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemRequest {
    token: String,
}

/// Redeems a view-once grant (a POST: it consumes the grant, and keeps the
/// token out of URLs and logs).
pub async fn view_once(
    State(state): State<Shared>,
    caller: MediaCaller,
    body: Bytes,
) -> Result<Response, MediaApiError> {
    let req: RedeemRequest = serde_json::from_slice(&body)
        .map_err(|e| MediaApiError::new(StatusCode::BAD_REQUEST, "bad-json", e.to_string()))?;
    let download = state
        .media
        .store
        .redeem_view_once(&req.token, &caller.device, SystemTime::now())
        .await?;
    MediaMetrics::inc(&state.media.metrics.view_once_served);
    // No Content-Length: the body is chunked, so its end reaches the client
    // only after the stream ended, i.e. after the last grant's object was
    // deleted (with a length, HTTP could finish before the stream did).
    let headers = user_object_headers(Some(&download.content_type), None);
    let mut response = Body::from_stream(download).into_response();
    *response.headers_mut() = headers;
    Ok(response)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThumbnailQuery {
    /// Largest width (default 320).
    width: Option<u32>,
    /// Largest height (default: the width).
    height: Option<u32>,
    /// `webp` (default) or `jpeg`.
    format: Option<String>,
}

/// A thumbnail of stored, non-view-once media whose bytes are an image
/// (public or channel media; E2EE files are ciphertext and answer 422).
pub async fn thumbnail(
    State(state): State<Shared>,
    Path(id): Path<String>,
    _caller: MediaCaller,
    query: Result<Query<ThumbnailQuery>, QueryRejection>,
) -> Result<Response, MediaApiError> {
    let Query(q) = query.map_err(|e| MediaApiError::bad_request(e.body_text()))?;
    let key = key_of(&state, &id)?;
    let width = q.width.unwrap_or(320);
    let height = q.height.unwrap_or(width);
    if !(1..=MAX_THUMBNAIL_SIDE).contains(&width) || !(1..=MAX_THUMBNAIL_SIDE).contains(&height) {
        return Err(MediaApiError::bad_request(
            "width and height must be 1 to 2048",
        ));
    }
    let format = match q.format.as_deref() {
        None | Some("webp") => OutputFormat::WebP,
        Some("jpeg") => OutputFormat::Jpeg { quality: 82 },
        Some(_) => return Err(MediaApiError::bad_request("format must be webp or jpeg")),
    };
    let store = &state.media.store;
    let not_found = || MediaApiError::new(StatusCode::NOT_FOUND, "not-found", "no such media");
    let record = store.record(&key).await?.ok_or_else(not_found)?;
    if record.expires_at <= SystemTime::now() || record.state != MediaState::Stored {
        return Err(not_found());
    }
    if record.view_once {
        return Err(MediaApiError::new(
            StatusCode::CONFLICT,
            "view-once-only",
            "view-once media has no thumbnail",
        ));
    }
    let spec = ThumbnailSpec {
        max_width: width,
        max_height: height,
        format,
    };
    let thumb = cached_thumbnail(&state.media, &key, spec).await?;
    let headers = user_object_headers(Some(format.mime()), Some(thumb.len() as u64));
    let mut response = Body::from(thumb).into_response();
    *response.headers_mut() = headers;
    Ok(response)
}

/// The thumbnail from the cache, or made now (one job per CPU at a time)
/// and kept.
async fn cached_thumbnail(
    media: &MediaService,
    key: &ObjectKey,
    spec: ThumbnailSpec,
) -> Result<Bytes, MediaApiError> {
    let cache_key = ThumbKey {
        media: key.as_str().to_owned(),
        width: spec.max_width,
        height: spec.max_height,
        format: spec.format,
    };
    let cached = || {
        let hit = media.thumbnails.get(&cache_key, Instant::now());
        if hit.is_some() {
            MediaMetrics::inc(&media.metrics.thumbnail_cache_hits);
        }
        hit
    };
    if let Some(bytes) = cached() {
        return Ok(bytes);
    }
    let job = media
        .thumbnails
        .job()
        .await
        .ok_or_else(|| MediaApiError::busy("too many thumbnails are being made; try again"))?;
    // An equal request may have made it while this one queued.
    if let Some(bytes) = cached() {
        return Ok(bytes);
    }
    let bytes = make_thumbnail(&media.store, key, spec, job).await?;
    MediaMetrics::inc(&media.metrics.thumbnails_made);
    media
        .thumbnails
        .insert(cache_key, bytes.clone(), Instant::now());
    Ok(bytes)
}

/// Fetches the original (within [`FETCH_TIMEOUT`]) and makes one thumbnail
/// of it on a blocking thread (decoding is CPU work), which holds `job`
/// until it is done.
async fn make_thumbnail(
    store: &MediaStore,
    key: &ObjectKey,
    spec: ThumbnailSpec,
    job: OwnedSemaphorePermit,
) -> Result<Bytes, MediaApiError> {
    let limits = ThumbnailLimits::default();
    let fetch = async {
        store
            .storage()
            .get(key)
            .await?
            .into_bytes(limits.max_input_bytes as u64)
            .await
    };
    let original = tokio::time::timeout(FETCH_TIMEOUT, fetch)
        .await
        .map_err(|_| MediaApiError::busy("the original took too long to fetch; try again"))?
        .map_err(MediaError::from)?;
    let made = tokio::task::spawn_blocking(move || {
        let made = thumbnails(&original, &[spec], &limits);
        drop(job);
        made
    })
    .await
    .map_err(|_| MediaApiError::internal())?;
    let thumb = made
        .map_err(|e| {
            MediaApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-an-image",
                e.to_string(),
            )
        })?
        .pop()
        .ok_or_else(MediaApiError::internal)?;
    Ok(Bytes::from(thumb.bytes))
}
