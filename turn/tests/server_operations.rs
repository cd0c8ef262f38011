//! Operations on a live core: draining for shutdown, reloading the
//! configuration, and exact peer-address exceptions.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::SocketAddr;

use common::*;
use samtale_turn::config::TurnConfig;
use samtale_turn::server::Destination;

fn peer() -> SocketAddr {
    "8.8.4.4:9".parse().unwrap()
}

#[test]
fn draining_refuses_new_allocations_and_keeps_existing_ones() {
    let (mut server, t0) = server();
    let mut old = Client::alice("203.0.113.1:1");
    old.allocate_ok(&mut server, t0);
    assert!(old.permit(&mut server, t0, &[peer()]).is_success());
    server.set_draining(true);
    let mut late = Client::alice("203.0.113.2:1");
    assert_eq!(late.allocate(&mut server, t0).error_code(), Some(508));
    // The old allocation still relays and refreshes.
    let out = feed(
        &mut server,
        t0,
        old.tuple,
        &old.send_indication(peer(), b"hi"),
    )
    .unwrap();
    assert!(matches!(out.destination, Destination::Peer { .. }));
    assert!(
        old.refresh(&mut server, t0 + secs(60), Some(600))
            .is_success()
    );
}

#[test]
fn reconfiguring_keeps_allocations_and_applies_new_rules() {
    let (mut server, t0) = server();
    let mut alice = Client::alice("203.0.113.1:1");
    alice.allocate_ok(&mut server, t0);
    assert!(alice.permit(&mut server, t0, &[peer()]).is_success());
    let stricter = TurnConfig {
        max_permissions_per_allocation: 1,
        ..config()
    };
    server.reconfigure(stricter).unwrap();
    assert_eq!(server.stats(t0).allocations, 1);
    let out = feed(
        &mut server,
        t0,
        alice.tuple,
        &alice.send_indication(peer(), b"still here"),
    )
    .unwrap();
    assert!(matches!(out.destination, Destination::Peer { .. }));
    // The new quota holds for new permissions.
    let other: SocketAddr = "8.8.8.8:9".parse().unwrap();
    assert_eq!(
        alice.permit(&mut server, t0, &[other]).error_code(),
        Some(508)
    );
    // An invalid configuration is refused and changes nothing.
    assert!(
        server
            .reconfigure(TurnConfig {
                realm: String::new(),
                ..config()
            })
            .is_err()
    );
    assert_eq!(server.stats(t0).allocations, 1);
}

#[test]
fn an_exact_peer_exception_opens_one_port_only() {
    let sfu: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let config = TurnConfig {
        allowed_peer_addrs: vec![sfu],
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut alice = Client::alice("203.0.113.1:1");
    let relay = alice.allocate_ok(&mut server, t0);
    assert!(alice.permit(&mut server, t0, &[sfu]).is_success());
    assert!(alice.bind(&mut server, t0, 0x4000, sfu).is_success());
    let signaling: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    assert_eq!(
        alice.bind(&mut server, t0, 0x4001, signaling).error_code(),
        Some(403)
    );
    // Send indications to another loopback port go nowhere …
    assert!(
        feed(
            &mut server,
            t0,
            alice.tuple,
            &alice.send_indication(signaling, b"GET /")
        )
        .is_none()
    );
    // … and nothing from it comes back, while the SFU's packets do.
    assert!(feed_peer(&mut server, t0, relay, signaling, b"HTTP/1.1 200").is_none());
    assert!(feed_peer(&mut server, t0, relay, sfu, b"rtp").is_some());
}

#[test]
fn the_bandwidth_cap_drops_what_exceeds_it() {
    let config = TurnConfig {
        max_bandwidth_per_allocation: 10_000,
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut alice = Client::alice("203.0.113.1:1");
    alice.allocate_ok(&mut server, t0);
    assert!(alice.permit(&mut server, t0, &[peer()]).is_success());
    let packet = alice.send_indication(peer(), &[0u8; 1000]);
    // 10 kB/s with a one-second burst: ten 1000-byte packets pass, the 11th not.
    let passed = (0..11)
        .filter(|_| feed(&mut server, t0, alice.tuple, &packet).is_some())
        .count();
    assert_eq!(passed, 10);
    assert_eq!(server.stats(t0).rate_limited, 1);
    // Half a second later there is room for five more.
    let later = t0 + std::time::Duration::from_millis(500);
    let passed = (0..6)
        .filter(|_| feed(&mut server, later, alice.tuple, &packet).is_some())
        .count();
    assert_eq!(passed, 5);
}

fn alternate(resp: &Response) -> Option<SocketAddr> {
    match resp
        .msg()
        .decode(samtale_turn::codec::attr_type::ALTERNATE_SERVER)
        .unwrap()?
    {
        samtale_turn::codec::Attribute::AlternateServer(a) => Some(a),
        _ => None,
    }
}

fn with_alternates() -> TurnConfig {
    TurnConfig {
        alternate_servers: vec![
            "198.51.100.1:3478".parse().unwrap(),
            "[2001:db8::1]:3478".parse().unwrap(),
            "198.51.100.2:3478".parse().unwrap(),
            // This node itself: never offered.
            LISTENER.parse().unwrap(),
        ],
        ..config()
    }
}

/// A draining node sends new allocations to alternates of the client's
/// family (300, authenticated), spread over them by transaction id, the
/// same one for a retransmission; never to itself; 508 where it has none
/// to offer.
#[test]
fn a_draining_node_sends_new_allocations_to_its_alternates() {
    let (mut server, t0) = server_with(with_alternates());
    server.set_draining(true);
    let v4: Vec<SocketAddr> = ["198.51.100.1:3478", "198.51.100.2:3478"]
        .iter()
        .map(|a| a.parse().unwrap())
        .collect();
    let mut seen = std::collections::HashSet::new();
    for port in 1..=40 {
        let mut c = Client::alice(&format!("203.0.113.1:{port}"));
        let tid = samtale_turn::codec::TransactionId::random();
        let attrs = [samtale_turn::codec::Attribute::RequestedTransport(17)];
        let resp = c.transact_tid(
            &mut server,
            t0,
            samtale_turn::codec::Method::ALLOCATE,
            tid,
            &attrs,
        );
        assert_eq!(resp.error_code(), Some(300));
        assert!(resp.msg().verify_integrity(&c.key()));
        let to = alternate(&resp).unwrap();
        assert!(v4.contains(&to), "{to}");
        seen.insert(to);
        // A retransmission is sent to the same node.
        let again = c.transact_tid(
            &mut server,
            t0,
            samtale_turn::codec::Method::ALLOCATE,
            tid,
            &attrs,
        );
        assert_eq!(alternate(&again), Some(to));
    }
    assert_eq!(seen.len(), 2, "both IPv4 alternates are used");
    let mut c6 = Client::alice("[2001:db8::77]:1");
    let resp = c6.allocate(&mut server, t0);
    assert_eq!(
        alternate(&resp),
        Some("[2001:db8::1]:3478".parse().unwrap())
    );
    // An IPv4 client seen as IPv4-mapped gets an IPv4 alternate.
    let mut mapped = Client::alice("[::ffff:203.0.113.5]:1");
    assert!(v4.contains(&alternate(&mapped.allocate(&mut server, t0)).unwrap()));
    // TLS clients would need ALTERNATE-DOMAIN: they get 508.
    let mut tls = Client::new(
        samtale_turn::server::FiveTuple {
            transport: samtale_turn::server::Transport::Tls,
            ..udp("203.0.113.9:1")
        },
        "alice",
        "alice-pw",
    );
    assert_eq!(tls.allocate(&mut server, t0).error_code(), Some(508));
    // Without alternates of its family (itself does not count) a client
    // gets 508.
    let (mut only_itself, t0) = server_with(TurnConfig {
        alternate_servers: vec![LISTENER.parse().unwrap()],
        ..config()
    });
    only_itself.set_draining(true);
    let mut c = Client::alice("203.0.113.1:1");
    assert_eq!(c.allocate(&mut only_itself, t0).error_code(), Some(508));
    assert_eq!(only_itself.stats(t0).redirected, 0);
}

#[test]
fn alternates_clients_cannot_reach_are_refused_at_start() {
    for bad in [
        "0.0.0.0:3478",
        "198.51.100.1:0",
        "[::]:3478",
        "[::ffff:198.51.100.1]:3478",
    ] {
        let config = TurnConfig {
            alternate_servers: vec![bad.parse().unwrap()],
            ..config()
        };
        assert!(config.validate().is_err(), "{bad}");
    }
}

/// A full node (total quota, or no relay port left) redirects too; a user
/// over their own quota does not (another node would not change that).
#[test]
fn a_full_node_redirects_but_a_user_over_quota_gets_486() {
    let (mut server, t0) = server_with(TurnConfig {
        max_allocations_total: 2,
        max_allocations_per_user: 1,
        ..with_alternates()
    });
    Client::alice("203.0.113.1:1").allocate_ok(&mut server, t0);
    let mut again = Client::alice("203.0.113.1:2");
    assert_eq!(again.allocate(&mut server, t0).error_code(), Some(486));
    let mut bob = Client::rest(udp("203.0.113.2:1"), "bob", SECRET, secs(600));
    assert!(bob.allocate(&mut server, t0).is_success());
    let mut carol = Client::rest(udp("203.0.113.3:1"), "carol", SECRET, secs(600));
    let resp = carol.allocate(&mut server, t0);
    assert_eq!(resp.error_code(), Some(300));
    assert!(alternate(&resp).is_some());

    let (mut server, t0) = server_with(with_alternates());
    server.allocator_mut().capacity = Some(0);
    let resp = Client::alice("203.0.113.1:1").allocate(&mut server, t0);
    assert_eq!(resp.error_code(), Some(300));
}
