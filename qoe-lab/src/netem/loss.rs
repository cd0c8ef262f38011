//! Loss models: independent (Bernoulli) loss and the Gilbert-Elliott
//! two-state Markov model for bursty loss, with named presets.
//!
//! Gilbert-Elliott as in Hasslinger & Hohlfeld, "The Gilbert-Elliott Model
//! for Packet Loss in Real Time Services on the Internet" (MMB 2008), which is
//! also the parameterisation of Linux netem's `loss gemodel p r 1-h 1-k`:
//! a Good and a Bad state, `p` = P(Good → Bad) and `r` = P(Bad → Good) per
//! packet, and a loss probability in each state. The chain is stepped once
//! per packet, before the packet's fate is drawn in the new state.

use rand::Rng;

use super::NetemError;

/// Parameters of the Gilbert-Elliott model.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GilbertElliott {
    /// P(Good → Bad) per packet.
    pub p: f64,
    /// P(Bad → Good) per packet.
    pub r: f64,
    /// Loss probability in the Good state (netem's `1-k`).
    pub loss_good: f64,
    /// Loss probability in the Bad state (netem's `1-h`).
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// The simple Gilbert model (no loss in Good, all lost in Bad) with the
    /// given long-run loss ratio and mean burst length in packets:
    /// `r = 1 / burst`, `p = loss · r / (1 − loss)`.
    ///
    /// For this model G.107's BurstR = 1 / (p + r) as well (G.107 §3.3.2,
    /// where p and q are the found→lost and lost→found probabilities).
    pub fn from_loss_and_burst(loss: f64, mean_burst: f64) -> Result<Self, NetemError> {
        if !(0.0..1.0).contains(&loss) {
            return Err(NetemError::Probability {
                what: "loss",
                value: loss,
            });
        }
        if !mean_burst.is_finite() || mean_burst < 1.0 {
            return Err(NetemError::InvalidParameter {
                what: "mean burst length (packets, >= 1)",
                value: mean_burst,
            });
        }
        let r = 1.0 / mean_burst;
        let ge = Self {
            p: loss * r / (1.0 - loss),
            r,
            loss_good: 0.0,
            loss_bad: 1.0,
        };
        ge.validate()?;
        Ok(ge)
    }

    /// A named preset: `"wifi"` or `"congested-lte"` (see [`PRESETS`]).
    pub fn preset(name: &str) -> Result<Self, NetemError> {
        PRESETS
            .iter()
            .find(|(n, _, _)| *n == name)
            .map(|(_, ge, _)| *ge)
            .ok_or_else(|| NetemError::UnknownPreset(name.to_owned()))
    }

    /// Stationary probability of the Bad state, p / (p + r).
    pub fn bad_share(&self) -> f64 {
        if self.p + self.r == 0.0 {
            0.0
        } else {
            self.p / (self.p + self.r)
        }
    }

    /// Long-run loss ratio.
    pub fn mean_loss(&self) -> f64 {
        let b = self.bad_share();
        (1.0 - b) * self.loss_good + b * self.loss_bad
    }

    /// Expected mean length of a run of consecutive losses:
    /// P(lost) / P(lost, next not lost), computed from the chain exactly.
    pub fn mean_burst(&self) -> f64 {
        let b = self.bad_share();
        let g = 1.0 - b;
        // P(next packet kept | current state): step the chain, then draw.
        let kept_after_good =
            (1.0 - self.p) * (1.0 - self.loss_good) + self.p * (1.0 - self.loss_bad);
        let kept_after_bad =
            self.r * (1.0 - self.loss_good) + (1.0 - self.r) * (1.0 - self.loss_bad);
        let end = g * self.loss_good * kept_after_good + b * self.loss_bad * kept_after_bad;
        if end == 0.0 {
            f64::INFINITY
        } else {
            self.mean_loss() / end
        }
    }

    fn validate(&self) -> Result<(), NetemError> {
        for (what, value) in [
            ("p", self.p),
            ("r", self.r),
            ("loss_good", self.loss_good),
            ("loss_bad", self.loss_bad),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(NetemError::Probability { what, value });
            }
        }
        if self.r == 0.0 && self.p > 0.0 {
            return Err(NetemError::InvalidParameter {
                what: "r (0 traps the chain in Bad)",
                value: 0.0,
            });
        }
        Ok(())
    }
}

/// Named Gilbert-Elliott presets: name, parameters, what they stand for.
///
/// These are illustrative operating points chosen by us, not measurements
/// from a standard; they give plausible shapes for QA scenarios:
///
/// * `wifi`: rare, short interference bursts. p = 0.02, r = 0.4,
///   loss 0.2 % in Good and 50 % in Bad: about 2.6 % loss, Bad lasts
///   2.5 packets (50 ms at 20 ms/packet) on average.
/// * `congested-lte`: longer fades/queue overflows. p = 0.02, r = 0.2,
///   loss 0.5 % in Good and 75 % in Bad: about 7.3 % loss, Bad lasts
///   5 packets (100 ms) on average.
pub const PRESETS: &[(&str, GilbertElliott, &str)] = &[
    (
        "wifi",
        GilbertElliott {
            p: 0.02,
            r: 0.4,
            loss_good: 0.002,
            loss_bad: 0.5,
        },
        "short interference bursts, ~2.6 % loss",
    ),
    (
        "congested-lte",
        GilbertElliott {
            p: 0.02,
            r: 0.2,
            loss_good: 0.005,
            loss_bad: 0.75,
        },
        "fades and queue overflow, ~7.3 % loss, 100 ms bad periods",
    ),
];

/// How packets get lost.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum LossModel {
    /// No loss.
    #[default]
    None,
    /// Each packet lost independently with this probability.
    Random {
        /// Loss probability, 0..=1.
        p: f64,
    },
    /// Bursty loss.
    GilbertElliott(GilbertElliott),
}

impl LossModel {
    /// Checks every probability.
    pub fn validate(&self) -> Result<(), NetemError> {
        match self {
            Self::None => Ok(()),
            Self::Random { p } if (0.0..=1.0).contains(p) => Ok(()),
            Self::Random { p } => Err(NetemError::Probability {
                what: "loss",
                value: *p,
            }),
            Self::GilbertElliott(ge) => ge.validate(),
        }
    }
}

/// The running state of a loss model.
#[derive(Debug, Clone)]
pub(super) struct LossState {
    model: LossModel,
    bad: bool,
}

impl LossState {
    pub(super) fn new(model: LossModel) -> Self {
        Self { model, bad: false }
    }

    /// Steps the model for one packet; `true` means lost. Draws exactly two
    /// numbers per packet whatever the model, so the fate of packet n
    /// under the same seed does not depend on earlier packets' sizes.
    pub(super) fn lose<R: Rng>(&mut self, rng: &mut R) -> bool {
        let transition: f64 = rng.random();
        let draw: f64 = rng.random();
        match self.model {
            LossModel::None => false,
            LossModel::Random { p } => draw < p,
            LossModel::GilbertElliott(ge) => {
                self.bad = if self.bad {
                    transition >= ge.r
                } else {
                    transition < ge.p
                };
                draw < if self.bad { ge.loss_bad } else { ge.loss_good }
            }
        }
    }
}
