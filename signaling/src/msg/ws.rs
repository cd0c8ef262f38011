//! One messaging WebSocket connection.
//!
//! Frames are JSON text. A request is `{"id": n, "op": "...", "body": ...}`
//! (the operations of [`super::ops::Op`], plus `auth` with
//! `{"token": "..."}`); its answer is `{"id": n, "ok": ...}` or
//! `{"id": n, "error": {"status", "code", "message"}}`. Once authenticated,
//! the server pushes `{"event": "delivery", "delivery": {...}}` for every
//! waiting envelope, oldest first per conversation, and each new one as
//! soon as it is durable (handed over by the store's commit listener, not
//! read back); the client stores each and sends `ack`. An unacknowledged
//! envelope is pushed again on the next connection, so delivery is
//! at-least-once and the client drops what it already has by
//! `(conversation, seq)`. `{"event": "revoked"}` precedes the close when
//! the device is unbound.

use std::collections::{HashMap, HashSet};

use axum::extract::ws::{Message, WebSocket};
use axum::http::StatusCode;
use samtale_messaging::ConversationId;
use samtale_messaging::service::api::{Caller, Delivery};
use samtale_messaging::store::StoredEnvelope;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use super::notify::Signal;
use super::ops::{self, MAX_FETCH};
use super::{MAX_REQUEST_BYTES, MsgState, auth};
use crate::app::{ApiError, Shared};

struct Conn {
    caller: Option<Caller>,
    signals: Option<broadcast::Receiver<Signal>>,
    /// Envelopes pushed on this connection and not yet acknowledged.
    pushed: HashSet<(ConversationId, u64)>,
    /// The highest sequence pushed on this connection, per conversation.
    pushed_upto: HashMap<ConversationId, u64>,
    /// The last read returned a full page: more may wait behind it.
    more_waiting: bool,
}

fn error_frame(id: &Value, e: ApiError) -> Value {
    json!({"id": id, "error": {"status": e.0.as_u16(), "code": e.1, "message": e.2}})
}

async fn send(socket: &mut WebSocket, v: Value) -> bool {
    socket
        .send(Message::Text(v.to_string().into()))
        .await
        .is_ok()
}

/// Serve one connection until it closes, the device is revoked, or the
/// server shuts down.
pub async fn run(mut socket: WebSocket, state: Shared) {
    let mut shutdown = state.shutdown.clone();
    let mut conn = Conn {
        caller: None,
        signals: None,
        pushed: HashSet::new(),
        pushed_upto: HashMap::new(),
        more_waiting: false,
    };
    loop {
        let signal = async {
            match conn.signals.as_mut() {
                Some(rx) => match rx.recv().await {
                    Ok(s) => Some(s),
                    // Pushes were dropped: read the store.
                    Err(broadcast::error::RecvError::Lagged(_)) => Some(Signal::Pending),
                    Err(broadcast::error::RecvError::Closed) => None,
                },
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = socket.recv() => {
                let Some(Ok(frame)) = frame else { break };
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Close(_) => break,
                    Message::Binary(_) => {
                        let e = ApiError(StatusCode::BAD_REQUEST, "binary", "frames are JSON text".into());
                        if !send(&mut socket, error_frame(&Value::Null, e)).await { break }
                        continue;
                    }
                    _ => continue,
                };
                if !on_request(&mut socket, &state, &mut conn, text.as_str()).await {
                    break;
                }
            }
            s = signal => match s {
                Some(Signal::Deliver(d)) => {
                    if !on_delivery(&mut socket, &state.msg, &mut conn, &d).await { break }
                }
                Some(Signal::Pending) => {
                    if !push_pending(&mut socket, &state.msg, &mut conn).await { break }
                }
                Some(Signal::Revoked) | None => {
                    let _ = send(&mut socket, json!({"event": "revoked"})).await;
                    break;
                }
            },
            _ = shutdown.changed() => {
                let _ = send(&mut socket, json!({"event": "shutdown"})).await;
                break;
            }
        }
    }
    let _ = socket.send(Message::Close(None)).await;
    if let Some(c) = conn.caller {
        drop(conn.signals.take());
        state.msg.notifier.release(c.device_id);
    }
}

/// Handle one request frame; false when the connection should close.
async fn on_request(socket: &mut WebSocket, state: &Shared, conn: &mut Conn, text: &str) -> bool {
    if text.len() > MAX_REQUEST_BYTES {
        let e = ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("frames are limited to {MAX_REQUEST_BYTES} bytes"),
        );
        return send(socket, error_frame(&Value::Null, e)).await;
    }
    let mut frame: Value = match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) | Err(_) => {
            let e = ApiError(
                StatusCode::BAD_REQUEST,
                "bad-json",
                "not a JSON object".into(),
            );
            return send(socket, error_frame(&Value::Null, e)).await;
        }
    };
    let id = frame.get("id").cloned().unwrap_or(Value::Null);
    let name = frame
        .get("op")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let body = frame
        .as_object_mut()
        .and_then(|o| o.remove("body"))
        .unwrap_or(Value::Null);
    if name == "auth" {
        return on_auth(socket, state, conn, &id, &body).await;
    }
    let op = match super::parse_op(&name, body) {
        Ok(op) => op,
        Err(e) => return send(socket, error_frame(&id, e)).await,
    };
    let ack = match &op {
        ops::Op::Ack(a) => Some((a.conversation_id, a.seq)),
        _ => None,
    };
    match ops::dispatch(&state.msg, conn.caller, op).await {
        Ok(answer) => {
            if !send(socket, json!({"id": id, "ok": answer})).await {
                return false;
            }
            if let Some(key) = ack {
                conn.pushed.remove(&key);
                // New envelopes wake us anyway; read again only for what a
                // full page left behind.
                if conn.pushed.is_empty() && conn.more_waiting {
                    return push_pending(socket, &state.msg, conn).await;
                }
            }
            true
        }
        Err(e) => send(socket, error_frame(&id, e)).await,
    }
}

async fn on_auth(
    socket: &mut WebSocket,
    state: &Shared,
    conn: &mut Conn,
    id: &Value,
    body: &Value,
) -> bool {
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let caller = match state.msg.auth.verify(token) {
        Ok(c) => c,
        Err(e) => return send(socket, error_frame(id, auth::unauthorized(e))).await,
    };
    if let Some(old) = conn.caller.replace(caller) {
        drop(conn.signals.take());
        state.msg.notifier.release(old.device_id);
        conn.pushed.clear();
        conn.pushed_upto.clear();
    }
    // Subscribe before reading the store, so nothing falls in between.
    conn.signals = Some(state.msg.notifier.subscribe(caller.device_id));
    let ok =
        json!({"id": id, "ok": {"account_id": caller.account_id, "device_id": caller.device_id}});
    send(socket, ok).await && push_pending(socket, &state.msg, conn).await
}

/// An envelope the commit listener handed over. It is pushed as it is only
/// when it directly follows the last one this connection pushed in its
/// conversation; otherwise the store is read, since an older envelope may
/// be waiting that this node was not told about (committed by another node
/// on the same database, or by a message not addressed to this device):
/// the client drops anything older than what it has seen, so nothing may
/// overtake. Envelopes already pushed are skipped.
async fn on_delivery(
    socket: &mut WebSocket,
    msg: &MsgState,
    conn: &mut Conn,
    d: &StoredEnvelope,
) -> bool {
    if conn.caller.is_none() {
        return true;
    }
    let upto = conn.pushed_upto.get(&d.conversation_id).copied();
    if upto.is_some_and(|u| d.seq <= u) {
        return true;
    }
    if conn.more_waiting || upto.is_none_or(|u| d.seq != u + 1) {
        return push_pending(socket, msg, conn).await;
    }
    push(socket, conn, &Delivery::from(d)).await
}

/// Push one envelope and remember it.
async fn push(socket: &mut WebSocket, conn: &mut Conn, d: &Delivery) -> bool {
    conn.pushed.insert((d.conversation_id, d.seq));
    let upto = conn.pushed_upto.entry(d.conversation_id).or_default();
    *upto = (*upto).max(d.seq);
    send(socket, json!({"event": "delivery", "delivery": d})).await
}

/// Push every waiting envelope not yet pushed on this connection.
async fn push_pending(socket: &mut WebSocket, msg: &MsgState, conn: &mut Conn) -> bool {
    let Some(caller) = conn.caller else {
        return true;
    };
    let deliveries = match msg.service.fetch(&caller, None, MAX_FETCH).await {
        Ok(d) => d,
        Err(e) => {
            // The device was unbound or the store failed: say so and close.
            let _ = send(socket, error_frame(&Value::Null, ops::service_error(e))).await;
            return false;
        }
    };
    conn.more_waiting = deliveries.len() >= MAX_FETCH as usize;
    for d in deliveries {
        if !conn.pushed.contains(&(d.conversation_id, d.seq)) && !push(socket, conn, &d).await {
            return false;
        }
    }
    true
}
