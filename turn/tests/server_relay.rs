//! Application data through an allocation: Send/Data indications and
//! ChannelData both ways, over UDP and TCP, only with a permission.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::SocketAddr;

use common::*;
use samtale_turn::codec::{Attribute, ChannelData, Class, Message, Method, attr_type};
use samtale_turn::server::Destination;

fn peer() -> SocketAddr {
    "8.8.8.8:5000".parse().unwrap()
}

#[test]
fn send_and_data_indications_relay_both_ways() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let relay = client.allocate_ok(&mut server, t0);
    assert!(client.permit(&mut server, t0, &[peer()]).is_success());

    let payload: Vec<u8> = (0..=255).collect();
    let send = client.send_indication(peer(), &payload);
    let out = feed(&mut server, t0, client.tuple, &send).unwrap();
    assert_eq!(
        out.destination,
        Destination::Peer {
            relay,
            peer: peer()
        }
    );
    assert_eq!(out.data, payload);

    let back = feed_peer(&mut server, t0, relay, peer(), b"reply").unwrap();
    assert_eq!(back.destination, Destination::Client(client.tuple));
    let msg = Message::parse(&back.data).unwrap();
    assert_eq!(
        (msg.method(), msg.class()),
        (Method::DATA, Class::Indication)
    );
    assert_eq!(
        msg.decode(attr_type::XOR_PEER_ADDRESS).unwrap(),
        Some(Attribute::XorPeerAddress(peer()))
    );
    assert_eq!(
        msg.decode(attr_type::DATA).unwrap(),
        Some(Attribute::Data(b"reply"))
    );

    let stats = server.stats(t0);
    assert_eq!((stats.packets_to_peers, stats.bytes_to_peers), (1, 256));
    assert_eq!((stats.packets_to_clients, stats.bytes_to_clients), (1, 5));
}

#[test]
fn channel_data_relays_both_ways_and_is_padded_over_tcp() {
    for tuple in [udp("203.0.113.50:40000"), tcp("203.0.113.50:40000")] {
        let (mut server, t0) = server();
        let mut client = Client::new(tuple, "alice", "alice-pw");
        let relay = client.allocate_ok(&mut server, t0);
        assert!(client.bind(&mut server, t0, 0x7FFF, peer()).is_success());

        let out = feed(&mut server, t0, tuple, &channel_data(0x7FFF, b"abc")).unwrap();
        assert_eq!(
            out.destination,
            Destination::Peer {
                relay,
                peer: peer()
            }
        );
        assert_eq!(out.data, b"abc");

        let back = feed_peer(&mut server, t0, relay, peer(), b"defgh").unwrap();
        assert_eq!(back.destination, Destination::Client(tuple));
        let expected_len = if tuple.transport.is_stream() { 12 } else { 9 };
        assert_eq!(back.data.len(), expected_len);
        let frame = ChannelData::parse(&back.data).unwrap();
        assert_eq!((frame.channel, frame.data), (0x7FFF, &b"defgh"[..]));
    }
}

#[test]
fn nothing_flows_without_a_permission_or_allocation() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let send = client.send_indication(peer(), b"x");
    assert!(
        feed(&mut server, t0, client.tuple, &send).is_none(),
        "no allocation"
    );
    let relay = client.allocate_ok(&mut server, t0);
    assert!(
        feed(&mut server, t0, client.tuple, &send).is_none(),
        "no permission"
    );
    assert!(feed_peer(&mut server, t0, relay, peer(), b"x").is_none());
    assert!(feed(&mut server, t0, client.tuple, &channel_data(0x4000, b"x")).is_none());

    assert!(client.permit(&mut server, t0, &[peer()]).is_success());
    // The permission is per IP: any port of 8.8.8.8 may answer, 8.8.4.4 may not.
    assert!(feed_peer(&mut server, t0, relay, "8.8.8.8:1".parse().unwrap(), b"x").is_some());
    assert!(
        feed_peer(
            &mut server,
            t0,
            relay,
            "8.8.4.4:5000".parse().unwrap(),
            b"x"
        )
        .is_none()
    );
    // Data on an unknown relay address goes nowhere.
    assert!(
        feed_peer(
            &mut server,
            t0,
            "192.0.2.10:1".parse().unwrap(),
            peer(),
            b"x"
        )
        .is_none()
    );
    // Another client's 5-tuple does not reach this allocation.
    let stranger = udp("203.0.113.51:40000");
    assert!(feed(&mut server, t0, stranger, &send).is_none());
}

#[test]
fn send_indication_with_unknown_required_attribute_is_dropped() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    assert!(client.permit(&mut server, t0, &[peer()]).is_success());
    let mut b = samtale_turn::codec::MessageBuilder::new(
        samtale_turn::codec::MessageType::new(Method::SEND, Class::Indication),
        samtale_turn::codec::TransactionId::random(),
    );
    b.add(&Attribute::XorPeerAddress(peer()));
    b.add(&Attribute::Data(b"x"));
    b.add(&Attribute::Other {
        attr_type: 0x7001,
        value: &[],
    });
    assert!(feed(&mut server, t0, client.tuple, &b.finish()).is_none());
}
