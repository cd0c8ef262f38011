//! Client TCP/TLS connections without an allocation, in virtual time: one
//! that never allocates (Binding requests do not count) is closed at
//! exactly `allocate_timeout` after it opened, and one whose allocation
//! ends (refreshed to 0 or expired) gets the same time to allocate again.
//! UDP clients and a zero timeout are never closed this way; nor are data
//! connections (RFC 6062, in `server_tcp_relay.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::{Duration, Instant};

use common::{Client, FakeRelays, config, feed, secs, server, server_with, tcp, udp};
use samtale_turn::codec::{Method, TransactionId};
use samtale_turn::config::TurnConfig;
use samtale_turn::server::{FiveTuple, TcpAction, TurnServer};

type Server = TurnServer<FakeRelays>;

const MS: Duration = Duration::from_millis(1);

/// The connections the core asks the driver to close at `now`.
fn closed_at(server: &mut Server, now: Instant) -> Vec<FiveTuple> {
    server.handle_timeout(now);
    std::iter::from_fn(|| server.poll_tcp_action())
        .filter_map(|action| match action {
            TcpAction::CloseClient { tuple } => Some(tuple),
            _ => None,
        })
        .collect()
}

fn binding(server: &mut Server, now: Instant, c: &Client) {
    let request = c.request(Method::BINDING, TransactionId::random(), &[]);
    let answer = feed(server, now, c.tuple, &request).expect("a Binding answer");
    assert_eq!(
        answer.destination,
        samtale_turn::server::Destination::Client(c.tuple)
    );
}

#[test]
fn a_connection_that_never_allocates_is_closed_at_exactly_the_timeout() {
    let (mut server, t0) = server();
    let c = Client::new(tcp("198.51.100.7:5000"), "alice", "alice-pw");
    server.handle_connection_opened(t0, c.tuple);
    assert_eq!(server.poll_timeout(), Some(t0 + secs(60)));
    assert_eq!(server.stats(t0).unallocated_connections, 1);
    for s in [1, 30, 59] {
        binding(&mut server, t0 + secs(s), &c);
        assert!(closed_at(&mut server, t0 + secs(s)).is_empty());
    }
    assert!(closed_at(&mut server, t0 + secs(60) - MS).is_empty());
    assert_eq!(closed_at(&mut server, t0 + secs(60)), vec![c.tuple]);
    let stats = server.stats(t0 + secs(60));
    assert_eq!(
        (stats.unallocated_connections, stats.idle_connections_closed),
        (0, 1)
    );
    server.handle_connection_closed(c.tuple);

    // A connection that goes before its deadline is not asked to close.
    let gone = tcp("198.51.100.7:5010");
    server.handle_connection_opened(t0 + secs(100), gone);
    server.handle_connection_closed(gone);
    assert!(closed_at(&mut server, t0 + secs(160)).is_empty());
    assert_eq!(server.stats(t0 + secs(160)).unallocated_connections, 0);
}

/// A client that reconnects from the same port before its old connection's
/// end was seen: the old end must not cancel the new one's deadline (the
/// driver opens the tuple again, as here).
#[test]
fn a_successor_on_the_same_tuple_keeps_a_deadline_after_the_old_end() {
    let (mut server, t0) = server();
    let tuple = tcp("198.51.100.7:5011");
    server.handle_connection_opened(t0, tuple);
    server.handle_connection_opened(t0 + secs(10), tuple);
    server.handle_connection_closed(tuple);
    server.handle_connection_opened(t0 + secs(11), tuple);
    assert!(closed_at(&mut server, t0 + secs(71) - MS).is_empty());
    assert_eq!(closed_at(&mut server, t0 + secs(71)), vec![tuple]);
}

#[test]
fn an_allocation_keeps_the_connection_and_a_refresh_to_zero_restarts_the_clock() {
    let (mut server, t0) = server();
    let mut c = Client::new(tcp("198.51.100.7:5001"), "alice", "alice-pw");
    server.handle_connection_opened(t0, c.tuple);
    c.allocate_ok(&mut server, t0 + secs(59));
    assert_eq!(server.stats(t0 + secs(59)).unallocated_connections, 0);
    assert!(closed_at(&mut server, t0 + secs(300)).is_empty());
    let resp = c.refresh(&mut server, t0 + secs(300), Some(0));
    assert!(resp.is_success());
    assert_eq!(server.stats(t0 + secs(300)).unallocated_connections, 1);
    assert!(closed_at(&mut server, t0 + secs(360) - MS).is_empty());
    assert_eq!(closed_at(&mut server, t0 + secs(360)), vec![c.tuple]);
}

#[test]
fn an_expired_allocation_leaves_time_to_allocate_again() {
    let (mut server, t0) = server();
    let mut c = Client::new(tcp("198.51.100.7:5002"), "alice", "alice-pw");
    server.handle_connection_opened(t0, c.tuple);
    c.allocate_ok(&mut server, t0);
    // The default lifetime is 600 s: the allocation expires then.
    assert!(closed_at(&mut server, t0 + secs(600)).is_empty());
    assert_eq!(server.stats(t0 + secs(600)).allocations, 0);
    assert_eq!(server.stats(t0 + secs(600)).unallocated_connections, 1);
    c.allocate_ok(&mut server, t0 + secs(659));
    assert!(closed_at(&mut server, t0 + secs(1200) - MS).is_empty());
    // The second allocation expires at 659 + 600 s; 60 s later it closes.
    assert!(closed_at(&mut server, t0 + secs(1259)).is_empty());
    assert!(closed_at(&mut server, t0 + secs(1319) - MS).is_empty());
    assert_eq!(closed_at(&mut server, t0 + secs(1319)), vec![c.tuple]);
}

#[test]
fn udp_clients_and_a_zero_timeout_are_never_tracked() {
    let (mut server, t0) = server();
    let mut c = Client::alice("198.51.100.7:5005");
    assert_eq!(c.tuple, udp("198.51.100.7:5005"));
    c.allocate_ok(&mut server, t0);
    assert!(c.refresh(&mut server, t0, Some(0)).is_success());
    assert_eq!(server.stats(t0).unallocated_connections, 0);
    assert!(closed_at(&mut server, t0 + secs(86_400)).is_empty());

    let (mut server, t0) = server_with(TurnConfig {
        allocate_timeout: Duration::ZERO,
        ..config()
    });
    let tuple = tcp("198.51.100.7:5006");
    server.handle_connection_opened(t0, tuple);
    assert_eq!(server.poll_timeout(), None);
    assert!(closed_at(&mut server, t0 + secs(86_400)).is_empty());
}
