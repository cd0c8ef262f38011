//! Scenario files: a TOML matrix of codec × protection (PLC/FEC/RED) ×
//! loss model × loss % × delay × jitter, each cell run over several seeds.
//!
//! ```toml
//! name = "opus-wb-24k under loss"
//! voices = ["Front_Center", "Rear_Left", "espeak:nb:God morgen"]  # or reference = "ref.wav"
//! codecs = ["opus-wb-24k"]
//! protection = ["plc", "fec", "red", "fec+red"]
//! loss_models = ["random", "bursty"]     # or a preset: "wifi", "congested-lte"
//! loss_percent = [0, 5, 10, 20, 30]      # ignored by presets
//! burst_length = 2.0                     # mean burst (packets) of "bursty"
//! delay_ms = [40]
//! jitter_ms = [0]
//! reorder = false
//! seeds = [1, 2, 3]
//! visqol = true
//! fec_loss_percent = 10                  # the encoder's expected loss with FEC
//! red_depth = 1                          # earlier frames per RED packet
//! ```
//!
//! Every key but `codecs` has the default shown (`voices`: all eight
//! `alsa-utils` voices; `espeak:<voice>:<text>` names synthetic speech
//! rendered by espeak-ng). Unknown keys, unknown codecs or loss models and
//! empty axes are errors, found before anything runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::netem::{GilbertElliott, LossModel, NetemConfig, NetemError};
use crate::pipeline::{OpusCodec, PipelineConfig, PipelineError};

/// A scenario that cannot be run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML, or keys/values of the wrong shape (the message has
    /// the line and column).
    #[error("{path}: {message}")]
    Parse {
        /// The file (or "<string>").
        path: PathBuf,
        /// toml's message, with line and column.
        message: String,
    },
    /// A codec the pipeline does not know.
    #[error("scenario: {0}")]
    Codec(#[from] PipelineError),
    /// A loss model that is neither random, bursty nor a preset.
    #[error("scenario: unknown loss model {0:?} (known: random, bursty, wifi, congested-lte)")]
    LossModel(String),
    /// A protection scheme that is not plc, fec, red or fec+red.
    #[error("scenario: unknown protection {0:?} (known: plc, fec, red, fec+red)")]
    Protection(String),
    /// An axis with no values.
    #[error("scenario: `{0}` must list at least one value")]
    EmptyAxis(&'static str),
    /// A value out of range.
    #[error("scenario: {what} = {value} is out of range ({range})")]
    Range {
        /// The key.
        what: &'static str,
        /// The value.
        value: f64,
        /// What is allowed.
        range: &'static str,
    },
    /// Emulator settings the emulator refuses.
    #[error("scenario: {0}")]
    Netem(#[from] NetemError),
}

/// What each packet carries to survive loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Protection {
    /// Nothing: the decoder conceals losses (PLC).
    Plc,
    /// Opus in-band FEC (LBRR), decoded from the next packet.
    Fec,
    /// RFC 2198 redundancy: each packet repeats earlier frames.
    Red,
    /// Both.
    FecRed,
}

impl Protection {
    /// Parses `plc`, `fec`, `red` or `fec+red`.
    pub fn parse(s: &str) -> Result<Self, ScenarioError> {
        match s {
            "plc" => Ok(Self::Plc),
            "fec" => Ok(Self::Fec),
            "red" => Ok(Self::Red),
            "fec+red" | "red+fec" => Ok(Self::FecRed),
            _ => Err(ScenarioError::Protection(s.to_owned())),
        }
    }

    /// The name used in files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Plc => "plc",
            Self::Fec => "fec",
            Self::Red => "red",
            Self::FecRed => "fec+red",
        }
    }

    fn fec(self) -> bool {
        matches!(self, Self::Fec | Self::FecRed)
    }

    fn red(self) -> bool {
        matches!(self, Self::Red | Self::FecRed)
    }
}

/// A loss model of the matrix.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum LossKind {
    /// Independent loss at the cell's loss %.
    Random,
    /// Simple Gilbert model at the cell's loss % and the scenario's mean
    /// burst length.
    Bursty,
    /// A named Gilbert-Elliott preset (its own loss rate).
    Preset(String),
}

impl LossKind {
    fn parse(s: &str) -> Result<Self, ScenarioError> {
        match s {
            "random" => Ok(Self::Random),
            "bursty" | "gilbert" => Ok(Self::Bursty),
            other => GilbertElliott::preset(other)
                .map(|_| Self::Preset(other.to_owned()))
                .map_err(|_| ScenarioError::LossModel(other.to_owned())),
        }
    }

    /// The name used in files and reports.
    pub fn name(&self) -> &str {
        match self {
            Self::Random => "random",
            Self::Bursty => "bursty",
            Self::Preset(p) => p,
        }
    }
}

/// The file as written (every key optional but `codecs`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: Option<String>,
    voices: Option<Vec<String>>,
    reference: Option<PathBuf>,
    codecs: Vec<String>,
    #[serde(default = "default_protection")]
    protection: Vec<String>,
    #[serde(default = "default_loss_models")]
    loss_models: Vec<String>,
    #[serde(default = "default_loss")]
    loss_percent: Vec<f64>,
    #[serde(default = "default_burst")]
    burst_length: f64,
    #[serde(default = "default_delay")]
    delay_ms: Vec<u64>,
    #[serde(default = "default_jitter")]
    jitter_ms: Vec<u64>,
    #[serde(default)]
    reorder: bool,
    #[serde(default = "default_seeds")]
    seeds: Vec<u64>,
    #[serde(default = "default_true")]
    visqol: bool,
    #[serde(default = "default_fec_loss")]
    fec_loss_percent: u8,
    #[serde(default = "default_red_depth")]
    red_depth: usize,
}

fn default_protection() -> Vec<String> {
    ["plc", "fec", "red", "fec+red"].map(String::from).to_vec()
}
fn default_loss_models() -> Vec<String> {
    vec!["random".into(), "bursty".into()]
}
fn default_loss() -> Vec<f64> {
    vec![0.0, 5.0, 10.0, 20.0, 30.0]
}
fn default_burst() -> f64 {
    2.0
}
fn default_delay() -> Vec<u64> {
    vec![40]
}
fn default_jitter() -> Vec<u64> {
    vec![0]
}
fn default_seeds() -> Vec<u64> {
    vec![1, 2, 3]
}
fn default_true() -> bool {
    true
}
fn default_fec_loss() -> u8 {
    10
}
fn default_red_depth() -> usize {
    1
}

/// Where the reference speech comes from.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub enum Reference {
    /// These `alsa-utils` voices joined with 300 ms pauses.
    Voices(Vec<String>),
    /// A 48 kHz mono 16-bit WAV (relative paths are relative to the
    /// scenario file).
    Wav(PathBuf),
}

/// A checked scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Scenario {
    /// Title of the report.
    pub name: String,
    /// The reference speech.
    pub reference: Reference,
    /// Codec strings, checked.
    pub codecs: Vec<String>,
    /// Protection schemes.
    pub protection: Vec<Protection>,
    /// Loss models.
    pub loss_models: Vec<LossKind>,
    /// Loss percentages (random and bursty models).
    pub loss_percent: Vec<f64>,
    /// Mean burst length of the bursty model, packets.
    pub burst_length: f64,
    /// One-way delays, ms.
    pub delay_ms: Vec<u64>,
    /// Jitter standard deviations, ms.
    pub jitter_ms: Vec<u64>,
    /// Whether jitter may reorder.
    pub reorder: bool,
    /// Seeds per cell.
    pub seeds: Vec<u64>,
    /// Whether to compute ViSQOL.
    pub visqol: bool,
    /// The encoder's expected loss with FEC.
    pub fec_loss_percent: u8,
    /// RED depth of the RED schemes.
    pub red_depth: usize,
}

/// One cell of the matrix (all seeds).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Cell {
    /// A file-name-safe id, unique in the scenario.
    pub id: String,
    /// Codec string.
    pub codec: String,
    /// Protection.
    pub protection: Protection,
    /// Loss model.
    pub loss_model: LossKind,
    /// Loss %: the configured one, or the preset's long-run mean.
    pub loss_percent: f64,
    /// One-way delay, ms.
    pub delay_ms: u64,
    /// Jitter, ms.
    pub jitter_ms: u64,
}

impl Cell {
    /// The configuration curve this cell belongs to (all but the loss).
    pub fn series(&self) -> String {
        format!(
            "{} {} {} d{} j{}",
            self.codec,
            self.protection.name(),
            self.loss_model.name(),
            self.delay_ms,
            self.jitter_ms
        )
    }
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut s = Self::parse_named(&text, path)?;
        if let Reference::Wav(wav) = &mut s.reference
            && wav.is_relative()
            && let Some(dir) = path.parent()
        {
            *wav = dir.join(&*wav);
        }
        Ok(s)
    }

    /// Parses and checks scenario text.
    pub fn parse(text: &str) -> Result<Self, ScenarioError> {
        Self::parse_named(text, Path::new("<string>"))
    }

    fn parse_named(text: &str, path: &Path) -> Result<Self, ScenarioError> {
        let f: File = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: path.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        for c in &f.codecs {
            OpusCodec::parse(c)?;
        }
        let nonempty = |len: usize, what| {
            if len == 0 {
                Err(ScenarioError::EmptyAxis(what))
            } else {
                Ok(())
            }
        };
        nonempty(f.codecs.len(), "codecs")?;
        nonempty(f.protection.len(), "protection")?;
        nonempty(f.loss_models.len(), "loss_models")?;
        nonempty(f.loss_percent.len(), "loss_percent")?;
        nonempty(f.delay_ms.len(), "delay_ms")?;
        nonempty(f.jitter_ms.len(), "jitter_ms")?;
        nonempty(f.seeds.len(), "seeds")?;
        for l in &f.loss_percent {
            if !(0.0..100.0).contains(l) {
                return Err(ScenarioError::Range {
                    what: "loss_percent",
                    value: *l,
                    range: "0 <= loss < 100",
                });
            }
        }
        if !f.burst_length.is_finite() || f.burst_length < 1.0 {
            return Err(ScenarioError::Range {
                what: "burst_length",
                value: f.burst_length,
                range: ">= 1 packet",
            });
        }
        if f.red_depth == 0 || f.red_depth > 3 {
            return Err(ScenarioError::Range {
                what: "red_depth",
                value: f.red_depth as f64,
                range: "1..=3",
            });
        }
        if f.fec_loss_percent > 100 {
            return Err(ScenarioError::Range {
                what: "fec_loss_percent",
                value: f64::from(f.fec_loss_percent),
                range: "0..=100",
            });
        }
        let reference = match (f.reference, f.voices) {
            (Some(_), Some(_)) => {
                return Err(ScenarioError::Parse {
                    path: path.to_owned(),
                    message: "give either `reference` or `voices`, not both".into(),
                });
            }
            (Some(wav), None) => Reference::Wav(wav),
            (None, Some(v)) => {
                nonempty(v.len(), "voices")?;
                for name in &v {
                    if let Err(e) = crate::audio::Voice::parse(name) {
                        return Err(ScenarioError::Parse {
                            path: path.to_owned(),
                            message: e.to_string(),
                        });
                    }
                }
                Reference::Voices(v)
            }
            (None, None) => Reference::Voices(
                crate::audio::ALSA_VOICES
                    .iter()
                    .map(|v| (*v).to_owned())
                    .collect(),
            ),
        };
        Ok(Self {
            name: f.name.unwrap_or_else(|| "QoE scenario".into()),
            reference,
            codecs: f.codecs,
            protection: f
                .protection
                .iter()
                .map(|p| Protection::parse(p))
                .collect::<Result<_, _>>()?,
            loss_models: f
                .loss_models
                .iter()
                .map(|l| LossKind::parse(l))
                .collect::<Result<_, _>>()?,
            loss_percent: f.loss_percent,
            burst_length: f.burst_length,
            delay_ms: f.delay_ms,
            jitter_ms: f.jitter_ms,
            reorder: f.reorder,
            seeds: f.seeds,
            visqol: f.visqol,
            fec_loss_percent: f.fec_loss_percent,
            red_depth: f.red_depth,
        })
    }

    /// The cells, in a fixed order (codec, protection, loss model, delay,
    /// jitter, loss %). A preset gives one cell per other setting.
    pub fn cells(&self) -> Vec<Cell> {
        let mut cells = Vec::new();
        for codec in &self.codecs {
            for protection in &self.protection {
                for model in &self.loss_models {
                    for delay in &self.delay_ms {
                        for jitter in &self.jitter_ms {
                            let losses: Vec<f64> = match model {
                                LossKind::Preset(p) => vec![
                                    GilbertElliott::preset(p)
                                        .map(|g| 100.0 * g.mean_loss())
                                        .unwrap_or(0.0),
                                ],
                                _ => self.loss_percent.clone(),
                            };
                            for loss in losses {
                                let id = format!(
                                    "{codec}_{}_{}_l{}_d{delay}_j{jitter}",
                                    protection.name().replace('+', "-"),
                                    model.name(),
                                    format!("{loss:.2}")
                                        .trim_end_matches('0')
                                        .trim_end_matches('.')
                                        .replace('.', "p"),
                                );
                                cells.push(Cell {
                                    id,
                                    codec: codec.clone(),
                                    protection: *protection,
                                    loss_model: model.clone(),
                                    loss_percent: loss,
                                    delay_ms: *delay,
                                    jitter_ms: *jitter,
                                });
                            }
                        }
                    }
                }
            }
        }
        cells
    }

    /// The pipeline settings of one cell and seed.
    pub fn pipeline(&self, cell: &Cell, seed: u64) -> Result<PipelineConfig, ScenarioError> {
        let loss = match &cell.loss_model {
            LossKind::Random => LossModel::Random {
                p: cell.loss_percent / 100.0,
            },
            LossKind::Bursty if cell.loss_percent == 0.0 => LossModel::None,
            LossKind::Bursty => LossModel::GilbertElliott(GilbertElliott::from_loss_and_burst(
                cell.loss_percent / 100.0,
                self.burst_length,
            )?),
            LossKind::Preset(p) => LossModel::GilbertElliott(GilbertElliott::preset(p)?),
        };
        let netem = NetemConfig {
            seed,
            loss,
            delay: Duration::from_millis(cell.delay_ms),
            jitter: Duration::from_millis(cell.jitter_ms),
            reorder: self.reorder,
            ..NetemConfig::default()
        };
        let mut cfg = PipelineConfig::new(&cell.codec, netem)?;
        cfg.fec = cell.protection.fec();
        cfg.fec_loss_percent = self.fec_loss_percent;
        cfg.red_depth = if cell.protection.red() {
            self.red_depth
        } else {
            0
        };
        Ok(cfg)
    }

    /// G.107 BurstR of a cell's loss model: 1 for random loss, 1/(p + r)
    /// for the Gilbert models (exact for the simple Gilbert model, an
    /// approximation for presets with loss in both states).
    pub fn burst_r(&self, cell: &Cell) -> f64 {
        match &cell.loss_model {
            LossKind::Random => 1.0,
            LossKind::Bursty => {
                GilbertElliott::from_loss_and_burst(cell.loss_percent / 100.0, self.burst_length)
                    .map_or(1.0, |g| 1.0 / (g.p + g.r))
            }
            LossKind::Preset(p) => GilbertElliott::preset(p).map_or(1.0, |g| 1.0 / (g.p + g.r)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_matrix() {
        let s = Scenario::parse("codecs = [\"opus-wb-24k\"]").unwrap();
        assert_eq!(s.seeds, vec![1, 2, 3]);
        assert!(s.visqol);
        assert!(matches!(&s.reference, Reference::Voices(v) if v.len() == 8));
        // 4 protections × 2 models × 5 losses.
        let cells = s.cells();
        assert_eq!(cells.len(), 40);
        let mut ids: Vec<_> = cells.iter().map(|c| c.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 40, "ids are unique");
        assert!(ids.contains(&"opus-wb-24k_fec-red_bursty_l20_d40_j0".to_string()));

        let s = Scenario::parse(
            r#"
            codecs = ["opus-wb-24k", "opus-nb-12k"]
            protection = ["fec"]
            loss_models = ["wifi", "random"]
            loss_percent = [2.5]
            delay_ms = [20, 150]
            jitter_ms = [0, 30]
            seeds = [7]
            "#,
        )
        .unwrap();
        let cells = s.cells();
        assert_eq!(cells.len(), 2 * 2 * 2 * 2);
        let wifi = &cells[0];
        assert_eq!(wifi.loss_model, LossKind::Preset("wifi".into()));
        assert!((wifi.loss_percent - 2.6).abs() < 0.1, "{wifi:?}");
        let cfg = s.pipeline(&cells[4], 7).unwrap();
        assert!(cfg.fec && cfg.red_depth == 0);
        assert_eq!(cfg.netem.seed, 7);
        assert!(cells.iter().any(|c| c.id.ends_with("_l2p5_d150_j30")));
        assert_eq!(s.burst_r(&cells[4]), 1.0);
    }

    #[test]
    fn bad_scenarios_are_clear_errors() {
        let err = |text: &str| Scenario::parse(text).unwrap_err().to_string();
        let e = err("codecs = [\"opus-wb-24k\"\nseeds = [1]");
        assert!(e.contains("line") || e.contains("TOML"), "{e}");
        let e = err("codecs = [\"speex-16k\"]");
        assert!(
            e.contains("unknown codec \"speex-16k\"") && e.contains("opus-wb-24k"),
            "{e}"
        );
        let e = err("codecs = [\"opus-wb-24k\"]\nloss_models = [\"lte\"]");
        assert!(e.contains("unknown loss model \"lte\""), "{e}");
        let e = err("codecs = [\"opus-wb-24k\"]\nprotection = [\"fec+fec\"]");
        assert!(e.contains("unknown protection"), "{e}");
        let e = err("codecs = [\"opus-wb-24k\"]\nseeds = []");
        assert!(e.contains("`seeds` must list at least one value"), "{e}");
        let e = err("codecs = [\"opus-wb-24k\"]\nloss_percent = [120]");
        assert!(e.contains("loss_percent = 120"), "{e}");
        let e = err("codecs = [\"opus-wb-24k\"]\nlos_percent = [1]");
        assert!(e.contains("unknown field `los_percent`"), "{e}");
        let e = err("codecs = \"opus-wb-24k\"");
        assert!(e.contains("invalid type"), "{e}");
        let e = err("protection = [\"fec\"]");
        assert!(e.contains("missing field `codecs`"), "{e}");
        let e = err("codecs = [\"opus-wb-24k\"]\nvoices = [\"Front_Centre\"]");
        assert!(e.contains("unknown voice \"Front_Centre\""), "{e}");
        let e = err("codecs = [\"opus-wb-24k\"]\nvoices = [\"espeak:nb\"]");
        assert!(e.contains("espeak:<voice>:<text>"), "{e}");
        let s = Scenario::parse(
            "codecs = [\"opus-wb-24k\"]\nvoices = [\"Front_Center\", \"espeak:en:Hello there\"]",
        )
        .unwrap();
        assert!(matches!(&s.reference, Reference::Voices(v) if v[1] == "espeak:en:Hello there"));
        let e = err("codecs = [\"opus-wb-24k\"]\nburst_length = 0.5");
        assert!(e.contains("burst_length"), "{e}");
        let e = Scenario::load(Path::new("/nonexistent/scenario.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/scenario.toml"), "{e}");
    }
}
