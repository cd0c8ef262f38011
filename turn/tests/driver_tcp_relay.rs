//! TCP allocations (RFC 6062) over real sockets, against a plain TCP peer
//! that is not a TURN client: the peer sees the relayed address as the
//! source, bytes flow both ways raw, a refused connection is 447, and a peer
//! that closes takes its data connection with it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{Client, Response, SECRET, secs};
use samtale_turn::codec::{Attribute, Method, TransactionId, attr_type};
use samtale_turn::config::TurnConfig;
use samtale_turn::driver::{self, Listeners, TurnHandle};
use samtale_turn::peer_filter::PeerFilter;
use samtale_turn::server::{FiveTuple, Stats, Transport};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

const BOUND: Duration = Duration::from_secs(10);

async fn start() -> (TurnHandle, SocketAddr) {
    start_with(|_| {}).await
}

/// A server with the settings of [`start`], changed by `tune`.
async fn start_with(tune: impl FnOnce(&mut TurnConfig)) -> (TurnHandle, SocketAddr) {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = tcp.local_addr().unwrap();
    let listeners = Listeners {
        udp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        tcp: Some(tcp),
        tls: None,
    };
    let mut config = TurnConfig {
        rest_secrets: vec![samtale_turn::auth::Secret::new(SECRET)],
        allowed_peers: PeerFilter::parse_allow_list(&["127.0.0.1"]).unwrap(),
        relay_ports: 46000..=46999,
        // Data connections must find the core thread of their peer
        // connection.
        core_threads: 2,
        ..TurnConfig::default()
    };
    tune(&mut config);
    let handle = driver::spawn(config, listeners, IpAddr::from([127, 0, 0, 1])).unwrap();
    (handle, addr)
}

/// Reads exactly `n` bytes (within [`BOUND`]).
async fn read_exactly<R: AsyncRead + Unpin>(from: &mut R, n: usize) -> Vec<u8> {
    let mut got = vec![0u8; n];
    tokio::time::timeout(BOUND, from.read_exact(&mut got))
        .await
        .unwrap()
        .unwrap();
    got
}

/// Reads to the end of the stream (within [`BOUND`], else fails with
/// `closes`): the bytes that came before it (an error counts as none).
async fn read_to_end<R: AsyncRead + Unpin>(from: &mut R, closes: &str) -> usize {
    let mut rest = Vec::new();
    tokio::time::timeout(BOUND, from.read_to_end(&mut rest))
        .await
        .expect(closes)
        .unwrap_or(0)
}

/// Waits (within [`BOUND`]) until the published figures satisfy `holds`.
async fn wait_for_stats(handle: &TurnHandle, holds: impl Fn(&Stats) -> bool) {
    let deadline = tokio::time::Instant::now() + BOUND;
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tick.tick().await;
        let s = handle.stats.lock().unwrap().clone();
        if holds(&s) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{s:?}");
    }
}

/// Reads one STUN message from a stream (20-byte header, then its length).
async fn read_message(stream: &mut TcpStream) -> Response {
    let mut header = [0u8; 20];
    tokio::time::timeout(BOUND, stream.read_exact(&mut header))
        .await
        .expect("a message in time")
        .unwrap();
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let mut message = header.to_vec();
    message.resize(20 + len, 0);
    stream.read_exact(&mut message[20..]).await.unwrap();
    Response(message)
}

/// A TURN client on its own TCP connection.
struct StreamClient {
    stream: TcpStream,
    client: Client,
}

impl StreamClient {
    async fn connect(server: SocketAddr, user: &Client) -> Self {
        let stream = TcpStream::connect(server).await.unwrap();
        let tuple = FiveTuple {
            client: stream.local_addr().unwrap(),
            server,
            transport: Transport::Tcp,
        };
        let mut client = Client::new(tuple, &user.username, &user.password);
        client.nonce = user.nonce.clone();
        StreamClient { stream, client }
    }

    async fn send(&mut self, method: Method, attrs: &[Attribute<'_>]) -> TransactionId {
        let tid = TransactionId::random();
        let request = self.client.request(method, tid, attrs);
        self.stream.write_all(&request).await.unwrap();
        tid
    }

    /// A request answered, with the 401/nonce round trip.
    async fn transact(&mut self, method: Method, attrs: &[Attribute<'_>]) -> Response {
        for _ in 0..2 {
            let tid = self.send(method, attrs).await;
            let response = read_message(&mut self.stream).await;
            assert_eq!(response.msg().transaction_id(), &tid);
            if response.error_code() == Some(401) && self.client.nonce.is_none() {
                self.client.nonce = response.nonce();
                continue;
            }
            return response;
        }
        panic!("no answer after the nonce")
    }
}

fn connection_id(resp: &Response) -> u32 {
    match resp.msg().decode(attr_type::CONNECTION_ID).unwrap() {
        Some(Attribute::ConnectionId(id)) => id,
        other => panic!("no CONNECTION-ID: {other:?}"),
    }
}

async fn tcp_allocation(server: SocketAddr) -> (StreamClient, SocketAddr) {
    let user = Client::rest(common::tcp("127.0.0.1:1"), "alice", SECRET, secs(600));
    let mut control = StreamClient::connect(server, &user).await;
    let resp = control
        .transact(Method::ALLOCATE, &[Attribute::RequestedTransport(6)])
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    (control, resp.relayed())
}

/// Connects the allocation to a fresh listening peer: the CONNECTION-ID
/// and the peer's end of the connection.
async fn connect_to_listening_peer(control: &mut StreamClient) -> (u32, TcpStream) {
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resp = control
        .transact(
            Method::CONNECT,
            &[Attribute::XorPeerAddress(peer.local_addr().unwrap())],
        )
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    let (at_peer, _) = tokio::time::timeout(BOUND, peer.accept())
        .await
        .unwrap()
        .unwrap();
    (connection_id(&resp), at_peer)
}

#[tokio::test]
async fn a_plain_tcp_peer_is_relayed_from_the_relayed_address() {
    let (handle, server) = start().await;
    let (mut control, relayed) = tcp_allocation(server).await;
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let peer_addr = peer.local_addr().unwrap();
    let resp = control
        .transact(Method::CONNECT, &[Attribute::XorPeerAddress(peer_addr)])
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    let id = connection_id(&resp);
    let (mut at_peer, source) = tokio::time::timeout(BOUND, peer.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(source, relayed, "the peer sees the relayed address");

    let mut data = StreamClient::connect(server, &control.client).await;
    let resp = data
        .transact(Method::CONNECTION_BIND, &[Attribute::ConnectionId(id)])
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    // Raw bytes now, both ways; STUN-looking bytes are just bytes.
    let junk = [0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
    data.stream.write_all(b"hello peer ").await.unwrap();
    data.stream.write_all(&junk).await.unwrap();
    let got = read_exactly(&mut at_peer, 11 + junk.len()).await;
    assert_eq!(&got[..11], b"hello peer ");
    assert_eq!(&got[11..], &junk);
    at_peer.write_all(&[9u8; 100_000]).await.unwrap();
    let back = read_exactly(&mut data.stream, 100_000).await;
    assert!(back.iter().all(|b| *b == 9));
    // The figures count relayed bytes while the connection lasts.
    wait_for_stats(&handle, |s| {
        s.peer_connections == 1 && s.bytes_to_clients >= 100_000 && s.bytes_to_peers >= 19
    })
    .await;

    // The peer goes: the data connection ends, the core forgets it.
    drop(at_peer);
    let n = read_to_end(&mut data.stream, "the data connection closes").await;
    assert_eq!(n, 0);
    wait_for_stats(&handle, |s| {
        s.peer_connections == 0 && s.bytes_to_clients >= 100_000 && s.bytes_to_peers >= 19
    })
    .await;
}

#[tokio::test]
async fn a_refused_connection_is_447_and_the_allocation_stays_usable() {
    let (_handle, server) = start().await;
    let (mut control, _) = tcp_allocation(server).await;
    // A port nobody listens on (bound, then closed).
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let resp = control
        .transact(Method::CONNECT, &[Attribute::XorPeerAddress(closed)])
        .await;
    assert_eq!(resp.error_code(), Some(447));
    assert!(resp.msg().verify_integrity(&control.client.key()));
    let peer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let resp = control
        .transact(
            Method::CONNECT,
            &[Attribute::XorPeerAddress(peer.local_addr().unwrap())],
        )
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
}

/// A peer that connects in gets announced with ConnectionAttempt; closing
/// the control connection (the allocation) closes that peer's connection.
#[tokio::test]
async fn a_peer_connecting_in_is_announced_and_closes_with_the_allocation() {
    let (_handle, server) = start().await;
    let (mut control, relayed) = tcp_allocation(server).await;
    let resp = control
        .transact(
            Method::CREATE_PERMISSION,
            &[Attribute::XorPeerAddress("127.0.0.1:9".parse().unwrap())],
        )
        .await;
    assert!(resp.is_success());
    let mut peer = TcpStream::connect(relayed).await.unwrap();
    let attempt = read_message(&mut control.stream).await;
    assert_eq!(attempt.msg().method(), Method::CONNECTION_ATTEMPT);
    assert_eq!(
        attempt.addr(attr_type::XOR_PEER_ADDRESS),
        Some(peer.local_addr().unwrap())
    );
    let id = connection_id(&attempt);
    let mut data = StreamClient::connect(server, &control.client).await;
    let resp = data
        .transact(Method::CONNECTION_BIND, &[Attribute::ConnectionId(id)])
        .await;
    assert!(resp.is_success());
    peer.write_all(b"from the peer").await.unwrap();
    let got = read_exactly(&mut data.stream, 13).await;
    assert_eq!(&got, b"from the peer");
    drop(control);
    let n = read_to_end(&mut peer, "the peer connection closes with the allocation").await;
    assert_eq!(n, 0);
}

/// What the peer sent before the bind, and what the client sent right
/// behind its ConnectionBind in the same write, both arrive, after the
/// success response.
#[tokio::test]
async fn bytes_sent_before_and_behind_the_bind_arrive_after_the_answer() {
    let (_handle, server) = start().await;
    let (mut control, _) = tcp_allocation(server).await;
    let (id, mut at_peer) = connect_to_listening_peer(&mut control).await;
    at_peer.write_all(b"peer spoke first").await.unwrap();

    let mut data = StreamClient::connect(server, &control.client).await;
    let tid = TransactionId::random();
    let mut bytes =
        data.client
            .request(Method::CONNECTION_BIND, tid, &[Attribute::ConnectionId(id)]);
    bytes.extend_from_slice(b"right behind");
    data.stream.write_all(&bytes).await.unwrap();
    let resp = read_message(&mut data.stream).await;
    assert_eq!(resp.msg().transaction_id(), &tid);
    assert!(resp.is_success(), "{:?}", resp.error_code());
    let got = read_exactly(&mut data.stream, 16).await;
    assert_eq!(&got, b"peer spoke first");
    let got = read_exactly(&mut at_peer, 12).await;
    assert_eq!(&got, b"right behind");
}

/// A ConnectionBind challenged for credentials (401) keeps its connection
/// and succeeds on the retry; one refused outright (400) ends it.
#[tokio::test]
async fn a_challenged_bind_retries_on_its_connection_and_a_refused_one_closes_it() {
    let (_handle, server) = start().await;
    let (mut control, _) = tcp_allocation(server).await;
    let (id, mut at_peer) = connect_to_listening_peer(&mut control).await;

    let mut guess = StreamClient::connect(server, &control.client).await;
    let resp = guess
        .transact(
            Method::CONNECTION_BIND,
            &[Attribute::ConnectionId(id.wrapping_add(2))],
        )
        .await;
    assert_eq!(resp.error_code(), Some(400));
    let n = read_to_end(&mut guess.stream, "a refused data connection is closed").await;
    assert_eq!(n, 0);

    let mut data = StreamClient::connect(server, &control.client).await;
    data.client.nonce = None;
    let tid = data
        .send(Method::CONNECTION_BIND, &[Attribute::ConnectionId(id)])
        .await;
    let challenge = read_message(&mut data.stream).await;
    assert_eq!(challenge.msg().transaction_id(), &tid);
    assert_eq!(challenge.error_code(), Some(401));
    data.client.nonce = challenge.nonce();
    let resp = data
        .transact(Method::CONNECTION_BIND, &[Attribute::ConnectionId(id)])
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    data.stream.write_all(b"bound").await.unwrap();
    let got = read_exactly(&mut at_peer, 5).await;
    assert_eq!(&got, b"bound");
}

/// The largest STUN message a stream can carry (65 552 bytes: the length
/// field's maximum) is answered, not taken for garbage.
#[tokio::test]
async fn the_largest_stun_message_over_tcp_is_answered() {
    let (_handle, server) = start().await;
    let mut stream = TcpStream::connect(server).await.unwrap();
    let tid = TransactionId::random();
    let mut b = samtale_turn::codec::MessageBuilder::new(
        samtale_turn::codec::MessageType::new(Method::BINDING, samtale_turn::codec::Class::Request),
        tid,
    );
    // A comprehension-optional attribute filling the body: 4 + 65 528.
    b.add(&Attribute::Other {
        attr_type: 0x8050,
        value: &vec![7u8; 65_528],
    });
    let request = b.finish();
    assert_eq!(request.len(), 65_552);
    stream.write_all(&request).await.unwrap();
    let resp = read_message(&mut stream).await;
    assert_eq!(resp.msg().transaction_id(), &tid);
    assert!(resp.is_success(), "{:?}", resp.error_code());
}

/// A connection that holds no allocation is closed after the allocate
/// timeout (1 s here), Binding requests or not; one with an allocation
/// stays, until its allocation ends and the timeout passes again.
#[tokio::test]
async fn connections_without_an_allocation_are_closed_after_the_allocate_timeout() {
    let (handle, server) = start_with(|c| c.allocate_timeout = Duration::from_secs(1)).await;
    let user = Client::rest(common::tcp("127.0.0.1:1"), "alice", SECRET, secs(600));
    let mut idle = StreamClient::connect(server, &user).await;
    let mut allocated = StreamClient::connect(server, &user).await;
    let resp = allocated
        .transact(Method::ALLOCATE, &[Attribute::RequestedTransport(17)])
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    let resp = idle.transact(Method::BINDING, &[]).await;
    assert!(resp.is_success());

    let n = read_to_end(&mut idle.stream, "an idle connection is closed").await;
    assert_eq!(n, 0);
    wait_for_stats(&handle, |s| s.idle_connections_closed == 1).await;
    let resp = allocated.transact(Method::REFRESH, &[]).await;
    assert!(resp.is_success(), "the allocated connection stays open");

    let resp = allocated
        .transact(Method::REFRESH, &[Attribute::Lifetime(0)])
        .await;
    assert!(resp.is_success());
    let n = read_to_end(&mut allocated.stream, "closed once its allocation ended").await;
    assert_eq!(n, 0);
    wait_for_stats(&handle, |s| {
        s.idle_connections_closed == 2 && s.unallocated_connections == 0
    })
    .await;
}

/// At `max_client_connections` a new connection is closed on arrival
/// (and counted); once one closes, its place serves a new one. Data
/// connections count too.
#[tokio::test]
async fn connections_beyond_the_cap_are_closed_on_arrival() {
    let (handle, server) = start_with(|c| c.max_client_connections = 3).await;
    let (mut control, _) = tcp_allocation(server).await;
    let (id, _at_peer) = connect_to_listening_peer(&mut control).await;
    let mut data = StreamClient::connect(server, &control.client).await;
    let resp = data
        .transact(Method::CONNECTION_BIND, &[Attribute::ConnectionId(id)])
        .await;
    assert!(resp.is_success(), "{:?}", resp.error_code());
    let mut third = StreamClient::connect(server, &control.client).await;
    assert!(third.transact(Method::BINDING, &[]).await.is_success());
    wait_for_stats(&handle, |s| s.client_connections == 3).await;

    let mut over = TcpStream::connect(server).await.unwrap();
    let n = read_to_end(&mut over, "closed on arrival").await;
    assert_eq!(n, 0);
    wait_for_stats(&handle, |s| s.connections_refused == 1).await;

    // The data connection ends: its place frees.
    drop(data);
    wait_for_stats(&handle, |s| s.client_connections == 2).await;
    let mut next = StreamClient::connect(server, &control.client).await;
    assert!(next.transact(Method::BINDING, &[]).await.is_success());
    assert!(control.transact(Method::REFRESH, &[]).await.is_success());
}
