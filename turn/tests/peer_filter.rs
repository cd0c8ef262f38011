//! Table-driven: every denied range, in every IPv6 disguise, is refused;
//! public addresses pass; the allow-list overrides the deny-list.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::{IpAddr, Ipv4Addr};

mod common;

use common::deny_table::{DENIED_V4, DENIED_V6, PUBLIC_V4, PUBLIC_V6, disguises};
use samtale_turn::peer_filter::{DenyReason, Ipv4Embedding, PeerFilter, deny_reason};

#[test]
fn denied_ipv4_ranges_are_refused_in_every_encoding() {
    let filter = PeerFilter::default();
    for (addr, reason) in DENIED_V4 {
        let v4: Ipv4Addr = addr.parse().unwrap();
        let denied = filter.check(IpAddr::V4(v4)).unwrap_err();
        assert_eq!(denied.reason, *reason, "{addr}");
        assert_eq!(denied.via, None);
        for (form, v6) in disguises(v4) {
            let denied = filter
                .check(IpAddr::V6(v6))
                .expect_err(&format!("{addr} as {form:?} ({v6}) must be refused"));
            if v6.is_unspecified() {
                // 0.0.0.0 as IPv4-compatible is "::" itself.
                assert_eq!(denied.reason, DenyReason::Unspecified);
                continue;
            }
            assert_eq!(denied.reason, *reason, "{addr} as {form:?} ({v6})");
            assert_eq!(denied.via, Some(form), "{v6}");
        }
    }
}

#[test]
fn denied_ipv6_ranges_are_refused() {
    let filter = PeerFilter::default();
    for (addr, reason) in DENIED_V6 {
        let ip: IpAddr = addr.parse().unwrap();
        assert_eq!(
            filter.check(ip).map_err(|d| d.reason),
            Err(*reason),
            "{addr}"
        );
    }
}

#[test]
fn public_addresses_pass_in_routable_encodings() {
    let filter = PeerFilter::default();
    for addr in PUBLIC_V4 {
        let v4: Ipv4Addr = addr.parse().unwrap();
        assert_eq!(filter.check(IpAddr::V4(v4)), Ok(()), "{addr}");
        for (form, v6) in disguises(v4) {
            let result = filter.check(IpAddr::V6(v6));
            if form == Ipv4Embedding::Compatible {
                // The deprecated form routes nowhere: always refused.
                assert_eq!(result.map_err(|d| d.reason), Err(DenyReason::Reserved));
            } else {
                assert_eq!(result, Ok(()), "{addr} as {form:?} ({v6})");
            }
        }
    }
    for addr in PUBLIC_V6 {
        assert_eq!(filter.check(addr.parse().unwrap()), Ok(()), "{addr}");
    }
}

#[test]
fn allow_list_overrides_the_deny_list() {
    let allow = PeerFilter::parse_allow_list(&["10.0.0.5", "10.1.0.0/16", "fd00::/8"]).unwrap();
    let filter = PeerFilter::new(allow);
    for ok in [
        "10.0.0.5",
        "::ffff:10.0.0.5",
        "10.1.0.1",
        "10.1.255.254",
        "fd00::1",
        "fdff::1",
    ] {
        assert_eq!(filter.check(ok.parse().unwrap()), Ok(()), "{ok}");
    }
    for refused in [
        "10.0.0.6",
        "10.2.0.1",
        "127.0.0.1",
        "fc00::1",
        "169.254.169.254",
    ] {
        assert!(filter.check(refused.parse().unwrap()).is_err(), "{refused}");
    }
    // An allowed IPv4 address hidden in a gateway form is still refused: the
    // packet would go to someone else's 6to4/Teredo/NAT64 gateway.
    for (form, v6) in disguises("10.0.0.5".parse().unwrap()) {
        if form != Ipv4Embedding::Mapped {
            assert!(filter.check(IpAddr::V6(v6)).is_err(), "{form:?} {v6}");
        }
    }
}

#[test]
fn deny_reason_is_pure() {
    assert_eq!(deny_reason("8.8.8.8".parse().unwrap()), None);
    assert!(deny_reason("127.0.0.1".parse().unwrap()).is_some());
}

#[test]
fn exact_exceptions_allow_one_port_only() {
    let sfu: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let filter = PeerFilter::new(Vec::new()).with_exact(vec![sfu]);
    // The IP may get a permission (permissions are per IP) …
    assert_eq!(filter.check("127.0.0.1".parse().unwrap()), Ok(()));
    // … but only the listed port is relayed.
    assert_eq!(filter.check_addr(sfu), Ok(()));
    assert!(
        filter
            .check_addr("127.0.0.1:8080".parse().unwrap())
            .is_err()
    );
    assert!(
        filter
            .check_addr("127.0.0.2:5000".parse().unwrap())
            .is_err()
    );
    assert!(filter.check("127.0.0.2".parse().unwrap()).is_err());
    // Public peers are unaffected.
    assert_eq!(
        filter.check_addr("193.0.14.129:3478".parse().unwrap()),
        Ok(())
    );
}
