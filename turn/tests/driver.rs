//! The driver's core thread: it relays over real sockets, stops when drained,
//! and stops with the tokio runtime that started it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::IpAddr;
use std::time::Duration;

use samtale_turn::config::TurnConfig;
use samtale_turn::driver::{self, Control, Listeners, TurnHandle};
use tokio::net::UdpSocket;

const BOUND: Duration = Duration::from_secs(10);

async fn start() -> TurnHandle {
    start_with(1).await
}

async fn start_with(core_threads: usize) -> TurnHandle {
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let config = TurnConfig {
        relay_ports: 45000..=45999,
        core_threads,
        ..TurnConfig::default()
    };
    let listeners = Listeners {
        udp,
        tcp: None,
        tls: None,
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
