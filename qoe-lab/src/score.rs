//! Full-reference scoring of degraded speech: ITU-T P.862 PESQ in
//! narrowband (P.862 + P.862.1 MOS-LQO) and wideband (P.862.2) modes via the
//! pure-Rust `pesq` crate, after alignment and silence trimming.
//!
//! Both signals are brought to 16 kHz (8 kHz input: narrowband only), the
//! degraded one is shifted by the delay found by cross-correlation and cut
//! to the reference's length, and both are trimmed to the reference's active
//! speech (±50 ms) so leading jitter-buffer delay and trailing silence do
//! not dilute the score. ViSQOL is not wired in yet (see the crate docs).

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
    /// Delay of the degraded signal found by alignment, in ms.
    pub delay_ms: f64,
    /// Seconds of reference speech scored after trimming.
    pub scored_seconds: f64,
}

/// Scores two WAV files (mono 16-bit, same rate).
pub fn score_files(reference: &Path, degraded: &Path) -> Result<Scores, ScoreError> {
    score(&audio::read_wav(reference)?, &audio::read_wav(degraded)?)
}

/// Scores a degraded signal against its reference.
pub fn score(reference: &Audio, degraded: &Audio) -> Result<Scores, ScoreError> {
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
    Ok(Scores {
        pesq_nb_raw: f64::from(raw),
        pesq_nb: f64::from(pesq::score::mos_lqo(f64::from(raw))),
        pesq_wb: wb,
        delay_ms: lag as f64 * 1000.0 / f64::from(rate),
        scored_seconds: range.len() as f64 / f64::from(rate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_speech_scores_at_the_top() {
        let speech = audio::alsa_speech(&["Front_Center", "Rear_Left"]).unwrap();
        let s = score(&speech, &speech).unwrap();
        assert!(s.pesq_wb.unwrap() > 4.5, "{s:?}");
        assert!(s.pesq_nb > 4.4, "{s:?}");
        assert_eq!(s.delay_ms, 0.0);
    }

    #[test]
    fn delay_is_removed_before_scoring() {
        let speech = audio::alsa_speech(&["Front_Center", "Rear_Left"]).unwrap();
        let late = Audio {
            rate: 48_000,
            samples: audio::shift(&speech.samples, -4800, speech.samples.len() + 4800),
        };
        let s = score(&speech, &late).unwrap();
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
