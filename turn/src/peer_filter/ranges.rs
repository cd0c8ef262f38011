//! The deny-list: address ranges a TURN server must not relay to, and the
//! IPv6 forms that carry an IPv4 address inside (RFC 6890 special-purpose
//! registries, RFC 8656 §21 "Security Considerations").

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DenyReason {
    /// 0.0.0.0/8 ("this network") or ::.
    Unspecified,
    /// 127.0.0.0/8 or ::1.
    Loopback,
    /// RFC 1918 (10/8, 172.16/12, 192.168/16).
    Private,
    /// Unique local IPv6, fc00::/7.
    UniqueLocal,
    /// Shared address space for carrier-grade NAT, 100.64.0.0/10.
    SharedCgnat,
    /// 169.254.0.0/16 (cloud metadata lives at 169.254.169.254) or fe80::/10.
    LinkLocal,
    /// 224.0.0.0/4 or ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20.
    Documentation,
    /// 198.18.0.0/15 or 2001:2::/48.
    Benchmarking,
    /// Reserved or special-purpose space: 240/4, 192.0.0/24, 192.88.99/24,
    /// deprecated IPv4-compatible ::/96, site-local fec0::/10, discard
    /// 100::/64, 2001::/23 outside Teredo, local-use NAT64 64:ff9b:1::/48,
    /// and everything outside global unicast 2000::/3.
    Reserved,
}

/// The IPv6 form an IPv4 address was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Ipv4Embedding {
    /// ::ffff:a.b.c.d.
    Mapped,
    /// ::a.b.c.d (deprecated).
    Compatible,
    /// 2002:AABB:CCDD::/48 (6to4, bits 16..48).
    SixToFour,
    /// 2001:0::/32 (Teredo, client address = last 32 bits XOR 0xffffffff).
    Teredo,
    /// 64:ff9b::/96 (NAT64 well-known prefix, last 32 bits).
    Nat64,
}

/// A refusal: the reason, and the IPv6 form when an embedded IPv4 address
/// was the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Denied {
    /// Why.
    pub reason: DenyReason,
    /// Set when the reason applies to an IPv4 address inside an IPv6 one.
    pub via: Option<Ipv4Embedding>,
}

/// `Some` when `ip` must not be relayed to (ignoring any allow-list).
pub fn deny_reason(ip: IpAddr) -> Option<Denied> {
    match ip {
        IpAddr::V4(v4) => deny_v4(v4).map(|reason| Denied { reason, via: None }),
        IpAddr::V6(v6) => deny_v6(v6),
    }
}

/// The IPv4 address inside an IPv6 one, and the form it was found in.
pub fn embedded_ipv4(ip: Ipv6Addr) -> Option<(Ipv4Embedding, Ipv4Addr)> {
    let bits = u128::from(ip);
    let low32 = Ipv4Addr::from(bits as u32);
    let seg = ip.segments();
    if bits >> 32 == 0xffff {
        Some((Ipv4Embedding::Mapped, low32))
    } else if bits >> 32 == 0 && bits > 1 {
        Some((Ipv4Embedding::Compatible, low32))
    } else if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        Some((Ipv4Embedding::Nat64, low32))
    } else if seg[0] == 0x2002 {
        Some((
            Ipv4Embedding::SixToFour,
            Ipv4Addr::from((bits >> 80) as u32),
        ))
    } else if seg[0] == 0x2001 && seg[1] == 0 {
        Some((Ipv4Embedding::Teredo, Ipv4Addr::from(!(bits as u32))))
    } else {
        None
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from_be_bytes(net) & mask
}

fn deny_v4(ip: Ipv4Addr) -> Option<DenyReason> {
    use DenyReason::*;
    const TABLE: &[([u8; 4], u32, DenyReason)] = &[
        ([0, 0, 0, 0], 8, Unspecified),
        ([127, 0, 0, 0], 8, Loopback),
        ([10, 0, 0, 0], 8, Private),
        ([172, 16, 0, 0], 12, Private),
        ([192, 168, 0, 0], 16, Private),
        ([100, 64, 0, 0], 10, SharedCgnat),
        ([169, 254, 0, 0], 16, LinkLocal),
        ([192, 0, 0, 0], 24, Reserved),
        ([192, 0, 2, 0], 24, Documentation),
        ([198, 51, 100, 0], 24, Documentation),
        ([203, 0, 113, 0], 24, Documentation),
        ([192, 88, 99, 0], 24, Reserved),
        ([198, 18, 0, 0], 15, Benchmarking),
        ([224, 0, 0, 0], 4, Multicast),
        ([255, 255, 255, 255], 32, Broadcast),
        ([240, 0, 0, 0], 4, Reserved),
    ];
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, reason)| *reason)
}

fn in_v6(ip: Ipv6Addr, net: u128, prefix: u32) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(ip) & mask == net & mask
}

fn deny_v6(ip: Ipv6Addr) -> Option<Denied> {
    use DenyReason::*;
    let plain = |reason| Some(Denied { reason, via: None });
    if ip.is_unspecified() {
        return plain(Unspecified);
    }
    if ip.is_loopback() {
        return plain(Loopback);
    }
    if let Some((via, v4)) = embedded_ipv4(ip) {
        let inner = deny_v4(v4);
        return match (via, inner) {
            (_, Some(reason)) => Some(Denied {
                reason,
                via: Some(via),
            }),
            // Nothing routes the deprecated form; refuse it outright.
            (Ipv4Embedding::Compatible, None) => plain(Reserved),
            (_, None) => None,
        };
    }
    const TABLE: &[(u128, u32, DenyReason)] = &[
        (0x0064_ff9b_0001 << 80, 48, Reserved),
        (0x0100 << 112, 64, Reserved),
        (0x2001_0db8 << 96, 32, Documentation),
        (0x2001_0002 << 96, 48, Benchmarking),
        (0x2001 << 112, 23, Reserved),
        (0x3fff << 112, 20, Documentation),
        (0xfc00 << 112, 7, UniqueLocal),
        (0xfe80 << 112, 10, LinkLocal),
        (0xfec0 << 112, 10, Reserved),
        (0xff00 << 112, 8, Multicast),
    ];
    if let Some((_, _, reason)) = TABLE
        .iter()
        .find(|(net, prefix, _)| in_v6(ip, *net, *prefix))
    {
        return plain(*reason);
    }
    if !in_v6(ip, 0x2000 << 112, 3) {
        return plain(Reserved);
    }
    None
}
