//! Side by side: coturn's `turnserver` and `samtale-turn`, configured alike
//! (REST secret, loopback peers allowed, no TLS), each driven by the same
//! `turnutils_uclient` load against `turnutils_peer`. Prints relayed
//! messages per CPU-second of the server process, loss, and RSS per
//! allocation, with the ratio (medians; runs alternate between the two
//! servers). Linux only (/proc).
//!
//! `cargo build --release -p samtale-turn && target/release/turn-bench`

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    /// The samtale-turn binary.
    #[arg(long)]
    samtale_turn: Option<PathBuf>,
    /// Sessions per run (uclient -m), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,200")]
    sessions: Vec<u32>,
    /// Messages per session (uclient -n).
    #[arg(long, default_value_t = 5000)]
    messages: u32,
    /// Milliseconds between a session's messages (uclient -z). Over TLS
    /// use 5 or more: at 1 uclient stalls against coturn.
    #[arg(long, default_value_t = 1)]
    interval_ms: u32,
    /// Runs per configuration; the median is reported.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// samtale-turn's `core_threads` (0: its default, one per two CPUs).
    #[arg(long, default_value_t = 0)]
    core_threads: usize,
    /// TCP allocations (RFC 6062): uclient `-T`, whose sessions are each
    /// other's peers over TCP data connections (a full mesh), instead of
    /// UDP with ChannelData to `turnutils_peer`.
    #[arg(long)]
    tcp_relay: bool,
    /// Clients reach the server over TCP (uclient `-t`: RFC 8656 §4
    /// framing, as browsers behind UDP-blocking firewalls do); the relay
    /// to `turnutils_peer` stays UDP.
    #[arg(long, conflicts_with = "tcp_relay")]
    client_tcp: bool,
    /// Clients reach the server over TLS (uclient `-t -S`, as `turns:`
    /// does); both servers get the same self-signed certificate (made with
    /// `openssl`). With `--tcp-relay`: TCP allocations whose control and
    /// data connections are TLS (uclient `-T -S`).
    #[arg(long, conflicts_with = "client_tcp")]
    client_tls: bool,
}

/// How uclient reaches the server and its peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Udp,
    ClientTcp,
    ClientTls,
    TcpRelay,
    TcpRelayTls,
}

impl Args {
    fn mode(&self) -> Mode {
        match (self.tcp_relay, self.client_tcp, self.client_tls) {
            (true, _, true) => Mode::TcpRelayTls,
            (true, _, _) => Mode::TcpRelay,
            (_, true, _) => Mode::ClientTcp,
            (_, _, true) => Mode::ClientTls,
            _ => Mode::Udp,
        }
    }
}

/// Where both servers listen for TLS, and the certificate they present.
struct Tls {
    port: u16,
    cert: PathBuf,
    key: PathBuf,
}

const SECRET: &str = "bench-secret";
/// How long one uclient run may take before it counts as stalled.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(300);

/// A uclient run that did not finish in [`CLIENT_TIMEOUT`]. It is left
/// out of the median and counted.
#[derive(Debug, thiserror::Error)]
#[error("turnutils_uclient stalled (still running after {CLIENT_TIMEOUT:?})")]
struct Stalled;

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0")?;
        let port = udp.local_addr()?.port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free port")
}

fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok((f[11].parse::<f64>()? + f[12].parse::<f64>()?) / 100.0)
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS")
}

fn start_coturn(port: u16, relay: (u16, u16), tls: Option<&Tls>) -> anyhow::Result<Proc> {
    let tls_args: Vec<std::ffi::OsString> = match tls {
        None => vec!["--no-tls".into()],
        Some(tls) => vec![
            "--tls-listening-port".into(),
            tls.port.to_string().into(),
            "--cert".into(),
            tls.cert.clone().into(),
            "--pkey".into(),
            tls.key.clone().into(),
        ],
    };
    let child = Command::new("turnserver")
        .args(tls_args)
        .args([
            "-n",
            "--no-cli",
            "--no-dtls",
            "--listening-ip",
            "127.0.0.1",
            "--relay-ip",
            "127.0.0.1",
        ])
        .args([
            "--listening-port",
            &port.to_string(),
            "--use-auth-secret",
            "--static-auth-secret",
            SECRET,
        ])
        .args([
            "--realm",
            "samtale",
            "--allow-loopback-peers",
            "--no-stdout-log",
            "--simple-log",
            "--log-file",
            "/dev/null",
        ])
        .args([
            "--min-port",
            &relay.0.to_string(),
            "--max-port",
            &relay.1.to_string(),
            "--user-quota",
            "0",
            "--total-quota",
            "0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("turnserver (apt-get install coturn)")?;
    Ok(Proc(child))
}

fn start_samtale(
    binary: &PathBuf,
    port: u16,
    relay: (u16, u16),
    core_threads: usize,
    tls: Option<&Tls>,
) -> anyhow::Result<Proc> {
    // TCP listener for `--tcp-relay`; the mesh needs a connection per
    // other session on each allocation.
    let dir = std::env::temp_dir().join(format!("turn-bench-{port}"));
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("turn.toml");
    let mut toml = format!(
        "listen_udp = \"127.0.0.1:{port}\"\nrelay_ports = \"{}-{}\"\nrest_secrets = [\"{SECRET}\"]\nallowed_peers = [\"127.0.0.1\"]\nmax_allocations_per_user = 100000\nmax_allocations_total = 100000\nmetrics_listen = \"127.0.0.1:0\"\ncore_threads = {core_threads}\nlisten_tcp = \"127.0.0.1:{port}\"\nmax_connections_per_allocation = 1000\n",
        relay.0, relay.1
    );
    if let Some(tls) = tls {
        toml += &format!(
            "listen_tls = \"127.0.0.1:{}\"\ntls_cert = {:?}\ntls_key = {:?}\n",
            tls.port, tls.cert, tls.key
        );
    }
    std::fs::write(&config, toml)?;
    let child = Command::new(binary)
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    Ok(Proc(child))
}

fn wait_listening(port: u16) -> anyhow::Result<()> {
    for _ in 0..100 {
        // A STUN Binding request; any answer means the server is up.
        let sock = std::net::UdpSocket::bind("127.0.0.1:0")?;
        sock.set_read_timeout(Some(Duration::from_millis(100)))?;
        let req = [
            0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
        ];
        sock.send_to(&req, ("127.0.0.1", port))?;
        let mut buf = [0u8; 512];
        if sock.recv_from(&mut buf).is_ok() {
            return Ok(());
        }
    }
    bail!("server on {port} never answered")
}

#[derive(Debug, Clone, Copy)]
struct Run {
    relayed: u64,
    lost_pct: f64,
    cpu: f64,
    rss_per_alloc_kib: f64,
}

impl Run {
    fn per_cpu_second(&self) -> f64 {
        self.relayed as f64 / self.cpu.max(1e-9)
    }
}

fn number_after(text: &str, key: &str) -> Option<f64> {
    let rest = &text[text.rfind(key)? + key.len()..];
    rest.chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect::<String>()
        .parse()
        .ok()
}

fn load(
    server: &Proc,
    port: u16,
    (sessions, messages, interval_ms): (u32, u32, u32),
    mode: Mode,
) -> anyhow::Result<Run> {
    let tcp_relay = matches!(mode, Mode::TcpRelay | Mode::TcpRelayTls);
    let peer_port = free_port()?;
    // With `-T` uclient's sessions are the peers.
    let _peer = if tcp_relay {
        None
    } else {
        Some(Proc(
            Command::new("turnutils_peer")
                .args(["-L", "127.0.0.1", "-p", &peer_port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("turnutils_peer")?,
        ))
    };
    std::thread::sleep(Duration::from_millis(200));
    let pid = server.0.id();
    let rss0 = rss_kib(pid)?;
    let cpu0 = cpu_seconds(pid)?;
    let mode: &[&str] = match mode {
        Mode::TcpRelay => &["-T"],
        Mode::TcpRelayTls => &["-T", "-S"],
        Mode::ClientTcp => &["-t", "-c", "-e", "127.0.0.1", "-r"],
        Mode::ClientTls => &["-t", "-S", "-c", "-e", "127.0.0.1", "-r"],
        Mode::Udp => &["-c", "-e", "127.0.0.1", "-r"],
    };
    let output_path =
        std::env::temp_dir().join(format!("turn-bench-uclient-{}.log", std::process::id()));
    let output = std::fs::File::create(&output_path)?;
    let mut client = Command::new("turnutils_uclient")
        .args([
            "-m",
            &sessions.to_string(),
            "-n",
            &messages.to_string(),
            "-l",
            "1000",
            "-z",
            &interval_ms.to_string(),
        ])
        .args(mode)
        .args((!tcp_relay).then(|| peer_port.to_string()))
        .args(["-W", SECRET, "-p", &port.to_string(), "127.0.0.1"])
        // To a file, not a pipe: nobody reads a pipe while uclient runs,
        // and a full one would stop it.
        .stdout(output.try_clone()?)
        .stderr(output)
        .spawn()
        .context("turnutils_uclient")?;
    // Peak RSS while the allocations live.
    let mut rss_peak = rss0;
    let started = std::time::Instant::now();
    loop {
        if client.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > CLIENT_TIMEOUT {
            let _ = client.kill();
            let _ = client.wait();
            return Err(Stalled.into());
        }
        rss_peak = rss_peak.max(rss_kib(pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_seconds(pid)? - cpu0;
    client.wait()?;
    let text = String::from_utf8_lossy(&std::fs::read(&output_path)?).into_owned();
    std::fs::remove_file(&output_path).ok();
    let recv =
        number_after(&text, "tot_recv_msgs=").context("no tot_recv_msgs in uclient output")?;
    let lost = number_after(&text, "Total lost packets ").unwrap_or(f64::NAN);
    let sent = number_after(&text, "tot_send_msgs=").unwrap_or(recv);
    Ok(Run {
        // Each delivered message crossed the server twice: to the peer and
        // back (UDP), or out of one TCP allocation and into another (`-T`).
        relayed: (recv * 2.0) as u64,
        lost_pct: 100.0 * lost / sent.max(1.0),
        cpu,
        rss_per_alloc_kib: rss_peak.saturating_sub(rss0) as f64 / f64::from(sessions),
    })
}

fn median(mut runs: Vec<Run>) -> Option<Run> {
    runs.sort_by(|a, b| a.per_cpu_second().total_cmp(&b.per_cpu_second()));
    runs.get(runs.len() / 2).copied()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let binary = args.samtale_turn.clone().unwrap_or_else(|| {
        let exe = std::env::current_exe().unwrap_or_default();
        exe.with_file_name("samtale-turn")
    });
    println!(
        "server | sessions | relayed msgs | loss % | server CPU s | msgs per CPU-second | RSS KiB per allocation"
    );
    println!("--- | ---: | ---: | ---: | ---: | ---: | ---:");
    const SERVERS: [&str; 2] = ["coturn", "samtale-turn"];
    let mode = args.mode();
    let certificate = if matches!(mode, Mode::ClientTls | Mode::TcpRelayTls) {
        let dir = std::env::temp_dir().join(format!("turn-bench-tls-{}", std::process::id()));
        Some(samtale_turn::driver::tls::self_signed_localhost(&dir).context("openssl")?)
    } else {
        None
    };
    for &sessions in &args.sessions {
        // Runs alternate between the servers, so load from other work on
        // the machine falls on both alike.
        let mut runs: [Vec<Run>; 2] = [Vec::new(), Vec::new()];
        let mut stalled = [0usize; 2];
        for _ in 0..args.runs.max(1) {
            for (i, name) in SERVERS.iter().enumerate() {
                let port = free_port()?;
                let relay = (50_000, 59_999);
                let tls = match &certificate {
                    Some((cert, key)) => Some(Tls {
                        port: free_port()?,
                        cert: cert.clone(),
                        key: key.clone(),
                    }),
                    None => None,
                };
                let server = if *name == "coturn" {
                    start_coturn(port, relay, tls.as_ref())?
                } else {
                    start_samtale(&binary, port, relay, args.core_threads, tls.as_ref())?
                };
                wait_listening(port)?;
                let load_spec = (sessions, args.messages, args.interval_ms);
                // uclient reaches the server at the TLS port with `-S`.
                let client_port = tls.as_ref().map_or(port, |t| t.port);
                match load(&server, client_port, load_spec, mode) {
                    Ok(run) => runs[i].push(run),
                    Err(e) if e.is::<Stalled>() => {
                        eprintln!("{name}, {sessions} sessions: {e}");
                        stalled[i] += 1;
                    }
                    Err(e) => return Err(e.context(format!("{name}, {sessions} sessions"))),
                }
            }
        }
        let mut results = Vec::new();
        for ((name, runs), stalled) in SERVERS.iter().zip(runs).zip(stalled) {
            let note = if stalled > 0 {
                format!(
                    " ({stalled} of {} runs stalled, left out)",
                    args.runs.max(1)
                )
            } else {
                String::new()
            };
            let Some(r) = median(runs) else {
                println!("{name} | {sessions} | every run stalled | | | | |");
                continue;
            };
            println!(
                "{name} | {sessions} | {} | {:.2} | {:.2} | {:.0} | {:.1}{note}",
                r.relayed,
                r.lost_pct,
                r.cpu,
                r.per_cpu_second(),
                r.rss_per_alloc_kib
            );
            results.push(r);
        }
        if let [coturn, samtale] = results[..] {
            println!(
                "ratio samtale-turn / coturn at {sessions} sessions: {:.2}× messages per CPU-second",
                samtale.per_cpu_second() / coturn.per_cpu_second().max(1e-9)
            );
        }
    }
    Ok(())
}
