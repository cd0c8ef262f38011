//! A minimal SASLprep (RFC 4013) for passwords, enough for RFC 5769 and
//! for the passwords operators type.
//!
//! What it covers:
//! * mapping to nothing of the "commonly mapped to nothing" characters
//!   (RFC 3454 table B.1: soft hyphen, zero-width joiners, variation
//!   selectors, BOM, …);
//! * mapping of non-ASCII spaces (table C.1.2) to U+0020;
//! * the NFKC compatibility mappings that matter in practice: ª º ¹ ² ³,
//!   the Roman numerals U+2160–U+217F, ™, and full-width ASCII
//!   U+FF01–U+FF5E;
//! * refusal of the prohibited characters of tables C.2–C.9 (controls,
//!   private use, non-characters, surrogates cannot occur in `str`,
//!   bidi-format and tagging characters).
//!
//! What it does not: full NFKC (composition of combining marks and the
//! rest of the compatibility table), the bidi rules of RFC 3454 §6 and the
//! unassigned-code-point check. Strings outside what is listed pass through
//! unchanged. ASCII input without controls is always returned as is.

use thiserror::Error;

/// A prohibited character was found.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SaslPrepError {
    /// The character is in one of RFC 3454's prohibited tables.
    #[error("prohibited character U+{:04X}", u32::from(*.0))]
    Prohibited(char),
}

/// Prepares a password (or username) per the subset described above.
pub fn saslprep(input: &str) -> Result<String, SaslPrepError> {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if is_non_ascii_space(c) {
            out.push(' ');
            continue;
        }
        if is_mapped_to_nothing(c) {
            continue;
        }
        if is_prohibited(c) {
            return Err(SaslPrepError::Prohibited(c));
        }
        match compatibility_mapping(c) {
            Some(mapped) => out.push_str(mapped),
            None => out.push(c),
        }
    }
    Ok(out)
}

/// RFC 3454 table C.1.2.
fn is_non_ascii_space(c: char) -> bool {
    matches!(
        c,
        '\u{00A0}' | '\u{1680}' | '\u{2000}'..='\u{200B}' | '\u{202F}' | '\u{205F}' | '\u{3000}'
    )
}

/// RFC 3454 table B.1.
fn is_mapped_to_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{1806}'
            | '\u{180B}'..='\u{180D}'
            | '\u{200C}'
            | '\u{200D}'
            | '\u{2060}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
    )
}

/// RFC 3454 tables C.2.1, C.2.2, C.3, C.4, C.5 (impossible in `str`),
/// C.6, C.7, C.8 and C.9.
fn is_prohibited(c: char) -> bool {
    let v = u32::from(c);
    matches!(c, '\u{0000}'..='\u{001F}' | '\u{007F}')
        || matches!(
            c,
            '\u{0080}'..='\u{009F}'
                | '\u{06DD}'
                | '\u{070F}'
                | '\u{180E}'
                | '\u{200C}'
                | '\u{200D}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{2060}'..='\u{2063}'
                | '\u{206A}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFD}'
                | '\u{1D173}'..='\u{1D17A}'
        )
        || matches!(c, '\u{E000}'..='\u{F8FF}' | '\u{F0000}'..='\u{FFFFD}' | '\u{100000}'..='\u{10FFFD}')
        || matches!(c, '\u{FDD0}'..='\u{FDEF}')
        || (v & 0xFFFE) == 0xFFFE
        || matches!(c, '\u{2FF0}'..='\u{2FFB}')
        || matches!(
            c,
            '\u{0340}' | '\u{0341}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}'
        )
        || matches!(c, '\u{E0001}' | '\u{E0020}'..='\u{E007F}')
}

const ROMAN: [&str; 16] = [
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "L", "C", "D", "M",
];
const ROMAN_LOWER: [&str; 16] = [
    "i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii", "l", "c", "d", "m",
];
const ASCII: &str = "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~";

/// The NFKC compatibility mappings covered (see the module docs).
fn compatibility_mapping(c: char) -> Option<&'static str> {
    let v = u32::from(c);
    match c {
        '\u{00AA}' => Some("a"),
        '\u{00BA}' => Some("o"),
        '\u{00B9}' => Some("1"),
        '\u{00B2}' => Some("2"),
        '\u{00B3}' => Some("3"),
        '\u{2122}' => Some("TM"),
        '\u{2160}'..='\u{216F}' => ROMAN.get((v - 0x2160) as usize).copied(),
        '\u{2170}'..='\u{217F}' => ROMAN_LOWER.get((v - 0x2170) as usize).copied(),
        '\u{FF01}'..='\u{FF5E}' => {
            let i = (v - 0xFF01) as usize;
            ASCII.get(i..i + 1)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5769_password() {
        assert_eq!(
            saslprep("The\u{00AD}M\u{00AA}tr\u{2168}").unwrap(),
            "TheMatrIX"
        );
    }

    #[test]
    fn rfc4013_examples() {
        assert_eq!(saslprep("I\u{00AD}X").unwrap(), "IX");
        assert_eq!(saslprep("user").unwrap(), "user");
        assert_eq!(saslprep("USER").unwrap(), "USER");
        assert_eq!(saslprep("\u{00AA}").unwrap(), "a");
        assert_eq!(saslprep("\u{2168}").unwrap(), "IX");
        assert_eq!(
            saslprep("\u{0007}"),
            Err(SaslPrepError::Prohibited('\u{0007}'))
        );
    }

    #[test]
    fn spaces_and_fullwidth() {
        assert_eq!(saslprep("a\u{00A0}b").unwrap(), "a b");
        assert_eq!(saslprep("\u{FF21}\u{FF42}\u{FF13}").unwrap(), "Ab3");
        assert_eq!(saslprep("マトリックス").unwrap(), "マトリックス");
        assert!(saslprep("\u{E000}").is_err());
        assert!(saslprep("\u{FFFF}").is_err());
    }
}
