//! `samtale`: the whole stack in one process.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use samtale::Config;
use tracing_subscriber::EnvFilter;

mod msg_cli;

/// samtale: private, EU-hosted calls. Every flag can also be set in the TOML
/// file (`--config`) or the environment (`SAMTALE_…`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// TOML config file (every key optional; see samtale.example.toml).
    #[arg(long, env = "SAMTALE_CONFIG")]
    config: Option<PathBuf>,
    /// HTTP/WebSocket listen address.
    #[arg(long, env = "SAMTALE_LISTEN")]
    listen: Option<SocketAddr>,
    /// UDP media address of the SFU.
    #[arg(long, env = "SAMTALE_MEDIA_LISTEN")]
    media_listen: Option<SocketAddr>,
    /// Address announced in ICE candidates (public IP behind NAT).
    #[arg(long, env = "SAMTALE_ANNOUNCE_ADDR")]
    announce_addr: Option<SocketAddr>,
    /// URL people open (used in join links).
    #[arg(long, env = "SAMTALE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Data directory.
    #[arg(long, env = "SAMTALE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Admin token required to create rooms.
    #[arg(long, env = "SAMTALE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// TLS certificate chain (PEM).
    #[arg(long, env = "SAMTALE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "SAMTALE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Messaging database URL (`postgres://…`); default SQLite in the data
    /// directory.
    #[arg(long, env = "SAMTALE_MESSAGING_DATABASE", hide_env_values = true)]
    messaging_database: Option<String>,
    /// NATS server linking nodes on one messaging database.
    #[arg(long, env = "SAMTALE_MESSAGING_NATS_URL", hide_env_values = true)]
    messaging_nats_url: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Messaging from a terminal (register, pair, send, read).
    Msg(msg_cli::MsgArgs),
}

impl Args {
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        c.listen = self.listen.unwrap_or(c.listen);
        c.media_listen = self.media_listen.unwrap_or(c.media_listen);
        c.announce_addr = self.announce_addr.or(c.announce_addr);
        c.public_url = self.public_url.or(c.public_url);
        c.data_dir = self.data_dir.unwrap_or(c.data_dir);
        c.admin_token = self.admin_token.or(c.admin_token);
        c.tls_cert = self.tls_cert.or(c.tls_cert);
        c.tls_key = self.tls_key.or(c.tls_key);
        c.messaging_database = self.messaging_database.or(c.messaging_database);
        c.messaging_nats_url = self.messaging_nats_url.or(c.messaging_nats_url);
        c.validate()?;
        Ok(c)
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if let Some(Command::Msg(msg)) = args.command.take() {
        tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
            )
            .with_writer(std::io::stderr)
            .init();
        return msg_cli::run(msg).await;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,str0m=warn")),
        )
        .init();
    let _ = rustls_provider();
    // The embedded TURN server holds a socket per allocation.
    let _ = samtale_turn::driver::raise_open_file_limit();
    let config = args.into_config()?;
    let running = samtale::start(config).await.context("starting samtale")?;
    println!();
    println!("  samtale is running.");
    println!("  Open {} in a browser to make a call.", running.url);
    println!();
    wait_for_signal().await;
    tracing::info!("shutting down: telling clients");
    running.shutdown().await;
    Ok(())
}

fn rustls_provider() -> Result<(), ()> {
    Ok(())
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
