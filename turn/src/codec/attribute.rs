//! Typed STUN/TURN attributes: decoding a raw value and encoding one.
//!
//! MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are decoded
//! here but written only by [`super::MessageBuilder`], which computes them.

use std::net::SocketAddr;

use super::address::{self, AddressFamily};
use super::attr_type as t;
use super::error::DecodeError;
use super::header::TransactionId;

/// Longest USERNAME value in bytes (RFC 8489 §14.3: less than 513).
pub const MAX_USERNAME_LEN: usize = 512;
/// Longest REALM, NONCE, SOFTWARE and reason phrase in bytes (RFC 8489: less
/// than 128 characters, which can be 763 bytes of UTF-8).
pub const MAX_TEXT_LEN: usize = 763;

/// One decoded attribute. Text values borrow from the message.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Attribute<'a> {
    /// MAPPED-ADDRESS (legacy, not XOR-ed).
    MappedAddress(SocketAddr),
    /// ALTERNATE-SERVER: the server a 300 (Try Alternate) sends the client
    /// to (encoded as MAPPED-ADDRESS).
    AlternateServer(SocketAddr),
    /// XOR-MAPPED-ADDRESS: the client's address as the server sees it.
    XorMappedAddress(SocketAddr),
    /// XOR-PEER-ADDRESS: a peer of an allocation.
    XorPeerAddress(SocketAddr),
    /// XOR-RELAYED-ADDRESS: the relayed transport address of an allocation.
    XorRelayedAddress(SocketAddr),
    /// USERNAME (UTF-8, at most 512 bytes).
    Username(&'a str),
    /// REALM.
    Realm(&'a str),
    /// NONCE.
    Nonce(&'a str),
    /// SOFTWARE.
    Software(&'a str),
    /// ERROR-CODE: a code in 300..=699 and a reason phrase.
    ErrorCode {
        /// The code, e.g. 401.
        code: u16,
        /// The reason phrase.
        reason: &'a str,
    },
    /// UNKNOWN-ATTRIBUTES: the types a server did not understand.
    UnknownAttributes(Vec<u16>),
    /// LIFETIME in seconds.
    Lifetime(u32),
    /// CHANNEL-NUMBER (any 16-bit value; range checks belong to the server).
    ChannelNumber(u16),
    /// DATA: the application payload of Send/Data indications.
    Data(&'a [u8]),
    /// REQUESTED-TRANSPORT: an IP protocol number (17 is UDP).
    RequestedTransport(u8),
    /// REQUESTED-ADDRESS-FAMILY.
    RequestedAddressFamily(AddressFamily),
    /// CONNECTION-ID: a TCP peer connection of an allocation (RFC 6062).
    ConnectionId(u32),
    /// DONT-FRAGMENT (no value).
    DontFragment,
    /// MESSAGE-INTEGRITY: a 20-byte HMAC-SHA1.
    MessageIntegrity(&'a [u8]),
    /// MESSAGE-INTEGRITY-SHA256: 16 to 32 bytes of HMAC-SHA256.
    MessageIntegritySha256(&'a [u8]),
    /// FINGERPRINT: CRC-32 XOR 0x5354554e.
    Fingerprint(u32),
    /// Any other attribute, kept raw.
    Other {
        /// Attribute type.
        attr_type: u16,
        /// Raw value, without padding.
        value: &'a [u8],
    },
}

impl<'a> Attribute<'a> {
    /// Decodes the value of an attribute of type `attr_type`. `tid` is the
    /// message's transaction id, needed by the XOR-* address attributes.
    pub fn decode(
        attr_type: u16,
        value: &'a [u8],
        tid: &TransactionId,
    ) -> Result<Self, DecodeError> {
        let len_is = |expected: usize| {
            if value.len() == expected {
                Ok(())
            } else {
                Err(DecodeError::BadAttributeLength {
                    attr_type,
                    length: value.len(),
                })
            }
        };
        Ok(match attr_type {
            t::MAPPED_ADDRESS => Attribute::MappedAddress(address::decode(attr_type, value, None)?),
            t::ALTERNATE_SERVER => {
                Attribute::AlternateServer(address::decode(attr_type, value, None)?)
            }
            t::XOR_MAPPED_ADDRESS => {
                Attribute::XorMappedAddress(address::decode(attr_type, value, Some(tid))?)
            }
            t::XOR_PEER_ADDRESS => {
                Attribute::XorPeerAddress(address::decode(attr_type, value, Some(tid))?)
            }
            t::XOR_RELAYED_ADDRESS => {
                Attribute::XorRelayedAddress(address::decode(attr_type, value, Some(tid))?)
            }
            t::USERNAME => Attribute::Username(text(attr_type, value, MAX_USERNAME_LEN)?),
            t::REALM => Attribute::Realm(text(attr_type, value, MAX_TEXT_LEN)?),
            t::NONCE => Attribute::Nonce(text(attr_type, value, MAX_TEXT_LEN)?),
            t::SOFTWARE => Attribute::Software(text(attr_type, value, MAX_TEXT_LEN)?),
            t::ERROR_CODE => decode_error_code(value)?,
            t::UNKNOWN_ATTRIBUTES => {
                if !value.len().is_multiple_of(2) {
                    return Err(DecodeError::BadAttributeLength {
                        attr_type,
                        length: value.len(),
                    });
                }
                Attribute::UnknownAttributes(
                    value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect(),
                )
            }
            t::LIFETIME => {
                len_is(4)?;
                Attribute::Lifetime(u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
            }
            t::CHANNEL_NUMBER => {
                len_is(4)?;
                Attribute::ChannelNumber(u16::from_be_bytes([value[0], value[1]]))
            }
            t::DATA => Attribute::Data(value),
            t::REQUESTED_TRANSPORT => {
                len_is(4)?;
                Attribute::RequestedTransport(value[0])
            }
            t::REQUESTED_ADDRESS_FAMILY => {
                len_is(4)?;
                let family =
                    AddressFamily::from_u8(value[0]).ok_or(DecodeError::BadAttributeValue {
                        attr_type,
                        reason: "unknown address family",
                    })?;
                Attribute::RequestedAddressFamily(family)
            }
            t::CONNECTION_ID => {
                len_is(4)?;
                Attribute::ConnectionId(u32::from_be_bytes([
                    value[0], value[1], value[2], value[3],
                ]))
            }
            t::DONT_FRAGMENT => {
                len_is(0)?;
                Attribute::DontFragment
            }
            t::MESSAGE_INTEGRITY => {
                len_is(20)?;
                Attribute::MessageIntegrity(value)
            }
            t::MESSAGE_INTEGRITY_SHA256 => {
                if value.len() < 16 || value.len() > 32 || !value.len().is_multiple_of(4) {
                    return Err(DecodeError::BadAttributeLength {
                        attr_type,
                        length: value.len(),
                    });
                }
                Attribute::MessageIntegritySha256(value)
            }
            t::FINGERPRINT => {
                len_is(4)?;
                Attribute::Fingerprint(u32::from_be_bytes([value[0], value[1], value[2], value[3]]))
            }
            _ => Attribute::Other { attr_type, value },
        })
    }

    /// The attribute's type number.
    pub fn attr_type(&self) -> u16 {
        match self {
            Attribute::MappedAddress(_) => t::MAPPED_ADDRESS,
            Attribute::AlternateServer(_) => t::ALTERNATE_SERVER,
            Attribute::XorMappedAddress(_) => t::XOR_MAPPED_ADDRESS,
            Attribute::XorPeerAddress(_) => t::XOR_PEER_ADDRESS,
            Attribute::XorRelayedAddress(_) => t::XOR_RELAYED_ADDRESS,
            Attribute::Username(_) => t::USERNAME,
            Attribute::Realm(_) => t::REALM,
            Attribute::Nonce(_) => t::NONCE,
            Attribute::Software(_) => t::SOFTWARE,
            Attribute::ErrorCode { .. } => t::ERROR_CODE,
            Attribute::UnknownAttributes(_) => t::UNKNOWN_ATTRIBUTES,
            Attribute::Lifetime(_) => t::LIFETIME,
            Attribute::ChannelNumber(_) => t::CHANNEL_NUMBER,
            Attribute::Data(_) => t::DATA,
            Attribute::RequestedTransport(_) => t::REQUESTED_TRANSPORT,
            Attribute::RequestedAddressFamily(_) => t::REQUESTED_ADDRESS_FAMILY,
            Attribute::ConnectionId(_) => t::CONNECTION_ID,
            Attribute::DontFragment => t::DONT_FRAGMENT,
            Attribute::MessageIntegrity(_) => t::MESSAGE_INTEGRITY,
            Attribute::MessageIntegritySha256(_) => t::MESSAGE_INTEGRITY_SHA256,
            Attribute::Fingerprint(_) => t::FINGERPRINT,
            Attribute::Other { attr_type, .. } => *attr_type,
        }
    }

    /// Length of the encoded value, without header and padding.
    pub fn value_len(&self) -> usize {
        match self {
            Attribute::MappedAddress(a)
            | Attribute::AlternateServer(a)
            | Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a)
            | Attribute::XorRelayedAddress(a) => address::encoded_len(a),
            Attribute::Username(s)
            | Attribute::Realm(s)
            | Attribute::Nonce(s)
            | Attribute::Software(s) => s.len(),
            Attribute::ErrorCode { reason, .. } => 4 + reason.len(),
            Attribute::UnknownAttributes(types) => 2 * types.len(),
            Attribute::Lifetime(_)
            | Attribute::ChannelNumber(_)
            | Attribute::RequestedTransport(_)
            | Attribute::RequestedAddressFamily(_)
            | Attribute::ConnectionId(_)
            | Attribute::Fingerprint(_) => 4,
            Attribute::DontFragment => 0,
            Attribute::Data(v)
            | Attribute::MessageIntegrity(v)
            | Attribute::MessageIntegritySha256(v)
            | Attribute::Other { value: v, .. } => v.len(),
        }
    }

    /// Appends the value (no header, no padding) to `out`.
    pub(crate) fn encode_value(&self, tid: &TransactionId, out: &mut Vec<u8>) {
        match self {
            Attribute::MappedAddress(a) | Attribute::AlternateServer(a) => {
                address::encode(a, None, out)
            }
            Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a)
            | Attribute::XorRelayedAddress(a) => address::encode(a, Some(tid), out),
            Attribute::Username(s)
            | Attribute::Realm(s)
            | Attribute::Nonce(s)
            | Attribute::Software(s) => out.extend_from_slice(s.as_bytes()),
            Attribute::ErrorCode { code, reason } => {
                let class = (code / 100) as u8;
                let number = (code % 100) as u8;
                out.extend_from_slice(&[0, 0, class & 0x07, number]);
                out.extend_from_slice(reason.as_bytes());
            }
            Attribute::UnknownAttributes(types) => {
                for ty in types {
                    out.extend_from_slice(&ty.to_be_bytes());
                }
            }
            Attribute::Lifetime(secs) => out.extend_from_slice(&secs.to_be_bytes()),
            Attribute::ChannelNumber(n) => {
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
            Attribute::RequestedTransport(proto) => out.extend_from_slice(&[*proto, 0, 0, 0]),
            Attribute::RequestedAddressFamily(f) => out.extend_from_slice(&[f.to_u8(), 0, 0, 0]),
            Attribute::DontFragment => {}
            Attribute::ConnectionId(id) => out.extend_from_slice(&id.to_be_bytes()),
            Attribute::Fingerprint(v) => out.extend_from_slice(&v.to_be_bytes()),
            Attribute::Data(v)
            | Attribute::MessageIntegrity(v)
            | Attribute::MessageIntegritySha256(v)
            | Attribute::Other { value: v, .. } => out.extend_from_slice(v),
        }
    }
}

fn text(attr_type: u16, value: &[u8], max: usize) -> Result<&str, DecodeError> {
    if value.len() > max {
        return Err(DecodeError::BadAttributeLength {
            attr_type,
            length: value.len(),
        });
    }
    std::str::from_utf8(value).map_err(|_| DecodeError::BadAttributeValue {
        attr_type,
        reason: "not UTF-8",
    })
}

fn decode_error_code(value: &[u8]) -> Result<Attribute<'_>, DecodeError> {
    let [_, _, class, number, reason @ ..] = value else {
        return Err(DecodeError::BadAttributeLength {
            attr_type: t::ERROR_CODE,
            length: value.len(),
        });
    };
    let class = u16::from(class & 0x07);
    let number = u16::from(*number);
    if !(3..=6).contains(&class) || number > 99 {
        return Err(DecodeError::BadAttributeValue {
            attr_type: t::ERROR_CODE,
            reason: "code outside 300..=699",
        });
    }
    Ok(Attribute::ErrorCode {
        code: class * 100 + number,
        reason: text(t::ERROR_CODE, reason, MAX_TEXT_LEN)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(attr: Attribute<'_>) {
        let tid = TransactionId([3; 12]);
        let mut out = Vec::new();
        attr.encode_value(&tid, &mut out);
        assert_eq!(out.len(), attr.value_len(), "{attr:?}");
        assert_eq!(
            Attribute::decode(attr.attr_type(), &out, &tid).unwrap(),
            attr
        );
    }

    #[test]
    fn typed_attributes_round_trip() {
        let v4: SocketAddr = "203.0.113.9:4000".parse().unwrap();
        let v6: SocketAddr = "[2001:db8::1]:5000".parse().unwrap();
        round_trip(Attribute::MappedAddress(v4));
        round_trip(Attribute::XorMappedAddress(v6));
        round_trip(Attribute::XorPeerAddress(v4));
        round_trip(Attribute::XorRelayedAddress(v6));
        round_trip(Attribute::Username("alice"));
        round_trip(Attribute::Realm("samtale"));
        round_trip(Attribute::Nonce("abc"));
        round_trip(Attribute::Software("samtale-turn"));
        round_trip(Attribute::ErrorCode {
            code: 420,
            reason: "Unknown Attribute",
        });
        round_trip(Attribute::ErrorCode {
            code: 508,
            reason: "",
        });
        round_trip(Attribute::UnknownAttributes(vec![0x0018, 0x0022]));
        round_trip(Attribute::Lifetime(600));
        round_trip(Attribute::ChannelNumber(0x4001));
        round_trip(Attribute::Data(b"hello"));
        round_trip(Attribute::RequestedTransport(17));
        round_trip(Attribute::ConnectionId(0xDEAD_BEEF));
        round_trip(Attribute::AlternateServer(
            "192.0.2.5:3478".parse().unwrap(),
        ));
        round_trip(Attribute::AlternateServer(
            "[2001:db8::5]:3478".parse().unwrap(),
        ));
        round_trip(Attribute::RequestedAddressFamily(AddressFamily::V6));
        round_trip(Attribute::DontFragment);
        round_trip(Attribute::Fingerprint(0xdead_beef));
        round_trip(Attribute::Other {
            attr_type: 0x8055,
            value: b"x",
        });
    }

    #[test]
    fn rejects_malformed_values() {
        let tid = TransactionId([0; 12]);
        assert!(Attribute::decode(t::LIFETIME, &[0, 0, 1], &tid).is_err());
        assert!(Attribute::decode(t::USERNAME, &[0xff, 0xfe], &tid).is_err());
        assert!(Attribute::decode(t::USERNAME, &[b'a'; 513], &tid).is_err());
        assert!(Attribute::decode(t::ERROR_CODE, &[0, 0, 7, 0], &tid).is_err());
        assert!(Attribute::decode(t::ERROR_CODE, &[0, 0, 4], &tid).is_err());
        assert!(Attribute::decode(t::MESSAGE_INTEGRITY, &[0; 19], &tid).is_err());
        assert!(Attribute::decode(t::DONT_FRAGMENT, &[0; 4], &tid).is_err());
        assert!(Attribute::decode(t::REQUESTED_ADDRESS_FAMILY, &[3, 0, 0, 0], &tid).is_err());
        assert!(Attribute::decode(t::UNKNOWN_ATTRIBUTES, &[0, 1, 0], &tid).is_err());
    }
}
