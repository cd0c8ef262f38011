//! Test harness for the sans-IO core: a relay allocator that hands out
//! addresses from a counter, and a scripted TURN client that does the
//! 401/nonce dance. Time is an explicit `Instant`; nothing sleeps.

#![allow(dead_code)]

pub mod child;
pub mod deny_table;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use samtale_turn::auth::{LongTermKey, Secret, StaticUser, long_term_key, mint_rest_credentials};
use samtale_turn::codec::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};
use samtale_turn::config::TurnConfig;
use samtale_turn::server::{
    Destination, FiveTuple, OwnedTransmit, RelayAllocator, RelayError, RelayTransport, Transport,
    TurnServer,
};

/// Unix time at the start of every test.
pub const UNIX0: u64 = 1_800_000_000;
/// The REST secret of [`config`].
pub const SECRET: &str = "north-secret";
/// The listener address clients reach.
pub const LISTENER: &str = "192.0.2.10:3478";

/// Relay addresses from a counter; records what was closed.
#[derive(Debug, Default)]
pub struct FakeRelays {
    pub next_port: u16,
    pub open: Vec<SocketAddr>,
    pub closed: Vec<SocketAddr>,
    pub no_ipv6: bool,
    pub capacity: Option<usize>,
}

impl RelayAllocator for FakeRelays {
    fn open(
        &mut self,
        family: AddressFamily,
        _transport: RelayTransport,
        _client: &FiveTuple,
    ) -> Result<SocketAddr, RelayError> {
        if family == AddressFamily::V6 && self.no_ipv6 {
            return Err(RelayError::FamilyUnsupported);
        }
        if self.capacity.is_some_and(|c| self.open.len() >= c) {
            return Err(RelayError::Exhausted);
        }
        let port = 49152 + self.next_port;
        self.next_port += 1;
        let addr: SocketAddr = match family {
            AddressFamily::V4 => SocketAddr::new("192.0.2.10".parse().unwrap(), port),
            AddressFamily::V6 => SocketAddr::new("2001:db8::10".parse().unwrap(), port),
        };
        self.open.push(addr);
        Ok(addr)
    }

    fn close(&mut self, relay: SocketAddr) {
        self.open.retain(|a| *a != relay);
        self.closed.push(relay);
    }
}

/// Default config plus one static user ("alice"/"alice-pw") and [`SECRET`].
pub fn config() -> TurnConfig {
    TurnConfig {
        static_users: vec![StaticUser {
            username: "alice".into(),
            password: Secret::new("alice-pw"),
        }],
        rest_secrets: vec![Secret::new(SECRET)],
        ..TurnConfig::default()
    }
}

pub fn server_with(config: TurnConfig) -> (TurnServer<FakeRelays>, Instant) {
    let t0 = Instant::now();
    let server = TurnServer::new(config, FakeRelays::default(), t0, UNIX0).unwrap();
    (server, t0)
}

pub fn server() -> (TurnServer<FakeRelays>, Instant) {
    server_with(config())
}

pub fn udp(client: &str) -> FiveTuple {
    FiveTuple {
        client: client.parse().unwrap(),
        server: LISTENER.parse().unwrap(),
        transport: Transport::Udp,
    }
}

pub fn tcp(client: &str) -> FiveTuple {
    FiveTuple {
        transport: Transport::Tcp,
        ..udp(client)
    }
}

/// Feeds one client datagram; returns the owned answer.
pub fn feed(
    server: &mut TurnServer<FakeRelays>,
    now: Instant,
    tuple: FiveTuple,
    bytes: &[u8],
) -> Option<OwnedTransmit> {
    server
        .handle_client(now, tuple, bytes)
        .map(|t| t.to_owned())
}

/// Feeds one peer datagram arriving on `relay`.
pub fn feed_peer(
    server: &mut TurnServer<FakeRelays>,
    now: Instant,
    relay: SocketAddr,
    peer: SocketAddr,
    bytes: &[u8],
) -> Option<OwnedTransmit> {
    server
        .handle_peer(now, relay, peer, bytes)
        .map(|t| t.to_owned())
}

/// A response as bytes, with accessors.
#[derive(Debug, Clone)]
pub struct Response(pub Vec<u8>);

impl Response {
    pub fn msg(&self) -> Message<'_> {
        Message::parse(&self.0).unwrap()
    }
    pub fn class(&self) -> Class {
        self.msg().class()
    }
    pub fn is_success(&self) -> bool {
        self.class() == Class::Success
    }
    pub fn error_code(&self) -> Option<u16> {
        match self.msg().decode(attr_type::ERROR_CODE).unwrap() {
            Some(Attribute::ErrorCode { code, .. }) => Some(code),
            _ => None,
        }
    }
    pub fn addr(&self, ty: u16) -> Option<SocketAddr> {
        match self.msg().decode(ty).unwrap()? {
            Attribute::XorRelayedAddress(a)
            | Attribute::XorMappedAddress(a)
            | Attribute::XorPeerAddress(a) => Some(a),
            _ => None,
        }
    }
    pub fn lifetime(&self) -> Option<u32> {
        match self.msg().decode(attr_type::LIFETIME).unwrap()? {
            Attribute::Lifetime(l) => Some(l),
            _ => None,
        }
    }
    pub fn nonce(&self) -> Option<String> {
        match self.msg().decode(attr_type::NONCE).unwrap()? {
            Attribute::Nonce(n) => Some(n.to_owned()),
            _ => None,
        }
    }
    pub fn relayed(&self) -> SocketAddr {
        self.addr(attr_type::XOR_RELAYED_ADDRESS).unwrap()
    }
}

/// A TURN client with long-term credentials.
#[derive(Debug, Clone)]
pub struct Client {
    pub tuple: FiveTuple,
    pub username: String,
    pub password: String,
    pub realm: String,
    pub nonce: Option<String>,
    pub fingerprint: bool,
}

impl Client {
    pub fn new(tuple: FiveTuple, username: &str, password: &str) -> Self {
        Self {
            tuple,
            username: username.into(),
            password: password.into(),
            realm: "samtale".into(),
            nonce: None,
            fingerprint: false,
        }
    }

    /// A client with fresh REST credentials minted with `secret`.
    pub fn rest(tuple: FiveTuple, user: &str, secret: &str, ttl: Duration) -> Self {
        let creds = mint_rest_credentials(secret.as_bytes(), user, ttl, UNIX0);
        Self::new(tuple, &creds.username, &creds.password)
    }

    pub fn alice(client: &str) -> Self {
        Self::new(udp(client), "alice", "alice-pw")
    }

    pub fn key(&self) -> LongTermKey {
        long_term_key(&self.username, &self.realm, &self.password)
    }

    /// A request with the given attributes, signed when a nonce is known.
    pub fn request(&self, method: Method, tid: TransactionId, attrs: &[Attribute<'_>]) -> Vec<u8> {
        let mut b = MessageBuilder::new(MessageType::new(method, Class::Request), tid);
        for a in attrs {
            b.add(a);
        }
        if let Some(nonce) = &self.nonce {
            b.add(&Attribute::Username(&self.username));
            b.add(&Attribute::Realm(&self.realm));
            b.add(&Attribute::Nonce(nonce));
            b.add_message_integrity(&self.key());
        }
        if self.fingerprint {
            b.add_fingerprint();
        }
        b.finish()
    }

    /// Sends a request; on 401/438 with a NONCE, adopts it and retries
    /// once. Returns the final response.
    pub fn transact(
        &mut self,
        server: &mut TurnServer<FakeRelays>,
        now: Instant,
        method: Method,
        attrs: &[Attribute<'_>],
    ) -> Response {
        self.transact_tid(server, now, method, TransactionId::random(), attrs)
    }

    pub fn transact_tid(
        &mut self,
        server: &mut TurnServer<FakeRelays>,
        now: Instant,
        method: Method,
        tid: TransactionId,
        attrs: &[Attribute<'_>],
    ) -> Response {
        for _ in 0..2 {
            let bytes = self.request(method, tid, attrs);
            let out = feed(server, now, self.tuple, &bytes).expect("a response");
            assert_eq!(out.destination, Destination::Client(self.tuple));
            let resp = Response(out.data);
            assert_eq!(resp.msg().transaction_id(), &tid);
            if matches!(resp.error_code(), Some(401 | 438)) && resp.nonce().is_some() {
                let retry = self.nonce.is_none() || resp.error_code() == Some(438);
                self.nonce = resp.nonce();
                if retry {
                    continue;
                }
            }
            if self.nonce.is_some() && resp.error_code() != Some(401) {
                assert!(
                    resp.msg().verify_integrity(&self.key()),
                    "authenticated responses carry MESSAGE-INTEGRITY"
                );
            }
            return resp;
        }
        panic!("no answer after retry")
    }

    pub fn allocate(&mut self, server: &mut TurnServer<FakeRelays>, now: Instant) -> Response {
        self.transact(
            server,
            now,
            Method::ALLOCATE,
            &[Attribute::RequestedTransport(17)],
        )
    }

    /// Allocates and asserts success; returns the relayed address.
    pub fn allocate_ok(&mut self, server: &mut TurnServer<FakeRelays>, now: Instant) -> SocketAddr {
        let resp = self.allocate(server, now);
        assert!(
            resp.is_success(),
            "allocate failed: {:?}",
            resp.error_code()
        );
        resp.relayed()
    }

    pub fn refresh(
        &mut self,
        server: &mut TurnServer<FakeRelays>,
        now: Instant,
        lifetime: Option<u32>,
    ) -> Response {
        let attrs: Vec<Attribute<'_>> = lifetime.map(Attribute::Lifetime).into_iter().collect();
        self.transact(server, now, Method::REFRESH, &attrs)
    }

    pub fn permit(
        &mut self,
        server: &mut TurnServer<FakeRelays>,
        now: Instant,
        peers: &[SocketAddr],
    ) -> Response {
        let attrs: Vec<Attribute<'_>> = peers
            .iter()
            .map(|p| Attribute::XorPeerAddress(*p))
            .collect();
        self.transact(server, now, Method::CREATE_PERMISSION, &attrs)
    }

    pub fn bind(
        &mut self,
        server: &mut TurnServer<FakeRelays>,
        now: Instant,
        channel: u16,
        peer: SocketAddr,
    ) -> Response {
        self.transact(
            server,
            now,
            Method::CHANNEL_BIND,
            &[
                Attribute::ChannelNumber(channel),
                Attribute::XorPeerAddress(peer),
            ],
        )
    }

    /// A Send indication to `peer`.
    pub fn send_indication(&self, peer: SocketAddr, data: &[u8]) -> Vec<u8> {
        let mut b = MessageBuilder::new(
            MessageType::new(Method::SEND, Class::Indication),
            TransactionId::random(),
        );
        b.add(&Attribute::XorPeerAddress(peer));
        b.add(&Attribute::Data(data));
        b.finish()
    }
}

/// A ChannelData frame.
pub fn channel_data(channel: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(samtale_turn::codec::ChannelData::encode_into(
        channel, data, false, &mut out
    ));
    out
}

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
