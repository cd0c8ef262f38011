//! Full-reference scoring of degraded speech: ITU-T P.862 PESQ in
//! narrowband (P.862 + P.862.1 MOS-LQO) and wideband (P.862.2) modes via the
//! pure-Rust `pesq` crate, and ViSQOL v3.1 in speech mode via `visqol-rs`,
//! after alignment and silence trimming.
//!
//! Both signals are brought to 16 kHz (8 kHz input: narrowband only), the
//! degraded one is shifted by the delay found by cross-correlation and cut
//! to the reference's length, and both are trimmed to the reference's active
//! speech (±50 ms) so leading jitter-buffer delay and trailing silence do
//! not dilute the score. ViSQOL gets the same 16 kHz, aligned, trimmed pair
//! (its speech mode is a 16 kHz wideband model) and aligns again itself.
//!
//! ViSQOL is slow without optimisation (a gammatone filterbank per 80 ms
//! window): build with `--release`, or give `visqol-rs` and its maths
//! crates `opt-level = 3` in the workspace's dev profile. Callers that only
//! need PESQ pass [`ScoreOptions::PESQ_ONLY`].

use std::path::Path;

use crate::audio::{self, Audio, AudioError};

/// Why a pair could not be scored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// A file could not be used.
    #[error(transparent)]
    Audio(#[from] AudioError),
    /// The two signals have different rates.
    #[error("reference is {reference} Hz but degraded is {degraded} Hz")]
    RateMismatch {
        /// Reference rate.
        reference: u32,
        /// Degraded rate.
        degraded: u32,
    },
    /// PESQ needs 8, 16 or 48 kHz (or a multiple of 16 kHz).
    #[error("{0} Hz is not scorable: use 8000, 16000, 32000 or 48000 Hz")]
    Rate(u32),
    /// The reference holds no speech.
    #[error("the reference is silent")]
    SilentReference,
    /// The degraded signal is (nearly) silent where the reference speaks.
    /// PESQ would score digital silence about 4.5, so it is refused.
    #[error("the degraded signal is silent (more than 60 dB below the reference)")]
    SilentDegraded,
    /// PESQ refused the pair.
    #[error("PESQ: {0}")]
    Pesq(#[source] pesq::PesqError),
    /// ViSQOL refused the pair (e.g. less speech than one 80 ms window).
    #[error("ViSQOL: {0}")]
    Visqol(String),
}

/// Scores of one pair.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Scores {
    /// Raw P.862 narrowband score (−0.5 … 4.5).
    pub pesq_nb_raw: f64,
    /// P.862.1 MOS-LQO of the narrowband score.
    pub pesq_nb: f64,
    /// P.862.2 wideband MOS-LQO; `None` for 8 kHz input.
    pub pesq_wb: Option<f64>,
    /// ViSQOL v3.1 speech-mode MOS-LQO (1 … 5, scaled so that identical
    /// speech scores 5 as Google's `--use_speech_mode` does); `None` for
    /// 8 kHz input or when not asked for ([`ScoreOptions::visqol`]).
    pub visqol: Option<f64>,
    /// Delay of the degraded signal found by alignment, in ms.
    pub delay_ms: f64,
    /// Seconds of reference speech scored after trimming.
    pub scored_seconds: f64,
}

/// What to compute besides PESQ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreOptions {
    /// Also run ViSQOL (costly in debug builds: see the module docs).
    pub visqol: bool,
}

impl Default for ScoreOptions {
    fn default() -> Self {
        Self { visqol: true }
    }
}

impl ScoreOptions {
    /// PESQ only.
    pub const PESQ_ONLY: Self = Self { visqol: false };
}

/// Scores two WAV files (mono 16-bit, same rate): PESQ and ViSQOL.
pub fn score_files(reference: &Path, degraded: &Path) -> Result<Scores, ScoreError> {
    score(&audio::read_wav(reference)?, &audio::read_wav(degraded)?)
}

/// Scores a degraded signal against its reference: PESQ and ViSQOL.
pub fn score(reference: &Audio, degraded: &Audio) -> Result<Scores, ScoreError> {
    score_with(reference, degraded, ScoreOptions::default())
}

/// Scores a degraded signal against its reference, computing what
/// `options` asks for.
pub fn score_with(
    reference: &Audio,
    degraded: &Audio,
    options: ScoreOptions,
) -> Result<Scores, ScoreError> {
    if reference.rate != degraded.rate {
        return Err(ScoreError::RateMismatch {
            reference: reference.rate,
            degraded: degraded.rate,
        });
    }
    let rate = match reference.rate {
        8000 => 8000,
        r if r.is_multiple_of(16_000) => 16_000,
        r => return Err(ScoreError::Rate(r)),
    };
    let r = audio::resample(reference, rate)?;
    let d = audio::resample(degraded, rate)?;
    let lag = audio::delay(&r.samples, &d.samples, rate, rate as usize);
    let d = audio::shift(&d.samples, lag, r.samples.len());
    let range = audio::active_range(&r).ok_or(ScoreError::SilentReference)?;
    let (r, d) = (&r.samples[range.clone()], &d[range.clone()]);
    let energy = |x: &[i16]| x.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>();
    if energy(d) < 1e-6 * energy(r) {
        return Err(ScoreError::SilentDegraded);
    }
    let (raw, wb) = if rate == 8000 {
        (pesq::pesq_8k(r, d).map_err(ScoreError::Pesq)?, None)
    } else {
        let raw = pesq::pesq(r, d).map_err(ScoreError::Pesq)?;
        (
            raw,
            Some(f64::from(pesq::pesq_wb(r, d).map_err(ScoreError::Pesq)?)),
        )
    };
    let visqol = if options.visqol && rate == 16_000 {
        Some(visqol_speech(r, d, rate)?)
    } else {
        None
    };
    Ok(Scores {
        pesq_nb_raw: f64::from(raw),
        pesq_nb: f64::from(pesq::score::mos_lqo(f64::from(raw))),
        pesq_wb: wb,
        visqol,
        delay_ms: lag as f64 * 1000.0 / f64::from(rate),
        scored_seconds: range.len() as f64 / f64::from(rate),
    })
}

/// ViSQOL's default search window radius (patches), as in Google's CLI
/// (`--search_window_radius`, default 60) and the `visqol` crate.
const VISQOL_SEARCH_WINDOW: usize = 60;

/// ViSQOL v3.1 in speech mode on two aligned 16 kHz signals of equal
/// length. Speech mode is a wideband model: Google's README says it
/// expects 16 kHz input and ignores everything above 8 kHz, so the caller
/// resamples first (and ViSQOL runs three times faster than at 48 kHz).
fn visqol_speech(reference: &[i16], degraded: &[i16], rate: u32) -> Result<f64, ScoreError> {
    use visqol_rs::constants::NUM_BANDS_SPEECH;
    use visqol_rs::variant::Variant;
    use visqol_rs::visqol_manager::VisqolManager;
    // Half a second of silence on both sides: visqol-rs 0.4.1 computes
    // `first patch index − half a patch` in unsigned arithmetic and
    // overflows when speech starts within 300 ms of the signal's start
    // (Google's C++ uses signed ints there). Silence is outside the VAD
    // patches, so it does not enter the score.
    let pad = rate as usize / 2;
    let to_signal = |x: &[i16]| {
        let mut v = vec![0.0; pad];
        v.extend(x.iter().map(|s| f64::from(*s) / 32768.0));
        v.resize(v.len() + pad, 0.0);
        visqol_rs::AudioSignal::new(&v, rate)
    };
    let (mut r, mut d) = (to_signal(reference), to_signal(degraded));
    // visqol-rs `expect`s on some internal conversions; a panic there must
    // not take a whole scenario run down, so it becomes an error.
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        VisqolManager::<NUM_BANDS_SPEECH>::new(
            Variant::Wideband {
                use_unscaled_mos_mapping: false,
            },
            VISQOL_SEARCH_WINDOW,
        )
        .compute_results(&mut r, &mut d)
        .map(|res| res.moslqo)
    }));
    match run {
        Ok(Ok(mos)) if mos.is_finite() => Ok(mos),
        Ok(Ok(mos)) => Err(ScoreError::Visqol(format!("non-finite score {mos}"))),
        Ok(Err(e)) => Err(ScoreError::Visqol(e.to_string())),
        Err(_) => Err(ScoreError::Visqol("internal panic".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_speech_scores_at_the_top() {
        let speech = audio::alsa_speech(&["Front_Center", "Rear_Left"]).unwrap();
        let t = std::time::Instant::now();
        let s = score(&speech, &speech).unwrap();
        println!(
            "PESQ + ViSQOL of {:.1} s: {:?}",
            speech.seconds(),
            t.elapsed()
        );
        let v = s.visqol.unwrap();
        assert!(v > 4.9, "{s:?}");
        assert!(s.pesq_wb.unwrap() > 4.5, "{s:?}");
        assert!(s.pesq_nb > 4.4, "{s:?}");
        assert_eq!(s.delay_ms, 0.0);
    }

    /// visqol-rs overflows when speech starts in the first 300 ms; the
    /// padding in `visqol_speech` must cover that.
    #[test]
    fn speech_at_the_very_start_gets_a_visqol() {
        let speech = audio::alsa_speech(&["Front_Center"]).unwrap();
        let range = audio::active_range(&speech).unwrap();
        let tight = Audio {
            rate: 48_000,
            samples: speech.samples[range.start + 2400..].to_vec(),
        };
        let s = score(&tight, &tight).unwrap();
        assert!(s.visqol.unwrap() > 4.9, "{s:?}");
    }

    #[test]
    fn delay_is_removed_before_scoring() {
        let speech = audio::alsa_speech(&["Front_Center", "Rear_Left"]).unwrap();
        let late = Audio {
            rate: 48_000,
            samples: audio::shift(&speech.samples, -4800, speech.samples.len() + 4800),
        };
        let s = score_with(&speech, &late, ScoreOptions::PESQ_ONLY).unwrap();
        assert!(s.visqol.is_none());
        assert!((s.delay_ms - 100.0).abs() < 0.1, "{s:?}");
        assert!(s.pesq_wb.unwrap() > 4.5, "{s:?}");
    }

    #[test]
    fn bad_pairs_are_typed_errors() {
        let speech = audio::alsa_speech(&["Front_Center"]).unwrap();
        let nb = audio::resample(&speech, 8000).unwrap();
        assert!(matches!(
            score(&speech, &nb),
            Err(ScoreError::RateMismatch { .. })
        ));
        let odd = Audio {
            rate: 44_100,
            samples: vec![0; 44_100],
        };
        assert!(matches!(score(&odd, &odd), Err(ScoreError::Rate(44_100))));
        let silent = Audio {
            rate: 16_000,
            samples: vec![0; 32_000],
        };
        assert!(matches!(
            score(&silent, &silent),
            Err(ScoreError::SilentReference)
        ));
        // PESQ alone rates digital silence ~4.5; we refuse it.
        let mute = Audio {
            rate: 48_000,
            samples: vec![0; speech.samples.len()],
        };
        assert!(matches!(
            score(&speech, &mute),
            Err(ScoreError::SilentDegraded)
        ));
        let nb_only = score(&nb, &nb).unwrap();
        assert!(
            nb_only.pesq_wb.is_none() && nb_only.pesq_nb > 4.0,
            "{nb_only:?}"
        );
    }
}
