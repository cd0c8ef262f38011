//! The SFU load benchmark: N probe bots in one room against a samtale
//! process, measuring forwarded packets per CPU-second of that process and
//! the one-way latency bot → SFU → bot.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::bot::{Bot, BotConfig, Source, http};

/// One measured run.
#[derive(Debug, Clone)]
pub struct LoadResult {
    /// Bots in the room.
    pub bots: usize,
    /// Packets the SFU forwarded during the measurement.
    pub forwarded: u64,
    /// CPU seconds the SFU process used during the measurement.
    pub cpu_seconds: f64,
    /// Wall seconds of the measurement.
    pub seconds: f64,
    /// Median one-way latency, ms.
    pub p50_ms: f64,
    /// 99th percentile one-way latency, ms.
    pub p99_ms: f64,
    /// Audio packets received / expected.
    pub delivery: f64,
}

impl LoadResult {
    /// Forwarded packets per CPU-second.
    pub fn packets_per_cpu_second(&self) -> f64 {
        self.forwarded as f64 / self.cpu_seconds.max(1e-9)
    }
}

/// A samtale process started for the run, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    data: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn spawn_server(binary: &Path) -> anyhow::Result<Server> {
    let port = free_port()?;
    let data = std::env::temp_dir().join(format!("samtale-load-{port}"));
    let child = Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let server = Server { child, addr, data };
    for _ in 0..100 {
        if let Ok((200, _)) = http::request(addr, "GET", "/healthz", "").await {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("samtale did not become healthy in 10 s")
}

/// utime + stime of a process, seconds (Linux /proc).
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("bad /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11).context("utime")?.parse()?;
    let stime: f64 = fields.get(12).context("stime")?.parse()?;
    // Linux reports clock ticks; USER_HZ is 100 on every mainstream kernel.
    Ok((utime + stime) / 100.0)
}

async fn forwarded(addr: SocketAddr) -> anyhow::Result<u64> {
    let (_, body) = http::request(addr, "GET", "/metrics", "").await?;
    body.lines()
        .find_map(|l| l.strip_prefix("samtale_packets_forwarded_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no samtale_packets_forwarded_total in /metrics")
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Runs `bots` probe bots for `seconds` against a fresh samtale process.
pub async fn run(
    binary: &Path,
    bots: usize,
    seconds: u64,
    video_bytes: usize,
) -> anyhow::Result<LoadResult> {
    let server = spawn_server(binary).await?;
    let token = http::create_room(server.addr).await?;
    let mut joined = Vec::new();
    for i in 0..bots {
        joined.push(
            Bot::join(BotConfig {
                server: format!("http://{}", server.addr),
                token: token.clone(),
                name: format!("load-{i}"),
                source: Source::Probe { video_bytes },
                bind_ip: "127.0.0.1".parse()?,
            })
            .await?,
        );
    }
    // Warm up: ICE, DTLS, renegotiation, BWE ramp.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before_lat: Vec<usize> = joined
        .iter()
        .map(|b| b.stats().probe_latency_us.len())
        .collect();
    let before_audio: u64 = joined
        .iter()
        .map(|b| {
            b.stats()
                .received
                .values()
                .map(|t| t.audio_frames)
                .sum::<u64>()
        })
        .sum();
    let cpu0 = cpu_seconds(server.child.id())?;
    let fwd0 = forwarded(server.addr).await?;
    let t0 = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let cpu1 = cpu_seconds(server.child.id())?;
    let fwd1 = forwarded(server.addr).await?;
    let elapsed = t0.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut audio = 0;
    for (b, from) in joined.iter().zip(before_lat) {
        let s = b.stats();
        latencies.extend_from_slice(s.probe_latency_us.get(from..).unwrap_or_default());
        audio += s.received.values().map(|t| t.audio_frames).sum::<u64>();
    }
    latencies.sort_unstable();
    let expected = (bots * bots.saturating_sub(1)) as f64 * 50.0 * elapsed;
    for b in joined {
        let _ = b.leave().await;
    }
    Ok(LoadResult {
        bots,
        forwarded: fwd1.saturating_sub(fwd0),
        cpu_seconds: cpu1 - cpu0,
        seconds: elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        delivery: (audio - before_audio) as f64 / expected.max(1.0),
    })
}
