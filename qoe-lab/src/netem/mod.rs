//! A seeded, sans-IO network emulator for packet streams.
//!
//! [`Netem`] decides the fate of each packet from its send time and size:
//! lost (random or Gilbert-Elliott burst loss), dropped by a rate limiter's
//! full queue, or delivered at a time (one-way delay, jitter with or without
//! reordering, serialization on a rate-limited link) and maybe duplicated.
//! Time is virtual: a [`Duration`] since the start of the stream, given by
//! the caller. The same seed and inputs give the same fates.
//!
//! [`NetemQueue`] wraps it for callers that hold packets: push packets in,
//! poll them out when due, ask for the next deadline (str0m's netem crate is
//! the model). It serves the simulated pipeline and a UDP impairment proxy.

mod loss;
mod queue;
#[cfg(test)]
mod tests;

use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use loss::{GilbertElliott, LossModel, PRESETS};
pub use queue::NetemQueue;

use loss::LossState;

/// A configuration the emulator cannot run, or bad input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum NetemError {
    /// A probability outside 0..=1.
    #[error("{what} must be a probability in 0..=1, got {value}")]
    Probability {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: f64,
    },
    /// Another parameter out of range.
    #[error("invalid {what}: {value}")]
    InvalidParameter {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: f64,
    },
    /// No preset by this name.
    #[error("unknown loss preset {0:?} (known: wifi, congested-lte)")]
    UnknownPreset(String),
    /// A packet was sent before the previous one.
    #[error("send time {now:?} is before the previous send time {previous:?}")]
    TimeWentBackwards {
        /// The new send time.
        now: Duration,
        /// The previous send time.
        previous: Duration,
    },
}

/// What the emulator does to packets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetemConfig {
    /// Seed of the ChaCha8 generator: same seed, same fates.
    pub seed: u64,
    /// How packets get lost.
    pub loss: LossModel,
    /// Fixed one-way delay.
    pub delay: Duration,
    /// Standard deviation of a normal jitter added to the delay (the total
    /// delay never goes below zero).
    pub jitter: Duration,
    /// Whether jitter may reorder packets. Without it, a packet is never
    /// delivered before the one sent before it (a FIFO link).
    pub reorder: bool,
    /// Bottleneck rate in bits per second; `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// Drop-tail queue in front of the bottleneck, in bytes.
    pub queue_bytes: usize,
    /// Probability that a delivered packet is delivered twice.
    pub duplicate: f64,
}

impl Default for NetemConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            loss: LossModel::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: false,
            rate_bps: None,
            // 64 kB: a typical small home-router buffer.
            queue_bytes: 64 * 1024,
            duplicate: 0.0,
        }
    }
}

/// What happened to one packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Dropped by the loss model.
    Lost,
    /// Dropped because the rate limiter's queue was full.
    QueueFull,
    /// Delivered at `at`, and again at `duplicate` if duplicated.
    Delivered {
        /// Arrival time.
        at: Duration,
        /// Arrival time of the copy.
        duplicate: Option<Duration>,
    },
}

/// Counters since the emulator was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetemStats {
    /// Packets offered.
    pub sent: u64,
    /// Dropped by the loss model.
    pub lost: u64,
    /// Dropped by the full queue.
    pub queue_drops: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
}

/// The emulator. See the module docs.
#[derive(Debug, Clone)]
pub struct Netem {
    config: NetemConfig,
    rng: ChaCha8Rng,
    loss: LossState,
    last_send: Duration,
    link_free_at: Duration,
    last_delivery: Duration,
    stats: NetemStats,
}

impl Netem {
    /// Checks the configuration and seeds the generator.
    pub fn new(config: NetemConfig) -> Result<Self, NetemError> {
        config.loss.validate()?;
        if !(0.0..=1.0).contains(&config.duplicate) {
            return Err(NetemError::Probability {
                what: "duplicate",
                value: config.duplicate,
            });
        }
        if config.rate_bps == Some(0) {
            return Err(NetemError::InvalidParameter {
                what: "rate_bps",
                value: 0.0,
            });
        }
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            loss: LossState::new(config.loss),
            last_send: Duration::ZERO,
            link_free_at: Duration::ZERO,
            last_delivery: Duration::ZERO,
            stats: NetemStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &NetemConfig {
        &self.config
    }

    /// Counters so far.
    pub fn stats(&self) -> NetemStats {
        self.stats
    }

    /// Decides the fate of a packet of `size` bytes sent at `now`. Send
    /// times must not decrease. Every packet consumes the same number of
    /// random draws, so packet n's loss under a seed does not depend on the
    /// sizes or fates of earlier packets.
    pub fn send(&mut self, now: Duration, size: usize) -> Result<Fate, NetemError> {
        if now < self.last_send {
            return Err(NetemError::TimeWentBackwards {
                now,
                previous: self.last_send,
            });
        }
        self.last_send = now;
        self.stats.sent += 1;
        let lost = self.loss.lose(&mut self.rng);
        let jitter = self.normal();
        let dup_draw: f64 = self.rng.random();
        let dup_jitter = self.normal();
        if lost {
            self.stats.lost += 1;
            return Ok(Fate::Lost);
        }
        let Some(departure) = self.serialize(now, size) else {
            self.stats.queue_drops += 1;
            return Ok(Fate::QueueFull);
        };
        let mut at = self.delayed(departure, jitter);
        if !self.config.reorder {
            at = at.max(self.last_delivery);
        }
        self.last_delivery = self.last_delivery.max(at);
        let duplicate = (dup_draw < self.config.duplicate).then(|| {
            self.stats.duplicated += 1;
            let copy = self.delayed(departure, dup_jitter);
            if self.config.reorder {
                copy
            } else {
                copy.max(at)
            }
        });
        Ok(Fate::Delivered { at, duplicate })
    }

    /// Departure time from the bottleneck, or `None` if its queue is full.
    fn serialize(&mut self, now: Duration, size: usize) -> Option<Duration> {
        let Some(rate) = self.config.rate_bps else {
            return Some(now);
        };
        let backlog = self.link_free_at.saturating_sub(now);
        let backlog_bytes = backlog.as_secs_f64() * rate as f64 / 8.0;
        if backlog_bytes + size as f64 > self.config.queue_bytes as f64 {
            return None;
        }
        let start = now.max(self.link_free_at);
        self.link_free_at = start + Duration::from_secs_f64(size as f64 * 8.0 / rate as f64);
        Some(self.link_free_at)
    }

    /// Adds the one-way delay and `z` standard deviations of jitter.
    fn delayed(&self, departure: Duration, z: f64) -> Duration {
        let delay = self.config.delay.as_secs_f64() + z * self.config.jitter.as_secs_f64();
        departure + Duration::from_secs_f64(delay.max(0.0))
    }

    /// A standard normal draw (Box-Muller; always two uniforms).
    fn normal(&mut self) -> f64 {
        let u1: f64 = self.rng.random();
        let u2: f64 = self.rng.random();
        (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}
