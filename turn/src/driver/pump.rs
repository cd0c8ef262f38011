//! Relays a joined data connection and its peer connection (RFC 6062) both
//! ways: bytes are counted as they pass, and both directions together stay
//! under the allocation's bandwidth cap. Over the cap reading pauses, so
//! TCP flow control slows the sender; nothing is dropped.
//!
//! When either side ends its stream (or fails), what it sent is delivered,
//! the other side's sending is shut, and the relay ends: both connections
//! close, as coturn does. Keeping the other direction open would let a
//! client hold a peer connection whose peer is gone until the allocation
//! expires.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::time::Instant;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

const CHUNK: usize = 4_096;

/// A token bucket shared by both directions of every data connection of
/// one allocation (burst: one second's worth).
pub(super) struct Pace {
    bytes_per_sec: u64,
    tokens: f64,
    at: Instant,
}

impl Pace {
    pub(super) fn new(bytes_per_sec: u64, now: Instant) -> Self {
        Pace {
            bytes_per_sec,
            tokens: bytes_per_sec as f64,
            at: now,
        }
    }

    /// Takes `n` bytes at `now`; returns how long to wait before reading
    /// on.
    pub(super) fn take(&mut self, n: usize, now: Instant) -> Duration {
        if self.bytes_per_sec == 0 {
            return Duration::ZERO;
        }
        let rate = self.bytes_per_sec as f64;
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        // The core thread and tokio share a budget: time never runs back.
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed * rate).min(rate) - n as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate)
        }
    }
}

/// Copies `from` to `to` until `from` ends, then shuts `to`'s sending side.
async fn one_way<R, W>(mut from: R, mut to: W, count: &AtomicU64, pace: &Mutex<Pace>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let Some(bytes) = buf.get(..n) else {
            break;
        };
        // Flushed: a TLS stream may otherwise keep the end of a burst.
        if to.write_all(bytes).await.is_err() || to.flush().await.is_err() {
            break;
        }
        count.fetch_add(n as u64, Ordering::Relaxed);
        let now = tokio::time::Instant::now().into_std();
        let wait = pace.lock().map_or(Duration::ZERO, |mut p| p.take(n, now));
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
    let _ = to.shutdown().await;
}

/// Relays until one side ends or `stop` fires (its sender is
/// dropped when the core closes the connection). `early` is what the
/// client sent right behind its ConnectionBind; `pace` is the allocation's
/// budget. Returns the bytes relayed (to the peer, to the client).
pub(super) async fn relay<C, P>(
    client: C,
    mut peer: P,
    early: Vec<u8>,
    pace: Arc<Mutex<Pace>>,
    stop: oneshot::Receiver<()>,
) -> (u64, u64)
where
    C: AsyncRead + AsyncWrite + Unpin,
    P: AsyncRead + AsyncWrite + Unpin,
{
    let to_peer = AtomicU64::new(0);
    let to_client = AtomicU64::new(0);
    let relaying = async {
        if !early.is_empty() {
            if peer.write_all(&early).await.is_err() || peer.flush().await.is_err() {
                return;
            }
            to_peer.fetch_add(early.len() as u64, Ordering::Relaxed);
        }
        drop(early);
        let (client_r, client_w) = tokio::io::split(client);
        let (peer_r, peer_w) = tokio::io::split(peer);
        tokio::select! {
            () = one_way(client_r, peer_w, &to_peer, &pace) => {}
            () = one_way(peer_r, client_w, &to_client, &pace) => {}
        }
    };
    tokio::select! {
        () = relaying => {}
        _ = stop => {}
    }
    (
        to_peer.load(Ordering::Relaxed),
        to_client.load(Ordering::Relaxed),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn uncapped() -> Arc<Mutex<Pace>> {
        capped(0)
    }

    fn capped(bytes_per_sec: u64) -> Arc<Mutex<Pace>> {
        Arc::new(Mutex::new(Pace::new(
            bytes_per_sec,
            tokio::time::Instant::now().into_std(),
        )))
    }

    #[test]
    fn the_bucket_lets_a_second_through_then_paces() {
        let now = Instant::now();
        let mut pace = Pace::new(1000, now);
        assert_eq!(pace.take(1000, now), Duration::ZERO);
        let wait = pace.take(500, now);
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(pace.take(0, now + wait), Duration::ZERO, "refilled");
        assert_eq!(Pace::new(0, now).take(1 << 30, now), Duration::ZERO);
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_and_one_side_ending_closes_both() {
        let (client, mut client_far) = tokio::io::duplex(4096);
        let (peer, mut peer_far) = tokio::io::duplex(4096);
        let (_stop_tx, stop) = oneshot::channel();
        let relaying = tokio::spawn(relay(client, peer, b"early".to_vec(), uncapped(), stop));
        client_far.write_all(b" and later").await.unwrap();
        let mut at_peer = [0u8; 15];
        peer_far.read_exact(&mut at_peer).await.unwrap();
        assert_eq!(&at_peer, b"early and later");
        peer_far.write_all(&[7u8; 1000]).await.unwrap();
        let mut at_client = [0u8; 1000];
        client_far.read_exact(&mut at_client).await.unwrap();
        assert_eq!(at_client, [7u8; 1000]);
        // The peer ends its stream: the relay ends, and the client sees
        // the end too.
        peer_far.shutdown().await.unwrap();
        assert_eq!(relaying.await.unwrap(), (15, 1000));
        let mut rest = Vec::new();
        assert_eq!(client_far.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn dropping_the_stop_sender_ends_the_relay_with_its_counts() {
        let (client, mut client_far) = tokio::io::duplex(64);
        let (peer, mut peer_far) = tokio::io::duplex(64);
        let (stop_tx, stop) = oneshot::channel::<()>();
        let relaying = tokio::spawn(relay(client, peer, Vec::new(), uncapped(), stop));
        client_far.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        peer_far.read_exact(&mut got).await.unwrap();
        drop(stop_tx);
        assert_eq!(relaying.await.unwrap(), (4, 0));
        // Both ends see the connection gone.
        let mut rest = Vec::new();
        assert_eq!(client_far.read_to_end(&mut rest).await.unwrap(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cap_holds_both_directions_together() {
        let (client, mut client_far) = tokio::io::duplex(1 << 20);
        let (peer, mut peer_far) = tokio::io::duplex(1 << 20);
        let (_stop_tx, stop) = oneshot::channel();
        let start = tokio::time::Instant::now();
        let relaying = tokio::spawn(relay(client, peer, Vec::new(), capped(10_000), stop));
        // 30 000 bytes each way at 10 000 bytes/s with a 10 000-byte burst:
        // 5 s of (virtual) time, less the pause each direction takes after
        // its last chunk is delivered; uncapped it would take none.
        let data = vec![1u8; 30_000];
        let (a, b) = tokio::join!(
            async {
                client_far.write_all(&data).await.unwrap();
                let mut v = vec![0u8; 30_000];
                client_far.read_exact(&mut v).await.unwrap();
                v.len()
            },
            async {
                peer_far.write_all(&data).await.unwrap();
                let mut v = vec![0u8; 30_000];
                peer_far.read_exact(&mut v).await.unwrap();
                v.len()
            }
        );
        assert_eq!((a, b), (30_000, 30_000));
        client_far.shutdown().await.unwrap();
        assert_eq!(relaying.await.unwrap(), (30_000, 30_000));
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(3), "{took:?}");
    }

    /// Two data connections of one allocation share its budget: 20 000
    /// bytes each, one way, at 10 000 bytes/s with a 10 000-byte burst take
    /// about 3 s together; each alone would pass within 1 s.
    #[tokio::test(start_paused = true)]
    async fn data_connections_of_one_allocation_share_the_cap() {
        let pace = capped(10_000);
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let (client, mut client_far) = tokio::io::duplex(1 << 20);
            let (peer, mut peer_far) = tokio::io::duplex(1 << 20);
            let (stop_tx, stop) = oneshot::channel::<()>();
            let relaying = tokio::spawn(relay(client, peer, Vec::new(), pace.clone(), stop));
            tasks.push(tokio::spawn(async move {
                peer_far.write_all(&[3u8; 20_000]).await.unwrap();
                let mut got = vec![0u8; 20_000];
                client_far.read_exact(&mut got).await.unwrap();
                drop(stop_tx);
                relaying.await.unwrap()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), (0, 20_000));
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(1_500), "{took:?}");
    }
}
