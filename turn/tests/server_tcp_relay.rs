//! TCP allocations (RFC 6062) in the sans-IO core, in virtual time: the
//! Connect answer waits for the driver's outcome, ConnectionBind joins a
//! new client connection, peers need a permission to connect in, unbound
//! connections close after exactly 30 s, and every peer connection closes
//! with its allocation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{Client, FakeRelays, Response, config, feed, secs, server, server_with, tcp};
use samtale_turn::codec::{Attribute, Class, Method, TransactionId, attr_type};
use samtale_turn::config::TurnConfig;
use samtale_turn::server::{
    BIND_TIMEOUT, CONNECT_DEADLINE, ConnectionId, Destination, TcpAction, TurnServer,
};

type Server = TurnServer<FakeRelays>;

const PEER: &str = "8.8.8.8:443";

fn peer() -> SocketAddr {
    PEER.parse().unwrap()
}

fn actions(server: &mut Server) -> Vec<TcpAction> {
    std::iter::from_fn(|| server.poll_tcp_action()).collect()
}

fn connection_id(resp: &Response) -> Option<ConnectionId> {
    match resp.msg().decode(attr_type::CONNECTION_ID).unwrap()? {
        Attribute::ConnectionId(id) => Some(id),
        _ => None,
    }
}

/// A TCP client with a TCP allocation.
fn allocated(server: &mut Server, now: Instant, client: &str) -> (Client, SocketAddr) {
    let mut c = Client::new(tcp(client), "alice", "alice-pw");
    let resp = c.transact(
        server,
        now,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(6)],
    );
    assert!(resp.is_success(), "{:?}", resp.error_code());
    (c, resp.relayed())
}

/// Sends Connect; the answer is deferred, so this returns the request's
/// transaction id and the driver's Connect action.
fn connect(
    server: &mut Server,
    now: Instant,
    c: &Client,
    to: SocketAddr,
) -> (TransactionId, ConnectionId) {
    let tid = TransactionId::random();
    let request = c.request(Method::CONNECT, tid, &[Attribute::XorPeerAddress(to)]);
    assert!(
        feed(server, now, c.tuple, &request).is_none(),
        "answered later"
    );
    match actions(server).as_slice() {
        [TcpAction::Connect { id, peer, .. }] if *peer == to => (tid, *id),
        other => panic!("expected one Connect action, got {other:?}"),
    }
}

/// The driver connected: the Connect success with its CONNECTION-ID.
fn connected(server: &mut Server, now: Instant, c: &Client, id: ConnectionId) -> Response {
    let out = server
        .handle_peer_connected(now, id)
        .expect("an answer")
        .to_owned();
    assert_eq!(out.destination, Destination::Client(c.tuple));
    let resp = Response(out.data);
    assert!(resp.msg().verify_integrity(&c.key()));
    resp
}

/// A new client connection of the same user, ready to ConnectionBind.
fn data_connection(control: &Client, client: &str) -> Client {
    let mut data = Client::new(tcp(client), &control.username, &control.password);
    data.nonce = control.nonce.clone();
    data
}

fn bind(server: &mut Server, now: Instant, data: &mut Client, id: ConnectionId) -> Response {
    data.transact(
        server,
        now,
        Method::CONNECTION_BIND,
        &[Attribute::ConnectionId(id)],
    )
}

#[test]
fn tcp_allocations_need_a_stream_and_no_udp_only_attributes() {
    let (mut s, t0) = server();
    let mut on_udp = Client::alice("192.0.2.1:5000");
    let resp = on_udp.transact(
        &mut s,
        t0,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(6)],
    );
    assert_eq!(resp.error_code(), Some(400));
    let mut even_port = Client::new(tcp("192.0.2.2:5000"), "alice", "alice-pw");
    let resp = even_port.transact(
        &mut s,
        t0,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(6),
            Attribute::Other {
                attr_type: attr_type::EVEN_PORT,
                value: &[0x80, 0, 0, 0],
            },
        ],
    );
    assert_eq!(resp.error_code(), Some(400));
    let (_, relay) = allocated(&mut s, t0, "192.0.2.3:5000");
    assert!(s.allocator().open.contains(&relay));

    let (mut off, t0) = server_with(TurnConfig {
        tcp_relay: false,
        ..config()
    });
    let mut c = Client::new(tcp("192.0.2.4:5000"), "alice", "alice-pw");
    let resp = c.transact(
        &mut off,
        t0,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(6)],
    );
    assert_eq!(resp.error_code(), Some(442));
}

#[test]
fn connect_is_answered_when_connected_and_bind_joins_a_new_connection() {
    let (mut s, t0) = server();
    let (c, relay) = allocated(&mut s, t0, "192.0.2.1:5000");
    let tid = TransactionId::random();
    let request = c.request(Method::CONNECT, tid, &[Attribute::XorPeerAddress(peer())]);
    assert!(feed(&mut s, t0, c.tuple, &request).is_none());
    let id = match actions(&mut s).as_slice() {
        [
            TcpAction::Connect {
                id,
                relay: from,
                peer: to,
            },
        ] => {
            assert_eq!((*from, *to), (relay, peer()), "from the relayed address");
            *id
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(s.stats(t0).peer_connections, 1);
    let resp = connected(&mut s, t0 + secs(1), &c, id);
    assert!(resp.is_success());
    assert_eq!(resp.msg().transaction_id(), &tid);
    assert_eq!(connection_id(&resp), Some(id));

    let mut data = data_connection(&c, "192.0.2.1:5001");
    let resp = bind(&mut s, t0 + secs(2), &mut data, id);
    assert!(resp.is_success(), "{:?}", resp.error_code());
    assert_eq!(
        actions(&mut s),
        vec![TcpAction::Join {
            id,
            relay,
            data: data.tuple,
            bytes_per_sec: TurnConfig::default().max_bandwidth_per_allocation,
        }]
    );
    // Bound once: a second bind of the same id is refused, and that
    // connection closed.
    let mut again = data_connection(&c, "192.0.2.1:5002");
    assert_eq!(
        bind(&mut s, t0 + secs(2), &mut again, id).error_code(),
        Some(400)
    );
    assert_eq!(
        actions(&mut s),
        vec![TcpAction::Refuse { data: again.tuple }]
    );
    // The data connection closes: so does its peer connection.
    s.handle_connection_closed(data.tuple);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    assert_eq!(s.stats(t0 + secs(3)).peer_connections, 0);
}

#[test]
fn a_second_connect_to_one_peer_is_446_and_a_failed_one_447() {
    let (mut s, t0) = server();
    let (mut c, _) = allocated(&mut s, t0, "192.0.2.1:5000");
    let (tid, id) = connect(&mut s, t0, &c, peer());
    let dup = c.transact(
        &mut s,
        t0,
        Method::CONNECT,
        &[Attribute::XorPeerAddress(peer())],
    );
    assert_eq!(dup.error_code(), Some(446));
    let out = s
        .handle_peer_connect_failed(t0 + secs(10), id)
        .unwrap()
        .to_owned();
    assert_eq!(out.destination, Destination::Client(c.tuple));
    let resp = Response(out.data);
    assert_eq!(resp.msg().transaction_id(), &tid);
    assert_eq!(resp.error_code(), Some(447));
    assert!(resp.msg().verify_integrity(&c.key()));
    assert!(actions(&mut s).is_empty(), "nothing left to close");
    // The peer may be tried again.
    connect(&mut s, t0 + secs(11), &c, peer());
}

#[test]
fn connect_refuses_denied_peers_udp_allocations_and_too_many_connections() {
    let (mut s, t0) = server_with(TurnConfig {
        max_connections_per_allocation: 2,
        ..config()
    });
    let (mut c, _) = allocated(&mut s, t0, "192.0.2.1:5000");
    let loopback: SocketAddr = "127.0.0.1:80".parse().unwrap();
    let resp = c.transact(
        &mut s,
        t0,
        Method::CONNECT,
        &[Attribute::XorPeerAddress(loopback)],
    );
    assert_eq!(resp.error_code(), Some(403));
    assert_eq!(s.stats(t0).denied_peers, 1);
    let v6: SocketAddr = "[2001:4860::8888]:443".parse().unwrap();
    let resp = c.transact(
        &mut s,
        t0,
        Method::CONNECT,
        &[Attribute::XorPeerAddress(v6)],
    );
    assert_eq!(resp.error_code(), Some(443));
    let resp = c.transact(&mut s, t0, Method::CONNECT, &[]);
    assert_eq!(resp.error_code(), Some(400));
    connect(&mut s, t0, &c, "8.8.8.8:1".parse().unwrap());
    connect(&mut s, t0, &c, "8.8.8.8:2".parse().unwrap());
    let resp = c.transact(
        &mut s,
        t0,
        Method::CONNECT,
        &[Attribute::XorPeerAddress("8.8.8.8:3".parse().unwrap())],
    );
    assert_eq!(resp.error_code(), Some(508));
    // ChannelBind has no place on a TCP allocation.
    assert_eq!(c.bind(&mut s, t0, 0x4000, peer()).error_code(), Some(400));

    let mut on_udp = Client::alice("192.0.2.9:5000");
    on_udp.allocate_ok(&mut s, t0);
    let resp = on_udp.transact(
        &mut s,
        t0,
        Method::CONNECT,
        &[Attribute::XorPeerAddress(peer())],
    );
    assert_eq!(resp.error_code(), Some(400));
}

#[test]
fn an_unbound_connection_closes_after_exactly_thirty_seconds() {
    let (mut s, t0) = server();
    let (c, _) = allocated(&mut s, t0, "192.0.2.1:5000");
    let (_, id) = connect(&mut s, t0, &c, peer());
    let at = t0 + secs(1);
    connected(&mut s, at, &c, id);
    assert_eq!(BIND_TIMEOUT, secs(30));
    assert!(s.poll_timeout().unwrap() <= at + BIND_TIMEOUT);
    s.handle_timeout(at + BIND_TIMEOUT - Duration::from_millis(1));
    assert!(actions(&mut s).is_empty());
    s.handle_timeout(at + BIND_TIMEOUT);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    let mut data = data_connection(&c, "192.0.2.1:5001");
    assert_eq!(
        bind(&mut s, at + BIND_TIMEOUT, &mut data, id).error_code(),
        Some(400)
    );
    assert_eq!(
        actions(&mut s),
        vec![TcpAction::Refuse { data: data.tuple }]
    );
}

/// A driver that never reports a Connect's outcome does not hold the slot
/// for ever: the core gives the attempt up at its deadline.
#[test]
fn a_connect_never_reported_is_given_up_at_its_deadline() {
    let (mut s, t0) = server();
    let (c, _) = allocated(&mut s, t0, "192.0.2.1:5000");
    let (_, id) = connect(&mut s, t0, &c, peer());
    s.handle_timeout(t0 + CONNECT_DEADLINE - Duration::from_millis(1));
    assert!(actions(&mut s).is_empty());
    s.handle_timeout(t0 + CONNECT_DEADLINE);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    assert!(s.handle_peer_connected(t0 + CONNECT_DEADLINE, id).is_none());
    assert_eq!(s.stats(t0 + CONNECT_DEADLINE).peer_connections, 0);
    connect(&mut s, t0 + CONNECT_DEADLINE, &c, peer());
}

#[test]
fn a_peer_connects_in_only_with_a_permission() {
    let (mut s, t0) = server();
    let (mut c, relay) = allocated(&mut s, t0, "192.0.2.1:5000");
    assert!(s.handle_peer_incoming(t0, relay, peer()).is_none());
    assert!(c.permit(&mut s, t0, &[peer()]).is_success());
    let (id, out) = s
        .handle_peer_incoming(t0, relay, peer())
        .map(|(id, t)| (id, t.to_owned()))
        .expect("permitted");
    assert_eq!(out.destination, Destination::Client(c.tuple));
    let attempt = Response(out.data);
    assert_eq!(attempt.msg().method(), Method::CONNECTION_ATTEMPT);
    assert_eq!(attempt.class(), Class::Indication);
    assert_eq!(attempt.addr(attr_type::XOR_PEER_ADDRESS), Some(peer()));
    assert_eq!(connection_id(&attempt), Some(id));
    let mut data = data_connection(&c, "192.0.2.1:5001");
    assert!(bind(&mut s, t0 + secs(29), &mut data, id).is_success());
    assert!(matches!(
        actions(&mut s).as_slice(),
        [TcpAction::Join { .. }]
    ));
    // The permission lapses: new peers from that IP are refused again.
    let later = t0 + secs(301);
    assert!(
        s.handle_peer_incoming(later, relay, "8.8.8.8:444".parse().unwrap())
            .is_none()
    );
    // Unknown relays are refused.
    assert!(
        s.handle_peer_incoming(t0, "192.0.2.10:1".parse().unwrap(), peer())
            .is_none()
    );
}

#[test]
fn connection_bind_wants_the_owner_a_fresh_connection_and_a_known_id() {
    let (mut s, t0) = server();
    let (mut c, _) = allocated(&mut s, t0, "192.0.2.1:5000");
    let (_, id) = connect(&mut s, t0, &c, peer());
    // Each refusal on a fresh connection closes it (one try each).
    let refused = |s: &mut Server, data: &Client| {
        assert_eq!(actions(s), vec![TcpAction::Refuse { data: data.tuple }]);
    };
    // Still connecting: nothing to bind yet.
    let mut early = data_connection(&c, "192.0.2.1:5001");
    assert_eq!(bind(&mut s, t0, &mut early, id).error_code(), Some(400));
    refused(&mut s, &early);
    connected(&mut s, t0, &c, id);
    let mut guess = data_connection(&c, "192.0.2.1:5002");
    let resp = bind(&mut s, t0, &mut guess, id.wrapping_add(1));
    assert_eq!(resp.error_code(), Some(400));
    refused(&mut s, &guess);
    let mut no_id = data_connection(&c, "192.0.2.1:5004");
    let resp = no_id.transact(&mut s, t0, Method::CONNECTION_BIND, &[]);
    assert_eq!(resp.error_code(), Some(400));
    refused(&mut s, &no_id);
    // Another user cannot take it.
    let mut mallory = Client::rest(tcp("192.0.2.66:5000"), "mallory", common::SECRET, secs(600));
    assert_eq!(bind(&mut s, t0, &mut mallory, id).error_code(), Some(400));
    refused(&mut s, &mallory);
    // Nor the control connection itself (which stays open).
    assert_eq!(bind(&mut s, t0, &mut c, id).error_code(), Some(400));
    // Nor a UDP client.
    let mut on_udp = Client::alice("192.0.2.1:5003");
    assert_eq!(bind(&mut s, t0, &mut on_udp, id).error_code(), Some(400));
    assert!(actions(&mut s).is_empty());
    let mut data = data_connection(&c, "192.0.2.1:5005");
    assert!(bind(&mut s, t0, &mut data, id).is_success());
}

#[test]
fn every_peer_connection_closes_with_its_allocation() {
    let (mut s, t0) = server();
    let (mut c, relay) = allocated(&mut s, t0, "192.0.2.1:5000");
    let (_, connecting) = connect(&mut s, t0, &c, "8.8.8.8:1".parse().unwrap());
    let (_, joined) = connect(&mut s, t0, &c, "8.8.8.8:2".parse().unwrap());
    connected(&mut s, t0, &c, joined);
    let mut data = data_connection(&c, "192.0.2.1:5001");
    assert!(bind(&mut s, t0, &mut data, joined).is_success());
    actions(&mut s);
    assert!(c.refresh(&mut s, t0, Some(0)).is_success());
    let mut closed = actions(&mut s);
    closed.sort_by_key(|a| match a {
        TcpAction::Close { id } => *id,
        _ => panic!("{a:?}"),
    });
    let mut want = vec![
        TcpAction::Close { id: connecting },
        TcpAction::Close { id: joined },
    ];
    want.sort_by_key(|a| match a {
        TcpAction::Close { id } => *id,
        _ => 0,
    });
    assert_eq!(closed, want);
    assert_eq!(s.allocator().closed, vec![relay]);
    // A late outcome of the attempt is ignored.
    assert!(s.handle_peer_connected(t0, connecting).is_none());
    assert_eq!(s.stats(t0).peer_connections, 0);

    // Expiry and a closed control connection do the same.
    let (c2, _) = allocated(&mut s, t0, "192.0.2.2:5000");
    let (_, id) = connect(&mut s, t0, &c2, peer());
    s.handle_connection_closed(c2.tuple);
    assert_eq!(actions(&mut s), vec![TcpAction::Close { id }]);
    let (c3, _) = allocated(&mut s, t0, "192.0.2.3:5000");
    let (_, id) = connect(&mut s, t0, &c3, peer());
    s.handle_timeout(t0 + secs(601));
    // The first control connection has held no allocation since its
    // refresh to 0 at t0: the allocate timeout (60 s) closes it too.
    assert_eq!(
        actions(&mut s),
        vec![
            TcpAction::Close { id },
            TcpAction::CloseClient { tuple: c.tuple }
        ]
    );
}

#[test]
fn connection_ids_name_their_shard() {
    let t0 = Instant::now();
    let mut s = TurnServer::new(config(), FakeRelays::default(), t0, common::UNIX0)
        .unwrap()
        .with_connection_shard(2, 3);
    let (c, _) = allocated(&mut s, t0, "192.0.2.1:5000");
    for port in 1..=20 {
        let (_, id) = connect(&mut s, t0, &c, SocketAddr::new(peer().ip(), port));
        assert_eq!(id % 3, 2);
        // Free the slot for the next one (the default limit is 32).
        s.handle_peer_connect_failed(t0, id);
    }
}

/// A joined data connection holds no allocation of its own, yet the
/// allocate timeout never closes it.
#[test]
fn a_data_connection_is_never_closed_for_holding_no_allocation() {
    let (mut s, t0) = server();
    s.handle_connection_opened(t0, tcp("198.51.100.7:5003"));
    let (c, _) = allocated(&mut s, t0, "198.51.100.7:5003");
    let (_, id) = connect(&mut s, t0, &c, peer());
    connected(&mut s, t0, &c, id);
    let mut data = data_connection(&c, "198.51.100.7:5004");
    s.handle_connection_opened(t0 + secs(1), data.tuple);
    let resp = bind(&mut s, t0 + secs(1), &mut data, id);
    assert!(resp.is_success(), "{:?}", resp.error_code());
    assert!(matches!(s.poll_tcp_action(), Some(TcpAction::Join { .. })));
    assert_eq!(s.stats(t0 + secs(1)).unallocated_connections, 0);
    s.handle_timeout(t0 + secs(300));
    let closes = actions(&mut s)
        .into_iter()
        .filter(|a| matches!(a, TcpAction::CloseClient { .. }))
        .count();
    assert_eq!(closes, 0);
}
