//! `/metrics` (Prometheus text) and `/healthz` for the TURN binary: a tiny
//! HTTP/1.1 responder, so the TURN node needs no web framework.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::server::Stats;

/// Renders the statistics in the Prometheus text format.
pub fn render(stats: &Stats, region: &str) -> String {
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name}{{region=\"{region}\"}} {value}"
        );
    };
    metric(
        "turn_allocations",
        "gauge",
        "Live allocations.",
        stats.allocations as u64,
    );
    metric(
        "turn_permissions",
        "gauge",
        "Live permissions.",
        stats.permissions as u64,
    );
    metric(
        "turn_channels",
        "gauge",
        "Live channel bindings.",
        stats.channels as u64,
    );
    metric(
        "turn_peer_connections",
        "gauge",
        "TCP peer connections of TCP allocations (RFC 6062).",
        stats.peer_connections as u64,
    );
    metric(
        "turn_client_connections",
        "gauge",
        "Client TCP/TLS connections open (data connections and handshakes included).",
        stats.client_connections as u64,
    );
    metric(
        "turn_client_connections_refused_total",
        "counter",
        "Client TCP/TLS connections closed on arrival at max_client_connections.",
        stats.connections_refused,
    );
    metric(
        "turn_unallocated_connections",
        "gauge",
        "Client TCP/TLS connections past their first message without an allocation (0 when allocate_timeout is 0).",
        stats.unallocated_connections as u64,
    );
    metric(
        "turn_idle_connections_closed_total",
        "counter",
        "Client TCP/TLS connections closed for holding no allocation past allocate_timeout.",
        stats.idle_connections_closed,
    );
    metric(
        "turn_allocations_created_total",
        "counter",
        "Allocations created.",
        stats.allocations_created,
    );
    metric(
        "turn_allocations_deleted_total",
        "counter",
        "Allocations deleted or expired.",
        stats.allocations_deleted,
    );
    metric(
        "turn_auth_failures_total",
        "counter",
        "Requests refused for credentials.",
        stats.auth_failures,
    );
    metric(
        "turn_denied_peers_total",
        "counter",
        "Permissions or channels refused by the peer filter.",
        stats.denied_peers,
    );
    metric(
        "turn_redirected_total",
        "counter",
        "Allocations sent to an alternate server (300 Try Alternate).",
        stats.redirected,
    );
    metric(
        "turn_malformed_total",
        "counter",
        "Malformed packets dropped.",
        stats.malformed,
    );
    metric(
        "turn_rate_limited_total",
        "counter",
        "Packets dropped by the per-allocation bandwidth cap.",
        stats.rate_limited,
    );
    metric(
        "turn_relayed_packets_to_peers_total",
        "counter",
        "Packets relayed client to peer.",
        stats.packets_to_peers,
    );
    metric(
        "turn_relayed_bytes_to_peers_total",
        "counter",
        "Bytes relayed client to peer.",
        stats.bytes_to_peers,
    );
    metric(
        "turn_relayed_packets_to_clients_total",
        "counter",
        "Packets relayed peer to client.",
        stats.packets_to_clients,
    );
    metric(
        "turn_relayed_bytes_to_clients_total",
        "counter",
        "Bytes relayed peer to client.",
        stats.bytes_to_clients,
    );
    out
}

/// Serves `/metrics` and `/healthz` until the process ends. `/healthz`
/// answers 503 once `draining` is true.
pub async fn serve(
    listener: TcpListener,
    stats: Arc<Mutex<Stats>>,
    region: String,
    draining: watch::Receiver<bool>,
) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let stats = stats.clone();
        let region = region.clone();
        let draining = *draining.borrow();
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n =
                match tokio::time::timeout(std::time::Duration::from_secs(5), conn.read(&mut buf))
                    .await
                {
                    Ok(Ok(n)) => n,
                    _ => return,
                };
            let request = String::from_utf8_lossy(&buf[..n]);
            let path = request.split_whitespace().nth(1).unwrap_or("/");
            let (status, body) = match path {
                "/metrics" => {
                    let snapshot = stats.lock().map(|s| s.clone()).unwrap_or_default();
                    ("200 OK", render(&snapshot, &region))
                }
                "/healthz" if draining => ("503 Service Unavailable", "draining\n".to_owned()),
                "/healthz" => ("200 OK", "ok\n".to_owned()),
                _ => ("404 Not Found", "not found\n".to_owned()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(response.as_bytes()).await;
        });
    }
}

/// Where the metrics endpoint listens, for logs.
pub fn describe(addr: Option<SocketAddr>) -> String {
    addr.map_or_else(|| "disabled".to_owned(), |a| format!("http://{a}/metrics"))
}
