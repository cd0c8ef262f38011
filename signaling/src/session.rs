//! One WebSocket session: join, then relay between the client, the hub and
//! the SFU until the client leaves, the SFU drops it, or the server stops.

use std::sync::atomic::Ordering;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use samtale_sfu::{LeaveReason, ParticipantId, RoomId, SfuError};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::app::{Shared, unix_now};
use crate::protocol::{ClientMessage, ParticipantInfo, ServerMessage, clean_name};
use crate::token::TokenError;

type Sink = futures_util::stream::SplitSink<WebSocket, Message>;
type Stream = futures_util::stream::SplitStream<WebSocket>;

/// Runs one session to its end.
pub async fn run(socket: WebSocket, state: Shared) {
    state.metrics.sessions.fetch_add(1, Ordering::Relaxed);
    let (mut sink, mut stream) = socket.split();
    if let Some((id, outbox)) = join(&mut sink, &mut stream, &state).await {
        serve(id, outbox, &mut sink, &mut stream, &state).await;
        // Whatever ended the session, the participant is gone.
        if state.hub.remove(id, LeaveReason::Left) {
            let _ = state.sfu.leave(id).await;
        }
    }
    let _ = sink.close().await;
    state.metrics.sessions.fetch_sub(1, Ordering::Relaxed);
}

async fn send(sink: &mut Sink, message: &ServerMessage) -> bool {
    match serde_json::to_string(message) {
        Ok(text) => sink.send(Message::Text(text.into())).await.is_ok(),
        Err(_) => false,
    }
}

async fn send_error(sink: &mut Sink, state: &Shared, code: &'static str, text: String) -> bool {
    state.metrics.client_errors.fetch_add(1, Ordering::Relaxed);
    send(sink, &ServerMessage::error(code, text)).await
}

/// Reads the next client message. `Ok(None)` = the socket ended;
/// `Err(code, text)` = a bad message (the session goes on).
async fn next_message(
    stream: &mut Stream,
    state: &Shared,
) -> Option<Result<ClientMessage, (&'static str, String)>> {
    loop {
        let frame = match stream.next().await? {
            Ok(frame) => frame,
            Err(e) => {
                debug!(error = %e, "websocket read failed");
                return None;
            }
        };
        let text = match frame {
            Message::Text(t) => t,
            Message::Binary(_) => {
                return Some(Err(("bad-json", "binary frames are not accepted".into())));
            }
            Message::Close(_) => return None,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if text.len() > state.config.max_message_bytes {
            return Some(Err((
                "too-large",
                format!(
                    "message of {} bytes exceeds the {} byte limit",
                    text.len(),
                    state.config.max_message_bytes
                ),
            )));
        }
        return Some(serde_json::from_str(&text).map_err(|e| {
            let code = if e.is_data() {
                "unknown-type"
            } else {
                "bad-json"
            };
            (code, e.to_string())
        }));
    }
}

async fn join(
    sink: &mut Sink,
    stream: &mut Stream,
    state: &Shared,
) -> Option<(ParticipantId, mpsc::UnboundedReceiver<ServerMessage>)> {
    let deadline = tokio::time::Instant::now() + state.config.join_timeout;
    loop {
        let message = match tokio::time::timeout_at(deadline, next_message(stream, state)).await {
            Err(_) => {
                send_error(
                    sink,
                    state,
                    "fatal-join-timeout",
                    "no join message in time".into(),
                )
                .await;
                return None;
            }
            Ok(None) => return None,
            Ok(Some(m)) => m,
        };
        let (token, name, region) = match message {
            Ok(ClientMessage::Join {
                token,
                name,
                region,
            }) => (token, name, region),
            Ok(ClientMessage::Ping) => {
                send(sink, &ServerMessage::Pong).await;
                continue;
            }
            Ok(_) => {
                send_error(sink, state, "not-joined", "send join first".into()).await;
                continue;
            }
            Err((code, text)) => {
                send_error(sink, state, code, text).await;
                continue;
            }
        };
        let claims = match state.tokens.verify(&token, unix_now()) {
            Ok(c) => c,
            Err(e) => {
                state.metrics.joins_refused.fetch_add(1, Ordering::Relaxed);
                let code = match e {
                    TokenError::Expired => "expired-token",
                    TokenError::Invalid => "invalid-token",
                };
                send_error(sink, state, code, e.to_string()).await;
                close(sink, 4001, code).await;
                return None;
            }
        };
        let room = match RoomId::new(&claims.room) {
            Ok(r) => r,
            Err(e) => {
                send_error(sink, state, "invalid-token", e.to_string()).await;
                close(sink, 4001, "invalid-token").await;
                return None;
            }
        };
        let id = match state.sfu.join(room.clone()).await {
            Ok(id) => id,
            Err(e) => {
                state.metrics.joins_refused.fetch_add(1, Ordering::Relaxed);
                let code = match e {
                    SfuError::RoomFull { .. } => "room-full",
                    SfuError::ShuttingDown => "fatal-shutdown",
                    _ => "fatal-internal",
                };
                send_error(sink, state, code, e.to_string()).await;
                close(sink, 4003, code).await;
                return None;
            }
        };
        let info = ParticipantInfo {
            id,
            name: clean_name(&name, &format!("Guest {}", id.0)),
            audio_muted: false,
            video_muted: false,
        };
        let (outbox, inbox) = mpsc::unbounded_channel();
        let participants = state.hub.register(room.as_str(), info, outbox);
        info!(participant = %id, %room, "session joined");
        let joined = ServerMessage::Joined {
            participant_id: id,
            room_id: room.to_string(),
            participants,
            ice_servers: crate::ice::ice_servers(
                &state.config.ice_servers,
                state.turn.as_ref(),
                &id.to_string(),
                region.as_deref(),
                unix_now(),
            ),
        };
        if !send(sink, &joined).await {
            return None;
        }
        return Some((id, inbox));
    }
}

async fn close(sink: &mut Sink, code: u16, reason: &'static str) {
    let _ = sink
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}

async fn serve(
    id: ParticipantId,
    mut inbox: mpsc::UnboundedReceiver<ServerMessage>,
    sink: &mut Sink,
    stream: &mut Stream,
    state: &Shared,
) {
    let mut shutdown = state.shutdown.clone();
    loop {
        tokio::select! {
            message = next_message(stream, state) => {
                let Some(message) = message else { return };
                match message {
                    Ok(ClientMessage::Leave) => return,
                    Ok(m) => {
                        if let Err((code, text)) = handle(id, m, sink, state).await
                            && !send_error(sink, state, code, text).await {
                                return;
                            }
                    }
                    Err((code, text)) => {
                        if !send_error(sink, state, code, text).await {
                            return;
                        }
                    }
                }
            }
            outgoing = inbox.recv() => {
                // The hub dropped us (the SFU removed the participant).
                let Some(message) = outgoing else { return };
                let last = matches!(&message, ServerMessage::ParticipantLeft { participant_id, .. } if *participant_id == id);
                if !send(sink, &message).await || last {
                    return;
                }
            }
            changed = shutdown.changed() => {
                if changed.is_err() || *shutdown.borrow() {
                    send(sink, &ServerMessage::Shutdown { reason: "shutdown", reconnect_after_ms: 5000 }).await;
                    close(sink, 1012, "server restart").await;
                    return;
                }
            }
        }
    }
}

/// Handles one message of a joined client.
async fn handle(
    id: ParticipantId,
    message: ClientMessage,
    sink: &mut Sink,
    state: &Shared,
) -> Result<(), (&'static str, String)> {
    let sfu_error = |e: SfuError| match e {
        SfuError::BadSdp(_) => ("bad-sdp", e.to_string()),
        SfuError::Negotiation(_) | SfuError::NoPendingOffer => ("negotiation", e.to_string()),
        _ => ("internal", e.to_string()),
    };
    match message {
        ClientMessage::Join { .. } => Err(("already-joined", "this session has joined".into())),
        ClientMessage::Offer { sdp } => {
            let answer = state.sfu.offer(id, sdp).await.map_err(sfu_error)?;
            send(sink, &ServerMessage::Answer { sdp: answer }).await;
            Ok(())
        }
        ClientMessage::Answer { sdp } => state.sfu.answer(id, sdp).await.map_err(sfu_error),
        ClientMessage::RestartIce => state.sfu.restart_ice(id).await.map_err(sfu_error),
        ClientMessage::Mute { kind, muted } => {
            state.hub.set_muted(id, kind, muted);
            Ok(())
        }
        ClientMessage::VideoSize {
            participant_id,
            width,
            ..
        } => {
            if !state.hub.same_room(id, participant_id) {
                return Err((
                    "unknown-participant",
                    format!("{participant_id} is not in your room"),
                ));
            }
            state
                .sfu
                .video_width(id, participant_id, width)
                .await
                .map_err(sfu_error)
        }
        ClientMessage::Layers { layers } => {
            let widths = layers
                .into_iter()
                .take(8)
                .map(|l| (l.rid, l.width))
                .collect();
            state.sfu.layer_widths(id, widths).await.map_err(sfu_error)
        }
        ClientMessage::Ping => {
            send(sink, &ServerMessage::Pong).await;
            Ok(())
        }
        ClientMessage::Leave => Ok(()),
    }
    .inspect_err(|(code, _)| {
        if *code == "internal" {
            warn!(participant = %id, "internal error handling a message");
        }
    })
}
