//! Mono 16-bit PCM: WAV files in and out, the reference speech material,
//! integer-factor decimation, silence trimming and delay alignment.

use std::path::{Path, PathBuf};

/// Where Debian's `alsa-utils` puts its natural voice recordings (48 kHz
/// mono, about 1.4 s each).
pub const ALSA_SOUNDS: &str = "/usr/share/sounds/alsa";

/// The voice recordings among them (`Noise.wav` is not speech).
pub const ALSA_VOICES: &[&str] = &[
    "Front_Center",
    "Front_Left",
    "Front_Right",
    "Rear_Center",
    "Rear_Left",
    "Rear_Right",
    "Side_Left",
    "Side_Right",
];

/// A WAV file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AudioError {
    /// Reading, parsing or writing failed.
    #[error("{path}: {source}")]
    Wav {
        /// The file.
        path: PathBuf,
        /// Why.
        source: hound::Error,
    },
    /// Not mono.
    #[error("{path}: {channels} channels, expected mono")]
    Channels {
        /// The file.
        path: PathBuf,
        /// Channels found.
        channels: u16,
    },
    /// Not 16-bit integer PCM.
    #[error("{path}: {bits}-bit {format}, expected 16-bit integer PCM")]
    SampleFormat {
        /// The file.
        path: PathBuf,
        /// Bits per sample.
        bits: u16,
        /// "int" or "float".
        format: &'static str,
    },
    /// The sample rate is not the one needed.
    #[error("{path}: {rate} Hz, expected {expected}")]
    Rate {
        /// The file.
        path: PathBuf,
        /// Rate found.
        rate: u32,
        /// Rates accepted.
        expected: String,
    },
    /// No conversion between these rates.
    #[error("cannot convert {from} Hz to {to} Hz (only integer downsampling factors)")]
    Resample {
        /// Input rate.
        from: u32,
        /// Output rate.
        to: u32,
    },
    /// The header claims more samples than [`MAX_WAV_SAMPLES`].
    #[error("{path}: {samples} samples, more than the {MAX_WAV_SAMPLES} accepted")]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Samples claimed.
        samples: u32,
    },
    /// Synthetic speech was asked for but `espeak-ng` is not on `PATH`.
    #[error("espeak-ng is not installed (needed for {spec:?}; scripts/setup-qoe.sh installs it)")]
    EspeakMissing {
        /// The voice asked for.
        spec: String,
    },
    /// `espeak-ng` has no voice for this language.
    #[error("espeak-ng has no voice {voice:?}")]
    UnknownVoice {
        /// The `-v` name given.
        voice: String,
    },
    /// `espeak-ng` failed otherwise.
    #[error("espeak-ng failed for {spec:?}: {message}")]
    Espeak {
        /// The voice asked for.
        spec: String,
        /// Its exit status and error output.
        message: String,
    },
    /// A voice name that is neither an `alsa-utils` voice nor a valid
    /// `espeak:<voice>:<text>` spec.
    #[error("unknown voice {0:?} (known: {known}, or espeak:<voice>:<text>)", known = ALSA_VOICES.join(", "))]
    BadVoiceSpec(String),
    /// Signals to combine have different rates.
    #[error("mixed sample rates: {0} Hz and {1} Hz")]
    MixedRates(u32, u32),
}

/// Mono 16-bit PCM at a sample rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// Samples per second.
    pub rate: u32,
    /// The samples.
    pub samples: Vec<i16>,
}

impl Audio {
    /// Length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.rate.max(1))
    }
}

/// Reads a mono 16-bit integer PCM WAV file at any rate.
pub fn read_wav(path: &Path) -> Result<Audio, AudioError> {
    let file = std::fs::File::open(path).map_err(|e| AudioError::Wav {
        path: path.to_owned(),
        source: hound::Error::IoError(e),
    })?;
    read_wav_from(std::io::BufReader::new(file), path)
}

/// Parses mono 16-bit integer PCM WAV data at any rate held in memory (the
/// parser behind [`read_wav`]; errors name the file as `<bytes>`).
pub fn read_wav_bytes(bytes: &[u8]) -> Result<Audio, AudioError> {
    read_wav_from(std::io::Cursor::new(bytes), Path::new("<bytes>"))
}

/// Longest WAV accepted: one hour at 48 kHz. A header may claim up to
/// 4 GiB of data; refusing more than this up front keeps a hostile or
/// truncated file from reserving memory for samples it does not hold.
pub const MAX_WAV_SAMPLES: u32 = 3600 * 48_000;

fn read_wav_from<R: std::io::Read>(input: R, path: &Path) -> Result<Audio, AudioError> {
    let wav = |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    };
    let reader = hound::WavReader::new(input).map_err(wav)?;
    let spec = reader.spec();
    if spec.channels != 1 {
        return Err(AudioError::Channels {
            path: path.to_owned(),
            channels: spec.channels,
        });
    }
    if spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(AudioError::SampleFormat {
            path: path.to_owned(),
            bits: spec.bits_per_sample,
            format: if spec.sample_format == hound::SampleFormat::Int {
                "int"
            } else {
                "float"
            },
        });
    }
    if reader.len() > MAX_WAV_SAMPLES {
        return Err(AudioError::TooLong {
            path: path.to_owned(),
            samples: reader.len(),
        });
    }
    let samples = reader
        .into_samples::<i16>()
        .collect::<Result<Vec<_>, _>>()
        .map_err(wav)?;
    Ok(Audio {
        rate: spec.sample_rate,
        samples,
    })
}

/// Reads a WAV file that must be mono 16-bit at `rate`.
pub fn read_wav_at(path: &Path, rate: u32) -> Result<Audio, AudioError> {
    let audio = read_wav(path)?;
    if audio.rate != rate {
        return Err(AudioError::Rate {
            path: path.to_owned(),
            rate: audio.rate,
            expected: format!("{rate} Hz"),
        });
    }
    Ok(audio)
}

/// Writes mono 16-bit PCM.
pub fn write_wav(path: &Path, audio: &Audio) -> Result<(), AudioError> {
    let wav = |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: audio.rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(wav)?;
    for s in &audio.samples {
        writer.write_sample(*s).map_err(wav)?;
    }
    writer.finalize().map_err(wav)
}

/// Joins signals of one rate with `gap_ms` of silence between them.
pub fn concat(parts: &[Audio], gap_ms: u32) -> Result<Audio, AudioError> {
    let rate = parts.first().map_or(48_000, |a| a.rate);
    let gap = (u64::from(rate) * u64::from(gap_ms) / 1000) as usize;
    let mut samples = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if part.rate != rate {
            return Err(AudioError::MixedRates(rate, part.rate));
        }
        if i > 0 {
            samples.resize(samples.len() + gap, 0);
        }
        samples.extend_from_slice(&part.samples);
    }
    Ok(Audio { rate, samples })
}

/// The reference material: the named `alsa-utils` voices at 48 kHz joined
/// with 300 ms pauses (PESQ wants speech with pauses).
pub fn alsa_speech(voices: &[&str]) -> Result<Audio, AudioError> {
    let parts = voices
        .iter()
        .map(|v| read_wav_at(&Path::new(ALSA_SOUNDS).join(format!("{v}.wav")), 48_000))
        .collect::<Result<Vec<_>, _>>()?;
    concat(&parts, 300)
}

/// Reference material named in a scenario's `voices` or on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voice {
    /// An `alsa-utils` recording (natural speech), e.g. `Front_Center`.
    Alsa(String),
    /// Synthetic speech: `espeak:<voice>:<text>`, e.g. `espeak:nb:God morgen`,
    /// rendered by `espeak-ng -v <voice>` and resampled to 48 kHz.
    Espeak {
        /// The espeak-ng voice (language) name, e.g. `nb`, `en`, `en-us`.
        voice: String,
        /// What it says.
        text: String,
    },
}

impl Voice {
    /// Parses a voice name; checks the syntax only (whether espeak-ng is
    /// installed and knows the voice shows when rendering).
    pub fn parse(spec: &str) -> Result<Self, AudioError> {
        let bad = || AudioError::BadVoiceSpec(spec.to_owned());
        if let Some(rest) = spec.strip_prefix("espeak:") {
            let (voice, text) = rest.split_once(':').ok_or_else(bad)?;
            // A voice is a short name, never an option (`-…`) or a path.
            let voice_ok = !voice.is_empty()
                && voice.len() <= 40
                && !voice.starts_with('-')
                && voice
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+'));
            if !voice_ok || text.trim().is_empty() || text.len() > 2000 {
                return Err(bad());
            }
            Ok(Self::Espeak {
                voice: voice.to_owned(),
                text: text.to_owned(),
            })
        } else if ALSA_VOICES.contains(&spec) {
            Ok(Self::Alsa(spec.to_owned()))
        } else {
            Err(bad())
        }
    }

    /// The speech at 48 kHz mono.
    pub fn render(&self) -> Result<Audio, AudioError> {
        match self {
            Self::Alsa(name) => {
                read_wav_at(&Path::new(ALSA_SOUNDS).join(format!("{name}.wav")), 48_000)
            }
            Self::Espeak { voice, text } => espeak(voice, text),
        }
    }
}

/// Whether `espeak-ng` can be run.
pub fn espeak_available() -> bool {
    std::process::Command::new("espeak-ng")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Renders `text` with `espeak-ng -v <voice>` (22.05 kHz mono 16-bit) and
/// resamples it to 48 kHz. The text goes through stdin, so it is never
/// taken for an option.
pub fn espeak(voice: &str, text: &str) -> Result<Audio, AudioError> {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let spec = format!("espeak:{voice}:{text}");
    let out = std::env::temp_dir().join(format!(
        "qoe-espeak-{}-{}.wav",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let child = std::process::Command::new("espeak-ng")
        .args(["-v", voice, "-w"])
        .arg(&out)
        .arg("--stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(AudioError::EspeakMissing { spec });
        }
        Err(e) => {
            return Err(AudioError::Espeak {
                spec,
                message: e.to_string(),
            });
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A failure here shows as espeak-ng's own error below.
        let _ = stdin.write_all(text.as_bytes());
    }
    let result = child.wait_with_output();
    let audio = match result {
        Ok(o) if o.status.success() && out.exists() => read_wav(&out),
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr).trim().to_owned();
            Err(if stderr.contains("voice does not exist") {
                AudioError::UnknownVoice {
                    voice: voice.to_owned(),
                }
            } else {
                AudioError::Espeak {
                    spec,
                    message: format!("{}: {stderr}", o.status),
                }
            })
        }
        Err(e) => Err(AudioError::Espeak {
            spec,
            message: e.to_string(),
        }),
    };
    let _ = std::fs::remove_file(&out);
    resample_any(&audio?, 48_000)
}

/// The reference material: the named voices (`alsa-utils` recordings or
/// `espeak:<voice>:<text>` specs) at 48 kHz joined with 300 ms pauses.
pub fn speech(voices: &[&str]) -> Result<Audio, AudioError> {
    let parts = voices
        .iter()
        .map(|v| Voice::parse(v)?.render())
        .collect::<Result<Vec<_>, _>>()?;
    concat(&parts, 300)
}

/// Converts between any two rates: integer-factor downsampling goes
/// through [`resample`]; anything else through windowed-sinc interpolation
/// (Blackman window, 16 input samples per side, cut-off at 0.95 of the
/// lower Nyquist frequency).
pub fn resample_any(audio: &Audio, to: u32) -> Result<Audio, AudioError> {
    if to == audio.rate || (to != 0 && to < audio.rate && audio.rate.is_multiple_of(to)) {
        return resample(audio, to);
    }
    if to == 0 || audio.rate == 0 {
        return Err(AudioError::Resample {
            from: audio.rate,
            to,
        });
    }
    use std::f64::consts::PI;
    let step = f64::from(audio.rate) / f64::from(to); // input samples per output sample
    // Cut-off in cycles per input sample.
    let cutoff = 0.95 * 0.5 * (1.0f64).min(1.0 / step);
    let half = (16.0 * step.max(1.0)).ceil() as i64;
    let x = &audio.samples;
    let n_out = (x.len() as f64 / step).floor() as usize;
    let samples = (0..n_out)
        .map(|o| {
            let t = o as f64 * step;
            let center = t.floor() as i64;
            let (mut acc, mut gain) = (0.0, 0.0);
            for k in center - half + 1..=center + half {
                let d = t - k as f64;
                let sinc = if d == 0.0 {
                    2.0 * cutoff
                } else {
                    (2.0 * PI * cutoff * d).sin() / (PI * d)
                };
                let w = 0.5 + 0.5 * d / half as f64; // 0..1 across the window
                let blackman = 0.42 - 0.5 * (2.0 * PI * w).cos() + 0.08 * (4.0 * PI * w).cos();
                let tap = sinc * blackman;
                gain += tap;
                if k >= 0
                    && let Some(s) = x.get(k as usize)
                {
                    acc += tap * f64::from(*s);
                }
            }
            (acc / gain).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok(Audio { rate: to, samples })
}

/// Downsamples by an integer factor through a windowed-sinc low-pass
/// (Blackman window, 8 taps per factor per side, cut-off at 0.9 of the new
/// Nyquist frequency). The output is aligned with the input (zero delay).
pub fn resample(audio: &Audio, to: u32) -> Result<Audio, AudioError> {
    if to == audio.rate {
        return Ok(audio.clone());
    }
    if to == 0 || to > audio.rate || !audio.rate.is_multiple_of(to) {
        return Err(AudioError::Resample {
            from: audio.rate,
            to,
        });
    }
    let factor = (audio.rate / to) as usize;
    let half = 8 * factor;
    let cutoff = 0.9 * 0.5 / factor as f64; // cycles per input sample
    let taps: Vec<f64> = (0..=2 * half)
        .map(|i| {
            let n = i as f64 - half as f64;
            let sinc = if n == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f64::consts::PI * cutoff * n).sin() / (std::f64::consts::PI * n)
            };
            let w = i as f64 / (2 * half) as f64;
            let blackman = 0.42 - 0.5 * (2.0 * std::f64::consts::PI * w).cos()
                + 0.08 * (4.0 * std::f64::consts::PI * w).cos();
            sinc * blackman
        })
        .collect();
    let gain: f64 = taps.iter().sum();
    let x = &audio.samples;
    let samples = (0..x.len().div_ceil(factor))
        .map(|o| {
            let center = o * factor;
            let mut acc = 0.0;
            for (k, tap) in taps.iter().enumerate() {
                if let Some(idx) = (center + k).checked_sub(half)
                    && let Some(s) = x.get(idx)
                {
                    acc += tap * f64::from(*s);
                }
            }
            (acc / gain).round().clamp(-32768.0, 32767.0) as i16
        })
        .collect();
    Ok(Audio { rate: to, samples })
}

/// Mean-square energy of 10 ms frames.
fn frame_energy(samples: &[i16], rate: u32) -> Vec<f64> {
    let len = (rate / 100).max(1) as usize;
    samples
        .chunks(len)
        .map(|c| c.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / c.len() as f64)
        .collect()
}

/// The active region of a signal: from 50 ms before the first to 50 ms
/// after the last 10 ms frame whose energy is within 45 dB of the loudest
/// frame and above −70 dBFS. `None` if all is silence.
pub fn active_range(audio: &Audio) -> Option<std::ops::Range<usize>> {
    let energy = frame_energy(&audio.samples, audio.rate);
    let peak = energy.iter().copied().fold(0.0, f64::max);
    let floor = (peak * 10f64.powf(-4.5)).max(32768.0f64.powi(2) * 1e-7);
    let first = energy.iter().position(|e| *e > floor)?;
    let last = energy.iter().rposition(|e| *e > floor)?;
    let len = (audio.rate / 100).max(1) as usize;
    let pad = 5 * len;
    let start = (first * len).saturating_sub(pad);
    let end = ((last + 1) * len + pad).min(audio.samples.len());
    Some(start..end)
}

/// Estimates how many samples `degraded` lags `reference` (negative: it
/// leads), searching ±`max_lag` samples: first on 4 ms energy envelopes,
/// then sample by sample within ±4 ms of that.
pub fn delay(reference: &[i16], degraded: &[i16], rate: u32, max_lag: usize) -> i64 {
    let block = (rate / 250).max(1) as usize;
    let env = |x: &[i16]| -> Vec<f64> {
        x.chunks(block)
            .map(|c| c.iter().map(|s| f64::from(*s).abs()).sum::<f64>())
            .collect()
    };
    let (er, ed) = (env(reference), env(degraded));
    let max_blocks = (max_lag / block) as i64;
    let coarse = best_lag(&er, &ed, -max_blocks..=max_blocks) * block as i64;
    let fine = 2 * block as i64;
    let as_f = |x: &[i16]| x.iter().map(|s| f64::from(*s)).collect::<Vec<_>>();
    best_lag(
        &as_f(reference),
        &as_f(degraded),
        coarse - fine..=coarse + fine,
    )
}

/// The lag maximising the (unnormalised) cross-correlation.
fn best_lag(a: &[f64], b: &[f64], lags: std::ops::RangeInclusive<i64>) -> i64 {
    let mut best = (f64::MIN, 0);
    for lag in lags {
        let mut acc = 0.0;
        for (i, x) in a.iter().enumerate() {
            let j = i as i64 + lag;
            if j >= 0
                && let Some(y) = b.get(j as usize)
            {
                acc += x * y;
            }
        }
        if acc > best.0 {
            best = (acc, lag);
        }
    }
    best.1
}

/// Shifts `degraded` by `lag` samples (drops its first `lag` samples, or
/// prepends silence for a negative lag) and pads or cuts it to `len`.
pub fn shift(degraded: &[i16], lag: i64, len: usize) -> Vec<i16> {
    let mut out: Vec<i16> = if lag >= 0 {
        degraded.iter().skip(lag as usize).copied().collect()
    } else {
        let mut v = vec![0; lag.unsigned_abs() as usize];
        v.extend_from_slice(degraded);
        v
    };
    out.resize(len, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(rate: u32, hz: f64, secs: f64) -> Audio {
        let n = (f64::from(rate) * secs) as usize;
        let samples = (0..n)
            .map(|i| {
                (8000.0 * (2.0 * std::f64::consts::PI * hz * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect();
        Audio { rate, samples }
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    #[test]
    fn decimation_passes_speech_band_and_stops_aliases() {
        let pass = resample(&tone(48_000, 1000.0, 0.5), 16_000).unwrap();
        assert_eq!(pass.samples.len(), 8000);
        assert!((rms(&pass.samples[500..7500]) / (8000.0 / 2f64.sqrt()) - 1.0).abs() < 0.01);
        // 12 kHz would alias to 4 kHz at 16 kHz: must be gone (< −60 dB).
        let stop = resample(&tone(48_000, 12_000.0, 0.5), 16_000).unwrap();
        assert!(rms(&stop.samples[500..7500]) < 8000.0 * 1e-3);
        assert!(matches!(
            resample(&tone(44_100, 1.0, 0.1), 16_000),
            Err(AudioError::Resample { .. })
        ));
    }

    #[test]
    fn rational_resampling_keeps_tones() {
        // 22.05 kHz (espeak-ng) to 48 kHz: a 1 kHz tone keeps its level
        // and its frequency (zero crossings), length scales by 48/22.05.
        let up = resample_any(&tone(22_050, 1000.0, 0.5), 48_000).unwrap();
        assert_eq!(up.rate, 48_000);
        assert!(
            (up.samples.len() as i64 - 24_000).abs() <= 1,
            "{}",
            up.samples.len()
        );
        let mid = &up.samples[2000..22_000];
        assert!(
            (rms(mid) / (8000.0 / 2f64.sqrt()) - 1.0).abs() < 0.01,
            "{}",
            rms(mid)
        );
        let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(
            (crossings as i64 - 2 * 20_000 / 48).abs() <= 2,
            "{crossings}"
        );
        // Integer factors go through `resample`.
        let a = tone(48_000, 440.0, 0.1);
        assert_eq!(
            resample_any(&a, 16_000).unwrap(),
            resample(&a, 16_000).unwrap()
        );
        assert!(resample_any(&a, 0).is_err());
    }

    #[test]
    fn voice_specs() {
        assert_eq!(
            Voice::parse("Front_Center").unwrap(),
            Voice::Alsa("Front_Center".into())
        );
        assert_eq!(
            Voice::parse("espeak:nb:God morgen: hei").unwrap(),
            Voice::Espeak {
                voice: "nb".into(),
                text: "God morgen: hei".into()
            }
        );
        for bad in [
            "Front_Centre",
            "espeak:nb",
            "espeak::hei",
            "espeak:nb:  ",
            "espeak:--help:x",
            "espeak:../x:y",
        ] {
            assert!(
                matches!(Voice::parse(bad), Err(AudioError::BadVoiceSpec(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn delay_is_found_to_the_sample() {
        let speech = alsa_speech(&["Front_Center"]).unwrap();
        let lagged = shift(&speech.samples, -357, speech.samples.len() + 357);
        assert_eq!(delay(&speech.samples, &lagged, 48_000, 24_000), 357);
        assert_eq!(shift(&lagged, 357, speech.samples.len()), speech.samples);
    }

    #[test]
    fn trimming_finds_the_speech() {
        let speech = alsa_speech(&["Rear_Left"]).unwrap();
        let mut padded = vec![0i16; 48_000];
        padded.extend_from_slice(&speech.samples);
        padded.resize(padded.len() + 48_000, 0);
        let range = active_range(&Audio {
            rate: 48_000,
            samples: padded.clone(),
        })
        .unwrap();
        assert!(
            range.start > 48_000 - 2400 && range.end < padded.len() - 48_000 + 2400,
            "{range:?}"
        );
        assert!(
            active_range(&Audio {
                rate: 48_000,
                samples: vec![0; 4800]
            })
            .is_none()
        );
    }

    #[test]
    fn wrong_wav_formats_are_typed_errors() {
        let dir = std::env::temp_dir().join(format!("qoe-audio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stereo = dir.join("stereo.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&stereo, spec).unwrap();
        for _ in 0..100 {
            w.write_sample(0i16).unwrap();
        }
        w.finalize().unwrap();
        assert!(matches!(
            read_wav(&stereo),
            Err(AudioError::Channels { channels: 2, .. })
        ));
        let low = dir.join("low.wav");
        write_wav(&low, &tone(8000, 440.0, 0.1)).unwrap();
        let err = read_wav_at(&low, 48_000).unwrap_err();
        assert!(matches!(err, AudioError::Rate { rate: 8000, .. }), "{err}");
        assert!(err.to_string().contains("expected 48000 Hz"));
        std::fs::write(dir.join("junk.wav"), b"not a wav").unwrap();
        assert!(matches!(
            read_wav(&dir.join("junk.wav")),
            Err(AudioError::Wav { .. })
        ));
        assert!(matches!(
            read_wav(&dir.join("missing.wav")),
            Err(AudioError::Wav { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
