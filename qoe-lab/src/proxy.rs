//! A UDP impairment proxy for live calls on loopback: clients (bots,
//! browsers) send to the proxy, the proxy sends to the SFU through one
//! upstream socket per client (so the SFU sees distinct peers), and the
//! SFU's answers come back the same way. Each direction runs through its
//! own [`NetemQueue`] (loss, delay, jitter, rate, duplication), in a
//! virtual time that is the wall time since the proxy started.
//!
//! The SFU must announce the proxy's address in its ICE candidates
//! (samtale's `announce_addr`), so that no packet bypasses the
//! impairment; the counters let a test prove it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::netem::{Fate, NetemConfig, NetemError, NetemQueue};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// Binding a socket failed.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Bad emulator settings.
    #[error(transparent)]
    Netem(#[from] NetemError),
}

/// The emulator settings of each direction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProxyConfig {
    /// Client → SFU.
    pub to_sfu: NetemConfig,
    /// SFU → client.
    pub to_client: NetemConfig,
}

/// Counters of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DirectionStats {
    /// Datagrams received by the proxy.
    pub packets_in: u64,
    /// Datagrams sent on (copies included).
    pub packets_out: u64,
    /// Dropped by the loss model or the rate limiter's queue.
    pub dropped: u64,
    /// Extra copies made by duplication.
    pub duplicated: u64,
    /// Datagrams that had nowhere to go (SFU address not set yet).
    pub unrouted: u64,
    /// Datagrams whose send failed.
    pub send_errors: u64,
}

impl DirectionStats {
    /// Datagrams received but neither sent, dropped nor unrouted: in
    /// flight in the emulator.
    pub fn in_flight(&self) -> u64 {
        (self.packets_in + self.duplicated)
            .saturating_sub(self.packets_out + self.send_errors + self.dropped + self.unrouted)
    }
}

/// Counters of both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ProxyStats {
    /// Client → SFU.
    pub to_sfu: DirectionStats,
    /// SFU → client.
    pub to_client: DirectionStats,
    /// Clients seen.
    pub clients: u64,
}

enum Inbound {
    /// From a client (its address).
    FromClient(SocketAddr, Vec<u8>),
    /// From the SFU, for a client (its address).
    FromSfu(SocketAddr, Vec<u8>),
}

/// A running proxy. Stops (and closes its sockets) on [`ImpairmentProxy::stop`]
/// or drop.
pub struct ImpairmentProxy {
    addr: SocketAddr,
    upstream: Arc<OnceLock<SocketAddr>>,
    stats: Arc<Mutex<ProxyStats>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ImpairmentProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImpairmentProxy")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream.get())
            .finish()
    }
}

impl ImpairmentProxy {
    /// Binds `listen` (use port 0 for any) and starts forwarding once
    /// [`ImpairmentProxy::set_upstream`] names the SFU's media address.
    pub async fn bind(listen: SocketAddr, config: ProxyConfig) -> Result<Self, ProxyError> {
        let to_sfu = NetemQueue::new(config.to_sfu)?;
        let to_client = NetemQueue::new(config.to_client)?;
        let socket = UdpSocket::bind(listen)
            .await
            .map_err(|source| ProxyError::Bind {
                addr: listen,
                source,
            })?;
        let addr = socket.local_addr().map_err(|source| ProxyError::Bind {
            addr: listen,
            source,
        })?;
        let upstream = Arc::new(OnceLock::new());
        let stats = Arc::new(Mutex::new(ProxyStats::default()));
        let task = tokio::spawn(drive(
            Arc::new(socket),
            upstream.clone(),
            stats.clone(),
            to_sfu,
            to_client,
        ));
        Ok(Self {
            addr,
            upstream,
            stats,
            task: Some(task),
        })
    }

    /// Binds and forwards to `upstream` at once.
    pub async fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        config: ProxyConfig,
    ) -> Result<Self, ProxyError> {
        let proxy = Self::bind(listen, config).await?;
        proxy.set_upstream(upstream);
        Ok(proxy)
    }

    /// The address clients send to: announce this one.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Names the SFU's media address (only the first call counts).
    pub fn set_upstream(&self, sfu: SocketAddr) {
        let _ = self.upstream.set(sfu);
    }

    /// The counters so far.
    pub fn stats(&self) -> ProxyStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// Stops forwarding and closes every socket.
    pub async fn stop(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for ImpairmentProxy {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A task aborted when this is dropped (also when the proxy's own task is
/// aborted), so no reader outlives the proxy or keeps a socket open.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One upstream socket per client, and the reader task feeding it in.
struct Client {
    socket: Arc<UdpSocket>,
    _reader: AbortOnDrop,
}

async fn read_loop(
    socket: Arc<UdpSocket>,
    tx: mpsc::UnboundedSender<Inbound>,
    wrap: impl Fn(SocketAddr, Vec<u8>) -> Inbound,
) {
    let mut buf = vec![0u8; 65_536];
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        if tx.send(wrap(from, buf[..n].to_vec())).is_err() {
            break;
        }
    }
}

async fn drive(
    public: Arc<UdpSocket>,
    upstream: Arc<OnceLock<SocketAddr>>,
    stats: Arc<Mutex<ProxyStats>>,
    mut to_sfu: NetemQueue<(SocketAddr, Vec<u8>)>,
    mut to_client: NetemQueue<(SocketAddr, Vec<u8>)>,
) {
    let start = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _public_reader = AbortOnDrop(tokio::spawn(read_loop(
        public.clone(),
        tx.clone(),
        Inbound::FromClient,
    )));
    // Upstream sockets by client address.
    let mut clients: HashMap<SocketAddr, Client> = HashMap::new();
    let count = |f: &dyn Fn(&mut ProxyStats)| {
        if let Ok(mut s) = stats.lock() {
            f(&mut s);
        }
    };
    loop {
        let deadline = [to_sfu.next_deadline(), to_client.next_deadline()]
            .into_iter()
            .flatten()
            .min();
        let inbound = match deadline {
            Some(d) => {
                let at = tokio::time::Instant::from_std(start + d);
                tokio::select! {
                    m = rx.recv() => m,
                    _ = tokio::time::sleep_until(at) => None,
                }
            }
            None => match rx.recv().await {
                Some(m) => Some(m),
                None => break,
            },
        };
        let now = start.elapsed();
        match inbound {
            Some(Inbound::FromClient(client, data)) => {
                count(&|s| s.to_sfu.packets_in += 1);
                if let std::collections::hash_map::Entry::Vacant(slot) = clients.entry(client) {
                    let Ok(socket) = UdpSocket::bind(SocketAddr::new(public_ip(&public), 0)).await
                    else {
                        count(&|s| s.to_sfu.unrouted += 1);
                        continue;
                    };
                    let socket = Arc::new(socket);
                    // Whatever arrives on a client's upstream socket goes
                    // back to that client (only the SFU knows its address).
                    let reader = AbortOnDrop(tokio::spawn(read_loop(
                        socket.clone(),
                        tx.clone(),
                        move |_, data| Inbound::FromSfu(client, data),
                    )));
                    slot.insert(Client {
                        socket,
                        _reader: reader,
                    });
                    count(&|s| s.clients += 1);
                }
                let size = data.len() + 28;
                if let Ok(fate) = to_sfu.push(now, (client, data), size) {
                    count_fate(&stats, fate, true);
                }
            }
            Some(Inbound::FromSfu(client, data)) => {
                count(&|s| s.to_client.packets_in += 1);
                let size = data.len() + 28;
                if let Ok(fate) = to_client.push(now, (client, data), size) {
                    count_fate(&stats, fate, false);
                }
            }
            None => {}
        }
        let now = start.elapsed();
        while let Some((_, (client, data))) = to_sfu.poll(now) {
            let sent = match (upstream.get(), clients.get(&client)) {
                (Some(sfu), Some(c)) => Some(c.socket.send_to(&data, sfu).await.is_ok()),
                _ => None,
            };
            count(&|s| match sent {
                Some(true) => s.to_sfu.packets_out += 1,
                Some(false) => s.to_sfu.send_errors += 1,
                None => s.to_sfu.unrouted += 1,
            });
        }
        while let Some((_, (client, data))) = to_client.poll(now) {
            let ok = public.send_to(&data, client).await.is_ok();
            count(&|s| {
                if ok {
                    s.to_client.packets_out += 1;
                } else {
                    s.to_client.send_errors += 1;
                }
            });
        }
    }
}

fn public_ip(socket: &UdpSocket) -> std::net::IpAddr {
    socket
        .local_addr()
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(std::net::IpAddr::from([127, 0, 0, 1]))
}

fn count_fate(stats: &Mutex<ProxyStats>, fate: Fate, to_sfu: bool) {
    let Ok(mut s) = stats.lock() else { return };
    let d = if to_sfu {
        &mut s.to_sfu
    } else {
        &mut s.to_client
    };
    match fate {
        Fate::Lost | Fate::QueueFull => d.dropped += 1,
        Fate::Delivered {
            duplicate: Some(_), ..
        } => d.duplicated += 1,
        Fate::Delivered { .. } => {}
    }
}

/// How long to wait for in-flight packets: the configured delay plus
/// four jitter deviations plus 100 ms.
pub fn drain_time(config: &ProxyConfig) -> Duration {
    let one = |c: &NetemConfig| c.delay + 4 * c.jitter;
    one(&config.to_sfu).max(one(&config.to_client)) + Duration::from_millis(100)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::netem::LossModel;

    async fn wait_for(proxy: &ImpairmentProxy, pred: impl Fn(&ProxyStats) -> bool) -> ProxyStats {
        for _ in 0..500 {
            let s = proxy.stats();
            if pred(&s) {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        proxy.stats()
    }

    /// An echo "SFU" and a client through the proxy with 10 % loss toward
    /// the SFU: counters add up, and the echo comes back through the
    /// proxy's address only.
    #[tokio::test]
    async fn forwards_both_ways_and_counts() {
        let sfu = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let sfu_addr = sfu.local_addr().unwrap();
        let echo = tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = sfu.recv_from(&mut buf).await {
                let _ = sfu.send_to(&buf[..n], from).await;
            }
        });
        let config = ProxyConfig {
            to_sfu: NetemConfig {
                seed: 5,
                loss: LossModel::Random { p: 0.1 },
                ..NetemConfig::default()
            },
            to_client: NetemConfig {
                delay: Duration::from_millis(5),
                ..NetemConfig::default()
            },
        };
        let proxy = ImpairmentProxy::start("127.0.0.1:0".parse().unwrap(), sfu_addr, config)
            .await
            .unwrap();
        let client = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        // Read echoes while sending, so the client's socket buffer never
        // overflows; every echo must come from the proxy's address.
        let proxy_addr = proxy.local_addr();
        let reader = {
            let client = client.clone();
            tokio::spawn(async move {
                let (mut got, mut buf) = (0u64, [0u8; 64]);
                while let Ok(Ok((_, from))) =
                    tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buf)).await
                {
                    assert_eq!(from, proxy_addr, "answers come from the proxy");
                    got += 1;
                }
                got
            })
        };
        const N: u64 = 400;
        for i in 0..N {
            client.send_to(&i.to_be_bytes(), proxy_addr).await.unwrap();
            if i % 50 == 49 {
                tokio::task::yield_now().await;
            }
        }
        let s = wait_for(&proxy, |s| {
            s.to_sfu.packets_in == N && s.to_client.packets_out == s.to_sfu.packets_out
        })
        .await;
        assert_eq!(s.to_sfu.packets_in, N);
        assert_eq!(s.to_sfu.packets_out + s.to_sfu.dropped, N);
        // 10 % of 400: sd = √(400·0.1·0.9) = 6; ±4 sd.
        assert!((16..=64).contains(&s.to_sfu.dropped), "{s:?}");
        assert_eq!(s.to_client.packets_in, s.to_sfu.packets_out);
        assert_eq!(s.to_client.packets_out, s.to_client.packets_in);
        assert_eq!(s.clients, 1);
        // The reader stops 1 s after the last echo.
        assert_eq!(reader.await.unwrap(), s.to_client.packets_out);
        proxy.stop().await;
        echo.abort();
    }

    #[tokio::test]
    async fn unrouted_until_upstream_is_set_and_bad_config_is_an_error() {
        let bad = ProxyConfig {
            to_sfu: NetemConfig {
                loss: LossModel::Random { p: 1.5 },
                ..NetemConfig::default()
            },
            ..ProxyConfig::default()
        };
        assert!(matches!(
            ImpairmentProxy::bind("127.0.0.1:0".parse().unwrap(), bad).await,
            Err(ProxyError::Netem(_))
        ));
        let proxy = ImpairmentProxy::bind("127.0.0.1:0".parse().unwrap(), ProxyConfig::default())
            .await
            .unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        client.send_to(b"x", proxy.local_addr()).await.unwrap();
        let s = wait_for(&proxy, |s| s.to_sfu.unrouted == 1).await;
        assert_eq!((s.to_sfu.packets_in, s.to_sfu.unrouted), (1, 1));
        proxy.stop().await;
    }
}
