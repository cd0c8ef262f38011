//! Allocate and the long-term credential mechanism through the sans-IO
//! core: challenges, REST and static credentials, nonces, and the answers
//! RFC 8656 §7 prescribes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use common::*;
use samtale_turn::codec::{
    AddressFamily, Attribute, Class, Message, Method, TransactionId, attr_type,
};
use samtale_turn::config::TurnConfig;

#[test]
fn first_allocate_gets_a_minimal_401_and_creates_nothing() {
    let (mut server, t0) = server();
    let client = Client::alice("203.0.113.50:40000");
    let request = client.request(
        Method::ALLOCATE,
        TransactionId::random(),
        &[Attribute::RequestedTransport(17)],
    );
    assert_eq!(request.len(), 28, "libwebrtc's first Allocate");
    let out = feed(&mut server, t0, client.tuple, &request).unwrap();
    let resp = Response(out.data);
    assert_eq!(resp.class(), Class::Error);
    assert_eq!(resp.error_code(), Some(401));
    assert!(resp.nonce().is_some());
    let msg = resp.msg();
    assert_eq!(
        msg.decode(attr_type::REALM).unwrap(),
        Some(Attribute::Realm("samtale"))
    );
    assert!(!msg.contains(attr_type::MESSAGE_INTEGRITY));
    assert!(!msg.contains(attr_type::SOFTWARE));
    // Header, ERROR-CODE without reason, REALM "samtale", 16-char NONCE.
    assert_eq!(resp.0.len(), 20 + 8 + 12 + 20);
    let stats = server.stats(t0);
    assert_eq!(
        (stats.allocations, stats.users, stats.timer_entries),
        (0, 0, 0)
    );
    assert_eq!(stats.auth_failures, 0, "a challenge is not a failure");
}

#[test]
fn rest_credentials_allocate() {
    let (mut server, t0) = server();
    let mut client = Client::rest(udp("203.0.113.50:40000"), "bob", SECRET, secs(3600));
    let resp = client.allocate(&mut server, t0);
    assert!(resp.is_success());
    assert_eq!(resp.relayed(), "192.0.2.10:49152".parse().unwrap());
    assert_eq!(resp.lifetime(), Some(600));
    assert_eq!(
        resp.addr(attr_type::XOR_MAPPED_ADDRESS),
        Some(client.tuple.client)
    );
    assert!(resp.msg().verify_integrity(&client.key()));
    let stats = server.stats(t0);
    assert_eq!((stats.allocations, stats.users), (1, 1));
}

#[test]
fn static_user_allocates() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
}

#[test]
fn wrong_secret_wrong_password_and_expired_credentials_get_401() {
    let (mut server, t0) = server();
    let mut wrong_secret = Client::rest(udp("203.0.113.1:1"), "bob", "guess", secs(3600));
    assert_eq!(
        wrong_secret.allocate(&mut server, t0).error_code(),
        Some(401)
    );

    let mut wrong_password = Client::new(udp("203.0.113.2:1"), "alice", "nope");
    assert_eq!(
        wrong_password.allocate(&mut server, t0).error_code(),
        Some(401)
    );

    let mut unknown = Client::new(udp("203.0.113.3:1"), "mallory", "x");
    assert_eq!(unknown.allocate(&mut server, t0).error_code(), Some(401));

    // Valid for 60 s from UNIX0: accepted at +60 s, refused at +61 s.
    let mut short = Client::rest(udp("203.0.113.4:1"), "bob", SECRET, secs(60));
    let mut late = short.clone();
    late.tuple = udp("203.0.113.5:1");
    short.allocate_ok(&mut server, t0 + secs(60));
    assert_eq!(
        late.allocate(&mut server, t0 + secs(61)).error_code(),
        Some(401)
    );

    let stats = server.stats(t0);
    assert_eq!(stats.auth_failures, 4);
    assert_eq!(stats.allocations, 1);
}

#[test]
fn every_rotated_secret_is_accepted() {
    let mut config = config();
    config.rest_secrets = vec!["new".into(), "old".into()];
    let (mut server, t0) = server_with(config);
    Client::rest(udp("203.0.113.1:1"), "a", "new", secs(60)).allocate_ok(&mut server, t0);
    Client::rest(udp("203.0.113.2:1"), "b", "old", secs(60)).allocate_ok(&mut server, t0);
    let mut retired = Client::rest(udp("203.0.113.3:1"), "c", SECRET, secs(60));
    assert_eq!(retired.allocate(&mut server, t0).error_code(), Some(401));
}

#[test]
fn rest_expiry_follows_the_wall_clock_anchor() {
    let (mut server, t0) = server();
    let mut client = Client::rest(udp("203.0.113.1:1"), "a", SECRET, secs(60));
    // The driver says the wall clock jumped 1000 s ahead of the monotonic one.
    server.set_wall_clock(t0, UNIX0 + 1000);
    assert_eq!(client.allocate(&mut server, t0).error_code(), Some(401));
}

#[test]
fn stale_nonce_gets_438_then_the_retry_succeeds() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    let old_nonce = client.nonce.clone().unwrap();
    // Still valid at +599 s (nonce lifetime 600 s).
    assert!(
        client
            .refresh(&mut server, t0 + secs(599), None)
            .is_success()
    );
    // At +600 s the same nonce is stale: 438 with a fresh nonce, retried.
    let bytes = client.request(Method::REFRESH, TransactionId::random(), &[]);
    let resp = Response(
        feed(&mut server, t0 + secs(600), client.tuple, &bytes)
            .unwrap()
            .data,
    );
    assert_eq!(resp.error_code(), Some(438));
    assert_ne!(resp.nonce().unwrap(), old_nonce);
    assert!(
        client
            .refresh(&mut server, t0 + secs(600), None)
            .is_success()
    );
    assert_ne!(client.nonce.unwrap(), old_nonce);
}

#[test]
fn a_nonce_is_bound_to_the_client_address() {
    let (mut server, t0) = server();
    let mut first = Client::alice("203.0.113.50:40000");
    first.allocate_ok(&mut server, t0);
    let mut thief = Client::alice("198.51.100.99:40000");
    thief.nonce = first.nonce.clone();
    let bytes = thief.request(
        Method::ALLOCATE,
        TransactionId::random(),
        &[Attribute::RequestedTransport(17)],
    );
    let resp = Response(feed(&mut server, t0, thief.tuple, &bytes).unwrap().data);
    assert_eq!(resp.error_code(), Some(401));
}

#[test]
fn integrity_without_username_realm_or_nonce_is_400() {
    let (mut server, t0) = server();
    let client = Client::alice("203.0.113.50:40000");
    let mut b = samtale_turn::codec::MessageBuilder::new(
        samtale_turn::codec::MessageType::new(Method::ALLOCATE, Class::Request),
        TransactionId::random(),
    );
    b.add(&Attribute::RequestedTransport(17));
    b.add(&Attribute::Username("alice"));
    b.add_message_integrity(&client.key());
    let bytes = b.finish();
    let resp = Response(feed(&mut server, t0, client.tuple, &bytes).unwrap().data);
    assert_eq!(resp.error_code(), Some(400));
}

#[test]
fn retransmitted_allocate_is_answered_again_and_a_new_one_gets_437() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let tid = TransactionId::random();
    let attrs = [Attribute::RequestedTransport(17)];
    let first = client.transact_tid(&mut server, t0, Method::ALLOCATE, tid, &attrs);
    assert!(first.is_success());
    let again = client.transact_tid(&mut server, t0 + secs(1), Method::ALLOCATE, tid, &attrs);
    assert!(again.is_success());
    assert_eq!(again.relayed(), first.relayed());
    assert_eq!(again.lifetime(), Some(599));
    assert_eq!(client.allocate(&mut server, t0).error_code(), Some(437));
    assert_eq!(server.stats(t0).allocations, 1);
}

/// REQUESTED-TRANSPORT is required; UDP, or TCP from a stream client (see
/// `server_tcp_relay`); anything else is 442, and TCP from a UDP client 400
/// (RFC 6062 §5.1).
#[test]
fn requested_transport_is_required_and_must_be_udp_or_tcp() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let resp = client.transact(&mut server, t0, Method::ALLOCATE, &[]);
    assert_eq!(resp.error_code(), Some(400));
    let resp = client.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(132)],
    );
    assert_eq!(resp.error_code(), Some(442), "SCTP");
    let resp = client.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(6)],
    );
    assert_eq!(resp.error_code(), Some(400), "TCP over UDP");
}

#[test]
fn requested_address_family_selects_the_relay_family() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let resp = client.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(17),
            Attribute::RequestedAddressFamily(AddressFamily::V6),
        ],
    );
    assert!(resp.is_success());
    assert!(resp.relayed().is_ipv6());

    let mut other = Client::alice("203.0.113.51:40000");
    let resp = other.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(17),
            Attribute::Other {
                attr_type: attr_type::REQUESTED_ADDRESS_FAMILY,
                value: &[0x03, 0, 0, 0],
            },
        ],
    );
    assert_eq!(resp.error_code(), Some(440));

    server.allocator_mut().no_ipv6 = true;
    let resp = other.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(17),
            Attribute::RequestedAddressFamily(AddressFamily::V6),
        ],
    );
    assert_eq!(resp.error_code(), Some(440));
}

#[test]
fn lifetime_is_clamped_between_default_and_max() {
    let (mut server, t0) = server();
    for (i, (asked, granted)) in [(10, 600), (1200, 1200), (100_000, 3600)]
        .into_iter()
        .enumerate()
    {
        let mut client = Client::alice(&format!("203.0.113.{}:1", i + 1));
        let resp = client.transact(
            &mut server,
            t0,
            Method::ALLOCATE,
            &[
                Attribute::RequestedTransport(17),
                Attribute::Lifetime(asked),
            ],
        );
        assert_eq!(resp.lifetime(), Some(granted), "asked {asked}");
    }
}

#[test]
fn the_external_address_is_announced() {
    let mut config = config();
    config.external_ipv4 = Some("198.51.100.200".parse().unwrap());
    let (mut server, t0) = server_with(config);
    let mut client = Client::alice("203.0.113.50:40000");
    assert_eq!(
        client.allocate_ok(&mut server, t0),
        "198.51.100.200:49152".parse().unwrap()
    );
}

#[test]
fn unknown_comprehension_required_attributes_get_420_after_authentication() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let resp = client.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(17),
            Attribute::Other {
                attr_type: attr_type::RESERVATION_TOKEN,
                value: &[0x80],
            },
            Attribute::Other {
                attr_type: 0xC0DE,
                value: b"optional, ignored",
            },
        ],
    );
    assert_eq!(resp.error_code(), Some(420));
    assert!(resp.msg().verify_integrity(&client.key()));
    assert_eq!(
        resp.msg().decode(attr_type::UNKNOWN_ATTRIBUTES).unwrap(),
        Some(Attribute::UnknownAttributes(vec![
            attr_type::RESERVATION_TOKEN
        ]))
    );
    assert_eq!(server.stats(t0).allocations, 0);
}

#[test]
fn another_user_on_the_same_5_tuple_gets_441() {
    let (mut server, t0) = server();
    let mut alice = Client::alice("203.0.113.50:40000");
    alice.allocate_ok(&mut server, t0);
    let mut bob = Client::rest(alice.tuple, "bob", SECRET, secs(600));
    assert_eq!(bob.refresh(&mut server, t0, None).error_code(), Some(441));
    let peer = "8.8.8.8:9".parse().unwrap();
    assert_eq!(bob.permit(&mut server, t0, &[peer]).error_code(), Some(441));
    assert_eq!(
        bob.bind(&mut server, t0, 0x4000, peer).error_code(),
        Some(441)
    );
}

#[test]
fn binding_requests_get_the_reflexive_address_and_fingerprint_is_mirrored() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.fingerprint = true;
    let bytes = client.request(Method::BINDING, TransactionId::random(), &[]);
    let resp = Response(feed(&mut server, t0, client.tuple, &bytes).unwrap().data);
    assert!(resp.is_success());
    assert_eq!(
        resp.addr(attr_type::XOR_MAPPED_ADDRESS),
        Some(client.tuple.client)
    );
    assert_eq!(resp.msg().verify_fingerprint(), Some(true));
}

#[test]
fn software_is_sent_only_when_configured() {
    let config = TurnConfig {
        software: Some("samtale-turn".into()),
        ..config()
    };
    let (mut server, t0) = server_with(config);
    let mut client = Client::alice("203.0.113.50:40000");
    let resp = client.allocate(&mut server, t0);
    let msg = Message::parse(&resp.0).unwrap();
    assert_eq!(
        msg.decode(attr_type::SOFTWARE).unwrap(),
        Some(Attribute::Software("samtale-turn"))
    );
}
