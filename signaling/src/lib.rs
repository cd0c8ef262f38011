//! samtale signaling: the control plane over HTTP/WebSocket (axum) and the
//! all-in-one `samtale` process.
//!
//! [`start`] binds the HTTP listener and the SFU's UDP socket, serves the
//! embedded web client and the API of `docs/PROTOCOL.md`, and returns a
//! [`Running`] server that tests and the binary share.

pub mod app;
pub mod config;
pub mod hub;
pub mod ice;
pub mod media;
pub mod metrics;
pub mod msg;
pub mod protocol;
pub mod secrets;
pub mod session;
pub mod token;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use samtale_sfu::SfuConfig;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

pub use config::Config;

use crate::app::{AppState, SignalingMetrics};
use crate::hub::Hub;
use crate::token::TokenSigner;

/// A started server.
pub struct Running {
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// The SFU's announced media address.
    pub media_addr: SocketAddr,
    /// The URL to open.
    pub url: String,
    /// Shared state (tests read metrics and mint tokens through it).
    pub state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl Running {
    /// Tells clients, removes everyone from the SFU and stops serving.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        // Sessions hear the flag, send `shutdown` and close; give them the
        // grace period, then stop the SFU and the listener.
        let grace = app::shutdown_grace(&self.state);
        let deadline = tokio::time::Instant::now() + grace;
        while self
            .state
            .metrics
            .sessions
            .load(std::sync::atomic::Ordering::Relaxed)
            > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.state.sfu.shutdown().await;
        self.state.media.stop_sweeper().await;
        self.server.abort();
        let _ = self.server.await;
    }

    /// Waits until the server task ends (it ends only on shutdown).
    pub async fn wait(&mut self) {
        let _ = (&mut self.server).await;
    }
}

fn load_turn_secret(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(s) = &config.turn_secret {
        return Ok(s.as_bytes().to_vec());
    }
    let path = config.data_dir.join("turn-secret");
    if let Ok(existing) = std::fs::read_to_string(&path)
        && existing.trim().len() >= 32
    {
        return Ok(existing.trim().as_bytes().to_vec());
    }
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret.into_bytes())
}

/// Starts the embedded TURN server; it may relay to the SFU's media
/// sockets and nothing else on private or loopback addresses.
async fn start_turn(
    config: &Config,
    secret: &[u8],
    sfu_addrs: Vec<SocketAddr>,
) -> anyhow::Result<(samtale_turn::driver::TurnHandle, Vec<String>)> {
    use samtale_turn::auth::Secret;
    let udp = tokio::net::UdpSocket::bind(config.turn_listen)
        .await
        .with_context(|| format!("binding TURN {}", config.turn_listen))?;
    let bound = udp.local_addr()?;
    let tcp = tokio::net::TcpListener::bind(bound).await.ok();
    let announce_ip = config.turn_announce_ip.unwrap_or(bound.ip());
    let turn_config = samtale_turn::config::TurnConfig {
        rest_secrets: vec![Secret::new(String::from_utf8_lossy(secret).into_owned())],
        allowed_peer_addrs: sfu_addrs,
        external_ipv4: match config.turn_announce_ip {
            Some(std::net::IpAddr::V4(v4)) => Some(v4),
            _ => None,
        },
        ..samtale_turn::config::TurnConfig::default()
    };
    let has_tcp = tcp.is_some();
    let listeners = samtale_turn::driver::Listeners {
        udp,
        tcp,
        tls: None,
    };
    let handle = samtale_turn::driver::spawn(turn_config, listeners, bound.ip())?;
    let host = SocketAddr::new(announce_ip, bound.port());
    let mut urls = vec![format!("turn:{host}?transport=udp")];
    if has_tcp {
        urls.push(format!("turn:{host}?transport=tcp"));
    }
    Ok((handle, urls))
}

/// Starts signaling and the SFU.
pub async fn start(config: Config) -> anyhow::Result<Running> {
    config.validate()?;
    let secret = secrets::load_or_create(&config.data_dir, "room-token.key")?.to_vec();
    let udp = tokio::net::UdpSocket::bind(config.media_listen)
        .await
        .with_context(|| format!("binding media socket {}", config.media_listen))?;
    let udp_local = udp.local_addr()?;
    let tcp = if config.media_tcp {
        match tokio::net::TcpListener::bind(udp_local).await {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!(error = %e, addr = %udp_local, "no ICE-TCP: cannot bind the media port over TCP");
                None
            }
        }
    } else {
        None
    };
    let sfu_config = SfuConfig {
        announce_addrs: config.announce_addr.into_iter().collect(),
        tcp_announce_addrs: config
            .announce_addr
            .filter(|_| tcp.is_some())
            .map(|a| SocketAddr::new(a.ip(), udp_local.port()))
            .into_iter()
            .collect(),
        max_participants_per_room: config.max_participants,
        ..SfuConfig::default()
    };
    let mut sfu_addrs = vec![udp_local];
    sfu_addrs.extend(sfu_config.announce_addrs.iter().copied());
    let (sfu, mut sfu_events) = samtale_sfu::driver::spawn_with_tcp(sfu_config, udp, tcp)?;
    let media_addr = sfu.media_addr();
    let turn_secret = load_turn_secret(&config)?;
    let (turn_handle, embedded_urls) = if config.turn_embedded {
        let (h, urls) = start_turn(&config, &turn_secret, sfu_addrs).await?;
        (Some(h), urls)
    } else {
        (None, Vec::new())
    };
    let turn_info =
        (config.turn_embedded || !config.turn_servers.is_empty()).then(|| ice::TurnInfo {
            secret: turn_secret.clone(),
            embedded_urls,
            nodes: config.turn_servers.clone(),
            ttl: config.turn_credential_ttl,
        });

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let http_addr = listener.local_addr()?;
    let scheme = if config.tls() { "https" } else { "http" };
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{http_addr}"))
        .trim_end_matches('/')
        .to_owned();

    let msg_state = Arc::new(msg::open(&config).await?);
    let media = Arc::new(media::MediaService::open(&config, &public_url).await?);
    let (shutdown, shutdown_rx) = watch::channel(false);
    tokio::spawn(msg::purge_loop(msg_state.clone(), shutdown_rx.clone()));
    media.start_sweeper(shutdown_rx.clone());
    let state = Arc::new(AppState {
        config: config.clone(),
        public_url: public_url.clone(),
        tokens: TokenSigner::new(secret),
        sfu,
        hub: Hub::default(),
        turn: turn_info,
        turn_stats: turn_handle.as_ref().map(|h| h.stats.clone()),
        turn_addr: turn_handle.as_ref().map(|h| h.udp_addr),
        metrics: SignalingMetrics::default(),
        shutdown: shutdown_rx,
        msg: msg_state,
        media,
    });

    let events_state = state.clone();
    tokio::spawn(async move {
        while let Some(event) = sfu_events.recv().await {
            events_state.hub.on_sfu_event(event);
        }
    });

    let router = app::router(state.clone());
    let server = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            // Other crates in one build may enable a second rustls provider;
            // say which one to use instead of letting rustls guess.
            let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .context("loading TLS certificate and key")?;
            let std_listener = listener.into_std()?;
            std_listener.set_nonblocking(true)?;
            let server = axum_server::from_tcp_rustls(std_listener, tls);
            tokio::spawn(async move {
                if let Err(e) = server.serve(router.into_make_service()).await {
                    tracing::error!(error = %e, "https server failed");
                }
            })
        }
        _ => tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "http server failed");
            }
        }),
    };
    info!(%http_addr, %media_addr, "samtale started");
    Ok(Running {
        http_addr,
        media_addr,
        url: format!("{public_url}/"),
        state,
        shutdown,
        server,
    })
}

/// WebSocket read buffer. tungstenite zero-fills the whole buffer before
/// every read (128 KiB by default, 6 % of the server's CPU under message
/// load); our frames are small, and larger ones still arrive in several
/// reads.
pub const WS_READ_BUFFER_BYTES: usize = 16 * 1024;
