//! `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use samtale_sfu::SfuMetrics;

use crate::app::AppState;

fn line(out: &mut String, name: &str, kind: &str, help: &str, value: &AtomicU64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {}", SfuMetrics::get(value));
}

/// Renders every metric.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    let s = state.sfu.metrics();
    line(
        &mut out,
        "samtale_rooms",
        "gauge",
        "Rooms with at least one participant.",
        &s.rooms,
    );
    line(
        &mut out,
        "samtale_participants",
        "gauge",
        "Participants joined to the SFU.",
        &s.participants,
    );
    line(
        &mut out,
        "samtale_packets_received_total",
        "counter",
        "RTP packets received from publishers.",
        &s.packets_received,
    );
    line(
        &mut out,
        "samtale_packets_forwarded_total",
        "counter",
        "RTP packets forwarded to subscribers.",
        &s.packets_forwarded,
    );
    line(
        &mut out,
        "samtale_bytes_forwarded_total",
        "counter",
        "RTP payload bytes forwarded to subscribers.",
        &s.bytes_forwarded,
    );
    line(
        &mut out,
        "samtale_keyframe_requests_total",
        "counter",
        "Keyframe requests (PLI/FIR) sent to publishers.",
        &s.keyframe_requests,
    );
    line(
        &mut out,
        "samtale_keyframe_requests_throttled_total",
        "counter",
        "Keyframe requests suppressed by the throttle.",
        &s.keyframe_requests_throttled,
    );
    line(
        &mut out,
        "samtale_layer_switches_total",
        "counter",
        "Simulcast layer switches.",
        &s.layer_switches,
    );
    line(
        &mut out,
        "samtale_unrouted_datagrams_total",
        "counter",
        "Datagrams no participant accepted.",
        &s.unrouted_datagrams,
    );
    let m = &state.metrics;
    line(
        &mut out,
        "samtale_signaling_sessions",
        "gauge",
        "Open WebSocket sessions.",
        &m.sessions,
    );
    line(
        &mut out,
        "samtale_rooms_created_total",
        "counter",
        "Rooms created over the API.",
        &m.rooms_created,
    );
    line(
        &mut out,
        "samtale_client_errors_total",
        "counter",
        "Error frames sent to clients.",
        &m.client_errors,
    );
    line(
        &mut out,
        "samtale_joins_refused_total",
        "counter",
        "Joins refused (bad token, full room).",
        &m.joins_refused,
    );
    if let Some(stats) = &state.turn_stats {
        let snapshot = stats.lock().map(|s| s.clone()).unwrap_or_default();
        out.push_str(&samtale_turn::ops::render(&snapshot, "embedded"));
    }
    out.push_str(&state.media.metrics.render());
    out
}
