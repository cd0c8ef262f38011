//! ITU-T G.107 (06/2015) E-model: the transmission rating R and its MOS.
//!
//! R = Ro − Is − Id − Ie,eff + A (G.107 §7.1), with every term computed
//! from the formulas of G.107 §7 and the default values of its Table 1, so
//! the default connection gives R = 93.2. What a QoE scenario varies is the
//! one-way delay (Ta = T, Tr = 2T), the packet-loss probability Ppl and its
//! burstiness BurstR, and the codec (Ie, Bpl from [`codecs`]).
//!
//! This is the narrowband E-model (R ≤ 100). Wideband codecs such as Opus
//! are placed on that scale with estimated Ie values, marked as such.

pub mod codecs;
#[cfg(test)]
mod tests;

pub use codecs::{CODECS, Codec, codec};

/// Out-of-range input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum EmodelError {
    /// No codec by this name.
    #[error("unknown codec {0:?}; known: {known}", known = codecs::names())]
    UnknownCodec(String),
    /// A parameter outside its range.
    #[error("{what} out of range: {value}")]
    OutOfRange {
        /// Which parameter.
        what: &'static str,
        /// The value given.
        value: f64,
    },
}

/// The E-model inputs a scenario varies; the rest are G.107 Table 1
/// defaults (SLR 8, RLR 2, STMR 15, LSTR 18, Ds = Dr = 3, TELR 65,
/// WEPL 110, qdu 1, Ps = Pr = 35 dB(A), Nc −70 dBm0p, Nfor −64 dBmp, A 0,
/// mT 100 ms, sT 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Inputs {
    /// Mean one-way delay in ms; used as T (echo path), Ta (absolute) and
    /// Tr / 2 (round trip).
    pub delay_ms: f64,
    /// Equipment impairment factor of the codec.
    pub ie: f64,
    /// Packet-loss robustness factor of the codec.
    pub bpl: f64,
    /// Packet-loss probability in percent.
    pub ppl: f64,
    /// Burst ratio (1 = random loss).
    pub burst_r: f64,
    /// Advantage factor.
    pub a: f64,
}

impl Default for Inputs {
    fn default() -> Self {
        // G.711, no loss, no delay: the G.107 default connection.
        Self {
            delay_ms: 0.0,
            ie: 0.0,
            bpl: 4.3,
            ppl: 0.0,
            burst_r: 1.0,
            a: 0.0,
        }
    }
}

impl Inputs {
    /// Inputs for a named codec from [`CODECS`].
    pub fn for_codec(
        name: &str,
        delay_ms: f64,
        ppl: f64,
        burst_r: f64,
    ) -> Result<Self, EmodelError> {
        let c = codec(name)?;
        Ok(Self {
            delay_ms,
            ie: c.ie,
            bpl: c.bpl,
            ppl,
            burst_r,
            a: 0.0,
        })
    }
}

/// The rating and its parts.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rating {
    /// Transmission rating R.
    pub r: f64,
    /// MOS-CQE from R (G.107 Annex B).
    pub mos: f64,
    /// Basic signal-to-noise ratio Ro.
    pub ro: f64,
    /// Simultaneous impairment Is.
    pub is: f64,
    /// Talker-echo delay impairment Idte.
    pub idte: f64,
    /// Listener-echo delay impairment Idle.
    pub idle: f64,
    /// Absolute-delay impairment Idd.
    pub idd: f64,
    /// Effective equipment impairment Ie,eff.
    pub ie_eff: f64,
}

// G.107 Table 1 defaults.
const SLR: f64 = 8.0;
const RLR: f64 = 2.0;
const STMR: f64 = 15.0;
const DS: f64 = 3.0;
const DR: f64 = 3.0;
const TELR: f64 = 65.0;
const WEPL: f64 = 110.0;
const QDU: f64 = 1.0;
const PS: f64 = 35.0;
const PR: f64 = 35.0;
const NC: f64 = -70.0;
const NFOR: f64 = -64.0;
const MT: f64 = 100.0;
const ST: f64 = 1.0;

/// Computes R and MOS.
pub fn rate(input: &Inputs) -> Result<Rating, EmodelError> {
    check("delay_ms", input.delay_ms, 0.0, 10_000.0)?;
    check("ie", input.ie, 0.0, 95.0)?;
    check("bpl", input.bpl, 1.0, 100.0)?;
    check("ppl (percent)", input.ppl, 0.0, 100.0)?;
    check("burst_r", input.burst_r, 1.0, 100.0)?;
    check("a", input.a, 0.0, 20.0)?;

    let t = input.delay_ms;
    let olr = SLR + RLR;
    let lstr = STMR + DR;

    // §7.2 basic signal-to-noise ratio.
    let nfo = NFOR + RLR;
    let pre = PR + 10.0 * (1.0 + 10f64.powf((10.0 - lstr) / 10.0)).log10();
    let nor = RLR - 121.0 + pre + 0.008 * (pre - 35.0).powi(2);
    let nos = PS - SLR - DS - 100.0 + 0.004 * (PS - olr - DS - 14.0).powi(2);
    let no = 10.0
        * (10f64.powf(NC / 10.0)
            + 10f64.powf(nos / 10.0)
            + 10f64.powf(nor / 10.0)
            + 10f64.powf(nfo / 10.0))
        .log10();
    let ro = 15.0 - 1.5 * (SLR + no);

    // §7.3 simultaneous impairment.
    let xolr = olr + 0.2 * (64.0 + no - RLR);
    let iolr = 20.0 * ((1.0 + (xolr / 8.0).powi(8)).powf(1.0 / 8.0) - xolr / 8.0);
    let stmro =
        -10.0 * (10f64.powf(-STMR / 10.0) + (-t / 4.0).exp() * 10f64.powf(-TELR / 10.0)).log10();
    let ist = 12.0 * (1.0 + ((stmro - 13.0) / 6.0).powi(8)).powf(1.0 / 8.0)
        - 28.0 * (1.0 + ((stmro + 1.0) / 19.4).powi(35)).powf(1.0 / 35.0)
        - 13.0 * (1.0 + ((stmro - 3.0) / 33.0).powi(13)).powf(1.0 / 13.0)
        + 29.0;
    let q = 37.0 - 15.0 * QDU.log10();
    let g = 1.07 + 0.258 * q + 0.0602 * q * q;
    let y = (ro - 100.0) / 15.0 + 46.0 / 8.4 - g / 9.0;
    let z = 46.0 / 30.0 - g / 40.0;
    let iq = 15.0 * (1.0 + 10f64.powf(y) + 10f64.powf(z)).log10();
    let is = iolr + ist + iq;

    // §7.4 delay impairment.
    let roe = -1.5 * (no - RLR);
    let mut terv =
        TELR - 40.0 * ((1.0 + t / 10.0) / (1.0 + t / 150.0)).log10() + 6.0 * (-0.3 * t * t).exp();
    if STMR < 9.0 {
        terv += ist / 2.0;
    }
    let re = 80.0 + 2.5 * (terv - 14.0);
    let idte =
        ((roe - re) / 2.0 + ((roe - re).powi(2) / 4.0 + 100.0).sqrt() - 1.0) * (1.0 - (-t).exp());
    let tr = 2.0 * t;
    let rle = 10.5 * (WEPL + 7.0) * (tr + 1.0).powf(-0.25);
    let idle = (ro - rle) / 2.0 + ((ro - rle).powi(2) / 4.0 + 169.0).sqrt();
    let idd = idd(t);

    // §7.5 effective equipment impairment.
    let ie_eff = input.ie + (95.0 - input.ie) * input.ppl / (input.ppl / input.burst_r + input.bpl);

    let r = ro - is - (idte + idle + idd) - ie_eff + input.a;
    Ok(Rating {
        r,
        mos: mos(r),
        ro,
        is,
        idte,
        idle,
        idd,
        ie_eff,
    })
}

/// Absolute-delay impairment Idd for one-way delay `ta` ms (G.107 §7.4,
/// default mT = 100 ms, sT = 1).
pub fn idd(ta: f64) -> f64 {
    if ta <= MT {
        return 0.0;
    }
    let x = (ta / MT).log2();
    let e = 1.0 / (6.0 * ST);
    25.0 * ((1.0 + x.powf(6.0 * ST)).powf(e) - 3.0 * (1.0 + (x / 3.0).powf(6.0 * ST)).powf(e) + 2.0)
}

/// MOS-CQE from R (G.107 Annex B, eq. B-4).
pub fn mos(r: f64) -> f64 {
    if r <= 0.0 {
        1.0
    } else if r >= 100.0 {
        4.5
    } else {
        1.0 + 0.035 * r + r * (r - 60.0) * (100.0 - r) * 7e-6
    }
}

fn check(what: &'static str, value: f64, min: f64, max: f64) -> Result<(), EmodelError> {
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(())
    } else {
        Err(EmodelError::OutOfRange { what, value })
    }
}
