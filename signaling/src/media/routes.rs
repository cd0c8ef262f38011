//! The media JSON API for authenticated devices (`docs/MEDIA.md`):
//! upload slots, confirmation, download URLs, multipart uploads and
//! view-once grants. Media is named by its id, the random part of its
//! object key (32 hex characters).

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, body::Bytes};
use samtale_media::media::MediaError;
use samtale_media::storage::{ObjectKey, PresignedRequest};
use samtale_messaging::DeviceId;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::MediaApiError;
use super::auth::MediaCaller;
use super::metrics::MediaMetrics;
use crate::app::Shared;

/// Most devices one grant request may name.
const MAX_GRANT_DEVICES: usize = 256;

/// Largest JSON body of a media request (a completion of 10 000 parts).
const MAX_JSON_BODY: usize = 1024 * 1024;

/// The media API routes (to merge into the app router).
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/media/uploads", post(request_upload))
        .route("/api/media/multipart", post(request_multipart))
        .route("/api/media/view-once", post(super::serve::view_once))
        .route("/api/media/{id}", get(download_url))
        .route("/api/media/{id}/confirm", post(confirm))
        .route("/api/media/{id}/parts", post(part_urls))
        .route("/api/media/{id}/complete", post(complete))
        .route("/api/media/{id}/abort", post(abort))
        .route("/api/media/{id}/grants", post(grants))
        .route("/api/media/{id}/thumbnail", get(super::serve::thumbnail))
        .route(
            &format!("{}/{{*key}}", super::LOCAL_OBJECTS_PATH),
            get(super::serve::local_object).put(super::serve::local_object),
        )
        // JSON bodies up to 1 MiB (the app's 16 KiB layer does not reach
        // merged routes); presigned PUT bodies stream, bounded by their
        // signed length.
        .layer(DefaultBodyLimit::max(MAX_JSON_BODY))
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, MediaApiError> {
    serde_json::from_slice(body)
        .map_err(|e| MediaApiError::new(StatusCode::BAD_REQUEST, "bad-json", e.to_string()))
}

/// The object key of a media id (`<prefix>/<32 lowercase hex>`).
pub(super) fn key_of(state: &Shared, id: &str) -> Result<ObjectKey, MediaApiError> {
    let well_formed = id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    let not_found = || MediaApiError::new(StatusCode::NOT_FOUND, "not-found", "no such media");
    if !well_formed {
        return Err(not_found());
    }
    let prefix = &state.media.store.config().prefix;
    ObjectKey::new(format!("{prefix}/{id}")).map_err(|_| not_found())
}

fn id_of(key: &ObjectKey) -> &str {
    key.as_str().rsplit('/').next().unwrap_or_default()
}

fn presigned(r: &PresignedRequest) -> Value {
    let headers: serde_json::Map<String, Value> = r
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "method": r.method.as_str(),
        "url": r.url,
        "headers": headers,
        "expiresAt": unix(r.expires_at),
    })
}

/// A presigned part upload with its `partNumber`.
fn numbered_part((number, request): (u16, &PresignedRequest)) -> Value {
    let mut v = presigned(request);
    v["partNumber"] = json!(number);
    v
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UploadRequest {
    size: u64,
    content_type: String,
    #[serde(default)]
    view_once: bool,
}

async fn request_upload(
    State(state): State<Shared>,
    caller: MediaCaller,
    body: Bytes,
) -> Result<Response, MediaApiError> {
    grant_slot(&state, &caller, &body, false).await
}

async fn request_multipart(
    State(state): State<Shared>,
    caller: MediaCaller,
    body: Bytes,
) -> Result<Response, MediaApiError> {
    grant_slot(&state, &caller, &body, true).await
}

/// A single or multipart upload slot for a declared size and type.
async fn grant_slot(
    state: &Shared,
    caller: &MediaCaller,
    body: &[u8],
    multipart: bool,
) -> Result<Response, MediaApiError> {
    let req: UploadRequest = parse(body)?;
    let (store, now) = (&state.media.store, SystemTime::now());
    let (owner, ct) = (caller.account.as_str(), req.content_type.as_str());
    let answer = if multipart {
        store
            .request_multipart_upload(owner, ct, req.size, req.view_once, now)
            .await
            .map(|slot| {
                let parts: Vec<Value> = (1..).zip(&slot.parts).map(numbered_part).collect();
                json!({"id": id_of(&slot.key), "partSize": slot.part_size, "parts": parts})
            })
    } else {
        store
            .request_upload(owner, ct, req.size, req.view_once, now)
            .await
            .map(|slot| json!({"id": id_of(&slot.key), "upload": presigned(&slot.request)}))
    };
    let metrics = &state.media.metrics;
    match &answer {
        Ok(_) => MediaMetrics::inc(&metrics.slots_granted),
        Err(MediaError::TooLarge { .. } | MediaError::QuotaExceeded { .. }) => {
            MediaMetrics::inc(&metrics.uploads_refused);
        }
        Err(_) => {}
    }
    Ok((StatusCode::CREATED, Json(answer?)).into_response())
}

/// Counts a confirmed or completed upload of `key`.
async fn count_stored(state: &Shared, key: &ObjectKey) {
    let metrics = &state.media.metrics;
    MediaMetrics::inc(&metrics.uploads_stored);
    if let Ok(Some(record)) = state.media.store.record(key).await {
        metrics
            .bytes_stored
            .fetch_add(record.size, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn confirm(
    State(state): State<Shared>,
    Path(id): Path<String>,
    caller: MediaCaller,
) -> Result<Json<Value>, MediaApiError> {
    let key = key_of(&state, &id)?;
    let now = SystemTime::now();
    state
        .media
        .store
        .confirm_upload(&caller.account, &key, now)
        .await?;
    count_stored(&state, &key).await;
    Ok(Json(json!({"id": id, "state": "stored"})))
}

/// A presigned GET for stored media. Any authenticated device that knows
/// the id may fetch it: the id is an unguessable capability handed over in
/// an (end-to-end-encrypted) message, and E2EE files are ciphertext.
async fn download_url(
    State(state): State<Shared>,
    Path(id): Path<String>,
    _caller: MediaCaller,
) -> Result<Json<Value>, MediaApiError> {
    let key = key_of(&state, &id)?;
    let request = state
        .media
        .store
        .download_url(&key, SystemTime::now())
        .await?;
    Ok(Json(json!({"id": id, "download": presigned(&request)})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PartsRequest {
    parts: Vec<u16>,
}

async fn part_urls(
    State(state): State<Shared>,
    Path(id): Path<String>,
    caller: MediaCaller,
    body: Bytes,
) -> Result<Json<Value>, MediaApiError> {
    let key = key_of(&state, &id)?;
    let req: PartsRequest = parse(&body)?;
    if req.parts.is_empty() || req.parts.len() > usize::from(samtale_media::storage::MAX_PARTS) {
        return Err(MediaApiError::bad_request("ask for 1 to 10000 parts"));
    }
    let urls = state
        .media
        .store
        .presign_part_urls(&caller.account, &key, &req.parts, SystemTime::now())
        .await?;
    let parts: Vec<Value> = req
        .parts
        .iter()
        .copied()
        .zip(&urls)
        .map(numbered_part)
        .collect();
    Ok(Json(json!({"id": id, "parts": parts})))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CompleteRequest {
    etags: Vec<String>,
}

async fn complete(
    State(state): State<Shared>,
    Path(id): Path<String>,
    caller: MediaCaller,
    body: Bytes,
) -> Result<Json<Value>, MediaApiError> {
    let key = key_of(&state, &id)?;
    let req: CompleteRequest = parse(&body)?;
    state
        .media
        .store
        .complete_multipart_upload(&caller.account, &key, &req.etags, SystemTime::now())
        .await?;
    count_stored(&state, &key).await;
    Ok(Json(json!({"id": id, "state": "stored"})))
}

async fn abort(
    State(state): State<Shared>,
    Path(id): Path<String>,
    caller: MediaCaller,
) -> Result<StatusCode, MediaApiError> {
    let key = key_of(&state, &id)?;
    state
        .media
        .store
        .abort_multipart_upload(&caller.account, &key, SystemTime::now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct GrantsRequest {
    devices: Vec<String>,
}

/// One single-use grant per recipient device, for the owner's view-once
/// media. The owner sends each token to its device in an E2EE message.
async fn grants(
    State(state): State<Shared>,
    Path(id): Path<String>,
    caller: MediaCaller,
    body: Bytes,
) -> Result<Response, MediaApiError> {
    let key = key_of(&state, &id)?;
    let req: GrantsRequest = parse(&body)?;
    let devices_ok = !req.devices.is_empty()
        && req.devices.len() <= MAX_GRANT_DEVICES
        && req.devices.iter().all(|d| d.parse::<DeviceId>().is_ok());
    if !devices_ok {
        return Err(MediaApiError::new(
            StatusCode::BAD_REQUEST,
            "bad-device",
            "devices: 1 to 256 device ids",
        ));
    }
    let issued = state
        .media
        .store
        .issue_view_once_grants(&caller.account, &key, &req.devices, SystemTime::now())
        .await?;
    let grants: Vec<Value> = issued
        .iter()
        .map(|g| {
            json!({
                "device": g.device,
                "token": g.token,
                "expiresAt": unix(g.expires_at),
            })
        })
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": id, "grants": grants})),
    )
        .into_response())
}
