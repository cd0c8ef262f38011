//! An IP network in CIDR notation ("10.1.0.0/16", "fd00::/8"; a bare
//! address is a /32 or /128), for the operator's allow-list.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use thiserror::Error;

/// Why a CIDR string was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The address part is not an IPv4 or IPv6 address.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// The prefix length is not a number or is longer than the address.
    #[error("bad prefix length {0:?}")]
    BadPrefix(String),
}

/// An address and a prefix length. Host bits are cleared when parsing, so
/// "10.1.2.3/16" is 10.1.0.0/16.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// A network from an address and prefix; `None` when the prefix is too
    /// long for the family.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let max = max_prefix(&addr);
        (prefix <= max).then(|| Self {
            addr: mask(addr, prefix),
            prefix,
        })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is inside (same family only).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(_), IpAddr::V4(_)) | (IpAddr::V6(_), IpAddr::V6(_)) => {
                mask(ip, self.prefix) == self.addr
            }
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = CidrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::BadAddress(addr.to_owned()))?;
        let prefix = match prefix {
            None => max_prefix(&addr),
            Some(p) => p
                .parse::<u8>()
                .map_err(|_| CidrError::BadPrefix(p.to_owned()))?,
        };
        IpNet::new(addr, prefix).ok_or_else(|| CidrError::BadPrefix(prefix.to_string()))
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn max_prefix(addr: &IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => 32,
        IpAddr::V6(_) => 128,
    }
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(ip) => {
            let bits = u32::from(ip);
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(ip) => {
            let bits = u128::from(ip);
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6((bits & m).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_addresses_and_ranges() {
        let one: IpNet = "10.0.0.5".parse().unwrap();
        assert_eq!(one.to_string(), "10.0.0.5/32");
        assert!(one.contains("10.0.0.5".parse().unwrap()));
        assert!(!one.contains("10.0.0.6".parse().unwrap()));

        let range: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(range.contains("10.1.255.3".parse().unwrap()));
        assert!(!range.contains("10.2.0.1".parse().unwrap()));
        assert!(!range.contains("::ffff:10.1.0.1".parse().unwrap()));

        let ula: IpNet = "fd00::/8".parse().unwrap();
        assert!(ula.contains("fd12:3456::1".parse().unwrap()));
        assert!(!ula.contains("fc00::1".parse().unwrap()));

        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert_eq!(
            "10.1.2.3/16".parse::<IpNet>().unwrap().to_string(),
            "10.1.0.0/16"
        );
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "",
            "10.0.0",
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0.0/x",
            "host/8",
            "10.0.0.0/-1",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
    }
}
