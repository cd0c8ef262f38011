//! The simulated audio path: reference speech → Opus encoder (libopus
//! 1.6.1 via the `opus` crate) → RTP-like packets (optionally RED) →
//! [`crate::netem`] → adaptive [`jitter`] buffer → Opus decoder with PLC and
//! optionally in-band FEC → degraded PCM.
//!
//! Everything runs in virtual time and is deterministic for a seed. FEC
//! means: when frame n is missing and packet n+1 has arrived, decode n+1
//! with `fec = true` to recover n from its LBRR data (the encoder is told
//! the expected loss so that it spends bits on it).

pub mod jitter;
pub mod rtp;
#[cfg(test)]
mod tests;

use std::time::Duration;

use opus::{Application, Bandwidth, Bitrate, Channels, Decoder, Encoder};

use crate::audio::Audio;
use crate::netem::{NetemConfig, NetemError, NetemQueue, NetemStats};
use jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use rtp::Packetizer;

/// The pipeline's sample rate (WebRTC's Opus clock).
pub const RATE: u32 = 48_000;
/// Samples per 20 ms frame at [`RATE`].
pub const FRAME_SAMPLES: usize = 960;
const FRAME: Duration = Duration::from_millis(20);
const MAX_PACKET: usize = 1500;

/// Why a simulation could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PipelineError {
    /// A codec string that is not `opus-{nb,mb,wb,swb,fb}-<kbps>k`.
    #[error("unknown codec {0:?}: expected opus-<nb|mb|wb|swb|fb>-<6..510>k, e.g. opus-wb-24k")]
    UnknownCodec(String),
    /// The reference is not 48 kHz.
    #[error("reference audio is {0} Hz; the pipeline needs 48000 Hz mono")]
    Rate(u32),
    /// The reference is empty.
    #[error("reference audio is empty")]
    Empty,
    /// More RED depth than supported.
    #[error("RED depth {0} is not supported (0..=3)")]
    RedDepth(usize),
    /// Bad emulator settings.
    #[error(transparent)]
    Netem(#[from] NetemError),
    /// libopus refused.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
}

/// Opus settings parsed from a codec string such as `opus-wb-24k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct OpusCodec {
    /// Target bitrate in bits per second.
    pub bitrate: u32,
    /// Audio bandwidth cap: "nb", "mb", "wb", "swb" or "fb".
    pub bandwidth: &'static str,
}

impl OpusCodec {
    /// Parses `opus-<band>-<kbps>k`.
    pub fn parse(s: &str) -> Result<Self, PipelineError> {
        let unknown = || PipelineError::UnknownCodec(s.to_owned());
        let mut parts = s.split('-');
        if parts.next() != Some("opus") {
            return Err(unknown());
        }
        let bandwidth = match parts.next() {
            Some("nb") => "nb",
            Some("mb") => "mb",
            Some("wb") => "wb",
            Some("swb") => "swb",
            Some("fb") => "fb",
            _ => return Err(unknown()),
        };
        let kbps: u32 = parts
            .next()
            .and_then(|k| k.strip_suffix('k'))
            .and_then(|k| k.parse().ok())
            .filter(|k| (6..=510).contains(k))
            .ok_or_else(unknown)?;
        if parts.next().is_some() {
            return Err(unknown());
        }
        Ok(Self {
            bitrate: kbps * 1000,
            bandwidth,
        })
    }

    fn opus_bandwidth(&self) -> Bandwidth {
        match self.bandwidth {
            "nb" => Bandwidth::Narrowband,
            "mb" => Bandwidth::Mediumband,
            "wb" => Bandwidth::Wideband,
            "swb" => Bandwidth::Superwideband,
            _ => Bandwidth::Fullband,
        }
    }
}

/// One simulation's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// Opus bitrate and bandwidth.
    pub codec: OpusCodec,
    /// Opus in-band FEC: the encoder adds LBRR data, the receiver decodes
    /// packet n+1 with `fec` when n is missing.
    pub fec: bool,
    /// Expected loss told to the encoder (`OPUS_SET_PACKET_LOSS_PERC`)
    /// when FEC is on; it decides how many bits go to FEC.
    pub fec_loss_percent: u8,
    /// RED: how many earlier frames each packet repeats (0 = off).
    pub red_depth: usize,
    /// Encoder complexity 0..=10.
    pub complexity: i32,
    /// The network.
    pub netem: NetemConfig,
    /// The receiver's jitter buffer.
    pub jitter: JitterConfig,
}

impl PipelineConfig {
    /// Opus at `codec` with PLC only, through `netem`.
    pub fn new(codec: &str, netem: NetemConfig) -> Result<Self, PipelineError> {
        Ok(Self {
            codec: OpusCodec::parse(codec)?,
            fec: false,
            fec_loss_percent: 10,
            red_depth: 0,
            complexity: 10,
            netem,
            jitter: JitterConfig::default(),
        })
    }
}

/// Counters of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct PipelineStats {
    /// Frames encoded and sent.
    pub frames: u64,
    /// What the network did.
    pub network: NetemStats,
    /// What the jitter buffer did.
    pub jitter: JitterStats,
    /// Missing frames decoded from the next packet's in-band FEC data
    /// (libopus falls back to PLC if that packet carries none).
    pub fec_decoded: u64,
    /// Frames concealed by PLC (missing, not recovered, plus stretches).
    pub concealed: u64,
    /// Bits per second on the wire (IP/UDP/RTP/RED headers included).
    pub wire_bps: f64,
    /// Bits per second of Opus payload (primary only).
    pub payload_bps: f64,
}

/// The degraded audio and the counters.
#[derive(Debug, Clone)]
pub struct Simulation {
    /// Decoded speech at 48 kHz, encoder look-ahead removed.
    pub degraded: Audio,
    /// Counters.
    pub stats: PipelineStats,
}

/// Runs `reference` (48 kHz mono) through the pipeline.
pub fn simulate(reference: &Audio, cfg: &PipelineConfig) -> Result<Simulation, PipelineError> {
    if reference.rate != RATE {
        return Err(PipelineError::Rate(reference.rate));
    }
    if reference.samples.is_empty() {
        return Err(PipelineError::Empty);
    }
    if cfg.red_depth > 3 {
        return Err(PipelineError::RedDepth(cfg.red_depth));
    }
    let mut encoder = Encoder::new(RATE, Channels::Mono, Application::Voip)?;
    encoder.set_bitrate(Bitrate::Bits(cfg.codec.bitrate as i32))?;
    encoder.set_max_bandwidth(cfg.codec.opus_bandwidth())?;
    encoder.set_complexity(cfg.complexity.clamp(0, 10))?;
    encoder.set_inband_fec(cfg.fec)?;
    encoder.set_packet_loss_perc(if cfg.fec {
        i32::from(cfg.fec_loss_percent.min(100))
    } else {
        0
    })?;
    let lookahead = usize::try_from(encoder.get_lookahead()?).unwrap_or(0);

    // Encode and send: frame i leaves at i · 20 ms.
    let mut packetizer = Packetizer::new(0, 0, FRAME_SAMPLES as u32, cfg.red_depth);
    let mut net = NetemQueue::new(cfg.netem.clone())?;
    let mut stats = PipelineStats::default();
    let (mut wire_bytes, mut payload_bytes) = (0usize, 0usize);
    let mut buf = [0u8; MAX_PACKET];
    for (i, chunk) in reference.samples.chunks(FRAME_SAMPLES).enumerate() {
        let mut pcm = [0i16; FRAME_SAMPLES];
        pcm[..chunk.len()].copy_from_slice(chunk);
        let len = encoder.encode(&pcm, &mut buf)?;
        let packet = packetizer.packetize(buf[..len].to_vec());
        let size = packet.wire_size(cfg.red_depth > 0);
        wire_bytes += size;
        payload_bytes += len;
        net.push(FRAME * i as u32, packet, size)?;
        stats.frames += 1;
    }
    let secs = stats.frames as f64 * FRAME.as_secs_f64();
    stats.wire_bps = wire_bytes as f64 * 8.0 / secs;
    stats.payload_bps = payload_bytes as f64 * 8.0 / secs;
    stats.network = net.netem().stats();

    // Receive: a playout tick every 20 ms from the first arrival.
    let mut jb = JitterBuffer::new(cfg.jitter);
    let mut decoder = Decoder::new(RATE, Channels::Mono)?;
    let mut out: Vec<i16> = Vec::with_capacity(reference.samples.len() + 48_000);
    let last = stats.frames as i64;
    let Some(mut now) = net.next_deadline() else {
        // Nothing arrived: the listener hears silence.
        return Ok(Simulation {
            degraded: Audio {
                rate: RATE,
                samples: vec![0; reference.samples.len()],
            },
            stats,
        });
    };
    let max_ticks = stats.frames * 4 + 1000;
    for _ in 0..max_ticks {
        while let Some((at, packet)) = net.poll(now) {
            jb.insert(at, packet);
        }
        if jb.next_frame().is_some_and(|n| n >= last) {
            break;
        }
        let mut pcm = [0i16; FRAME_SAMPLES];
        let n = match jb.pop(now) {
            None => 0,
            Some(Playout::Packet { payload, .. }) => decoder.decode(&payload, &mut pcm, false)?,
            Some(Playout::Missing {
                following: Some(next),
            }) if cfg.fec => {
                stats.fec_decoded += 1;
                decoder.decode(&next, &mut pcm, true)?
            }
            Some(Playout::Missing { .. } | Playout::Stretch) => {
                stats.concealed += 1;
                decoder.decode(&[], &mut pcm, false)?
            }
        };
        out.extend_from_slice(&pcm[..n.min(FRAME_SAMPLES)]);
        now += FRAME;
    }
    stats.jitter = jb.stats();
    let samples = out
        .get(lookahead..)
        .map(<[i16]>::to_vec)
        .unwrap_or_default();
    Ok(Simulation {
        degraded: Audio {
            rate: RATE,
            samples,
        },
        stats,
    })
}
