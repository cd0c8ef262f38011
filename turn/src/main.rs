//! `samtale-turn`: the EU TURN/STUN server as its own process.
//!
//! SIGHUP reloads the config file and the TLS certificate without dropping
//! allocations; SIGTERM drains (new allocations refused, existing ones run
//! out, bounded by `drain_seconds`).

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use samtale_turn::driver::{self, Control, Listeners, TlsSettings};
use samtale_turn::file_config::FileConfig;
use tokio::net::{TcpListener, UdpSocket};
use tracing::{info, warn};
use tracing_subscriber::EnvFilter;

/// samtale-turn: TURN/STUN for WebRTC (RFC 8656/8489) with safe defaults.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (every key optional; see samtale-turn.example.toml).
    #[arg(long, env = "SAMTALE_TURN_CONFIG")]
    config: Option<PathBuf>,
}

fn load(path: Option<&PathBuf>) -> anyhow::Result<FileConfig> {
    Ok(match path {
        Some(p) => FileConfig::load(p)?,
        None => FileConfig::default(),
    })
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let file = load(args.config.as_ref())?;
    let config = file.turn_config()?;
    check_open_file_limit(&config);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(stream_threads(&config))
        .enable_all()
        .build()?
        .block_on(serve(args, file, config))
}

/// Raises the open-file limit and warns when it is still below what the
/// configured caps may hold: a relay socket per allocation and a socket
/// per client connection, plus some for listeners.
fn check_open_file_limit(config: &samtale_turn::config::TurnConfig) {
    let Some(limit) = driver::raise_open_file_limit() else {
        return;
    };
    // TCP peer connections of TCP allocations come on top; they are rare
    // (browsers never ask for them), so they are left out here.
    let needed = config
        .max_allocations_total
        .saturating_add(config.max_client_connections)
        .saturating_add(256) as u64;
    if limit < needed {
        tracing::warn!(
            open_files = limit,
            needed,
            "the open-file limit is below max_allocations_total + max_client_connections: \
             raise it (LimitNOFILE=) or lower those caps"
        );
    } else {
        tracing::info!(open_files = limit, "open-file limit");
    }
}

/// Threads for tokio (accepting connections, TLS handshakes, connecting to
/// TCP peers, metrics, signals): the CPUs the core threads leave, at least
/// one. The core threads relay everything themselves, so tokio needs no
/// more and would only share CPUs with them (BENCHMARKS.md).
/// `TOKIO_WORKER_THREADS` overrides it.
fn stream_threads(config: &samtale_turn::config::TurnConfig) -> usize {
    if let Some(n) = std::env::var("TOKIO_WORKER_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        return n;
    }
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    cpus.saturating_sub(driver::core_thread_count(config))
        .max(1)
}

async fn serve(
    args: Args,
    file: FileConfig,
    config: samtale_turn::config::TurnConfig,
) -> anyhow::Result<()> {
    // Before anything answers: a SIGHUP or SIGTERM that comes once the
    // node looks up must not find the default action (exit).
    let signals = Signals::install()?;
    let udp = UdpSocket::bind(file.listen_udp)
        .await
        .with_context(|| format!("binding UDP {}", file.listen_udp))?;
    let tcp_addr = file.listen_tcp.unwrap_or(file.listen_udp);
    let tcp = Some(
        TcpListener::bind(tcp_addr)
            .await
            .with_context(|| format!("binding TCP {tcp_addr}"))?,
    );
    let tls_settings = match (&file.tls_cert, &file.tls_key) {
        (Some(cert), Some(key)) => Some(TlsSettings::new(cert.clone(), key.clone())?),
        _ => None,
    };
    let tls = match &tls_settings {
        Some(settings) => {
            let addr = file
                .listen_tls
                .unwrap_or(std::net::SocketAddr::new(file.listen_udp.ip(), 5349));
            Some((
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding TLS {addr}"))?,
                settings.clone(),
            ))
        }
        None => None,
    };
    let region = config.region.clone();
    let handle =
        driver::spawn_with_relay_ips(config, Listeners { udp, tcp, tls }, &file.relay_ips())?;
    let (draining_tx, draining_rx) = tokio::sync::watch::channel(false);
    let metrics_addr = match file.metrics_listen {
        Some(addr) => {
            let listener = TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding metrics {addr}"))?;
            let local = listener.local_addr().ok();
            tokio::spawn(samtale_turn::ops::serve(
                listener,
                handle.stats.clone(),
                region.clone(),
                draining_rx,
            ));
            local
        }
        None => None,
    };
    let or_off =
        |a: Option<std::net::SocketAddr>| a.map_or_else(|| "off".to_owned(), |a| a.to_string());
    println!(
        "samtale-turn listening: udp {} tcp {} tls {} relay ips {:?} region {region}; metrics {}",
        handle.udp_addr,
        or_off(handle.tcp_addr),
        or_off(handle.tls_addr),
        file.relay_ips(),
        samtale_turn::ops::describe(metrics_addr)
    );
    run_signals(
        signals,
        args.config,
        file,
        handle,
        tls_settings,
        draining_tx,
    )
    .await
}

/// SIGHUP and SIGTERM, caught from start-up on.
struct Signals {
    hup: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
        })
    }
}

async fn run_signals(
    mut signals: Signals,
    path: Option<PathBuf>,
    file: FileConfig,
    handle: driver::TurnHandle,
    tls: Option<TlsSettings>,
    draining: tokio::sync::watch::Sender<bool>,
) -> anyhow::Result<()> {
    let mut stopped = handle.stopped.clone();
    let mut drain_bound = file.drain();
    loop {
        tokio::select! {
            _ = signals.hup.recv() => {
                info!("SIGHUP: reloading configuration and TLS certificate");
                // The certificate first: once the core threads say the
                // configuration is reloaded, new TLS clients get the new one.
                if let Some(tls) = &tls && let Err(e) = tls.reload() {
                    warn!(error = %e, "TLS certificate not reloaded");
                }
                match load(path.as_ref()).and_then(|f| Ok((f.drain(), f.turn_config()?))) {
                    Ok((drain, config)) => {
                        drain_bound = drain;
                        let _ = handle.control.send(Control::Reconfigure(Box::new(config))).await;
                    }
                    Err(e) => warn!(error = %e, "config not reloaded"),
                }
            }
            _ = signals.term.recv() => {
                info!("SIGTERM: draining");
                let _ = draining.send(true);
                let _ = handle.control.send(Control::Drain).await;
                let _ = tokio::time::timeout(drain_bound, stopped.wait_for(|s| *s)).await;
                return Ok(());
            }
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = stopped.changed() => return Ok(()),
        }
    }
}
