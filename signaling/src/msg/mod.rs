//! The messaging API: `samtale-messaging`'s service over HTTP
//! (`POST /api/msg/{op}`) and WebSocket (`GET /api/msg/ws`), as described
//! in `docs/MESSAGING.md`.
//!
//! The store is a SQLite file in the data directory by default, or
//! PostgreSQL when `messaging_database` is a `postgres://` URL; with
//! several nodes on one PostgreSQL, `messaging_nats_url` carries pushes
//! between them ([`fanout`]). The server moves ciphertext only; bodies are
//! never logged.

pub mod auth;
pub mod fanout;
mod notify;
pub mod ops;
mod ws;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, body::Bytes};
use hmac::{Hmac, Mac};
use samtale_messaging::SystemClock;
use samtale_messaging::service::{GuestKey, MessagingService, ServiceConfig};
use samtale_messaging::store::{SqlStore, Store};
use sha2::Sha256;
use tokio::sync::watch;

use crate::app::{ApiError, Shared};
use crate::config::Config;
pub use notify::Notifier;
pub use ops::Service;

/// Largest request body or WebSocket frame (a group message carries one
/// ciphertext per member device).
pub const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// How often expired envelopes and pairings are purged.
pub const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Messaging state shared by all requests.
pub struct MsgState {
    /// The service over the store.
    pub service: Service,
    /// Challenge and token keys.
    pub auth: auth::AuthKeys,
    /// Live connections to wake when envelopes arrive.
    pub notifier: Arc<Notifier>,
}

impl std::fmt::Debug for MsgState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MsgState").finish_non_exhaustive()
    }
}

fn derive(master: &[u8], label: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    if let Ok(mut m) = Hmac::<Sha256>::new_from_slice(master) {
        m.update(label.as_bytes());
        out.copy_from_slice(&m.finalize().into_bytes());
    }
    out
}

/// Open the store and keys named by `config`.
pub async fn open(config: &Config) -> anyhow::Result<MsgState> {
    let master = crate::secrets::load_or_create(&config.data_dir, "messaging.key")?;
    let store = match &config.messaging_database {
        Some(url) => SqlStore::connect(url)
            .await
            .context("connecting to the messaging database")?,
        None => SqlStore::open_sqlite_dir(&config.data_dir)
            .await
            .context("opening the messaging database")?,
    };
    let notifier = Arc::new(Notifier::default());
    if let Some(url) = &config.messaging_nats_url {
        fanout::connect(url, &notifier).await?;
    }
    let listener = notifier.clone();
    store.on_commit(Arc::new(move |durable| listener.deliver(durable)));
    let service = MessagingService::new(
        store,
        SystemClock,
        GuestKey::new(derive(&master, "guest-invites")),
        ServiceConfig::default(),
    );
    Ok(MsgState {
        service,
        auth: auth::AuthKeys::new(derive(&master, "device-auth")),
        notifier,
    })
}

/// Purge expired envelopes, idempotency records and pairings until
/// shutdown.
pub async fn purge_loop(state: Arc<MsgState>, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                match state.service.purge_expired().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(purged = n, "messaging: expired records purged"),
                    Err(e) => tracing::warn!(error = %e, "messaging: purge failed"),
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// The messaging routes.
pub fn router() -> Router<Shared> {
    Router::new()
        .route("/api/msg/ws", get(websocket))
        .route("/api/msg/{op}", post(http_op))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
}

async fn http_op(
    State(state): State<Shared>,
    UrlPath(op): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|r| {
        let status = r.status();
        let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "too-large"
        } else {
            "bad-request"
        };
        ApiError(status, code, r.body_text())
    })?;
    let caller = match auth::bearer_token(&headers) {
        Some(t) => Some(state.msg.auth.verify(t).map_err(auth::unauthorized)?),
        None => None,
    };
    let params: serde_json::Value = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Value::Null
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError(StatusCode::BAD_REQUEST, "bad-json", e.to_string()))?
    };
    let op = parse_op(&op, params)?;
    let answer = ops::dispatch(&state.msg, caller, op).await?;
    Ok(Json(answer).into_response())
}

/// Build an [`ops::Op`] from its name and parameters.
pub fn parse_op(name: &str, params: serde_json::Value) -> Result<ops::Op, ApiError> {
    let mut frame = serde_json::Map::new();
    frame.insert("op".into(), serde_json::Value::String(name.to_owned()));
    if !params.is_null() {
        frame.insert("body".into(), params);
    }
    serde_json::from_value(serde_json::Value::Object(frame)).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.starts_with("unknown variant") {
            "unknown-op"
        } else {
            "bad-request"
        };
        ApiError(StatusCode::BAD_REQUEST, code, msg)
    })
}

async fn websocket(State(state): State<Shared>, upgrade: WebSocketUpgrade) -> Response {
    // Frames up to twice the limit reach the session, which answers
    // oversized ones with a `too-large` error and keeps the connection.
    let limit = MAX_REQUEST_BYTES * 2;
    upgrade
        .max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(crate::WS_READ_BUFFER_BYTES)
        .on_upgrade(move |socket| ws::run(socket, state))
}
