//! Starting a samtale server on loopback for a test, and small HTTP/WS clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use samtale::{Config, Running};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

/// A fresh data directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n: u64 = rand::random();
    let dir = std::env::temp_dir().join(format!("samtale-test-{tag}-{n:x}"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A config on loopback with free ports.
pub fn test_config(tag: &str) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        media_listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: temp_dir(tag),
        shutdown_grace: Duration::from_secs(2),
        ..Config::default()
    }
}

pub async fn start(config: Config) -> Running {
    if let Ok(filter) = std::env::var("SAMTALE_TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .try_init();
    }
    samtale::start(config).await.unwrap()
}

/// One HTTP/1.1 request; returns (status, body). The bot's client.
pub async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    samtale_qoe_lab::bot::http::request_with(addr, method, path, headers, body)
        .await
        .unwrap()
}

/// Creates a room; returns (room id, token).
pub async fn create_room(server: &Running) -> (String, String) {
    let (status, body) = http(server.http_addr, "POST", "/api/rooms", &[], "").await;
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    (
        v["roomId"].as_str().unwrap().to_string(),
        v["token"].as_str().unwrap().to_string(),
    )
}

pub async fn ws(server: &Running) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.http_addr))
        .await
        .unwrap();
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON message, or None when the socket closed. Fails after 10 s.
pub async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no message within 10 s");
        match next {
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Skips messages until one of `kind` arrives.
pub async fn recv_type(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let m = recv(ws)
            .await
            .unwrap_or_else(|| panic!("socket closed while waiting for {kind}"));
        if m["type"] == kind {
            return m;
        }
    }
}

pub async fn join(server: &Running, token: &str, name: &str) -> (Ws, Value) {
    let mut w = ws(server).await;
    send(
        &mut w,
        serde_json::json!({"type": "join", "token": token, "name": name}),
    )
    .await;
    let joined = recv(&mut w).await.unwrap();
    (w, joined)
}
