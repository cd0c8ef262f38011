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
    let wav = |source| AudioError::Wav {
        path: path.to_owned(),
        source,
    };
    let reader = hound::WavReader::open(path).map_err(wav)?;
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
