//! `msg-bench`: send→deliver latency and durable throughput of samtale's
//! messaging with many connected devices, beside the database's own ceiling.
//!
//! It starts a `samtale` server process (SQLite in a temporary data dir, or
//! `--postgres-url`), registers `--devices` devices in 1:1 pairs (half
//! send, half receive, every one on its own authenticated WebSocket), then:
//! 1. open loop: `--rate` messages/s spread over the pairs for `--seconds`;
//!    each payload carries its send time, the receiver takes the latency
//!    when the push arrives and acknowledges it like a client;
//! 2. closed loop: every sender sends back to back for `--seconds`: durable
//!    (acknowledged) messages per second;
//! 3. ceiling: a raw `INSERT` + commit loop on the same kind of database
//!    (same file system, same pragmas; as many writers as the server's pool).
//!
//! The server cannot read payloads, so they are random bytes of a typical
//! ciphertext size (256 B) rather than real Olm messages: the load
//! generator's CPU stays on the protocol, not on crypto.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use clap::Parser;
use samtale_messaging::client::Connection;
use samtale_messaging::crypto::{Device, SignedDeviceList};
use samtale_messaging::service::api::RegisterRequest;
use samtale_messaging::{AccountId, ConversationId, DeviceId, ProfileId};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Debug, Parser)]
#[command(about = "Messaging latency and throughput vs the database ceiling")]
struct Args {
    /// Connected devices (half senders, half receivers).
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Open-loop message rate, messages per second.
    #[arg(long, default_value_t = 500)]
    rate: u64,
    /// Length of each phase.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// PostgreSQL server URL (a fresh database is created in it); without
    /// it only SQLite runs.
    #[arg(long)]
    postgres_url: Option<String>,
    /// The samtale binary (default: next to this one).
    #[arg(long)]
    samtale: Option<PathBuf>,
}

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &PathBuf, data_dir: &PathBuf, db: Option<&str>) -> anyhow::Result<Server> {
    use std::io::BufRead;
    let mut cmd = Command::new(bin);
    cmd.args(["--listen", "127.0.0.1:0", "--media-listen", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if let Some(db) = db {
        cmd.arg("--messaging-database").arg(db);
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if let Some(rest) = line.trim().strip_prefix("Open ") {
                let url = rest.split_whitespace().next().unwrap_or_default();
                let _ = tx.send(url.trim_end_matches('/').to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(60))
        .context("samtale did not print its URL")?;
    Ok(Server { child, url })
}

struct Peer {
    conn: Connection,
    device: DeviceId,
    profile: ProfileId,
    account: AccountId,
}

async fn register(url: &str, name: &str) -> anyhow::Result<Peer> {
    let mut device = Device::new(AccountId::new());
    let keys = device.key_upload(1, true);
    let req = RegisterRequest {
        display_name: name.to_owned(),
        device_name: "bench".into(),
        device: device.keys(),
        device_list: SignedDeviceList::genesis(&device),
        keys,
    };
    let mut conn = Connection::connect(url).await?;
    conn.request("register", serde_json::to_value(&req)?)
        .await?;
    conn.authenticate(&device).await?;
    let profiles = conn.request("profiles", json!({})).await?;
    let profile: ProfileId = serde_json::from_value(profiles[0]["id"].clone())?;
    Ok(Peer {
        conn,
        device: device.device_id(),
        profile,
        account: device.account_id(),
    })
}

struct Pair {
    sender: Mutex<Peer>,
    receiver_device: DeviceId,
    conversation: ConversationId,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn payload() -> String {
    let mut bytes = vec![0u8; 256];
    rand::fill(&mut bytes[8..]);
    let now = epoch().elapsed().as_nanos() as u64;
    bytes[..8].copy_from_slice(&now.to_be_bytes());
    STANDARD_NO_PAD.encode(bytes)
}

async fn send_one(pair: &Pair, n: u64) -> anyhow::Result<()> {
    let mut s = pair.sender.lock().await;
    let profile = s.profile;
    s.conn
        .request(
            "send",
            json!({
                "conversation_id": pair.conversation, "profile_id": profile,
                "client_msg_id": format!("m{n}"),
                "envelopes": [{"device_id": pair.receiver_device, "payload": payload()}],
            }),
        )
        .await?;
    Ok(())
}

/// Receive, time and acknowledge until `stop`.
async fn receive_loop(
    mut peer: Peer,
    latencies: Arc<std::sync::Mutex<Vec<u64>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(Some(ev)) = peer.conn.event(Duration::from_millis(200)).await else {
            continue;
        };
        let d = &ev["delivery"];
        let Some(p) = d["payload"].as_str() else {
            continue;
        };
        let Ok(bytes) = STANDARD_NO_PAD.decode(p) else {
            continue;
        };
        let Some(head) = bytes.get(..8) else { continue };
        let sent = u64::from_be_bytes(head.try_into().unwrap_or_default());
        let now = epoch().elapsed().as_nanos() as u64;
        if let Ok(mut l) = latencies.lock() {
            l.push(now.saturating_sub(sent));
        }
        let _ = peer
            .conn
            .request(
                "ack",
                json!({"conversation_id": d["conversation_id"], "seq": d["seq"]}),
            )
            .await;
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}

struct Outcome {
    p50: f64,
    p99: f64,
    delivered: usize,
    sent: u64,
    durable_per_s: f64,
    closed_p99: f64,
}

async fn run_load(url: &str, args: &Args) -> anyhow::Result<Outcome> {
    let half = args.devices / 2;
    let mut pairs = Vec::with_capacity(half);
    let mut receivers = Vec::with_capacity(half);
    for i in 0..half {
        let mut a = register(url, &format!("sender {i}")).await?;
        let b = register(url, &format!("receiver {i}")).await?;
        let conv = a
            .conn
            .request(
                "create_conversation",
                json!({"profile_id": a.profile, "kind": "direct",
                       "others": [{"account_id": b.account, "profile_id": b.profile}]}),
            )
            .await?;
        let conversation: ConversationId = serde_json::from_value(conv["id"].clone())?;
        pairs.push(Arc::new(Pair {
            receiver_device: b.device,
            sender: Mutex::new(a),
            conversation,
        }));
        receivers.push(b);
    }
    eprintln!("  {} devices connected", half * 2);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut rx_tasks = Vec::new();
    for b in receivers {
        rx_tasks.push(tokio::spawn(receive_loop(
            b,
            latencies.clone(),
            stop.clone(),
        )));
    }

    // Open loop at a fixed rate.
    let counter = Arc::new(AtomicU64::new(0));
    let total = args.rate * args.seconds;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / args.rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut sends = Vec::new();
    for n in 0..total {
        tick.tick().await;
        let pair = pairs[(n as usize) % pairs.len()].clone();
        let c = counter.clone();
        sends.push(tokio::spawn(async move {
            if send_one(&pair, n).await.is_ok() {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for s in sends {
        let _ = s.await;
    }
    let sent = counter.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(10);
    while latencies.lock().map(|l| l.len() as u64).unwrap_or(0) < sent && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut open: Vec<u64> = latencies
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    open.sort_unstable();

    // Closed loop: every sender back to back.
    let durable = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut workers = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let pair = pair.clone();
        let durable = durable.clone();
        workers.push(tokio::spawn(async move {
            let mut n = 1_000_000 * (i as u64 + 1);
            while Instant::now() < until {
                if send_one(&pair, n).await.is_ok() {
                    durable.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let durable_n = durable.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(20);
    while latencies.lock().map(|l| l.len() as u64).unwrap_or(0) < durable_n
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in rx_tasks {
        let _ = t.await;
    }
    let mut closed: Vec<u64> = latencies
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    closed.sort_unstable();
    Ok(Outcome {
        p50: percentile(&open, 0.50),
        p99: percentile(&open, 0.99),
        delivered: open.len(),
        sent,
        durable_per_s: durable_n as f64 / elapsed,
        closed_p99: percentile(&closed, 0.99),
    })
}

/// Raw INSERT + commit loop: commits per second with `writers` connections.
async fn ceiling(url: &str, writers: u32, seconds: u64) -> anyhow::Result<f64> {
    use sqlx::any::AnyPoolOptions;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(writers)
        .connect(url)
        .await?;
    if url.starts_with("sqlite:") {
        sqlx::query("PRAGMA journal_mode=WAL")
            .execute(&pool)
            .await?;
    }
    sqlx::query("CREATE TABLE IF NOT EXISTS ceiling (id BIGINT PRIMARY KEY, body TEXT NOT NULL)")
        .execute(&pool)
        .await?;
    let count = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let pool = pool.clone();
        let count = count.clone();
        tasks.push(tokio::spawn(async move {
            let mut id = i64::from(w) * 1_000_000_000;
            while Instant::now() < until {
                id += 1;
                let r = sqlx::query("INSERT INTO ceiling (id, body) VALUES ($1, $2)")
                    .bind(id)
                    .bind(payload())
                    .execute(&pool)
                    .await;
                if r.is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let rate = count.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
}

async fn fresh_pg_database(url: &str) -> anyhow::Result<String> {
    use sqlx::any::AnyPoolOptions;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(url)
        .await?;
    let name = format!("bench_{:x}", rand::random::<u32>());
    // The name is ours (hex digits), not input.
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await?;
    pool.close().await;
    let (base, _) = url
        .rsplit_once('/')
        .context("postgres URL needs a /database")?;
    Ok(format!("{base}/{name}"))
}

fn report(backend: &str, o: &Outcome, ceil: f64) {
    println!(
        "{backend:<10} open-loop p50 {:.2} ms  p99 {:.2} ms  ({}/{} delivered) | closed-loop {:.0} durable msg/s (p99 {:.1} ms) | raw insert+commit {:.0}/s | ratio {:.2}",
        o.p50,
        o.p99,
        o.delivered,
        o.sent,
        o.durable_per_s,
        o.closed_p99,
        ceil,
        o.durable_per_s / ceil
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = epoch();
    let bin = match &args.samtale {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("exe dir")?
            .join("samtale"),
    };
    println!(
        "msg-bench: {} devices ({} pairs), open loop {} msg/s, {} s per phase",
        args.devices,
        args.devices / 2,
        args.rate,
        args.seconds
    );
    let dir = std::env::temp_dir().join(format!("samtale-msg-bench-{:x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir)?;
    {
        let server = start_server(&bin, &dir, None)?;
        let o = run_load(&server.url, &args).await?;
        drop(server);
        let ceil = ceiling(
            &format!(
                "sqlite://{}?mode=rwc",
                dir.join("ceiling.sqlite3").display()
            ),
            4,
            args.seconds,
        )
        .await?;
        report("sqlite", &o, ceil);
    }
    if let Some(pg) = &args.postgres_url {
        let db = fresh_pg_database(pg).await?;
        let server = start_server(&bin, &dir.join("pg"), Some(&db))?;
        let o = run_load(&server.url, &args).await?;
        drop(server);
        let ceil = ceiling(&fresh_pg_database(pg).await?, 16, args.seconds).await?;
        report("postgres", &o, ceil);
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
