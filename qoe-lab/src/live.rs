//! Live mode: two bots call each other through a samtale SFU with an
//! [`ImpairmentProxy`] in the media path; the sender publishes reference
//! speech as Opus (encoded here with libopus), the receiver decodes what
//! arrives into PCM ([`PcmSink`]), and the received speech is scored like
//! the simulated pipeline's.
//!
//! The SFU must announce the proxy's address (`announce_addr`) and the
//! proxy must forward to the SFU's real media socket: [`run`] takes both
//! as given (a server started in-process or elsewhere), and
//! [`spawn_samtale`] starts a samtale binary set up that way.
//!
//! The reference is looped (with 300 ms of silence at both ends, so the
//! loop point falls in a pause); the receiver starts hearing it at some
//! point of the loop, found by cross-correlation before scoring.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use opus::{Application, Bitrate, Channels, Encoder};

use crate::audio::{self, Audio};
use crate::bot::{Bot, BotConfig, BotOptions, MediaClip, PcmSink, ReceivedAudio, Source, http};
use crate::pipeline::{FRAME_SAMPLES, OpusCodec, RATE};
use crate::proxy::{ImpairmentProxy, ProxyStats};
use crate::score::{self, ScoreOptions, Scores};

/// What to run.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Signaling base URL of the samtale server, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Reference speech, 48 kHz mono.
    pub reference: Audio,
    /// Opus settings, e.g. `opus-wb-24k`.
    pub codec: String,
    /// Opus in-band FEC in the encoder, and FEC decoding at the receiver.
    pub fec: bool,
    /// The encoder's expected loss with FEC (percent).
    pub fec_loss_percent: u8,
    /// How long to record once the receiver hears the sender.
    pub record: Duration,
    /// How much of the recording to score (from its second half-second
    /// on; capped by what was recorded).
    pub score_seconds: f64,
    /// Also compute ViSQOL.
    pub visqol: bool,
    /// Longest wait for joining and for the first audio.
    pub timeout: Duration,
}

impl LiveConfig {
    /// Opus 24 kb/s wideband, FEC off, 10 s recorded, 6 s scored, ViSQOL on.
    pub fn new(server: impl Into<String>, reference: Audio) -> Self {
        Self {
            server: server.into(),
            reference,
            codec: "opus-wb-24k".into(),
            fec: false,
            fec_loss_percent: 10,
            record: Duration::from_secs(10),
            score_seconds: 6.0,
            visqol: true,
            timeout: Duration::from_secs(20),
        }
    }
}

/// What a live run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LiveReport {
    /// The receiver's view of the sender's audio: loss, jitter,
    /// concealment.
    pub received: ReceivedAudio,
    /// The proxy's counters at the end.
    pub proxy: ProxyStats,
    /// UDP datagrams the two bots sent / received, and whether every
    /// datagram went to or came from the proxy.
    pub bots_udp_sent: u64,
    /// See `bots_udp_sent`.
    pub bots_udp_received: u64,
    /// True if the bots exchanged datagrams with no address but the proxy's.
    pub only_through_proxy: bool,
    /// Opus payload bits per second of the reference as encoded.
    pub payload_bps: f64,
    /// Bits per second on the wire for the audio (payload + 12 bytes RTP +
    /// 8 UDP + 20 IPv4 per 20 ms packet; SRTP's 10-byte tag not included).
    pub wire_bps: f64,
    /// Scores of the received speech, if it could be scored.
    pub scores: Option<Scores>,
    /// Why it could not.
    pub score_error: Option<String>,
    /// Seconds of received audio.
    pub recorded_seconds: f64,
    /// The scored reference and received segments (not serialized).
    #[serde(skip)]
    pub segments: Option<(Audio, Audio)>,
}

/// Encodes `reference` into 20 ms Opus packets.
pub fn encode(
    reference: &Audio,
    codec: &str,
    fec: bool,
    fec_loss_percent: u8,
) -> anyhow::Result<Vec<Vec<u8>>> {
    if reference.rate != RATE {
        bail!(
            "reference is {} Hz; live mode needs 48000 Hz mono",
            reference.rate
        );
    }
    let c = OpusCodec::parse(codec)?;
    let mut enc = Encoder::new(RATE, Channels::Mono, Application::Voip)?;
    enc.set_bitrate(Bitrate::Bits(c.bitrate as i32))?;
    enc.set_max_bandwidth(match c.bandwidth {
        "nb" => opus::Bandwidth::Narrowband,
        "mb" => opus::Bandwidth::Mediumband,
        "wb" => opus::Bandwidth::Wideband,
        "swb" => opus::Bandwidth::Superwideband,
        _ => opus::Bandwidth::Fullband,
    })?;
    enc.set_complexity(10)?;
    enc.set_inband_fec(fec)?;
    enc.set_packet_loss_perc(if fec { i32::from(fec_loss_percent) } else { 0 })?;
    let mut out = Vec::new();
    for chunk in reference.samples.chunks(FRAME_SAMPLES) {
        let mut pcm = [0i16; FRAME_SAMPLES];
        pcm[..chunk.len()].copy_from_slice(chunk);
        out.push(enc.encode_vec(&pcm, 1500)?);
    }
    Ok(out)
}

/// The reference as sent in a loop: 300 ms of silence, the speech, 300 ms
/// of silence, padded to whole frames.
fn looped_reference(reference: &Audio) -> Audio {
    let pad = RATE as usize * 3 / 10;
    let mut samples = vec![0i16; pad];
    samples.extend_from_slice(&reference.samples);
    samples.resize(samples.len() + pad, 0);
    samples.resize(samples.len().div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES, 0);
    Audio {
        rate: RATE,
        samples,
    }
}

fn socket_addr(server: &str) -> anyhow::Result<SocketAddr> {
    let rest = server
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("server URL must be http://HOST:PORT, got {server:?}"))?;
    rest.trim_end_matches('/')
        .parse()
        .with_context(|| format!("server URL must be http://IP:PORT, got {server:?}"))
}

async fn wait_until<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Option<T>,
) -> anyhow::Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return Ok(v);
        }
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs a live call through `proxy` to the samtale at `config.server`.
pub async fn run(config: &LiveConfig, proxy: &ImpairmentProxy) -> anyhow::Result<LiveReport> {
    let addr = socket_addr(&config.server)?;
    let looped = looped_reference(&config.reference);
    let packets = encode(&looped, &config.codec, config.fec, config.fec_loss_percent)?;
    let payload_bytes: usize = packets.iter().map(Vec::len).sum();
    let secs = packets.len() as f64 * 0.02;
    let payload_bps = payload_bytes as f64 * 8.0 / secs;
    let wire_bps = (payload_bytes + packets.len() * 40) as f64 * 8.0 / secs;
    let clip = Arc::new(MediaClip {
        video: Vec::new(),
        fps: 30,
        audio: packets,
    });

    let token = http::create_room(addr).await?;
    let bot = |name: &str, source| BotConfig {
        server: config.server.clone(),
        token: token.clone(),
        name: name.into(),
        source,
        bind_ip: addr.ip(),
    };
    let sink = PcmSink::new(config.fec);
    let receiver = tokio::time::timeout(
        config.timeout,
        Bot::join_with(
            bot("qoe-receiver", Source::Silent),
            BotOptions {
                pcm_sink: Some(sink.clone()),
            },
        ),
    )
    .await
    .context("receiver join timed out")??;
    let sender = match tokio::time::timeout(
        config.timeout,
        Bot::join(bot("qoe-sender", Source::Clip(clip))),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let _ = receiver.leave().await;
            return Err(e.context("sender join"));
        }
        Err(_) => {
            let _ = receiver.leave().await;
            bail!("sender join timed out");
        }
    };
    let frames = (config.record.as_secs_f64() * 50.0) as u64;
    let recorded = async {
        wait_until(config.timeout, "the receiver to hear the sender", || {
            sink.snapshot()
                .values()
                .any(|a| a.received > 0)
                .then_some(())
        })
        .await?;
        wait_until(config.record + config.timeout, "the recording", || {
            sink.snapshot()
                .values()
                .any(|a| a.expected >= frames)
                .then_some(())
        })
        .await
    }
    .await;
    let sender_left = sender.leave_with_stats().await;
    let receiver_left = receiver.leave_with_stats().await;
    recorded?;
    let s = sender_left.context("sender")?;
    let r = receiver_left.context("receiver")?;
    // Every datagram the bots sent reaches the proxy's socket; wait
    // (bounded) until it has read them all.
    let sent = s.udp_sent + r.udp_sent;
    let _ = wait_until(
        Duration::from_secs(2),
        "the proxy to read everything",
        || (proxy.stats().to_sfu.packets_in >= sent).then_some(()),
    )
    .await;
    let received = sink
        .snapshot()
        .into_values()
        .max_by_key(|a| a.received)
        .ok_or_else(|| anyhow!("no audio received"))?;
    let peers: std::collections::HashSet<_> = s.udp_peers.union(&r.udp_peers).copied().collect();
    let mut report = LiveReport {
        proxy: proxy.stats(),
        bots_udp_sent: sent,
        bots_udp_received: s.udp_received + r.udp_received,
        only_through_proxy: peers.iter().all(|p| *p == proxy.local_addr()),
        payload_bps,
        wire_bps,
        scores: None,
        score_error: None,
        recorded_seconds: received.pcm.len() as f64 / f64::from(RATE),
        segments: None,
        received,
    };
    match segments(&looped, &report.received.pcm, config.score_seconds) {
        Ok((reference, degraded)) => {
            let options = ScoreOptions {
                visqol: config.visqol,
            };
            match score::score_with(&reference, &degraded, options) {
                Ok(s) => report.scores = Some(s),
                Err(e) => report.score_error = Some(e.to_string()),
            }
            report.segments = Some((reference, degraded));
        }
        Err(e) => report.score_error = Some(e.to_string()),
    }
    Ok(report)
}

/// Cuts `seconds` of the received PCM (skipping its first half second)
/// and the part of the looped reference it corresponds to.
fn segments(looped: &Audio, received: &[i16], seconds: f64) -> anyhow::Result<(Audio, Audio)> {
    let skip = RATE as usize / 2;
    let want = (seconds * f64::from(RATE)) as usize;
    let available = received.len().saturating_sub(skip);
    if available < RATE as usize {
        bail!(
            "only {:.2} s received; need at least 1.5 s",
            received.len() as f64 / f64::from(RATE)
        );
    }
    let degraded = Audio {
        rate: RATE,
        samples: received[skip..skip + want.min(available)].to_vec(),
    };
    // Tile the loop to cover one period before and after the segment, find
    // where the segment sits in it (at 16 kHz, then refined by `score`).
    let period = looped.samples.len();
    let tiles = (degraded.samples.len() / period) + 2;
    let tiled = Audio {
        rate: RATE,
        samples: looped.samples.repeat(tiles),
    };
    let (t16, d16) = (
        audio::resample(&tiled, 16_000)?,
        audio::resample(&degraded, 16_000)?,
    );
    let lag = audio::delay(&t16.samples, &d16.samples, 16_000, period / 3 + 1600);
    // degraded[i + lag] ≈ tiled[i]: the segment starts at −lag in `tiled`.
    let start = usize::try_from(-lag * 3)
        .unwrap_or(0)
        .min(tiled.samples.len() - degraded.samples.len());
    let reference = Audio {
        rate: RATE,
        samples: tiled.samples[start..start + degraded.samples.len()].to_vec(),
    };
    Ok((reference, degraded))
}

/// A samtale process started for a live run, killed on drop.
pub struct Samtale {
    child: Child,
    /// Its signaling URL.
    pub url: String,
    /// Its real media address (the proxy's upstream).
    pub media_addr: SocketAddr,
    data: PathBuf,
}

impl Drop for Samtale {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn free_port(udp: bool) -> anyhow::Result<u16> {
    Ok(if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

/// Starts the samtale binary on loopback with its media socket on a free
/// port and `announce` (the proxy's address) in its ICE candidates, and
/// waits until it is healthy.
pub async fn spawn_samtale(binary: &Path, announce: SocketAddr) -> anyhow::Result<Samtale> {
    let port = free_port(false)?;
    let media_port = free_port(true)?;
    let data = std::env::temp_dir().join(format!("samtale-live-{port}-{}", std::process::id()));
    let child = Command::new(binary)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--media-listen", &format!("127.0.0.1:{media_port}")])
        .args(["--announce-addr", &announce.to_string()])
        .arg("--data-dir")
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (build it with `cargo build -p samtale`)",
                binary.display()
            )
        })?;
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let mut server = Samtale {
        child,
        url: format!("http://{addr}"),
        media_addr: format!("127.0.0.1:{media_port}").parse()?,
        data,
    };
    for _ in 0..200 {
        if let Ok(Some(status)) = server.child.try_wait() {
            bail!("samtale exited at start: {status}");
        }
        if let Ok((200, _)) = http::request(addr, "GET", "/healthz", "").await {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("samtale did not become healthy in 10 s")
}
