//! Live mode through a real samtale process: two bots, the impairment
//! proxy with 10 % random loss toward the SFU, received speech scored.
//!
//! Needs the `samtale` binary: `SAMTALE_BIN`, or `samtale` next to this
//! test's `qoe-lab` binary (the workspace's test run builds both).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::time::Duration;

use samtale_qoe_lab::netem::{LossModel, NetemConfig};
use samtale_qoe_lab::proxy::{ImpairmentProxy, ProxyConfig};
use samtale_qoe_lab::{audio, live};

fn samtale_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("SAMTALE_BIN") {
        return PathBuf::from(p);
    }
    let sibling = PathBuf::from(env!("CARGO_BIN_EXE_qoe-lab")).with_file_name("samtale");
    assert!(
        sibling.exists(),
        "live test: no samtale binary at {} — run `cargo build -p samtale` first \
         (same profile and target dir), or set SAMTALE_BIN=/path/to/samtale",
        sibling.display()
    );
    sibling
}

/// Each sender audio packet crosses the lossy direction once (bot → SFU),
/// so the receiver should see 10 % loss. Over n ≈ 400 packets the
/// binomial standard deviation is √(0.1·0.9/400) = 1.5 %; the test allows
/// ±4 σ (6 %): a correct system fails it about once in 16 000 runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_percent_loss_at_the_proxy_is_measured_and_scored() {
    let binary = samtale_binary();
    let config = ProxyConfig {
        to_sfu: NetemConfig {
            seed: 10,
            loss: LossModel::Random { p: 0.10 },
            ..NetemConfig::default()
        },
        to_client: NetemConfig::default(),
    };
    let proxy = ImpairmentProxy::bind("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap();
    let server = live::spawn_samtale(&binary, proxy.local_addr())
        .await
        .unwrap();
    proxy.set_upstream(server.media_addr);

    let speech = audio::alsa_speech(&["Front_Center", "Rear_Left", "Side_Right"]).unwrap();
    let mut cfg = live::LiveConfig::new(server.url.clone(), speech);
    cfg.record = Duration::from_secs(8);
    cfg.score_seconds = 4.0;
    cfg.timeout = Duration::from_secs(15);
    let report = live::run(&cfg, &proxy).await.unwrap();
    proxy.stop().await;
    drop(server);

    let rx = &report.received;
    println!(
        "live: {} of {} packets, loss {:.2} %, jitter {:.2} ms, proxy {:?}, scores {:?} {:?}",
        rx.received,
        rx.expected,
        100.0 * rx.loss(),
        rx.jitter_ms,
        report.proxy,
        report.scores,
        report.score_error
    );
    assert!(rx.expected >= 400, "{rx:?}");
    assert!((0.04..=0.16).contains(&rx.loss()), "loss {}", rx.loss());
    assert_eq!(rx.concealed + rx.fec_recovered, rx.expected - rx.received);
    // The delay an adaptive jitter buffer (95th-percentile target, 20 ms
    // minimum) adds on loopback: above zero, well under a second.
    let jb = rx.jitter_buffer_delay_ms;
    let steady = rx.jitter_buffer_delay_steady_ms;
    println!(
        "live: jitter-buffer delay {jb:?}, steady {steady:?}, late {}",
        rx.jitter_buffer_late
    );
    assert!(jb.frames > 300, "{jb:?}");
    assert!(jb.mean > 0.0 && jb.mean < 1000.0, "{jb:?}");
    assert!(jb.p95 >= jb.mean && jb.p95 < 1000.0, "{jb:?}");
    // Past the start-up burst, loopback jitter is small: the target sits
    // near its 20 ms minimum.
    assert!(steady.frames > 150, "{steady:?}");
    assert!(steady.mean > 0.0 && steady.p95 < 200.0, "{steady:?}");
    let json = serde_json::to_value(&report.received).unwrap();
    assert!(
        json["jitter_buffer_delay_ms"]["mean"].as_f64().is_some(),
        "{json}"
    );
    // No packet bypasses the impairment: the bots talked only to the proxy,
    // and it received exactly what they sent.
    assert!(report.only_through_proxy);
    assert_eq!(report.proxy.to_sfu.packets_in, report.bots_udp_sent);
    assert!(report.bots_udp_received <= report.proxy.to_client.packets_out);
    assert_eq!(report.proxy.to_client.dropped, 0);
    let dropped = report.proxy.to_sfu.dropped as f64 / report.proxy.to_sfu.packets_in as f64;
    assert!((0.05..=0.15).contains(&dropped), "proxy dropped {dropped}");
    // Scored: 10 % loss with PLC only is audibly worse than clean but
    // still speech.
    let s = report.scores.expect("scored");
    let wb = s.pesq_wb.unwrap();
    let visqol = s.visqol.unwrap();
    assert!((1.5..4.2).contains(&wb), "WB-PESQ {wb}");
    assert!((2.0..4.6).contains(&visqol), "ViSQOL {visqol}");
    assert!(s.scored_seconds > 3.0, "{s:?}");
}
