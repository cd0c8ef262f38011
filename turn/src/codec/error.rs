//! Typed errors of the STUN/TURN codec.
//!
//! Every parser in [`crate::codec`] returns one of these instead of
//! panicking; the server maps them to silent drops or to 400/420 answers.

use thiserror::Error;

/// Why a STUN message or one of its attributes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than a STUN header (20) or than the header's length says.
    #[error("truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes that were given.
        available: usize,
    },
    /// The two most significant bits of the first byte are not zero.
    #[error("not a STUN message (leading bits are not 00)")]
    NotStun,
    /// The magic cookie is not 0x2112A442 (RFC 3489 messages land here too).
    #[error("bad magic cookie {found:#010x}")]
    BadMagicCookie {
        /// The 32-bit value found where the cookie belongs.
        found: u32,
    },
    /// The header's message length is not a multiple of 4.
    #[error("message length {length} is not a multiple of 4")]
    UnalignedLength {
        /// The declared length.
        length: usize,
    },
    /// The datagram is longer than the header says.
    #[error("declared length {declared} but {actual} bytes follow the header")]
    LengthMismatch {
        /// Length in the header.
        declared: usize,
        /// Bytes after the header.
        actual: usize,
    },
    /// An attribute header or value runs past the end of the message.
    #[error("attribute {attr_type:#06x} of length {length} overruns the message")]
    AttributeOverrun {
        /// Attribute type.
        attr_type: u16,
        /// Declared value length.
        length: usize,
    },
    /// A known attribute has a length its definition does not allow.
    #[error("attribute {attr_type:#06x} has invalid length {length}")]
    BadAttributeLength {
        /// Attribute type.
        attr_type: u16,
        /// Value length found.
        length: usize,
    },
    /// A known attribute has a value its definition does not allow.
    #[error("attribute {attr_type:#06x}: {reason}")]
    BadAttributeValue {
        /// Attribute type.
        attr_type: u16,
        /// What is wrong, for logs.
        reason: &'static str,
    },
    /// Something follows FINGERPRINT, which must be the last attribute.
    #[error("attribute {attr_type:#06x} follows FINGERPRINT")]
    AttributeAfterFingerprint {
        /// The offending attribute type.
        attr_type: u16,
    },
    /// More attributes than [`crate::codec::MAX_ATTRIBUTES`].
    #[error("more than {max} attributes")]
    TooManyAttributes {
        /// The limit.
        max: usize,
    },
    /// Comprehension-required attributes (type < 0x8000) this codec does not
    /// understand. The server answers a request with 420 and these types in
    /// UNKNOWN-ATTRIBUTES.
    #[error("unknown comprehension-required attributes {types:04x?}")]
    UnknownComprehensionRequired {
        /// The unknown types, in message order, without repeats.
        types: Vec<u16>,
    },
    /// FINGERPRINT is present but does not match the message.
    #[error("FINGERPRINT does not match")]
    BadFingerprint,
}

/// Why a ChannelData message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChannelDataError {
    /// Fewer than 4 bytes, or fewer than the header's length says.
    #[error("truncated ChannelData: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the message needs.
        needed: usize,
        /// Bytes that were given.
        available: usize,
    },
    /// The channel number is outside 0x4000..=0x7FFF.
    #[error("channel number {number:#06x} outside 0x4000..=0x7FFF")]
    BadChannelNumber {
        /// The number found.
        number: u16,
    },
    /// More than 3 bytes of padding follow the data.
    #[error("{extra} bytes follow the ChannelData payload")]
    TrailingBytes {
        /// Bytes after data and allowed padding.
        extra: usize,
    },
}
