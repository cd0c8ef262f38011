//! The deny-list table shared by the pure filter test and the protocol
//! test: one sample of every denied range, public addresses, and every IPv6
//! disguise of an IPv4 address.

use std::net::{Ipv4Addr, Ipv6Addr};

use samtale_turn::peer_filter::{DenyReason, Ipv4Embedding};

/// One sample (first, last or notable address) of every denied IPv4 range.
pub const DENIED_V4: &[(&str, DenyReason)] = &[
    ("0.0.0.0", DenyReason::Unspecified),
    ("0.255.255.255", DenyReason::Unspecified),
    ("127.0.0.1", DenyReason::Loopback),
    ("127.255.255.254", DenyReason::Loopback),
    ("10.0.0.1", DenyReason::Private),
    ("10.255.255.255", DenyReason::Private),
    ("172.16.0.1", DenyReason::Private),
    ("172.31.255.254", DenyReason::Private),
    ("192.168.1.1", DenyReason::Private),
    ("100.64.0.1", DenyReason::SharedCgnat),
    ("100.127.255.254", DenyReason::SharedCgnat),
    ("169.254.169.254", DenyReason::LinkLocal),
    ("169.254.0.1", DenyReason::LinkLocal),
    ("224.0.0.1", DenyReason::Multicast),
    ("239.255.255.250", DenyReason::Multicast),
    ("255.255.255.255", DenyReason::Broadcast),
    ("240.0.0.1", DenyReason::Reserved),
    ("192.0.0.9", DenyReason::Reserved),
    ("192.88.99.1", DenyReason::Reserved),
    ("192.0.2.1", DenyReason::Documentation),
    ("198.51.100.7", DenyReason::Documentation),
    ("203.0.113.200", DenyReason::Documentation),
    ("198.18.0.1", DenyReason::Benchmarking),
    ("198.19.255.254", DenyReason::Benchmarking),
];

/// Public IPv4 addresses just outside the denied ranges.
pub const PUBLIC_V4: &[&str] = &[
    "1.1.1.1",
    "8.8.8.8",
    "9.255.255.255",
    "11.0.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "100.63.255.255",
    "100.128.0.1",
    "169.253.0.1",
    "198.17.255.255",
    "198.20.0.1",
    "223.255.255.254",
    "192.0.3.1",
];

/// Denied native IPv6 addresses.
pub const DENIED_V6: &[(&str, DenyReason)] = &[
    ("::", DenyReason::Unspecified),
    ("::1", DenyReason::Loopback),
    ("fc00::1", DenyReason::UniqueLocal),
    ("fd12:3456::1", DenyReason::UniqueLocal),
    ("fe80::1", DenyReason::LinkLocal),
    ("febf::1", DenyReason::LinkLocal),
    ("fec0::1", DenyReason::Reserved),
    ("ff02::1", DenyReason::Multicast),
    ("ff0e::1", DenyReason::Multicast),
    ("2001:db8::1", DenyReason::Documentation),
    ("2001:db8:ffff::1", DenyReason::Documentation),
    ("3fff::1", DenyReason::Documentation),
    ("2001:2::1", DenyReason::Benchmarking),
    ("2001:10::1", DenyReason::Reserved),
    ("2001:1ff::1", DenyReason::Reserved),
    ("100::1", DenyReason::Reserved),
    ("64:ff9b:1::1", DenyReason::Reserved),
    ("4000::1", DenyReason::Reserved),
    ("1000::1", DenyReason::Reserved),
];

/// Public IPv6 addresses.
pub const PUBLIC_V6: &[&str] = &["2a00:1450:4001::1", "2606:4700::1111", "2001:200::1"];

/// Every IPv6 form that carries `v4`.
pub fn disguises(v4: Ipv4Addr) -> Vec<(Ipv4Embedding, Ipv6Addr)> {
    let bits = u32::from(v4);
    vec![
        (Ipv4Embedding::Mapped, v4.to_ipv6_mapped()),
        (Ipv4Embedding::Compatible, Ipv6Addr::from(u128::from(bits))),
        (
            Ipv4Embedding::SixToFour,
            Ipv6Addr::from((0x2002u128 << 112) | (u128::from(bits) << 80) | 1),
        ),
        (
            Ipv4Embedding::Teredo,
            // Teredo server 65.54.227.120 (bits 32..64), client port bits, client XOR-ed.
            Ipv6Addr::from(
                (0x2001_0000u128 << 96)
                    | (0x4136_e378u128 << 64)
                    | (0x8000_63bfu128 << 32)
                    | u128::from(!bits),
            ),
        ),
        (
            Ipv4Embedding::Nat64,
            Ipv6Addr::from((0x0064_ff9bu128 << 96) | u128::from(bits)),
        ),
    ]
}
