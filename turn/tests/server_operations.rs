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
