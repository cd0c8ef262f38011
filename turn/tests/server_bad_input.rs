//! Bad input: truncated and mutated datagrams never panic; malformed
//! requests get 400; duplicates resolve to the first; ChannelBind outside
//! the range is 400; a flood of unauthenticated Allocates creates no state
//! and the server keeps relaying for others; reply sizes stay bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::SocketAddr;

use common::*;
use samtale_turn::codec::{Attribute, Method, TransactionId};
use samtale_turn::config::{ChannelRange, TurnConfig, UnauthenticatedReplies};
use samtale_turn::server::Destination;

fn peer() -> SocketAddr {
    "8.8.8.8:5000".parse().unwrap()
}

/// xorshift64*: deterministic noise without a dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn truncations_and_mutations_never_panic() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    assert!(client.bind(&mut server, t0, 0x4000, peer()).is_success());
    let seeds = [
        client.request(
            Method::CREATE_PERMISSION,
            TransactionId::random(),
            &[Attribute::XorPeerAddress(peer())],
        ),
        client.request(
            Method::CHANNEL_BIND,
            TransactionId::random(),
            &[
                Attribute::ChannelNumber(0x4001),
                Attribute::XorPeerAddress(peer()),
            ],
        ),
        client.send_indication(peer(), b"payload"),
        channel_data(0x4000, b"payload"),
    ];
    for seed in &seeds {
        for cut in 0..seed.len() {
            let _ = feed(&mut server, t0, client.tuple, &seed[..cut]);
        }
    }
    let mut noise = Noise(0x5eed);
    for _ in 0..20_000 {
        let mut bytes = seeds[noise.below(seeds.len())].clone();
        for _ in 0..=noise.below(4) {
            let i = noise.below(bytes.len());
            bytes[i] = noise.next() as u8;
        }
        if noise.below(4) == 0 {
            bytes.truncate(noise.below(bytes.len() + 1));
        }
        let _ = feed(&mut server, t0, client.tuple, &bytes);
        let _ = feed_peer(
            &mut server,
            t0,
            "192.0.2.10:49152".parse().unwrap(),
            peer(),
            &bytes,
        );
    }
    for len in 0..64 {
        let bytes: Vec<u8> = (0..len).map(|_| noise.next() as u8).collect();
        let _ = feed(&mut server, t0, client.tuple, &bytes);
    }
    // Still serving.
    assert!(client.refresh(&mut server, t0, None).is_success());
}

#[test]
fn truncated_headers_and_bad_cookies_are_dropped() {
    let (mut server, t0) = server();
    let client = Client::alice("203.0.113.50:40000");
    let request = client.request(
        Method::ALLOCATE,
        TransactionId::random(),
        &[Attribute::RequestedTransport(17)],
    );
    for cut in 0..20 {
        assert!(feed(&mut server, t0, client.tuple, &request[..cut]).is_none());
    }
    let mut bad_cookie = request.clone();
    bad_cookie[5] ^= 0xff;
    assert!(feed(&mut server, t0, client.tuple, &bad_cookie).is_none());
    assert!(server.stats(t0).malformed >= 21);
}

#[test]
fn wrong_lengths_get_400() {
    let (mut server, t0) = server();
    let client = Client::alice("203.0.113.50:40000");
    let request = client.request(
        Method::ALLOCATE,
        TransactionId::random(),
        &[
            Attribute::RequestedTransport(17),
            Attribute::Software("a client"),
        ],
    );
    // The header promises less than the datagram holds.
    let mut short_header = request.clone();
    short_header[3] -= 4;
    // An attribute claims more than the message holds.
    let mut overrun = request.clone();
    overrun[22..24].copy_from_slice(&200u16.to_be_bytes());
    for bytes in [short_header, overrun] {
        let out = feed(&mut server, t0, client.tuple, &bytes).unwrap();
        let resp = Response(out.data);
        assert_eq!(resp.error_code(), Some(400));
        assert!(resp.0.len() <= bytes.len());
    }
}

#[test]
fn a_bad_fingerprint_is_dropped() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.fingerprint = true;
    let mut bytes = client.request(Method::BINDING, TransactionId::random(), &[]);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(feed(&mut server, t0, client.tuple, &bytes).is_none());
}

#[test]
fn duplicate_attributes_first_wins() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    let resp = client.transact(
        &mut server,
        t0,
        Method::ALLOCATE,
        &[
            Attribute::RequestedTransport(17),
            Attribute::RequestedTransport(6),
            Attribute::Lifetime(1200),
            Attribute::Lifetime(3000),
        ],
    );
    assert!(resp.is_success());
    assert_eq!(resp.lifetime(), Some(1200));
}

#[test]
fn channel_numbers_outside_the_range_get_400() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    for bad in [0x0000, 0x3FFF, 0x8000, 0xFFFF] {
        assert_eq!(
            client.bind(&mut server, t0, bad, peer()).error_code(),
            Some(400),
            "{bad:#x}"
        );
    }
    assert!(client.bind(&mut server, t0, 0x7FFF, peer()).is_success());

    let strict = TurnConfig {
        channel_range: ChannelRange::Strict,
        ..config()
    };
    let (mut server, t0) = server_with(strict);
    let mut client = Client::alice("203.0.113.50:40000");
    client.allocate_ok(&mut server, t0);
    assert_eq!(
        client.bind(&mut server, t0, 0x5000, peer()).error_code(),
        Some(400)
    );
    assert!(client.bind(&mut server, t0, 0x4FFF, peer()).is_success());
}

#[test]
fn requests_without_allocation_get_437_and_unknown_methods_400() {
    let (mut server, t0) = server();
    let mut client = Client::alice("203.0.113.50:40000");
    assert_eq!(
        client.refresh(&mut server, t0, None).error_code(),
        Some(437)
    );
    assert_eq!(
        client.permit(&mut server, t0, &[peer()]).error_code(),
        Some(437)
    );
    assert_eq!(
        client.bind(&mut server, t0, 0x4000, peer()).error_code(),
        Some(437)
    );
    let bytes = client.request(
        samtale_turn::codec::Method(0x0FF),
        TransactionId::random(),
        &[Attribute::Software("padding so a reason fits")],
    );
    let resp = Response(feed(&mut server, t0, client.tuple, &bytes).unwrap().data);
    assert_eq!(resp.error_code(), Some(400));
}

#[test]
fn a_flood_of_unauthenticated_allocates_leaves_no_state_and_relaying_goes_on() {
    let (mut server, t0) = server();
    let mut victim = Client::alice("203.0.113.50:40000");
    let relay = victim.allocate_ok(&mut server, t0);
    assert!(victim.bind(&mut server, t0, 0x4000, peer()).is_success());
    let before = server.stats(t0);

    let frame = channel_data(0x4000, b"still here");
    for i in 0..50_000u32 {
        let [a, b, c, d] = i.to_be_bytes();
        let attacker = udp(&format!(
            "{}.{}.{}.{}:{}",
            100 + a,
            b,
            c,
            d,
            1024 + (i % 60_000)
        ));
        let flood = Client::new(attacker, "x", "y");
        let bytes = flood.request(
            Method::ALLOCATE,
            TransactionId::random(),
            &[Attribute::RequestedTransport(17)],
        );
        let out = feed(&mut server, t0, attacker, &bytes).unwrap();
        assert!(out.data.len() <= 60, "401 stays minimal");
        if i % 1000 == 0 {
            // Forged credentials with a made-up nonce: refused, nothing kept.
            let mut forged = Client::new(attacker, "1:bob", "guess");
            forged.nonce = Some("AAAAAAAAAAAAAAAA".into());
            let bytes = forged.request(
                Method::ALLOCATE,
                TransactionId::random(),
                &[Attribute::RequestedTransport(17)],
            );
            assert_eq!(
                Response(feed(&mut server, t0, attacker, &bytes).unwrap().data).error_code(),
                Some(401)
            );
            let relayed = feed(&mut server, t0, victim.tuple, &frame).unwrap();
            assert_eq!(
                relayed.destination,
                Destination::Peer {
                    relay,
                    peer: peer()
                }
            );
        }
    }
    let after = server.stats(t0);
    assert_eq!(after.allocations, before.allocations);
    assert_eq!(after.users, before.users);
    assert_eq!(after.timer_entries, before.timer_entries);
    assert_eq!(after.permissions, before.permissions);
    assert_eq!(after.auth_failures, 50);
}

#[test]
fn strict_reply_policy_never_answers_with_more_bytes_than_received() {
    let strict = TurnConfig {
        unauthenticated_replies: UnauthenticatedReplies::NoLargerThanRequest,
        ..config()
    };
    let (mut server, t0) = server_with(strict);
    let client = Client::alice("203.0.113.50:40000");
    // 28 bytes: no 401 fits, so no answer.
    let tiny = client.request(
        Method::ALLOCATE,
        TransactionId::random(),
        &[Attribute::RequestedTransport(17)],
    );
    assert!(feed(&mut server, t0, client.tuple, &tiny).is_none());
    let bare_binding = client.request(Method::BINDING, TransactionId::random(), &[]);
    assert!(feed(&mut server, t0, client.tuple, &bare_binding).is_none());
    // A request padded with SOFTWARE gets its 401, no larger than itself.
    let padded = client.request(
        Method::ALLOCATE,
        TransactionId::random(),
        &[
            Attribute::RequestedTransport(17),
            Attribute::Software("a client that says who it is"),
        ],
    );
    let out = feed(&mut server, t0, client.tuple, &padded).unwrap();
    assert!(out.data.len() <= padded.len());
    assert_eq!(Response(out.data).error_code(), Some(401));

    // Over TCP the source is proven by the handshake: always answered.
    let over_tcp = tcp("203.0.113.50:40000");
    assert!(feed(&mut server, t0, over_tcp, &tiny).is_some());
}
