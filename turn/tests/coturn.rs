//! A real, independent TURN client: coturn's `turnutils_uclient` relays
//! through samtale-turn to coturn's `turnutils_peer` (both from the Debian
//! `coturn` package, installed by the test command; coturn's own server is
//! never started). uclient's exit code says nothing, so its report is parsed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use samtale_turn::auth::Secret;
use samtale_turn::config::TurnConfig;
use samtale_turn::driver::{self, Listeners, TlsSettings, TurnHandle};
use samtale_turn::peer_filter::PeerFilter;
use tokio::net::{TcpListener, UdpSocket};
use tokio::process::{Child, Command};

const SECRET: &str = "north-secret";

struct Turn {
    handle: TurnHandle,
    port: u16,
}

async fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            return (udp, tcp);
        }
    }
    panic!("no free UDP+TCP port pair");
}

fn config(allow_loopback: bool) -> TurnConfig {
    TurnConfig {
        rest_secrets: vec![Secret::new(SECRET)],
        allowed_peers: if allow_loopback {
            PeerFilter::parse_allow_list(&["127.0.0.1"]).unwrap()
        } else {
            Vec::new()
        },
        max_allocations_per_user: 100,
        relay_ports: 41000..=44999,
        ..TurnConfig::default()
    }
}

async fn start(config: TurnConfig, tls: bool) -> Turn {
    let (udp, tcp) = bind_pair().await;
    let port = udp.local_addr().unwrap().port();
    let (tcp, tls_listener, port) = if tls {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_port = listener.local_addr().unwrap().port();
        let (cert, key) = certificate();
        (
            None,
            Some((listener, TlsSettings::new(cert, key).unwrap())),
            tls_port,
        )
    } else {
        (Some(tcp), None, port)
    };
    let listeners = Listeners {
        udp,
        tcp,
        tls: tls_listener,
    };
    let handle = driver::spawn(config, listeners, IpAddr::from([127, 0, 0, 1])).unwrap();
    Turn { handle, port }
}

fn certificate() -> (PathBuf, PathBuf) {
    let n: u64 = rand::random();
    let dir = std::env::temp_dir().join(format!("samtale-turn-tls-{n:x}"));
    samtale_turn::driver::tls::self_signed_localhost(&dir).expect("openssl (run ./scripts/test.sh)")
}

/// `turnutils_peer` echoing on a free loopback port.
fn peer() -> (Child, u16) {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("turnutils_peer")
        .args(["-L", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("turnutils_peer (apt-get install coturn; run ./scripts/test.sh)");
    (child, port)
}

#[derive(Debug)]
struct Report {
    sent: u64,
    received: u64,
    lost: Option<u64>,
    text: String,
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let rest = &text[text.rfind(key)? + key.len()..];
    rest.chars()
        .take_while(|c| c.is_ascii_digit())
        .collect::<String>()
        .parse()
        .ok()
}

async fn uclient(turn: &Turn, peer_port: u16, extra: &[&str]) -> Report {
    let mut cmd = Command::new("turnutils_uclient");
    cmd.args([
        "-e",
        "127.0.0.1",
        "-r",
        &peer_port.to_string(),
        "-p",
        &turn.port.to_string(),
    ])
    .args(extra)
    .arg("127.0.0.1")
    .stdin(Stdio::null())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .expect("uclient hung")
        .expect("turnutils_uclient");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Report {
        sent: number_after(&text, "tot_send_msgs=").unwrap_or(0),
        received: number_after(&text, "tot_recv_msgs=").unwrap_or(0),
        lost: number_after(&text, "Total lost packets "),
        text,
    }
}

fn assert_clean(r: &Report, expected: u64) {
    assert_eq!(
        (r.sent, r.received, r.lost),
        (expected, expected, Some(0)),
        "{}",
        r.text
    );
}

const LOAD: [&str; 7] = ["-m", "5", "-n", "200", "-l", "200", "-c"];

#[tokio::test]
async fn uclient_relays_over_udp_with_channel_data() {
    let turn = start(config(true), false).await;
    let (_peer, port) = peer();
    let r = uclient(&turn, port, &[&LOAD[..], &["-W", SECRET]].concat()).await;
    assert_clean(&r, 1000);
    // Statistics are published once a second: wait for them, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let s = turn.handle.stats.lock().unwrap().clone();
        if s.packets_to_peers >= 1000 && s.packets_to_clients >= 1000 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
    }
}

/// Two core threads share the client port: uclient's sessions spread over
/// both (the kernel hashes each client's 4-tuple), and every one relays.
#[tokio::test]
async fn sessions_spread_over_two_core_threads_and_all_relay() {
    let config = TurnConfig {
        core_threads: 2,
        ..config(true)
    };
    let turn = start(config, false).await;
    let (_peer, port) = peer();
    let load = ["-m", "20", "-n", "50", "-l", "200", "-c", "-W", SECRET];
    let r = uclient(&turn, port, &load).await;
    assert_clean(&r, 1000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let shards = turn.handle.shard_stats();
        let created: Vec<u64> = shards.iter().map(|s| s.allocations_created).collect();
        // 20 sessions on one thread alone would be a 1-in-500 000 chance.
        if created.len() == 2 && created.iter().all(|c| *c > 0) && created.iter().sum::<u64>() >= 20
        {
            let total = turn.handle.stats.lock().unwrap().clone();
            assert_eq!(total.allocations_created, created.iter().sum::<u64>());
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{created:?}");
    }
}

#[tokio::test]
async fn uclient_relays_over_udp_with_send_indications() {
    let turn = start(config(true), false).await;
    let (_peer, port) = peer();
    let r = uclient(&turn, port, &[&LOAD[..], &["-s", "-W", SECRET]].concat()).await;
    assert_clean(&r, 1000);
}

#[tokio::test]
async fn uclient_relays_over_tcp() {
    let turn = start(config(true), false).await;
    let (_peer, port) = peer();
    let r = uclient(&turn, port, &[&LOAD[..], &["-t", "-W", SECRET]].concat()).await;
    assert_clean(&r, 1000);
}

/// TCP connections go to the core thread their client address hashes to;
/// relay data for them comes back through that thread.
#[tokio::test]
async fn uclient_relays_over_tcp_with_two_core_threads() {
    let config = TurnConfig {
        core_threads: 2,
        ..config(true)
    };
    let turn = start(config, false).await;
    let (_peer, port) = peer();
    let load = [
        "-m", "10", "-n", "100", "-l", "200", "-c", "-t", "-W", SECRET,
    ];
    let r = uclient(&turn, port, &load).await;
    assert_clean(&r, 1000);
}

#[tokio::test]
async fn uclient_relays_over_tls() {
    let turn = start(config(true), true).await;
    let (_peer, port) = peer();
    // A message every millisecond, so several wait for a session in one
    // turn: uclient takes a TLS record for one message, and loses the
    // rest of a record that holds more.
    let r = uclient(
        &turn,
        port,
        &[&LOAD[..], &["-z", "1", "-t", "-S", "-W", SECRET]].concat(),
    )
    .await;
    assert_clean(&r, 1000);
}

/// RFC 6062 with uclient's `-T`: its sessions allocate TCP relayed
/// addresses and Connect to each other's (a full mesh, client to client),
/// so every pair needs a connection out of one relay and a ConnectionAttempt
/// at the other. Two core threads: each data connection must find the
/// thread holding its peer connection. uclient's own sessions are the peers
/// (`-e`/`-r` are ignored with `-T`).
#[tokio::test]
async fn uclient_relays_tcp_allocations_between_its_sessions() {
    let config = TurnConfig {
        core_threads: 2,
        ..config(true)
    };
    let turn = start(config, false).await;
    let load = [
        "-T", "-m", "4", "-n", "100", "-l", "200", "-z", "5", "-W", SECRET,
    ];
    let r = uclient(&turn, 1, &load).await;
    // 4 sessions in a mesh: 6 pairs, each bound at both ends.
    assert!(
        r.text.contains("12 connections are completed"),
        "{}",
        r.text
    );
    assert_clean(&r, 400);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let s = turn.handle.stats.lock().unwrap().clone();
        // uclient closes everything at the end: each relayed byte counted
        // (4 sessions × 100 messages × 200 bytes; each crosses the relay
        // once toward a peer and once toward a client).
        if s.bytes_to_peers >= 80_000 && s.bytes_to_clients >= 80_000 && s.peer_connections == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
    }
}

/// The same over TLS: control and data connections are TLS (`-S`).
#[tokio::test]
async fn uclient_relays_tcp_allocations_over_tls() {
    let turn = start(config(true), true).await;
    // Four sessions: ConnectionAttempts to one session arrive together,
    // and each must come in a TLS record of its own (see above).
    let load = [
        "-T", "-S", "-m", "4", "-n", "100", "-l", "200", "-z", "5", "-W", SECRET,
    ];
    let r = uclient(&turn, 1, &load).await;
    assert!(
        r.text.contains("12 connections are completed"),
        "{}",
        r.text
    );
    assert_clean(&r, 400);
}

/// 300 Try Alternate: a full node sends uclient to its alternate, where the
/// sessions allocate and relay (uclient follows the redirect of its first,
/// probing Allocate, and checks the 300's MESSAGE-INTEGRITY).
#[tokio::test]
async fn a_full_node_sends_uclient_to_its_alternate() {
    let other = start(config(true), false).await;
    let full = start(
        TurnConfig {
            max_allocations_total: 0,
            alternate_servers: vec![other.handle.udp_addr],
            ..config(true)
        },
        false,
    )
    .await;
    let (_peer, port) = peer();
    let r = uclient(&full, port, &[&LOAD[..], &["-W", SECRET]].concat()).await;
    assert_clean(&r, 1000);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let redirected = full.handle.stats.lock().unwrap().clone();
        let served = other.handle.stats.lock().unwrap().clone();
        if redirected.redirected >= 1 && served.allocations_created >= 5 {
            assert_eq!(redirected.allocations_created, 0);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{redirected:?} {served:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let turn = start(config(true), false).await;
    let (_peer, port) = peer();
    let r = uclient(
        &turn,
        port,
        &[
            "-m",
            "1",
            "-n",
            "10",
            "-l",
            "200",
            "-c",
            "-W",
            "not-the-secret",
        ],
    )
    .await;
    assert_eq!(r.received, 0, "{}", r.text);
    assert!(
        r.text.contains("Cannot complete Allocation") || r.text.contains("401"),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn expired_rest_credentials_are_refused() {
    let turn = start(config(true), false).await;
    let (_peer, port) = peer();
    // Valid signature, expiry in 1970.
    let creds = samtale_turn::mint_rest_credentials(
        SECRET.as_bytes(),
        "ada",
        Duration::from_secs(60),
        1000,
    );
    let r = uclient(
        &turn,
        port,
        &[
            "-m",
            "1",
            "-n",
            "10",
            "-l",
            "200",
            "-c",
            "-u",
            &creds.username,
            "-w",
            &creds.password,
        ],
    )
    .await;
    assert_eq!(r.received, 0, "{}", r.text);
    // The same user with fresh credentials gets through.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let fresh = samtale_turn::mint_rest_credentials(
        SECRET.as_bytes(),
        "ada",
        Duration::from_secs(600),
        now,
    );
    let r = uclient(
        &turn,
        port,
        &[
            "-m",
            "1",
            "-n",
            "20",
            "-l",
            "200",
            "-c",
            "-u",
            &fresh.username,
            "-w",
            &fresh.password,
        ],
    )
    .await;
    assert_clean(&r, 20);
}

#[tokio::test]
async fn default_settings_refuse_the_loopback_peer() {
    let turn = start(config(false), false).await;
    let (_peer, port) = peer();
    let r = uclient(
        &turn,
        port,
        &["-m", "1", "-n", "10", "-l", "200", "-c", "-W", SECRET],
    )
    .await;
    assert_eq!(r.received, 0, "{}", r.text);
    assert!(r.text.contains("403"), "{}", r.text);
}

/// `turnutils_peer` echoing on a free IPv6 loopback port.
fn peer_v6() -> (Child, u16) {
    let port = std::net::UdpSocket::bind("[::1]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("turnutils_peer")
        .args(["-L", "::1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("turnutils_peer");
    (child, port)
}

#[tokio::test]
async fn uclient_gets_an_ipv6_relay_when_it_asks_for_one() {
    let mut config = config(false);
    config.allowed_peers = PeerFilter::parse_allow_list(&["127.0.0.1", "::1"]).unwrap();
    let (udp, _) = bind_pair().await;
    let port = udp.local_addr().unwrap().port();
    let listeners = Listeners {
        udp,
        tcp: None,
        tls: None,
    };
    let relay_ips = [IpAddr::from([127, 0, 0, 1]), "::1".parse().unwrap()];
    let handle = driver::spawn_with_relay_ips(config, listeners, &relay_ips).unwrap();
    let turn = Turn { handle, port };
    let (_peer, peer_port) = peer_v6();
    // -x: REQUESTED-ADDRESS-FAMILY IPv6; the later -e wins over the helper's.
    let r = uclient(
        &turn,
        peer_port,
        &[&LOAD[..], &["-W", SECRET, "-x", "-e", "::1"]].concat(),
    )
    .await;
    assert_clean(&r, 1000);
}
