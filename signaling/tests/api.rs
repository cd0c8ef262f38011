//! Signaling over real HTTP and WebSocket on loopback: rooms, tokens,
//! events, and every kind of bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use common::server::*;
use futures_util::SinkExt;
use samtale::token::RoomClaims;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn health_metrics_and_web_client_are_served() {
    let server = start(test_config("health")).await;
    let (status, body) = http(server.http_addr, "GET", "/healthz", &[], "").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = http(server.http_addr, "GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    for name in [
        "samtale_rooms",
        "samtale_participants",
        "samtale_packets_forwarded_total",
        "samtale_bytes_forwarded_total",
        "samtale_keyframe_requests_total",
    ] {
        assert!(
            body.contains(&format!("\n{name} ")),
            "{name} missing in {body}"
        );
    }
    let (status, body) = http(server.http_addr, "GET", "/", &[], "").await;
    assert_eq!(status, 200);
    assert!(body.contains("<html"));
    let (status, _) = http(server.http_addr, "GET", "/app/app.js", &[], "").await;
    assert_eq!(status, 200);
    let (status, _) = http(server.http_addr, "GET", "/app/../Cargo.toml", &[], "").await;
    assert_eq!(status, 404);
    server.shutdown().await;
}

#[tokio::test]
async fn room_creation_needs_the_admin_token_when_configured() {
    let mut config = test_config("admin");
    config.admin_token = Some("s3cret-admin".into());
    let server = start(config).await;
    let (status, body) = http(server.http_addr, "POST", "/api/rooms", &[], "").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("unauthorized"));
    let (status, _) = http(
        server.http_addr,
        "POST",
        "/api/rooms",
        &[("Authorization", "Bearer wrong")],
        "",
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = http(
        server.http_addr,
        "POST",
        "/api/rooms",
        &[("Authorization", "Bearer s3cret-admin")],
        "{}",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body.contains("joinUrl"));
    let (status, _) = http(
        server.http_addr,
        "POST",
        "/api/rooms",
        &[("Authorization", "Bearer s3cret-admin")],
        "{not json",
    )
    .await;
    assert_eq!(status, 400);
    server.shutdown().await;
}

#[tokio::test]
async fn participants_see_each_other_join_mute_and_leave() {
    let server = start(test_config("events")).await;
    let (_, token) = create_room(&server).await;
    let (mut a, joined_a) = join(&server, &token, "Ada").await;
    assert_eq!(joined_a["type"], "joined");
    assert_eq!(joined_a["participants"], json!([]));
    let (mut b, joined_b) = join(&server, &token, "Bo").await;
    assert_eq!(joined_b["participants"][0]["name"], "Ada");
    let b_id = joined_b["participantId"].clone();

    let m = recv_type(&mut a, "participantJoined").await;
    assert_eq!(m["participant"]["name"], "Bo");
    send(
        &mut b,
        json!({"type": "mute", "kind": "audio", "muted": true}),
    )
    .await;
    let m = recv_type(&mut a, "muted").await;
    assert_eq!(
        (m["participantId"].clone(), m["muted"].clone()),
        (b_id.clone(), json!(true))
    );
    send(&mut b, json!({"type": "leave"})).await;
    let m = recv_type(&mut a, "participantLeft").await;
    assert_eq!(
        (m["participantId"].clone(), m["reason"].clone()),
        (b_id, json!("left"))
    );

    // A participant in another room hears nothing of this one.
    let (_, other_token) = create_room(&server).await;
    let (mut c, joined_c) = join(&server, &other_token, "Cy").await;
    assert_eq!(joined_c["participants"], json!([]));
    send(&mut c, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut c).await.unwrap()["type"], "pong");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_and_expired_tokens_are_refused_clearly() {
    let server = start(test_config("tokens")).await;
    let (mut w, m) = join(&server, "not-a-token", "x").await;
    assert_eq!(
        (m["type"].clone(), m["code"].clone()),
        (json!("error"), json!("invalid-token"))
    );
    assert!(recv(&mut w).await.is_none(), "the socket closes");

    let expired = server.state.tokens.sign(&RoomClaims {
        room: "r1".into(),
        exp: 1,
    });
    let (_, m) = join(&server, &expired, "x").await;
    assert_eq!(m["code"], "expired-token");

    // A forged room in a genuine token's envelope.
    let (_, token) = create_room(&server).await;
    let sig = token.split_once('.').unwrap().1;
    use base64::Engine;
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(br#"{"room":"other","exp":99999999999}"#);
    let (_, m) = join(&server, &format!("{forged}.{sig}"), "x").await;
    assert_eq!(m["code"], "invalid-token");
    server.shutdown().await;
}

#[tokio::test]
async fn garbage_gets_error_frames_and_the_room_keeps_working() {
    let server = start(test_config("garbage")).await;
    let (_, token) = create_room(&server).await;

    // Before join.
    let mut w = ws(&server).await;
    send(&mut w, json!({"type": "offer", "sdp": "v=0"})).await;
    assert_eq!(recv(&mut w).await.unwrap()["code"], "not-joined");

    let (mut a, _) = join(&server, &token, "Ada").await;
    a.send(Message::Text("{this is not json".into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut a).await.unwrap()["code"], "bad-json");
    send(&mut a, json!({"type": "fly", "to": "moon"})).await;
    assert_eq!(recv(&mut a).await.unwrap()["code"], "unknown-type");
    a.send(Message::Binary(vec![0u8, 1, 2].into()))
        .await
        .unwrap();
    assert_eq!(recv(&mut a).await.unwrap()["code"], "bad-json");
    let big = json!({"type": "offer", "sdp": "x".repeat(100 * 1024)});
    send(&mut a, big).await;
    assert_eq!(recv(&mut a).await.unwrap()["code"], "too-large");
    send(&mut a, json!({"type": "offer", "sdp": "v=0\r\nnonsense"})).await;
    assert_eq!(recv(&mut a).await.unwrap()["code"], "bad-sdp");
    send(&mut a, json!({"type": "answer", "sdp": "v=0\r\n"})).await;
    let code = recv(&mut a).await.unwrap()["code"].clone();
    assert!(code == "bad-sdp" || code == "negotiation", "{code}");
    send(
        &mut a,
        json!({"type": "join", "token": token, "name": "again"}),
    )
    .await;
    assert_eq!(recv(&mut a).await.unwrap()["code"], "already-joined");
    send(
        &mut a,
        json!({"type": "videoSize", "participantId": "p999999", "width": 1, "height": 1}),
    )
    .await;
    assert_eq!(recv(&mut a).await.unwrap()["code"], "unknown-participant");

    // Still alive, and the room still works for a newcomer.
    send(&mut a, json!({"type": "ping"})).await;
    assert_eq!(recv(&mut a).await.unwrap()["type"], "pong");
    let (_, joined) = join(&server, &token, "Bo").await;
    assert_eq!(joined["participants"][0]["name"], "Ada");

    // A frame far over the limit closes that connection only.
    let huge = "y".repeat(1024 * 1024);
    let _ = a.send(Message::Text(huge.into())).await;
    // Only events about Bo (joining, and leaving as its socket dropped) may
    // arrive before the close.
    while let Some(m) = recv(&mut a).await {
        assert!(
            m["type"] == "participantJoined" || m["type"] == "participantLeft",
            "{m}"
        );
    }
    let (_, joined) = join(&server, &token, "Cy").await;
    assert_eq!(joined["type"], "joined");
    server.shutdown().await;
}

#[tokio::test]
async fn the_33rd_participant_gets_room_full() {
    let server = start(test_config("full")).await;
    let (_, token) = create_room(&server).await;
    let mut sockets = Vec::new();
    for i in 0..32 {
        let (w, m) = join(&server, &token, &format!("p{i}")).await;
        assert_eq!(m["type"], "joined", "participant {i}: {m}");
        sockets.push(w);
    }
    let (mut w, m) = join(&server, &token, "one too many").await;
    assert_eq!(m["code"], "room-full", "{m}");
    assert!(recv(&mut w).await.is_none());
    // The room goes on: one leaves, a newcomer fits.
    send(&mut sockets[0], json!({"type": "leave"})).await;
    recv_type(&mut sockets[1], "participantLeft").await;
    let (_, m) = join(&server, &token, "latecomer").await;
    assert_eq!(m["type"], "joined");
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_tells_connected_clients() {
    let server = start(test_config("shutdown")).await;
    let (_, token) = create_room(&server).await;
    let (mut a, _) = join(&server, &token, "Ada").await;
    let waiter = tokio::spawn(async move { recv_type(&mut a, "shutdown").await });
    server.shutdown().await;
    let m = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(m["reason"], "shutdown");
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_join_timeout() {
    let mut config = test_config("jointimeout");
    config.join_timeout = Duration::from_millis(300);
    let server = start(config).await;
    let mut w = ws(&server).await;
    let m = recv(&mut w).await.unwrap();
    assert_eq!(m["code"], "fatal-join-timeout");
    server.shutdown().await;
}
