//! Quotas: allocations per user and in total (486), permissions and
//! channels per allocation and relay ports (508).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::SocketAddr;

use common::*;
use samtale_turn::config::TurnConfig;

fn peer(i: u8) -> SocketAddr {
    SocketAddr::new(std::net::IpAddr::V4([8, 8, 4, i].into()), 9)
}

#[test]
fn allocations_per_user_are_capped_and_freed() {
    let config = TurnConfig {
        max_allocations_per_user: 2,
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut first = Client::rest(udp("203.0.113.1:1"), "bob", SECRET, secs(600));
    first.allocate_ok(&mut server, t0);
    Client::rest(udp("203.0.113.2:1"), "bob", SECRET, secs(600)).allocate_ok(&mut server, t0);
    // Fresh credentials for the same user count against the same quota.
    let mut third = Client::rest(udp("203.0.113.3:1"), "bob", SECRET, secs(900));
    assert_eq!(third.allocate(&mut server, t0).error_code(), Some(486));
    Client::rest(udp("203.0.113.4:1"), "carol", SECRET, secs(600)).allocate_ok(&mut server, t0);
    assert!(first.refresh(&mut server, t0, Some(0)).is_success());
    third.allocate_ok(&mut server, t0);
}

#[test]
fn total_allocations_are_capped() {
    let config = TurnConfig {
        max_allocations_total: 3,
        ..config()
    };
    let (mut server, t0) = server_with(config);
    for i in 1..=3 {
        Client::alice(&format!("203.0.113.{i}:1")).allocate_ok(&mut server, t0);
    }
    let mut fourth = Client::rest(udp("203.0.113.9:1"), "dave", SECRET, secs(600));
    assert_eq!(fourth.allocate(&mut server, t0).error_code(), Some(486));
    server.handle_timeout(t0 + secs(600));
    fourth.allocate_ok(&mut server, t0 + secs(600));
}

#[test]
fn relay_ports_running_out_is_508() {
    let (mut server, t0) = server();
    server.allocator_mut().capacity = Some(1);
    Client::alice("203.0.113.1:1").allocate_ok(&mut server, t0);
    assert_eq!(
        Client::alice("203.0.113.2:1")
            .allocate(&mut server, t0)
            .error_code(),
        Some(508)
    );
}

#[test]
fn permissions_per_allocation_are_capped() {
    let config = TurnConfig {
        max_permissions_per_allocation: 3,
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut client = Client::alice("203.0.113.1:1");
    client.allocate_ok(&mut server, t0);
    assert!(
        client
            .permit(&mut server, t0, &[peer(1), peer(2)])
            .is_success()
    );
    // Two new ones would make four: refused whole.
    assert_eq!(
        client
            .permit(&mut server, t0, &[peer(3), peer(4)])
            .error_code(),
        Some(508)
    );
    assert!(
        client
            .permit(&mut server, t0, &[peer(3), peer(1)])
            .is_success()
    );
    // Refreshing existing ones is always fine; a channel to a fourth IP is not.
    assert!(
        client
            .permit(&mut server, t0, &[peer(1), peer(2), peer(3)])
            .is_success()
    );
    assert_eq!(
        client.bind(&mut server, t0, 0x4000, peer(4)).error_code(),
        Some(508)
    );
    assert_eq!(server.stats(t0).permissions, 3);
    // Once they expire there is room again.
    assert!(
        client
            .permit(&mut server, t0 + secs(300), &[peer(4)])
            .is_success()
    );
}

#[test]
fn channels_per_allocation_are_capped() {
    let config = TurnConfig {
        max_channels_per_allocation: 2,
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut client = Client::alice("203.0.113.1:1");
    client.allocate_ok(&mut server, t0);
    assert!(client.bind(&mut server, t0, 0x4000, peer(1)).is_success());
    assert!(client.bind(&mut server, t0, 0x4001, peer(2)).is_success());
    assert_eq!(
        client.bind(&mut server, t0, 0x4002, peer(3)).error_code(),
        Some(508)
    );
    assert!(client.bind(&mut server, t0, 0x4001, peer(2)).is_success());
    assert_eq!(server.stats(t0).channels, 2);
}

/// Two cores of one server (shards) share one ledger: the limits hold
/// across them, and an allocation gone on one frees quota on the other.
#[test]
fn quotas_hold_across_shards_sharing_a_ledger() {
    use samtale_turn::server::{AllocationLedger, TurnServer};
    let config = TurnConfig {
        max_allocations_per_user: 2,
        max_allocations_total: 3,
        ..config()
    };
    let ledger = AllocationLedger::new();
    let t0 = std::time::Instant::now();
    let shard = || {
        TurnServer::new(config.clone(), FakeRelays::default(), t0, UNIX0)
            .unwrap()
            .with_ledger(ledger.clone())
    };
    let (mut a, mut b) = (shard(), shard());
    let mut bob_on_a = Client::rest(udp("203.0.113.1:1"), "bob", SECRET, secs(600));
    bob_on_a.allocate_ok(&mut a, t0);
    Client::rest(udp("203.0.113.2:1"), "bob", SECRET, secs(600)).allocate_ok(&mut b, t0);
    let mut bob_third = Client::rest(udp("203.0.113.3:1"), "bob", SECRET, secs(600));
    assert_eq!(
        bob_third.allocate(&mut b, t0).error_code(),
        Some(486),
        "bob holds two"
    );
    Client::rest(udp("203.0.113.4:1"), "carol", SECRET, secs(600)).allocate_ok(&mut b, t0);
    let mut dave = Client::rest(udp("203.0.113.5:1"), "dave", SECRET, secs(600));
    assert_eq!(
        dave.allocate(&mut a, t0).error_code(),
        Some(486),
        "three in total"
    );
    assert_eq!((ledger.total(), ledger.users()), (3, 2));
    assert!(bob_on_a.refresh(&mut a, t0, Some(0)).is_success());
    dave.allocate_ok(&mut a, t0);
    assert_eq!(a.stats(t0).users, 3, "users come from the shared ledger");
    // A shard that stops (its thread failed) gives its quota back.
    drop(a);
    assert_eq!(
        (ledger.total(), ledger.users()),
        (2, 2),
        "b's bob and carol"
    );
    drop(b);
    assert_eq!(ledger.total(), 0);
}
