//! The driver's core thread: it relays over real sockets, stops when drained,
//! and stops with the tokio runtime that started it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::{Client, Response, SECRET, channel_data, secs, udp};
use samtale_turn::codec::{Attribute, Method, TransactionId};
use samtale_turn::config::TurnConfig;
use samtale_turn::driver::{self, Control, Listeners, TurnHandle};
use samtale_turn::peer_filter::PeerFilter;
use tokio::net::UdpSocket;

const BOUND: Duration = Duration::from_secs(10);

async fn start() -> TurnHandle {
    start_with(1).await
}

async fn start_with(core_threads: usize) -> TurnHandle {
    spawn(TurnConfig {
        core_threads,
        ..TurnConfig::default()
    })
    .await
}

/// A server on loopback UDP with `config` and relay ports 45000–45999.
async fn spawn(config: TurnConfig) -> TurnHandle {
    let listeners = Listeners {
        udp: UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        tcp: None,
        tls: None,
    };
    let config = TurnConfig {
        relay_ports: 45000..=45999,
        ..config
    };
    driver::spawn(config, listeners, IpAddr::from([127, 0, 0, 1])).unwrap()
}

/// A STUN Binding request answered over the core thread's socket.
async fn binding_answered(handle: &TurnHandle) -> bool {
    binding_answered_within(handle, BOUND).await
}

async fn binding_answered_within(handle: &TurnHandle, bound: Duration) -> bool {
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let request = [
        0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    client.send_to(&request, handle.udp_addr).await.unwrap();
    let mut buf = [0u8; 512];
    match tokio::time::timeout(bound, client.recv_from(&mut buf)).await {
        // A Binding success response with the same transaction ID.
        Ok(Ok((n, _))) => n >= 20 && buf[..2] == [1, 1] && buf[8..20] == request[8..20],
        _ => false,
    }
}

#[tokio::test]
async fn draining_with_no_allocations_stops_the_core() {
    let mut handle = start().await;
    assert!(binding_answered(&handle).await);
    handle.control.send(Control::Drain).await.unwrap();
    tokio::time::timeout(BOUND, handle.stopped.wait_for(|s| *s))
        .await
        .expect("core stops within the bound")
        .unwrap();
}

/// With several core threads, every one answers on the shared port, a
/// drain reaches them all, and the server counts as stopped once the last
/// one has.
#[tokio::test]
async fn draining_stops_every_core_thread() {
    let mut handle = start_with(3).await;
    assert_eq!(handle.shard_stats().len(), 3);
    // Each Binding comes from a new client port: the kernel spreads them.
    for _ in 0..12 {
        assert!(binding_answered(&handle).await);
    }
    handle.control.send(Control::Drain).await.unwrap();
    tokio::time::timeout(BOUND, handle.stopped.wait_for(|s| *s))
        .await
        .expect("all core threads stop within the bound")
        .unwrap();
    assert!(!binding_answered_within(&handle, Duration::from_millis(300)).await);
}

#[test]
fn the_core_stops_with_the_runtime_that_started_it() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (handle, answered) = runtime.block_on(async {
        let handle = start().await;
        let answered = binding_answered(&handle).await;
        (handle, answered)
    });
    assert!(answered);
    drop(runtime);
    let mut stopped = handle.stopped.clone();
    let other = tokio::runtime::Runtime::new().unwrap();
    other.block_on(async {
        tokio::time::timeout(BOUND, stopped.wait_for(|s| *s))
            .await
            .expect("core thread stops once its runtime is gone")
            .unwrap();
    });
}

/// One request over a real socket, with the 401/nonce round trip.
async fn transact(
    socket: &UdpSocket,
    server: SocketAddr,
    client: &mut Client,
    method: Method,
    attrs: &[Attribute<'_>],
) -> Response {
    for _ in 0..2 {
        let request = client.request(method, TransactionId::random(), attrs);
        socket.send_to(&request, server).await.unwrap();
        let mut buf = vec![0u8; 2048];
        let (n, _) = tokio::time::timeout(BOUND, socket.recv_from(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        let response = Response(buf[..n].to_vec());
        if response.error_code() == Some(401) && client.nonce.is_none() {
            client.nonce = response.nonce();
            continue;
        }
        return response;
    }
    panic!("no answer after the nonce")
}

/// Bursts both ways through a channel arrive whole and in order: datagrams
/// queued per relay socket and per client (GSO trains) keep each one's
/// bytes, destination and place.
#[tokio::test]
async fn bursts_through_a_channel_arrive_whole_and_in_order() {
    let handle = spawn(TurnConfig {
        core_threads: 1,
        rest_secrets: vec![samtale_turn::auth::Secret::new(SECRET)],
        allowed_peers: PeerFilter::parse_allow_list(&["127.0.0.1"]).unwrap(),
        ..TurnConfig::default()
    })
    .await;
    let (socket, peer) = (
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
        UdpSocket::bind("127.0.0.1:0").await.unwrap(),
    );
    let peer_addr = peer.local_addr().unwrap();
    let mut client = Client::rest(udp("127.0.0.1:1"), "carol", SECRET, secs(600));
    let allocated = transact(
        &socket,
        handle.udp_addr,
        &mut client,
        Method::ALLOCATE,
        &[Attribute::RequestedTransport(17)],
    )
    .await;
    assert!(allocated.is_success(), "{:?}", allocated.error_code());
    let relayed = allocated.relayed();
    let channel = 0x4000;
    let bound = transact(
        &socket,
        handle.udp_addr,
        &mut client,
        Method::CHANNEL_BIND,
        &[
            Attribute::ChannelNumber(channel),
            Attribute::XorPeerAddress(peer_addr),
        ],
    )
    .await;
    assert!(bound.is_success(), "{:?}", bound.error_code());

    // Equal sizes, then a shorter one and a longer one.
    let burst: Vec<Vec<u8>> = (0..24u8)
        .map(|i| {
            vec![
                i;
                if i == 20 {
                    300
                } else {
                    1000 + 200 * usize::from(i > 20)
                }
            ]
        })
        .collect();
    for payload in &burst {
        socket
            .send_to(&channel_data(channel, payload), handle.udp_addr)
            .await
            .unwrap();
    }
    let mut buf = vec![0u8; 4096];
    for payload in &burst {
        let (n, from) = tokio::time::timeout(BOUND, peer.recv_from(&mut buf))
            .await
            .expect("relayed to the peer")
            .unwrap();
        assert_eq!((from, &buf[..n]), (relayed, &payload[..]));
    }
    for payload in &burst {
        peer.send_to(payload, relayed).await.unwrap();
    }
    for payload in &burst {
        let (n, _) = tokio::time::timeout(BOUND, socket.recv_from(&mut buf))
            .await
            .expect("relayed to the client")
            .unwrap();
        assert_eq!(buf[..n].to_vec(), channel_data(channel, payload));
    }
}

/// While a server with several core threads drains, clients keep their
/// allocations on their own threads until they are gone: threads left
/// without allocations must not close their share of the port (the kernel
/// would rehash every client over the rest), and the server stops once the
/// last allocation is gone.
#[tokio::test]
async fn a_drain_keeps_clients_on_their_own_core_thread() {
    let mut handle = spawn(TurnConfig {
        core_threads: 8,
        rest_secrets: vec![samtale_turn::auth::Secret::new(SECRET)],
        ..TurnConfig::default()
    })
    .await;
    // Four clients on eight threads: at least four threads hold nothing,
    // and the clients almost surely sit on two threads or more.
    let mut clients = Vec::new();
    for _ in 0..4 {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut client = Client::rest(udp("127.0.0.1:1"), "dana", SECRET, secs(600));
        let allocate = [Attribute::RequestedTransport(17)];
        let allocated = transact(
            &socket,
            handle.udp_addr,
            &mut client,
            Method::ALLOCATE,
            &allocate,
        )
        .await;
        assert!(allocated.is_success(), "{:?}", allocated.error_code());
        clients.push((socket, client));
    }
    handle.control.send(Control::Drain).await.unwrap();
    // Idle threads publish (and, were they to close their sockets, would
    // do so) within a second. Every client refreshes all along.
    let until = tokio::time::Instant::now() + Duration::from_millis(2500);
    while tokio::time::Instant::now() < until {
        for (socket, client) in &mut clients {
            let refreshed = transact(socket, handle.udp_addr, client, Method::REFRESH, &[]).await;
            assert!(
                refreshed.is_success(),
                "refresh during the drain: {:?}",
                refreshed.error_code()
            );
        }
        assert!(!*handle.stopped.borrow(), "stopped with allocations left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (socket, client) in &mut clients {
        let deleted = transact(
            socket,
            handle.udp_addr,
            client,
            Method::REFRESH,
            &[Attribute::Lifetime(0)],
        )
        .await;
        assert!(deleted.is_success(), "{:?}", deleted.error_code());
    }
    tokio::time::timeout(BOUND, handle.stopped.wait_for(|s| *s))
        .await
        .expect("all core threads stop once the last allocation is gone")
        .unwrap();
}
