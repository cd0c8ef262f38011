//! Shared state and the HTTP routes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{DefaultBodyLimit, Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use samtale_sfu::RoomId;
use samtale_sfu::driver::SfuHandle;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::config::Config;
use crate::hub::Hub;
use crate::token::{RoomClaims, TokenSigner, constant_time_eq};
use crate::{session, web};

/// Counters of the signaling layer.
#[derive(Debug, Default)]
pub struct SignalingMetrics {
    /// Open WebSocket sessions.
    pub sessions: AtomicU64,
    /// Rooms created over the API.
    pub rooms_created: AtomicU64,
    /// Error frames sent to clients.
    pub client_errors: AtomicU64,
    /// Joins refused (bad token, full room).
    pub joins_refused: AtomicU64,
}

/// Everything a request handler needs.
pub struct AppState {
    /// Settings.
    pub config: Config,
    /// Base URL for links.
    pub public_url: String,
    /// Room tokens.
    pub tokens: TokenSigner,
    /// The SFU.
    pub sfu: SfuHandle,
    /// Joined participants.
    pub hub: Hub,
    /// TURN credentials and nodes for ICE-servers lists.
    pub turn: Option<crate::ice::TurnInfo>,
    /// The embedded TURN server's statistics.
    pub turn_stats: Option<std::sync::Arc<std::sync::Mutex<samtale_turn::server::Stats>>>,
    /// The embedded TURN server's UDP address.
    pub turn_addr: Option<std::net::SocketAddr>,
    /// Counters.
    pub metrics: SignalingMetrics,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
    /// The messaging API.
    pub msg: Arc<crate::msg::MsgState>,
    /// Media storage, index and sweeper.
    pub media: Arc<crate::media::MediaService>,
}

/// Shared state handle.
pub type Shared = Arc<AppState>;

/// Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The routes.
pub fn router(state: Shared) -> Router {
    Router::new()
        .route("/", get(web::index))
        .route("/app/{file}", get(web::asset))
        .route("/api/rooms", post(create_room))
        .route("/api/rooms/{room}/tokens", post(create_token))
        .route("/api/config", get(client_config))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/ws", get(websocket))
        .layer(DefaultBodyLimit::max(16 * 1024))
        .merge(crate::msg::router())
        .merge(crate::media::routes::router())
        .with_state(state)
}

/// An HTTP error with a JSON body `{"error":{"code","message"}}`.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.1, "message": self.2}});
        (self.0, Json(body)).into_response()
    }
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.config.room_creation_open() {
        return Ok(());
    }
    let Some(expected) = state.config.admin_token.as_deref() else {
        return Err(ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            "room creation is disabled".into(),
        ));
    };
    let given = crate::msg::auth::bearer_token(headers);
    match given {
        None => Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "an admin token is required to create rooms".into(),
        )),
        Some(t) if constant_time_eq(t, expected) => Ok(()),
        Some(_) => Err(ApiError(
            StatusCode::FORBIDDEN,
            "forbidden",
            "wrong admin token".into(),
        )),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TokenRequest {
    #[serde(default)]
    ttl_seconds: Option<u64>,
}

fn issue(state: &AppState, room: &RoomId, ttl: Option<u64>) -> serde_json::Value {
    let max = state.config.room_token_ttl.as_secs();
    let ttl = ttl.unwrap_or(max).clamp(1, max.max(1));
    let exp = unix_now() + ttl;
    let token = state.tokens.sign(&RoomClaims {
        room: room.to_string(),
        exp,
    });
    let join_url = format!("{}/?room={}#token={}", state.public_url, room, token);
    json!({"roomId": room.as_str(), "token": token, "expiresAt": exp, "joinUrl": join_url})
}

fn parse_body(body: &[u8]) -> Result<TokenRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(TokenRequest::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad-json", e.to_string()))
}

async fn create_room(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let request = parse_body(&body)?;
    let id: String = {
        use rand::Rng;
        const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
        let mut rng = rand::rng();
        (0..12)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let room = RoomId::new(&id)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    state.metrics.rooms_created.fetch_add(1, Ordering::Relaxed);
    Ok((
        StatusCode::CREATED,
        Json(issue(&state, &room, request.ttl_seconds)),
    )
        .into_response())
}

async fn create_token(
    State(state): State<Shared>,
    Path(room): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    authorize(&state, &headers)?;
    let request = parse_body(&body)?;
    let room = RoomId::new(&room)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad-room", e.to_string()))?;
    Ok((
        StatusCode::CREATED,
        Json(issue(&state, &room, request.ttl_seconds)),
    )
        .into_response())
}

async fn client_config(State(state): State<Shared>) -> Json<serde_json::Value> {
    Json(json!({
        "e2ee": false,
        "maxParticipants": state.sfu.max_participants(),
        "roomCreationOpen": state.config.room_creation_open(),
    }))
}

async fn healthz(State(state): State<Shared>) -> Response {
    if *state.shutdown.borrow() {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n").into_response()
    } else {
        (StatusCode::OK, "ok\n").into_response()
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render(&state),
    )
        .into_response()
}

async fn websocket(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    // Frames up to 4× the message limit reach the session, which answers
    // oversized ones with a `too-large` error frame and keeps the
    // connection; anything larger closes it (1009).
    let limit = state.config.max_message_bytes * 4;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(crate::WS_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| session::run(socket, state))
}

/// How long to wait before closing sockets on shutdown.
pub fn shutdown_grace(state: &AppState) -> Duration {
    state.config.shutdown_grace
}
