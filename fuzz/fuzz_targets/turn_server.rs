//! The TURN core as a state machine: a script of client requests signed
//! with a known key (so inputs get past authentication), raw frames, peer
//! datagrams, driver reports (TCP connects, incoming peers, opened and
//! closed connections) and clock steps, over UDP and TCP clients. Nothing may
//! panic, and quotas and gauges stay within their limits.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use samtale_turn::auth::{Secret, StaticUser, long_term_key};
use samtale_turn::codec::{
    AddressFamily, Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};
use samtale_turn::config::TurnConfig;
use samtale_turn::server::{
    FiveTuple, RelayAllocator, RelayError, RelayTransport, TcpAction, Transport, TurnServer,
};

/// Relay addresses from a counter, never one still open.
#[derive(Default)]
struct Relays {
    next: u16,
    open: std::collections::HashSet<SocketAddr>,
}

impl RelayAllocator for Relays {
    fn open(
        &mut self,
        family: AddressFamily,
        _transport: RelayTransport,
        _client: &FiveTuple,
    ) -> Result<SocketAddr, RelayError> {
        let ip = match family {
            AddressFamily::V4 => "192.0.2.10".parse().unwrap(),
            AddressFamily::V6 => "2001:db8::10".parse().unwrap(),
        };
        for _ in 0..1000 {
            self.next = self.next.wrapping_add(1);
            let relay = SocketAddr::new(ip, 40000 + self.next % 1000);
            if self.open.insert(relay) {
                return Ok(relay);
            }
        }
        Err(RelayError::Exhausted)
    }

    fn close(&mut self, relay: SocketAddr) {
        self.open.remove(&relay);
    }
}

const PEERS: [&str; 6] = [
    "8.8.8.8:1",
    "8.8.8.8:2",
    "9.9.9.9:3",
    "127.0.0.1:4",
    "[2001:4860::8888]:5",
    "[::ffff:10.0.0.1]:6",
];

struct Script<'a> {
    data: &'a [u8],
}

impl Script<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.data.split_first()?;
        self.data = rest;
        Some(b)
    }

    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }
}

fn tuple(i: u8) -> FiveTuple {
    let transport = if i % 2 == 0 { Transport::Udp } else { Transport::Tcp };
    let client = if i % 16 < 8 {
        SocketAddr::from(([203, 0, 113, 1], 5000 + u16::from(i % 8)))
    } else {
        SocketAddr::new("2001:db8::77".parse().unwrap(), 5000 + u16::from(i % 8))
    };
    FiveTuple { client, server: "192.0.2.10:3478".parse().unwrap(), transport }
}

fn peer(b: u8) -> SocketAddr {
    PEERS[usize::from(b) % PEERS.len()].parse().unwrap()
}

fn request(method: Method, attrs: &[Attribute<'_>], nonce: &Option<String>) -> Vec<u8> {
    let mut b = MessageBuilder::new(MessageType::new(method, Class::Request), TransactionId::random());
    for a in attrs {
        b.add(a);
    }
    if let Some(nonce) = nonce {
        b.add(&Attribute::Username("alice"));
        b.add(&Attribute::Realm("samtale"));
        b.add(&Attribute::Nonce(nonce));
        b.add_message_integrity(&long_term_key("alice", "samtale", "alice-pw"));
    }
    b.finish()
}

fuzz_target!(|data: &[u8]| {
    let config = TurnConfig {
        static_users: vec![StaticUser { username: "alice".into(), password: Secret::new("alice-pw") }],
        max_allocations_per_user: 4,
        max_connections_per_allocation: 3,
        max_allocations_total: 3,
        alternate_servers: vec![
            "198.51.100.1:3478".parse().unwrap(),
            "[2001:db8::1]:3478".parse().unwrap(),
            "192.0.2.10:3478".parse().unwrap(),
        ],
        ..TurnConfig::default()
    };
    let t0 = Instant::now();
    let Ok(mut server) = TurnServer::new(config, Relays::default(), t0, 1_800_000_000) else { return };
    let mut now = t0;
    let mut nonce: Option<String> = None;
    let mut relays: Vec<SocketAddr> = Vec::new();
    let mut ids: Vec<u32> = Vec::new();
    let mut connecting: Vec<u32> = Vec::new();
    let mut script = Script { data };
    while let Some(op) = script.byte() {
        let who = tuple(script.byte().unwrap_or(0));
        let arg = script.byte().unwrap_or(0);
        let frame = match op % 15 {
            0 => {
                let transport = if arg % 2 == 0 { 17 } else { 6 };
                Some(request(Method::ALLOCATE, &[Attribute::RequestedTransport(transport)], &nonce))
            }
            1 => Some(request(Method::CREATE_PERMISSION, &[Attribute::XorPeerAddress(peer(arg))], &nonce)),
            2 => {
                let channel = 0x4000 | u16::from(arg);
                let attrs = [Attribute::ChannelNumber(channel), Attribute::XorPeerAddress(peer(arg))];
                Some(request(Method::CHANNEL_BIND, &attrs, &nonce))
            }
            3 => Some(request(Method::CONNECT, &[Attribute::XorPeerAddress(peer(arg))], &nonce)),
            4 => {
                let id = ids.get(usize::from(arg)).copied().unwrap_or(u32::from(arg));
                Some(request(Method::CONNECTION_BIND, &[Attribute::ConnectionId(id)], &nonce))
            }
            5 => Some(request(Method::REFRESH, &[Attribute::Lifetime(u32::from(arg) * 10)], &nonce)),
            6 => {
                let mut b = MessageBuilder::new(
                    MessageType::new(Method::SEND, Class::Indication),
                    TransactionId::random(),
                );
                b.add(&Attribute::XorPeerAddress(peer(arg)));
                b.add(&Attribute::Data(b"payload"));
                Some(b.finish())
            }
            7 => {
                let mut frame = vec![0x40, arg, 0, 4];
                frame.extend_from_slice(b"data");
                Some(frame)
            }
            8 => {
                if let Some(relay) = relays.get(usize::from(arg) % relays.len().max(1)) {
                    let payload = script.bytes(usize::from(arg % 64)).to_vec();
                    let _ = server.handle_peer(now, *relay, peer(arg), &payload);
                }
                None
            }
            9 => Some(script.bytes(usize::from(arg)).to_vec()),
            10 => {
                if let Some(id) = connecting.pop() {
                    if arg % 3 == 0 {
                        let _ = server.handle_peer_connect_failed(now, id);
                    } else {
                        let _ = server.handle_peer_connected(now, id);
                    }
                }
                None
            }
            11 => {
                if let Some(relay) = relays.get(usize::from(arg) % relays.len().max(1))
                    && let Some((id, _)) = server.handle_peer_incoming(now, *relay, peer(arg))
                {
                    ids.push(id);
                }
                None
            }
            12 if arg % 2 == 0 => {
                server.handle_connection_closed(who);
                None
            }
            12 => {
                server.handle_connection_opened(now, who);
                None
            }
            13 => {
                server.set_draining(arg % 2 == 1);
                None
            }
            _ => {
                now += Duration::from_secs(u64::from(arg));
                server.handle_timeout(now);
                None
            }
        };
        if let Some(frame) = frame
            && let Some(answer) = server.handle_client(now, who, &frame)
            && let Ok(msg) = Message::parse(answer.data)
        {
            if let Ok(Some(Attribute::Nonce(n))) = msg.decode(attr_type::NONCE) {
                nonce = Some(n.to_owned());
            }
            if let Ok(Some(Attribute::XorRelayedAddress(relay))) = msg.decode(attr_type::XOR_RELAYED_ADDRESS) {
                relays.push(relay);
            }
            // A 300 names another node of the client's family.
            if let Ok(Some(Attribute::AlternateServer(to))) = msg.decode(attr_type::ALTERNATE_SERVER) {
                assert_eq!(to.is_ipv4(), who.client.is_ipv4(), "{to} for {}", who.client);
                assert_ne!(to, who.server);
            }
        }
        while let Some(action) = server.poll_tcp_action() {
            match action {
                TcpAction::Connect { id, .. } => {
                    connecting.push(id);
                    ids.push(id);
                }
                // As the driver does: the connection closes, and the core hears of it.
                TcpAction::CloseClient { tuple } => server.handle_connection_closed(tuple),
                TcpAction::Join { .. } | TcpAction::Close { .. } | TcpAction::Refuse { .. } => {}
            }
        }
        let stats = server.stats(now);
        assert!(stats.allocations <= 3, "{stats:?}");
        assert!(stats.peer_connections <= 3 * stats.allocations.max(1), "{stats:?}");
        // `tuple` makes 8 stream 5-tuples (odd bytes: ports 5001, 5003,
        // 5005, 5007 on IPv4 and IPv6).
        assert!(stats.unallocated_connections <= 8, "{stats:?}");
    }
});
