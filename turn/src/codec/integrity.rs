//! MESSAGE-INTEGRITY (HMAC-SHA1), MESSAGE-INTEGRITY-SHA256 and FINGERPRINT
//! (CRC-32 XOR 0x5354554e), RFC 8489 §14.5–14.7.
//!
//! Each is computed over the message up to (not including) its own
//! attribute, with the header's length field set as if that attribute were
//! the last one. `prefix` below is exactly those bytes (header included).

use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::header::HEADER_LEN;

/// The value XOR-ed into the CRC-32 of FINGERPRINT ("STUN").
pub const FINGERPRINT_XOR: u32 = 0x5354_554E;
/// Length of a MESSAGE-INTEGRITY value.
pub const MESSAGE_INTEGRITY_LEN: usize = 20;

/// The header of `prefix` with its length field replaced so that the message
/// would end `trailing` bytes after the prefix. `None` when `prefix` is
/// shorter than a header or the length does not fit 16 bits.
fn adjusted_header(prefix: &[u8], trailing: usize) -> Option<[u8; HEADER_LEN]> {
    let mut header = *prefix.first_chunk::<HEADER_LEN>()?;
    let length = u16::try_from(prefix.len() - HEADER_LEN + trailing).ok()?;
    header[2..4].copy_from_slice(&length.to_be_bytes());
    Some(header)
}

/// HMAC-SHA1 for a MESSAGE-INTEGRITY attribute placed right after `prefix`.
pub fn message_integrity(prefix: &[u8], key: &[u8]) -> Option<[u8; MESSAGE_INTEGRITY_LEN]> {
    let header = adjusted_header(prefix, 4 + MESSAGE_INTEGRITY_LEN)?;
    let mut mac = Hmac::<Sha1>::new_from_slice(key).ok()?;
    mac.update(&header);
    mac.update(&prefix[HEADER_LEN..]);
    Some(mac.finalize().into_bytes().into())
}

/// HMAC-SHA256 for a MESSAGE-INTEGRITY-SHA256 attribute of `len` bytes
/// (16..=32, a multiple of 4) placed right after `prefix`, truncated to `len`.
pub fn message_integrity_sha256(prefix: &[u8], key: &[u8], len: usize) -> Option<Vec<u8>> {
    if !(16..=32).contains(&len) || !len.is_multiple_of(4) {
        return None;
    }
    let header = adjusted_header(prefix, 4 + len)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(&header);
    mac.update(&prefix[HEADER_LEN..]);
    let full = mac.finalize().into_bytes();
    Some(full[..len].to_vec())
}

/// FINGERPRINT value for an attribute placed right after `prefix`.
pub fn fingerprint(prefix: &[u8]) -> Option<u32> {
    let header = adjusted_header(prefix, 8)?;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header);
    crc.update(&prefix[HEADER_LEN..]);
    Some(crc.finalize() ^ FINGERPRINT_XOR)
}

/// Constant-time equality of two MACs (different lengths are unequal).
pub fn mac_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
