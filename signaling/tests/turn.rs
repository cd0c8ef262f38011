//! The embedded TURN server of the all-in-one samtale: clients get fresh
//! REST credentials in `joined.iceServers`; it relays to the SFU's media
//! socket and nothing else on loopback (checked with coturn's real client).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::server::*;

#[tokio::test]
async fn joined_carries_turn_credentials_and_the_signaling_port_is_refused() {
    let server = start(test_config("turn")).await;
    let (_, token) = create_room(&server).await;
    let (_ws, joined) = join(&server, &token, "Ada").await;
    let ice = joined["iceServers"].as_array().unwrap();
    let turn = ice
        .iter()
        .find(|s| {
            s["urls"]
                .as_array()
                .unwrap()
                .iter()
                .any(|u| u.as_str().unwrap().starts_with("turn:"))
        })
        .expect("a TURN entry");
    let username = turn["username"].as_str().unwrap();
    let credential = turn["credential"].as_str().unwrap();
    let participant = joined["participantId"].as_str().unwrap();
    assert!(username.ends_with(&format!(":{participant}")), "{username}");
    let turn_port = server.state.turn_addr.unwrap().port();

    // coturn's client asks our TURN to relay to 127.0.0.1:<signaling port>.
    let out = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::new("turnutils_uclient")
            .args(["-u", username, "-w", credential, "-e", "127.0.0.1"])
            .args([
                "-r",
                &server.http_addr.port().to_string(),
                "-p",
                &turn_port.to_string(),
            ])
            .args(["-m", "1", "-n", "10", "-l", "200", "-c", "127.0.0.1"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .expect("turnutils_uclient (apt-get install coturn; run ./scripts/test.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("403"),
        "the signaling port must be refused: {text}"
    );
    assert!(!text.contains("tot_recv_msgs=10"), "{text}");

    // The credentials do work: the allocation itself succeeded.
    let (_, metrics) = http(server.http_addr, "GET", "/metrics", &[], "").await;
    assert!(
        metrics.contains("turn_allocations_created_total{region=\"embedded\"}"),
        "{metrics}"
    );
    server.shutdown().await;
}
