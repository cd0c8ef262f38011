//! Codec impairment values for the E-model: equipment impairment Ie and
//! packet-loss robustness Bpl.
//!
//! Sources:
//! * G.711, G.729A, G.723.1: ITU-T G.113 (11/2007) Appendix I, Table I.1
//!   (Ie) and Table I.3 (Bpl, random loss). G.711 without PLC has
//!   Bpl 4.3; with the PLC of G.711 Appendix I, Bpl 25.1.
//! * Opus: no ITU-T table lists Opus. The values below are OUR ESTIMATES,
//!   placed on the narrowband scale by reading published measurements:
//!   the IETF listening tests summarised in draft-ietf-codec-opus-results
//!   (Hoene, Valin, Vos, Skoglund), where Opus at ≥ 16 kb/s wideband rates
//!   at or above the narrowband G.711 reference (hence Ie 0 on this scale,
//!   which cannot express better-than-narrowband quality); and WB-PESQ
//!   under random loss in Han, Magoni, McDonagh, Murphy, "Determination of
//!   bit-rate adaptation thresholds for the Opus codec for VoIP services"
//!   (IEEE ISCC 2014), where Opus degrades more gently than G.711 with PLC
//!   (hence Bpl above 25.1). The P.834 method (Ie from an instrumental
//!   model) applied to this lab's own PESQ runs should replace them.

use super::EmodelError;

/// One codec's E-model parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Codec {
    /// The name used on the command line.
    pub name: &'static str,
    /// Equipment impairment factor.
    pub ie: f64,
    /// Packet-loss robustness factor.
    pub bpl: f64,
    /// Whether the values are our estimates rather than ITU-T's.
    pub estimated: bool,
    /// Where the values come from.
    pub source: &'static str,
}

const G113: &str = "ITU-T G.113 (2007) Appendix I";
const EST: &str = "estimate, see emodel::codecs docs";

/// The table.
pub const CODECS: &[Codec] = &[
    Codec {
        name: "g711",
        ie: 0.0,
        bpl: 4.3,
        estimated: false,
        source: G113,
    },
    Codec {
        name: "g711-plc",
        ie: 0.0,
        bpl: 25.1,
        estimated: false,
        source: G113,
    },
    Codec {
        name: "g729a-vad",
        ie: 11.0,
        bpl: 19.0,
        estimated: false,
        source: G113,
    },
    Codec {
        name: "g723.1-6.3k-vad",
        ie: 15.0,
        bpl: 16.1,
        estimated: false,
        source: G113,
    },
    Codec {
        name: "opus-nb-12k",
        ie: 8.0,
        bpl: 20.0,
        estimated: true,
        source: EST,
    },
    Codec {
        name: "opus-wb-16k",
        ie: 2.0,
        bpl: 24.0,
        estimated: true,
        source: EST,
    },
    Codec {
        name: "opus-wb-24k",
        ie: 0.0,
        bpl: 27.0,
        estimated: true,
        source: EST,
    },
    // In-band FEC takes bits from the primary encoding (higher Ie) and
    // recovers single losses (much higher Bpl).
    Codec {
        name: "opus-wb-24k-fec",
        ie: 2.0,
        bpl: 40.0,
        estimated: true,
        source: EST,
    },
    Codec {
        name: "opus-fb-32k",
        ie: 0.0,
        bpl: 27.0,
        estimated: true,
        source: EST,
    },
];

/// Looks a codec up by name (case-insensitive).
pub fn codec(name: &str) -> Result<Codec, EmodelError> {
    CODECS
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| EmodelError::UnknownCodec(name.to_owned()))
}

/// The known names, comma-separated.
pub fn names() -> String {
    CODECS.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}
