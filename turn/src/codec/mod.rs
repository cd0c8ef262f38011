//! Our STUN/TURN message codec (RFC 8489, RFC 8656, test vectors of
//! RFC 5769): headers, typed attributes, MESSAGE-INTEGRITY(-SHA256) and
//! FINGERPRINT, ChannelData framing. Parsers return typed errors and never
//! panic.

mod address;
pub mod attr_type;
mod attribute;
mod builder;
mod channel_data;
mod error;
mod framing;
mod header;
pub mod integrity;
mod message;

pub use address::AddressFamily;
pub use attribute::{Attribute, MAX_TEXT_LEN, MAX_USERNAME_LEN};
pub use builder::{MAX_BODY_LEN, MessageBuilder};
pub use channel_data::{
    CHANNEL_DATA_HEADER_LEN, ChannelData, MAX_CHANNEL_NUMBER, MIN_CHANNEL_NUMBER,
};
pub use error::{ChannelDataError, DecodeError};
pub use framing::{PacketKind, classify, stream_frame_len};
pub use header::{Class, HEADER_LEN, Header, MAGIC_COOKIE, MessageType, Method, TransactionId};
pub use message::{MAX_ATTRIBUTES, Message, RawAttribute};
