//! The 20-byte STUN header: message type (method + class), length, magic
//! cookie and transaction id (RFC 8489 §5).

use super::error::DecodeError;

/// The fixed magic cookie of RFC 5389/8489 messages.
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// Size of the STUN header in bytes.
pub const HEADER_LEN: usize = 20;

/// A STUN method (the 12 method bits of the message type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Method(pub u16);

impl Method {
    /// Binding (RFC 8489).
    pub const BINDING: Method = Method(0x001);
    /// Allocate (RFC 8656).
    pub const ALLOCATE: Method = Method(0x003);
    /// Refresh (RFC 8656).
    pub const REFRESH: Method = Method(0x004);
    /// Send (indication only, RFC 8656).
    pub const SEND: Method = Method(0x006);
    /// Data (indication only, RFC 8656).
    pub const DATA: Method = Method(0x007);
    /// CreatePermission (RFC 8656).
    pub const CREATE_PERMISSION: Method = Method(0x008);
    /// ChannelBind (RFC 8656).
    pub const CHANNEL_BIND: Method = Method(0x009);
    /// Connect: open a TCP connection to a peer (RFC 6062 §5.2).
    pub const CONNECT: Method = Method(0x00A);
    /// ConnectionBind: turn a new client connection into a data connection
    /// (RFC 6062 §5.4).
    pub const CONNECTION_BIND: Method = Method(0x00B);
    /// ConnectionAttempt (indication only): a peer connected to a TCP
    /// relayed address (RFC 6062 §5.3).
    pub const CONNECTION_ATTEMPT: Method = Method(0x00C);
}

/// A STUN message class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// A request, answered by a success or error response.
    Request,
    /// An indication, never answered.
    Indication,
    /// A success response.
    Success,
    /// An error response.
    Error,
}

/// Method and class together, as encoded in the first 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageType {
    /// The method.
    pub method: Method,
    /// The class.
    pub class: Class,
}

impl MessageType {
    /// A message type from its parts.
    pub const fn new(method: Method, class: Class) -> Self {
        Self { method, class }
    }

    /// Decodes the 16-bit type field; `None` when the two leading bits are set.
    pub fn from_u16(value: u16) -> Option<Self> {
        if value & 0xC000 != 0 {
            return None;
        }
        let method = (value & 0x000F) | ((value & 0x00E0) >> 1) | ((value & 0x3E00) >> 2);
        let class = match ((value >> 7) & 0b10) | ((value >> 4) & 0b01) {
            0b00 => Class::Request,
            0b01 => Class::Indication,
            0b10 => Class::Success,
            _ => Class::Error,
        };
        Some(Self {
            method: Method(method),
            class,
        })
    }

    /// Encodes into the 16-bit type field. Method bits above 12 are dropped.
    pub fn to_u16(self) -> u16 {
        let m = self.method.0 & 0x0FFF;
        let c: u16 = match self.class {
            Class::Request => 0b00,
            Class::Indication => 0b01,
            Class::Success => 0b10,
            Class::Error => 0b11,
        };
        (m & 0x000F)
            | ((m & 0x0070) << 1)
            | ((m & 0x0F80) << 2)
            | ((c & 0b01) << 4)
            | ((c & 0b10) << 7)
    }
}

/// The 96-bit transaction id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TransactionId(pub [u8; 12]);

impl TransactionId {
    /// A fresh random transaction id.
    pub fn random() -> Self {
        Self(rand::random())
    }
}

/// A decoded header; the attributes are not looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Method and class.
    pub message_type: MessageType,
    /// Length of the attribute section in bytes.
    pub length: usize,
    /// The transaction id.
    pub transaction_id: TransactionId,
}

impl Header {
    /// Decodes the first 20 bytes of `buf` and checks the leading bits,
    /// magic cookie and length alignment. Does not compare the length with
    /// `buf.len()` (stream framing uses this on partial buffers).
    pub fn decode(buf: &[u8]) -> Result<Self, DecodeError> {
        let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        };
        let type_field = u16::from_be_bytes([head[0], head[1]]);
        let message_type = MessageType::from_u16(type_field).ok_or(DecodeError::NotStun)?;
        let length = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let cookie = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
        if cookie != MAGIC_COOKIE {
            return Err(DecodeError::BadMagicCookie { found: cookie });
        }
        if !length.is_multiple_of(4) {
            return Err(DecodeError::UnalignedLength { length });
        }
        let mut tid = [0u8; 12];
        tid.copy_from_slice(&head[8..20]);
        Ok(Self {
            message_type,
            length,
            transaction_id: TransactionId(tid),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_types_round_trip() {
        let cases = [
            (0x0001, Method::BINDING, Class::Request),
            (0x0101, Method::BINDING, Class::Success),
            (0x0111, Method::BINDING, Class::Error),
            (0x0011, Method::BINDING, Class::Indication),
            (0x0003, Method::ALLOCATE, Class::Request),
            (0x0103, Method::ALLOCATE, Class::Success),
            (0x0113, Method::ALLOCATE, Class::Error),
            (0x0016, Method::SEND, Class::Indication),
            (0x0017, Method::DATA, Class::Indication),
            (0x0009, Method::CHANNEL_BIND, Class::Request),
        ];
        for (wire, method, class) in cases {
            let t = MessageType::new(method, class);
            assert_eq!(t.to_u16(), wire, "{method:?} {class:?}");
            assert_eq!(MessageType::from_u16(wire), Some(t));
        }
        for wire in 0..0x4000u16 {
            let t = MessageType::from_u16(wire).unwrap();
            assert_eq!(t.to_u16(), wire);
        }
        assert_eq!(MessageType::from_u16(0x4000), None);
    }
}
