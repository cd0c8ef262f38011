//! The deny-list at the protocol level: CreatePermission, ChannelBind and
//! (TCP allocations) Connect to every denied range, in every encoding, get
//! 403 and no data flows; an allowed range passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::deny_table;
use common::*;
use samtale_turn::codec::{AddressFamily, Attribute, Method};
use samtale_turn::config::TurnConfig;
use samtale_turn::server::TurnServer;

fn allocate(
    server: &mut TurnServer<FakeRelays>,
    now: std::time::Instant,
    client: &mut Client,
    family: AddressFamily,
) -> SocketAddr {
    let resp = client.transact(
        server,
        now,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(17),
            Attribute::RequestedAddressFamily(family),
        ],
    );
    assert!(resp.is_success());
    resp.relayed()
}

/// Every denied address, and its IPv6 disguises.
fn denied_targets() -> Vec<IpAddr> {
    let mut targets: Vec<IpAddr> = Vec::new();
    for (addr, _) in deny_table::DENIED_V4 {
        let ip: Ipv4Addr = addr.parse().unwrap();
        targets.push(IpAddr::V4(ip));
        targets.extend(
            deny_table::disguises(ip)
                .into_iter()
                .map(|(_, v6)| IpAddr::V6(v6)),
        );
    }
    targets.extend(
        deny_table::DENIED_V6
            .iter()
            .map(|(a, _)| a.parse::<IpAddr>().unwrap()),
    );
    targets
}

/// RFC 6062: a TCP allocation cannot Connect to a denied peer (403), and a
/// denied peer cannot connect in (it can get no permission).
#[test]
fn every_denied_range_is_refused_at_connect_and_cannot_connect_in() {
    let (mut server, t0) = server();
    let mut v4 = Client::new(tcp("203.0.113.1:1"), "alice", "alice-pw");
    let mut v6 = Client::new(tcp("203.0.113.2:1"), "alice", "alice-pw");
    let mut relays = Vec::new();
    for (client, family) in [(&mut v4, AddressFamily::V4), (&mut v6, AddressFamily::V6)] {
        let resp = client.transact(
            &mut server,
            t0,
            Method::ALLOCATE,
            &[
                Attribute::RequestedTransport(6),
                Attribute::RequestedAddressFamily(family),
            ],
        );
        assert!(resp.is_success());
        relays.push(resp.relayed());
    }
    let targets = denied_targets();
    for ip in &targets {
        let peer = SocketAddr::new(*ip, 443);
        let (client, relay) = if ip.is_ipv4() {
            (&mut v4, relays[0])
        } else {
            (&mut v6, relays[1])
        };
        let resp = client.transact(
            &mut server,
            t0,
            Method::CONNECT,
            &[Attribute::XorPeerAddress(peer)],
        );
        assert_eq!(resp.error_code(), Some(403), "{ip}");
        assert!(
            server.handle_peer_incoming(t0, relay, peer).is_none(),
            "{ip}"
        );
    }
    assert!(server.poll_tcp_action().is_none());
    assert_eq!(server.stats(t0).peer_connections, 0);
    assert_eq!(server.stats(t0).denied_peers, targets.len() as u64);
}

#[test]
fn every_denied_range_in_every_encoding_gets_403() {
    let config = TurnConfig {
        max_permissions_per_allocation: 1000,
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut v4 = Client::alice("203.0.113.1:1");
    let mut v6 = Client::alice("203.0.113.2:1");
    let relay4 = allocate(&mut server, t0, &mut v4, AddressFamily::V4);
    let relay6 = allocate(&mut server, t0, &mut v6, AddressFamily::V6);

    let targets = denied_targets();
    for ip in &targets {
        let peer = SocketAddr::new(*ip, 3478);
        let (client, relay) = if ip.is_ipv4() {
            (&mut v4, relay4)
        } else {
            (&mut v6, relay6)
        };
        assert_eq!(
            client.permit(&mut server, t0, &[peer]).error_code(),
            Some(403),
            "{ip}"
        );
        assert_eq!(
            client.bind(&mut server, t0, 0x4000, peer).error_code(),
            Some(403),
            "{ip}"
        );
        // Nothing flows either way.
        let send = client.send_indication(peer, b"x");
        assert!(feed(&mut server, t0, client.tuple, &send).is_none(), "{ip}");
        assert!(feed(&mut server, t0, client.tuple, &channel_data(0x4000, b"x")).is_none());
        assert!(
            feed_peer(&mut server, t0, relay, peer, b"x").is_none(),
            "{ip}"
        );
    }
    let stats = server.stats(t0);
    assert_eq!(stats.permissions, 0);
    assert_eq!(stats.channels, 0);
    assert_eq!(stats.denied_peers, 2 * targets.len() as u64);
}

#[test]
fn one_denied_peer_fails_the_whole_create_permission() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.1:1");
    client.allocate_ok(&mut server, t0);
    let good: SocketAddr = "8.8.8.8:1".parse().unwrap();
    let bad: SocketAddr = "169.254.169.254:80".parse().unwrap();
    assert_eq!(
        client.permit(&mut server, t0, &[good, bad]).error_code(),
        Some(403)
    );
    assert_eq!(server.stats(t0).permissions, 0);
}

#[test]
fn public_peers_pass_and_the_allow_list_opens_private_ones() {
    let config = TurnConfig {
        allowed_peers: samtale_turn::peer_filter::PeerFilter::parse_allow_list(&[
            "10.0.0.5",
            "10.1.0.0/16",
            "fd00::/8",
        ])
        .unwrap(),
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut v4 = Client::alice("203.0.113.1:1");
    let mut v6 = Client::alice("203.0.113.2:1");
    let relay4 = allocate(&mut server, t0, &mut v4, AddressFamily::V4);
    allocate(&mut server, t0, &mut v6, AddressFamily::V6);

    for ok in ["8.8.8.8:1", "10.0.0.5:1", "10.1.200.3:1"] {
        let peer: SocketAddr = ok.parse().unwrap();
        assert!(v4.permit(&mut server, t0, &[peer]).is_success(), "{ok}");
    }
    for ok in [
        "[fd00::1]:1",
        "[2a00:1450:4001::1]:1",
        "[::ffff:10.0.0.5]:1",
    ] {
        let peer: SocketAddr = ok.parse().unwrap();
        assert!(v6.permit(&mut server, t0, &[peer]).is_success(), "{ok}");
    }
    for refused in ["10.0.0.6:1", "127.0.0.1:1"] {
        let peer: SocketAddr = refused.parse().unwrap();
        assert_eq!(
            v4.permit(&mut server, t0, &[peer]).error_code(),
            Some(403),
            "{refused}"
        );
    }
    let sfu: SocketAddr = "10.0.0.5:3478".parse().unwrap();
    assert!(v4.bind(&mut server, t0, 0x4000, sfu).is_success());
    let out = feed(&mut server, t0, v4.tuple, &channel_data(0x4000, b"rtp")).unwrap();
    assert_eq!(
        out.destination,
        samtale_turn::server::Destination::Peer {
            relay: relay4,
            peer: sfu
        }
    );
}

#[test]
fn a_peer_of_the_other_family_gets_443() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.1:1");
    client.allocate_ok(&mut server, t0);
    let v6_peer: SocketAddr = "[2a00:1450:4001::1]:1".parse().unwrap();
    assert_eq!(
        client.permit(&mut server, t0, &[v6_peer]).error_code(),
        Some(443)
    );
    assert_eq!(
        client.bind(&mut server, t0, 0x4000, v6_peer).error_code(),
        Some(443)
    );
}
