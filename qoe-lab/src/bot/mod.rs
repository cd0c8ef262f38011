//! A WebRTC bot: a participant without a browser.
//!
//! It joins a room through the signaling WebSocket, publishes pre-encoded
//! Opus + VP8 ([`MediaClip`], decodable by browsers) or timestamped probe
//! packets (for latency benchmarks), answers the server's renegotiations,
//! and counts what it receives per publisher. It speaks only the public
//! protocol of `docs/PROTOCOL.md`, so it can be pointed at another SFU by
//! swapping the signaling adapter. One str0m `Rtc` (frame level) and one
//! UDP socket per bot, driven by one tokio task.

pub mod http;
pub mod media;
pub mod pcm;

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, Frequency, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

pub use media::{MediaClip, MediaError, VideoFrame};
pub use pcm::{DelayStats, PcmSink, ReceivedAudio};

/// What a bot sends.
#[derive(Debug, Clone)]
pub enum Source {
    /// Nothing (receive only).
    Silent,
    /// Real encoded media, looped.
    Clip(Arc<MediaClip>),
    /// Probe packets: 50 audio packets/s carrying their send time, and
    /// 30 video frames/s of `video_bytes` (keyframe flag set on the first).
    Probe {
        /// Size of each probe video frame.
        video_bytes: usize,
    },
}

/// How to start a bot.
#[derive(Debug, Clone)]
pub struct BotConfig {
    /// Base URL of the signaling server, e.g. `http://127.0.0.1:8080`.
    pub server: String,
    /// Room token.
    pub token: String,
    /// Display name.
    pub name: String,
    /// What to publish.
    pub source: Source,
    /// Local IP for the media socket (loopback by default).
    pub bind_ip: IpAddr,
}

/// What one publisher's tracks delivered to this bot.
#[derive(Debug, Default, Clone)]
pub struct TrackStats {
    /// Audio frames (Opus packets) received.
    pub audio_frames: u64,
    /// Video frames received.
    pub video_frames: u64,
    /// Video keyframes received.
    pub video_keyframes: u64,
    /// Payload bytes received.
    pub bytes: u64,
    /// Hashes of the distinct video frames received (bounded).
    pub video_hashes: HashSet<u64>,
}

/// Everything a bot observed.
#[derive(Debug, Default, Clone)]
pub struct BotStats {
    /// Our participant id (`p…`), once joined.
    pub participant_id: Option<String>,
    /// ICE is connected.
    pub connected: bool,
    /// Per publisher id.
    pub received: HashMap<String, TrackStats>,
    /// One-way latencies of probe audio packets, microseconds.
    pub probe_latency_us: Vec<u64>,
    /// Frames we sent.
    pub frames_sent: u64,
    /// Signaling messages by type.
    pub messages: HashMap<String, u64>,
    /// The last error frame from the server.
    pub last_error: Option<String>,
    /// UDP datagrams sent from the media socket.
    pub udp_sent: u64,
    /// UDP datagrams received on the media socket.
    pub udp_received: u64,
    /// Every address the media socket received from or sent to (with an
    /// impairment proxy in the path, only the proxy's).
    pub udp_peers: HashSet<SocketAddr>,
}

/// Optional extras for [`Bot::join_with`].
#[derive(Debug, Clone, Default)]
pub struct BotOptions {
    /// Decode received Opus audio into this sink.
    pub pcm_sink: Option<PcmSink>,
}

/// A running bot.
pub struct Bot {
    stats: Arc<Mutex<BotStats>>,
    stop: mpsc::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

const MAX_HASHES: usize = 10_000;

impl Bot {
    /// Joins and starts sending. Returns once the server accepted the join
    /// and the first offer/answer is done.
    pub async fn join(config: BotConfig) -> anyhow::Result<Bot> {
        Self::join_with(config, BotOptions::default()).await
    }

    /// [`Bot::join`] with extras, e.g. a [`PcmSink`] for received audio.
    pub async fn join_with(config: BotConfig, options: BotOptions) -> anyhow::Result<Bot> {
        let stats = Arc::new(Mutex::new(BotStats::default()));
        let (stop, stop_rx) = mpsc::channel(1);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(run(config, options, stats.clone(), stop_rx, ready_tx));
        match ready_rx.await {
            Ok(Ok(())) => Ok(Bot { stats, stop, task }),
            Ok(Err(e)) => {
                task.abort();
                Err(e)
            }
            Err(_) => match task.await {
                Ok(Err(e)) => Err(e),
                _ => Err(anyhow!("bot task ended before joining")),
            },
        }
    }

    /// A snapshot of what the bot saw.
    pub fn stats(&self) -> BotStats {
        self.stats.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Leaves the room and waits for the bot to stop.
    pub async fn leave(self) -> anyhow::Result<()> {
        let _ = self.stop.send(()).await;
        self.task.await.context("bot task")?
    }

    /// [`Bot::leave`], then the final stats (nothing is sent after them).
    pub async fn leave_with_stats(self) -> anyhow::Result<BotStats> {
        let stats = self.stats.clone();
        self.leave().await?;
        Ok(stats.lock().map(|s| s.clone()).unwrap_or_default())
    }
}

/// The hash [`TrackStats::video_hashes`] holds for a frame (FNV-1a:
/// enough to tell frames apart, not a security property).
pub fn frame_hash(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn send_json(ws: &mut Ws, v: Value) -> anyhow::Result<()> {
    ws.send(Message::Text(v.to_string().into())).await?;
    Ok(())
}

async fn next_json(ws: &mut Ws) -> anyhow::Result<Option<Value>> {
    loop {
        match ws.next().await {
            None | Some(Ok(Message::Close(_))) => return Ok(None),
            Some(Err(e)) => return Err(e.into()),
            Some(Ok(Message::Text(t))) => return Ok(Some(serde_json::from_str(&t)?)),
            Some(Ok(_)) => continue,
        }
    }
}

struct Sender {
    audio_mid: Option<Mid>,
    video_mid: Option<Mid>,
    frame: u64,
    audio_packet: u64,
    next_audio: Instant,
    next_video: Instant,
    start: Instant,
}

async fn run(
    config: BotConfig,
    options: BotOptions,
    stats: Arc<Mutex<BotStats>>,
    mut stop: mpsc::Receiver<()>,
    ready: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
) -> anyhow::Result<()> {
    let mut ready = Some(ready);
    let result = drive(&config, &options, &stats, &mut stop, &mut ready).await;
    if let (Some(r), Err(e)) = (ready.take(), &result) {
        let _ = r.send(Err(anyhow!("{e:#}")));
    }
    result
}

async fn drive(
    config: &BotConfig,
    options: &BotOptions,
    stats: &Arc<Mutex<BotStats>>,
    stop: &mut mpsc::Receiver<()>,
    ready: &mut Option<tokio::sync::oneshot::Sender<anyhow::Result<()>>>,
) -> anyhow::Result<()> {
    let ws_url = format!("{}/ws", config.server.trim_end_matches('/')).replacen("http", "ws", 1);
    let (mut ws, _) = tokio_tungstenite::connect_async(&ws_url)
        .await
        .with_context(|| format!("connecting {ws_url}"))?;
    send_json(
        &mut ws,
        json!({"type": "join", "token": config.token, "name": config.name}),
    )
    .await?;
    let joined = next_json(&mut ws)
        .await?
        .ok_or_else(|| anyhow!("closed before joined"))?;
    if joined["type"] != "joined" {
        bail!("join refused: {joined}");
    }
    let me = joined["participantId"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Ok(mut s) = stats.lock() {
        s.participant_id = Some(me.clone());
    }

    let socket = UdpSocket::bind(SocketAddr::new(config.bind_ip, 0)).await?;
    let local = socket.local_addr()?;
    let now = Instant::now();
    let mut rtc = Rtc::builder()
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .build(now);
    rtc.add_local_candidate(Candidate::host(local, "udp")?);
    let publishing = !matches!(config.source, Source::Silent);
    let mut api = rtc.sdp_api();
    let dir = if publishing {
        Direction::SendOnly
    } else {
        Direction::Inactive
    };
    let audio_mid = api.add_media(MediaKind::Audio, dir, None, None, None);
    let video_mid = api.add_media(MediaKind::Video, dir, None, None, None);
    let (offer, pending) = api.apply().ok_or_else(|| anyhow!("no offer"))?;
    send_json(
        &mut ws,
        json!({"type": "offer", "sdp": offer.to_sdp_string()}),
    )
    .await?;
    let mut pending: Option<SdpPendingOffer> = Some(pending);
    let mut sender = Sender {
        audio_mid: publishing.then_some(audio_mid),
        video_mid: publishing.then_some(video_mid),
        frame: 0,
        audio_packet: 0,
        next_audio: now,
        next_video: now,
        start: now,
    };
    let mut publishers: HashMap<Mid, String> = HashMap::new();
    let mut buf = vec![0u8; 2048];

    loop {
        // Drain str0m.
        let timeout = loop {
            match rtc.poll_output()? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    if socket.send_to(&t.contents, t.destination).await.is_ok()
                        && let Ok(mut s) = stats.lock()
                    {
                        s.udp_sent += 1;
                        s.udp_peers.insert(t.destination);
                    }
                }
                Output::Event(e) => on_event(&rtc, e, stats, &mut publishers, options),
            }
        };
        let next_media = if publishing && pending.is_none() {
            sender.next_audio.min(sender.next_video)
        } else {
            timeout
        };
        let wake = timeout.min(next_media);
        tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r?;
                if let Ok(mut s) = stats.lock() {
                    s.udp_received += 1;
                    s.udp_peers.insert(source);
                }
                if let Ok(receive) = Receive::new(Protocol::Udp, source, local, &buf[..n]) {
                    let _ = rtc.handle_input(Input::Receive(Instant::now(), receive));
                }
            }
            m = next_json(&mut ws) => {
                let Some(m) = m? else { return Ok(()) };
                let kind = m["type"].as_str().unwrap_or("?").to_string();
                if let Ok(mut s) = stats.lock() {
                    *s.messages.entry(kind.clone()).or_default() += 1;
                }
                match kind.as_str() {
                    "answer" => {
                        let answer = SdpAnswer::from_sdp_string(m["sdp"].as_str().unwrap_or_default())?;
                        if let Some(p) = pending.take() {
                            rtc.sdp_api().accept_answer(p, answer)?;
                            if let Some(r) = ready.take() {
                                let _ = r.send(Ok(()));
                            }
                        }
                    }
                    "offer" => {
                        let offer = SdpOffer::from_sdp_string(m["sdp"].as_str().unwrap_or_default())?;
                        let answer = rtc.sdp_api().accept_offer(offer)?;
                        send_json(&mut ws, json!({"type": "answer", "sdp": answer.to_sdp_string()})).await?;
                    }
                    "error" => {
                        if let Ok(mut s) = stats.lock() {
                            s.last_error = Some(m.to_string());
                        }
                        if m["code"].as_str().is_some_and(|c| c.starts_with("fatal")) {
                            bail!("server error: {m}");
                        }
                    }
                    "shutdown" => return Ok(()),
                    "participantLeft" if m["participantId"] == me.as_str() => return Ok(()),
                    _ => {}
                }
            }
            _ = stop.recv() => {
                let _ = send_json(&mut ws, json!({"type": "leave"})).await;
                let _ = ws.close(None).await;
                rtc.disconnect();
                return Ok(());
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        rtc.handle_input(Input::Timeout(now))?;
        if publishing && pending.is_none() {
            write_media(&mut rtc, &mut sender, &config.source, now, stats);
        }
    }
}

fn on_event(
    rtc: &Rtc,
    event: Event,
    stats: &Arc<Mutex<BotStats>>,
    publishers: &mut HashMap<Mid, String>,
    options: &BotOptions,
) {
    let Ok(mut s) = stats.lock() else { return };
    match event {
        Event::IceConnectionStateChange(state) => {
            s.connected = matches!(
                state,
                IceConnectionState::Connected | IceConnectionState::Completed
            );
        }
        Event::MediaAdded(added) => {
            if let Some(m) = rtc.media(added.mid) {
                publishers.insert(added.mid, m.stream_id().to_string());
            }
        }
        Event::MediaData(data) => {
            let Some(publisher) = publishers.get(&data.mid) else {
                return;
            };
            let kind = rtc.media(data.mid).map(|m| m.kind());
            if kind == Some(MediaKind::Audio) && data.data.len() >= 9 && data.data[0] == PROBE_TAG {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&data.data[1..9]);
                let sent = u64::from_be_bytes(ts);
                let latency = unix_micros().saturating_sub(sent);
                s.probe_latency_us.push(latency);
            } else if kind == Some(MediaKind::Audio)
                && let Some(sink) = &options.pcm_sink
            {
                sink.push(
                    publisher,
                    **data.seq_range.start(),
                    data.time.numer(),
                    data.network_time,
                    &data.data,
                );
            }
            let t = s.received.entry(publisher.clone()).or_default();
            t.bytes += data.data.len() as u64;
            match kind {
                Some(MediaKind::Audio) => t.audio_frames += 1,
                Some(MediaKind::Video) => {
                    t.video_frames += 1;
                    if data.data.first().is_some_and(|b| b & 1 == 0) {
                        t.video_keyframes += 1;
                    }
                    if t.video_hashes.len() < MAX_HASHES {
                        t.video_hashes.insert(frame_hash(&data.data));
                    }
                }
                None => {}
            }
        }
        _ => {}
    }
}

/// First byte of a probe audio packet (not a valid Opus TOC we send otherwise).
const PROBE_TAG: u8 = 0xfc;

fn write_media(
    rtc: &mut Rtc,
    s: &mut Sender,
    source: &Source,
    now: Instant,
    stats: &Arc<Mutex<BotStats>>,
) {
    let mut sent = 0;
    if now >= s.next_audio {
        s.next_audio += Duration::from_millis(20);
        if s.next_audio < now {
            s.next_audio = now + Duration::from_millis(20);
        }
        let payload = match source {
            Source::Clip(clip) => clip
                .audio
                .get(s.audio_packet as usize % clip.audio.len().max(1))
                .cloned(),
            Source::Probe { .. } => {
                let mut p = vec![0u8; 80];
                p[0] = PROBE_TAG;
                p[1..9].copy_from_slice(&unix_micros().to_be_bytes());
                Some(p)
            }
            Source::Silent => None,
        };
        if let (Some(mid), Some(data)) = (s.audio_mid, payload) {
            let time = MediaTime::new(s.audio_packet * 960, Frequency::FORTY_EIGHT_KHZ);
            if write(rtc, mid, Codec::Opus, now, time, data) {
                sent += 1;
            }
        }
        s.audio_packet += 1;
    }
    if now >= s.next_video {
        let fps = match source {
            Source::Clip(clip) => clip.fps.max(1),
            _ => 30,
        };
        let interval = Duration::from_micros(1_000_000 / u64::from(fps));
        s.next_video += interval;
        if s.next_video < now {
            s.next_video = now + interval;
        }
        let payload = match source {
            Source::Clip(clip) => clip
                .video
                .get(s.frame as usize % clip.video.len().max(1))
                .map(|f| f.data.clone()),
            Source::Probe { video_bytes } => {
                let mut p = vec![0x11u8; (*video_bytes).max(16)];
                // Keyframe every 2 s, VP8 frame tag style (bit 0 clear = key).
                if s.frame.is_multiple_of(60) {
                    p[0] = 0x10;
                }
                Some(p)
            }
            Source::Silent => None,
        };
        if let (Some(mid), Some(data)) = (s.video_mid, payload) {
            let ticks = (now.saturating_duration_since(s.start).as_micros() as u64) * 9 / 100;
            let time = MediaTime::new(ticks, Frequency::NINETY_KHZ);
            if write(rtc, mid, Codec::Vp8, now, time, data) {
                sent += 1;
            }
        }
        s.frame += 1;
    }
    if sent > 0
        && let Ok(mut st) = stats.lock()
    {
        st.frames_sent += sent;
    }
}

fn write(
    rtc: &mut Rtc,
    mid: Mid,
    codec: Codec,
    now: Instant,
    time: MediaTime,
    data: Vec<u8>,
) -> bool {
    let Some(writer) = rtc.writer(mid) else {
        return false;
    };
    let Some(pt) = writer
        .payload_params()
        .find(|p| p.spec().codec == codec)
        .map(|p| p.pt())
    else {
        return false;
    };
    writer.write(pt, now, time, data).is_ok()
}
