//! Parsing a STUN message into a borrowed view of its attributes.

use super::attr_type as t;
use super::attribute::Attribute;
use super::error::DecodeError;
use super::header::{Class, HEADER_LEN, Header, MessageType, Method, TransactionId};
use super::integrity;

/// Most attributes one message may carry; a bound on per-message work.
pub const MAX_ATTRIBUTES: usize = 64;

/// One attribute as found on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawAttribute<'a> {
    /// Attribute type.
    pub attr_type: u16,
    /// Value without padding.
    pub value: &'a [u8],
    /// Offset of the attribute header from the start of the message.
    pub offset: usize,
}

/// A parsed STUN message borrowing its datagram.
///
/// Attributes keep their order. Lookups return the first occurrence of a
/// type (RFC 8489 §14: duplicates may be ignored). Attributes after
/// MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
/// ignored, as RFC 8489 §14.5 requires; anything after FINGERPRINT is an
/// error.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    raw: &'a [u8],
    header: Header,
    attributes: Vec<RawAttribute<'a>>,
}

impl<'a> Message<'a> {
    /// Parses one whole message; `buf` must hold exactly it.
    pub fn parse(buf: &'a [u8]) -> Result<Self, DecodeError> {
        let header = Header::decode(buf)?;
        let end = HEADER_LEN + header.length;
        if buf.len() < end {
            return Err(DecodeError::Truncated {
                needed: end,
                available: buf.len(),
            });
        }
        if buf.len() > end {
            return Err(DecodeError::LengthMismatch {
                declared: header.length,
                actual: buf.len() - HEADER_LEN,
            });
        }
        let mut attributes = Vec::new();
        let mut offset = HEADER_LEN;
        let mut after_integrity = false;
        let mut after_integrity_sha256 = false;
        let mut after_fingerprint = false;
        while offset < end {
            let Some(&[a, b, c, d]) = buf.get(offset..offset + 4).and_then(|s| s.first_chunk())
            else {
                return Err(DecodeError::Truncated {
                    needed: offset + 4,
                    available: end,
                });
            };
            let attr_type = u16::from_be_bytes([a, b]);
            let length = usize::from(u16::from_be_bytes([c, d]));
            let value_start = offset + 4;
            let padded_end = value_start + length.next_multiple_of(4);
            if padded_end > end {
                return Err(DecodeError::AttributeOverrun { attr_type, length });
            }
            if after_fingerprint {
                return Err(DecodeError::AttributeAfterFingerprint { attr_type });
            }
            let keep = match attr_type {
                t::FINGERPRINT => {
                    after_fingerprint = true;
                    true
                }
                t::MESSAGE_INTEGRITY_SHA256 => {
                    let keep = !after_integrity_sha256;
                    after_integrity_sha256 = true;
                    keep
                }
                t::MESSAGE_INTEGRITY => {
                    let keep = !after_integrity && !after_integrity_sha256;
                    after_integrity = true;
                    keep
                }
                _ => !after_integrity && !after_integrity_sha256,
            };
            if keep {
                if attributes.len() == MAX_ATTRIBUTES {
                    return Err(DecodeError::TooManyAttributes {
                        max: MAX_ATTRIBUTES,
                    });
                }
                attributes.push(RawAttribute {
                    attr_type,
                    value: &buf[value_start..value_start + length],
                    offset,
                });
            }
            offset = padded_end;
        }
        Ok(Self {
            raw: buf,
            header,
            attributes,
        })
    }

    /// The whole message as received.
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The decoded header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Method and class.
    pub fn message_type(&self) -> MessageType {
        self.header.message_type
    }

    /// The method.
    pub fn method(&self) -> Method {
        self.header.message_type.method
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.header.message_type.class
    }

    /// The transaction id.
    pub fn transaction_id(&self) -> &TransactionId {
        &self.header.transaction_id
    }

    /// Attributes in wire order (duplicates included).
    pub fn attributes(&self) -> &[RawAttribute<'a>] {
        &self.attributes
    }

    /// The first attribute of a type.
    pub fn get(&self, attr_type: u16) -> Option<RawAttribute<'a>> {
        self.attributes
            .iter()
            .find(|a| a.attr_type == attr_type)
            .copied()
    }

    /// Whether an attribute of this type is present.
    pub fn contains(&self, attr_type: u16) -> bool {
        self.get(attr_type).is_some()
    }

    /// Decodes the first attribute of a type.
    pub fn decode(&self, attr_type: u16) -> Result<Option<Attribute<'a>>, DecodeError> {
        self.get(attr_type)
            .map(|a| Attribute::decode(a.attr_type, a.value, &self.header.transaction_id))
            .transpose()
    }

    /// Decodes every attribute of a type, in order (CreatePermission may
    /// carry several XOR-PEER-ADDRESS).
    pub fn decode_all(&self, attr_type: u16) -> Result<Vec<Attribute<'a>>, DecodeError> {
        self.attributes
            .iter()
            .filter(|a| a.attr_type == attr_type)
            .map(|a| Attribute::decode(a.attr_type, a.value, &self.header.transaction_id))
            .collect()
    }

    /// Comprehension-required attribute types this codec does not
    /// understand, in order and without repeats.
    pub fn unknown_comprehension_required(&self) -> Vec<u16> {
        let mut types: Vec<u16> = Vec::new();
        for a in &self.attributes {
            if t::is_comprehension_required(a.attr_type)
                && !t::is_understood(a.attr_type)
                && !types.contains(&a.attr_type)
            {
                types.push(a.attr_type);
            }
        }
        types
    }

    /// `Err(UnknownComprehensionRequired)` when
    /// [`Self::unknown_comprehension_required`] is not empty.
    pub fn check_comprehension(&self) -> Result<(), DecodeError> {
        let types = self.unknown_comprehension_required();
        if types.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::UnknownComprehensionRequired { types })
        }
    }

    /// `None` without FINGERPRINT, else whether it matches.
    pub fn verify_fingerprint(&self) -> Option<bool> {
        let attr = self.get(t::FINGERPRINT)?;
        let [a, b, c, d] = *attr.value else {
            return Some(false);
        };
        let expected = integrity::fingerprint(&self.raw[..attr.offset])?;
        Some(expected == u32::from_be_bytes([a, b, c, d]))
    }

    /// Whether MESSAGE-INTEGRITY is present and matches `key` (constant-time).
    pub fn verify_integrity(&self, key: &[u8]) -> bool {
        let Some(attr) = self.get(t::MESSAGE_INTEGRITY) else {
            return false;
        };
        integrity::message_integrity(&self.raw[..attr.offset], key)
            .is_some_and(|mac| integrity::mac_eq(&mac, attr.value))
    }

    /// Whether MESSAGE-INTEGRITY-SHA256 is present and matches `key`.
    pub fn verify_integrity_sha256(&self, key: &[u8]) -> bool {
        let Some(attr) = self.get(t::MESSAGE_INTEGRITY_SHA256) else {
            return false;
        };
        integrity::message_integrity_sha256(&self.raw[..attr.offset], key, attr.value.len())
            .is_some_and(|mac| integrity::mac_eq(&mac, attr.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::MessageBuilder;

    fn request() -> Vec<u8> {
        let mut b = MessageBuilder::new(
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([1; 12]),
        );
        b.add(&Attribute::Software("a"));
        b.finish()
    }

    #[test]
    fn rejects_truncated_and_long_buffers() {
        let msg = request();
        for cut in 0..msg.len() {
            assert!(Message::parse(&msg[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = msg.clone();
        longer.extend_from_slice(&[0; 4]);
        assert!(matches!(
            Message::parse(&longer),
            Err(DecodeError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn rejects_bad_cookie_and_overrun() {
        let mut msg = request();
        msg[4] = 0;
        assert!(matches!(
            Message::parse(&msg),
            Err(DecodeError::BadMagicCookie { .. })
        ));
        let mut msg = request();
        msg[22..24].copy_from_slice(&100u16.to_be_bytes());
        assert!(matches!(
            Message::parse(&msg),
            Err(DecodeError::AttributeOverrun { .. })
        ));
    }

    #[test]
    fn first_duplicate_wins() {
        let mut b = MessageBuilder::new(
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([1; 12]),
        );
        b.add(&Attribute::Username("first"));
        b.add(&Attribute::Username("second"));
        let bytes = b.finish();
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(
            msg.decode(t::USERNAME).unwrap(),
            Some(Attribute::Username("first"))
        );
        assert_eq!(msg.attributes().len(), 2);
    }

    #[test]
    fn ignores_attributes_after_integrity_and_refuses_after_fingerprint() {
        let mut b = MessageBuilder::new(
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([1; 12]),
        );
        b.add_message_integrity(b"key");
        b.add(&Attribute::Username("late"));
        let bytes = b.finish();
        let msg = Message::parse(&bytes).unwrap();
        assert!(msg.get(t::USERNAME).is_none());

        let mut b = MessageBuilder::new(
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([1; 12]),
        );
        b.add_fingerprint();
        b.add(&Attribute::Username("late"));
        let bytes = b.finish();
        assert!(matches!(
            Message::parse(&bytes),
            Err(DecodeError::AttributeAfterFingerprint { .. })
        ));
    }

    #[test]
    fn reports_unknown_comprehension_required() {
        let mut b = MessageBuilder::new(
            MessageType::new(Method::ALLOCATE, Class::Request),
            TransactionId([1; 12]),
        );
        b.add(&Attribute::Other {
            attr_type: t::RESERVATION_TOKEN,
            value: &[0; 8],
        });
        b.add(&Attribute::Other {
            attr_type: 0x7777,
            value: &[],
        });
        b.add(&Attribute::Other {
            attr_type: 0xC001,
            value: &[],
        });
        b.add(&Attribute::Other {
            attr_type: 0x7777,
            value: &[],
        });
        let bytes = b.finish();
        let msg = Message::parse(&bytes).unwrap();
        assert_eq!(
            msg.check_comprehension(),
            Err(DecodeError::UnknownComprehensionRequired {
                types: vec![t::RESERVATION_TOKEN, 0x7777]
            })
        );
    }

    #[test]
    fn caps_attribute_count() {
        let mut b = MessageBuilder::new(
            MessageType::new(Method::BINDING, Class::Request),
            TransactionId([1; 12]),
        );
        for _ in 0..=MAX_ATTRIBUTES {
            b.add(&Attribute::DontFragment);
        }
        let bytes = b.finish();
        assert!(matches!(
            Message::parse(&bytes),
            Err(DecodeError::TooManyAttributes { .. })
        ));
    }
}
