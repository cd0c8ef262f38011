//! Lifetimes in virtual time: allocations, permissions and channels end at
//! exactly their deadline (one nanosecond before, they still work),
//! refreshes extend them, and the timer stays bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use samtale_turn::server::Destination;

const NS: Duration = Duration::from_nanos(1);

fn peer() -> SocketAddr {
    "8.8.8.8:5000".parse().unwrap()
}

#[test]
fn allocation_expires_exactly_and_releases_its_relay() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let relay = client.allocate_ok(&mut server, t0);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(600)));

    server.handle_timeout(t0 + secs(600) - NS);
    assert_eq!(server.stats(t0).allocations, 1);
    assert!(server.allocator().closed.is_empty());

    server.handle_timeout(t0 + secs(600));
    assert_eq!(server.stats(t0).allocations, 0);
    assert_eq!(server.allocator().closed, vec![relay]);
    assert_eq!(server.poll_timeout(), None);
    assert_eq!(server.stats(t0).users, 0);
}

#[test]
fn an_expired_allocation_is_gone_even_before_the_timer_runs() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    assert!(
        client
            .refresh(&mut server, t0 + secs(600) - NS, None)
            .is_success()
    );
    let mut other = Client::alice("203.0.113.51:40000");
    other.allocate_ok(&mut server, t0);
    // No handle_timeout: the request path itself sees the expiry.
    assert_eq!(
        other
            .refresh(&mut server, t0 + secs(600), None)
            .error_code(),
        Some(437)
    );
    assert_eq!(server.allocator().closed.len(), 1);
}

#[test]
fn refresh_extends_and_lifetime_zero_deletes() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let relay = client.allocate_ok(&mut server, t0);
    let resp = client.refresh(&mut server, t0 + secs(590), Some(1200));
    assert_eq!(resp.lifetime(), Some(1200));
    server.handle_timeout(t0 + secs(1000));
    assert_eq!(server.stats(t0).allocations, 1);
    server.handle_timeout(t0 + secs(590 + 1200) - NS);
    assert_eq!(server.stats(t0).allocations, 1);
    let resp = client.refresh(&mut server, t0 + secs(1700), Some(0));
    assert!(resp.is_success());
    assert_eq!(resp.lifetime(), Some(0));
    assert_eq!(server.allocator().closed, vec![relay]);
    assert_eq!(
        client
            .refresh(&mut server, t0 + secs(1700), None)
            .error_code(),
        Some(437)
    );
}

#[test]
fn permission_expires_exactly_at_300_seconds() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let relay = client.allocate_ok(&mut server, t0);
    let t1 = t0 + secs(10);
    assert!(client.permit(&mut server, t1, &[peer()]).is_success());
    assert_eq!(server.poll_timeout(), Some(t1 + secs(300)));

    let send = client.send_indication(peer(), b"ping");
    let out = feed(&mut server, t1 + secs(300) - NS, client.tuple, &send).unwrap();
    assert_eq!(
        out.destination,
        Destination::Peer {
            relay,
            peer: peer()
        }
    );
    assert_eq!(out.data, b"ping");
    assert!(feed_peer(&mut server, t1 + secs(300) - NS, relay, peer(), b"pong").is_some());

    assert!(feed(&mut server, t1 + secs(300), client.tuple, &send).is_none());
    assert!(feed_peer(&mut server, t1 + secs(300), relay, peer(), b"pong").is_none());
    server.handle_timeout(t1 + secs(300));
    assert_eq!(server.stats(t1 + secs(300)).permissions, 0);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(600)));
}

#[test]
fn refreshing_a_permission_keeps_it() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let relay = client.allocate_ok(&mut server, t0);
    for minute in [0, 4, 8] {
        let at = t0 + secs(60 * minute);
        assert!(client.permit(&mut server, at, &[peer()]).is_success());
        server.handle_timeout(at);
    }
    assert!(
        client
            .refresh(&mut server, t0 + secs(500), None)
            .is_success()
    );
    // Last refresh at 480 s: valid until 780 s exactly.
    server.handle_timeout(t0 + secs(779));
    assert!(feed_peer(&mut server, t0 + secs(780) - NS, relay, peer(), b"x").is_some());
    assert!(feed_peer(&mut server, t0 + secs(780), relay, peer(), b"x").is_none());
}

#[test]
fn channel_expires_exactly_and_stays_reserved_for_the_cooldown() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let relay = client.allocate_ok(&mut server, t0);
    assert!(client.bind(&mut server, t0, 0x4000, peer()).is_success());
    // Keep the allocation and the permission alive past the channel's 600 s.
    assert!(
        client
            .permit(&mut server, t0 + secs(290), &[peer()])
            .is_success()
    );
    assert!(
        client
            .permit(&mut server, t0 + secs(580), &[peer()])
            .is_success()
    );
    assert!(
        client
            .refresh(&mut server, t0 + secs(500), Some(3600))
            .is_success()
    );

    let frame = channel_data(0x4000, b"media");
    let before = t0 + secs(600) - NS;
    server.handle_timeout(before);
    let out = feed(&mut server, before, client.tuple, &frame).unwrap();
    assert_eq!(
        out.destination,
        Destination::Peer {
            relay,
            peer: peer()
        }
    );
    assert_eq!(out.data, b"media");
    let back = feed_peer(&mut server, before, relay, peer(), b"back").unwrap();
    assert_eq!(back.data, channel_data(0x4000, b"back"));

    let at = t0 + secs(600);
    server.handle_timeout(at);
    assert!(feed(&mut server, at, client.tuple, &frame).is_none());
    // Without the channel, peer data comes back as a Data indication.
    let back = feed_peer(&mut server, at, relay, peer(), b"back").unwrap();
    assert_eq!(back.data[..2], [0x00, 0x17]);

    // The number and the peer stay reserved for 300 s more.
    let other: SocketAddr = "9.9.9.9:1".parse().unwrap();
    assert_eq!(
        client
            .bind(&mut server, at + secs(100), 0x4000, other)
            .error_code(),
        Some(400)
    );
    assert_eq!(
        client
            .bind(&mut server, at + secs(100), 0x4001, peer())
            .error_code(),
        Some(400)
    );
    // Rebinding the same pair during the cooldown is fine.
    assert!(
        client
            .bind(&mut server, at + secs(100), 0x4000, peer())
            .is_success()
    );
    // After the cooldown of that new binding, the number is free again.
    let later = at + secs(100 + 600 + 300);
    assert!(
        client
            .refresh(&mut server, later - secs(10), Some(3600))
            .is_success()
    );
    server.handle_timeout(later);
    assert!(client.bind(&mut server, later, 0x4000, other).is_success());
}

#[test]
fn timer_entries_stay_bounded_under_many_refreshes() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    for i in 0..2000u64 {
        let at = t0 + Duration::from_millis(i * 100);
        assert!(client.permit(&mut server, at, &[peer()]).is_success());
        assert!(client.bind(&mut server, at, 0x4000, peer()).is_success());
        server.handle_timeout(at);
    }
    let stats = server.stats(t0 + secs(200));
    assert!(
        stats.timer_entries <= 4,
        "{} timer entries",
        stats.timer_entries
    );
}

#[test]
fn tcp_allocation_ends_with_its_connection() {
    let (mut server, t0) = server();
    let mut client = Client::new(tcp("203.0.113.50:40000"), "alice", "alice-pw");
    let relay = client.allocate_ok(&mut server, t0);
    server.handle_connection_closed(client.tuple);
    assert_eq!(server.stats(t0).allocations, 0);
    assert_eq!(server.allocator().closed, vec![relay]);
}
