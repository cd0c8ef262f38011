//! (XOR-)MAPPED-ADDRESS style values: family, port and address, optionally
//! XOR-ed with the magic cookie and transaction id (RFC 8489 §14.1–14.2).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::error::DecodeError;
use super::header::{MAGIC_COOKIE, TransactionId};

/// An IP address family as STUN encodes it (0x01 IPv4, 0x02 IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressFamily {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl AddressFamily {
    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            AddressFamily::V4 => 0x01,
            AddressFamily::V6 => 0x02,
        }
    }

    /// From the wire value; `None` for anything but 0x01 and 0x02.
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0x01 => Some(AddressFamily::V4),
            0x02 => Some(AddressFamily::V6),
            _ => None,
        }
    }

    /// The family of an address.
    pub const fn of(ip: &IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => AddressFamily::V4,
            IpAddr::V6(_) => AddressFamily::V6,
        }
    }
}

/// Decodes an address value; `xor` is `Some(tid)` for the XOR-* attributes.
pub(crate) fn decode(
    attr_type: u16,
    value: &[u8],
    xor: Option<&TransactionId>,
) -> Result<SocketAddr, DecodeError> {
    let bad_len = || DecodeError::BadAttributeLength {
        attr_type,
        length: value.len(),
    };
    let [_, family, p0, p1, rest @ ..] = value else {
        return Err(bad_len());
    };
    let mut port = u16::from_be_bytes([*p0, *p1]);
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    let mask = xor_mask(xor);
    match AddressFamily::from_u8(*family) {
        Some(AddressFamily::V4) => {
            let bytes: [u8; 4] = rest.try_into().map_err(|_| bad_len())?;
            let mut octets = bytes;
            if xor.is_some() {
                for (o, m) in octets.iter_mut().zip(mask.iter()) {
                    *o ^= m;
                }
            }
            Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(octets)), port))
        }
        Some(AddressFamily::V6) => {
            let bytes: [u8; 16] = rest.try_into().map_err(|_| bad_len())?;
            let mut octets = bytes;
            if xor.is_some() {
                for (o, m) in octets.iter_mut().zip(mask.iter()) {
                    *o ^= m;
                }
            }
            Ok(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(octets)), port))
        }
        None => Err(DecodeError::BadAttributeValue {
            attr_type,
            reason: "unknown address family",
        }),
    }
}

/// Appends an address value (without attribute header) to `out`.
pub(crate) fn encode(addr: &SocketAddr, xor: Option<&TransactionId>, out: &mut Vec<u8>) {
    let mut port = addr.port();
    if xor.is_some() {
        port ^= (MAGIC_COOKIE >> 16) as u16;
    }
    out.push(0);
    out.push(AddressFamily::of(&addr.ip()).to_u8());
    out.extend_from_slice(&port.to_be_bytes());
    let mask = xor_mask(xor);
    let apply = |octets: &[u8], out: &mut Vec<u8>| {
        for (i, o) in octets.iter().enumerate() {
            let m = if xor.is_some() { mask[i] } else { 0 };
            out.push(o ^ m);
        }
    };
    match addr.ip() {
        IpAddr::V4(ip) => apply(&ip.octets(), out),
        IpAddr::V6(ip) => apply(&ip.octets(), out),
    }
}

/// Encoded length of an address value.
pub(crate) const fn encoded_len(addr: &SocketAddr) -> usize {
    match addr {
        SocketAddr::V4(_) => 8,
        SocketAddr::V6(_) => 20,
    }
}

/// Magic cookie followed by the transaction id: the XOR mask for addresses.
fn xor_mask(xor: Option<&TransactionId>) -> [u8; 16] {
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    if let Some(tid) = xor {
        mask[4..].copy_from_slice(&tid.0);
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_round_trip_both_families() {
        let tid = TransactionId([7; 12]);
        for addr in [
            "192.0.2.1:32853",
            "[2001:db8:1234:5678:11:2233:4455:6677]:32853",
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            for xor in [None, Some(&tid)] {
                let mut out = Vec::new();
                encode(&addr, xor, &mut out);
                assert_eq!(out.len(), encoded_len(&addr));
                assert_eq!(decode(0x0020, &out, xor).unwrap(), addr);
            }
        }
    }

    #[test]
    fn rejects_bad_family_and_lengths() {
        assert!(decode(0x0020, &[0, 3, 0, 0, 1, 2, 3, 4], None).is_err());
        assert!(decode(0x0020, &[0, 1, 0, 0, 1, 2, 3], None).is_err());
        assert!(decode(0x0020, &[0, 2, 0, 0, 1, 2, 3, 4], None).is_err());
        assert!(decode(0x0020, &[], None).is_err());
    }
}
