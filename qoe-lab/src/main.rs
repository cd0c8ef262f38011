//! `qoe-lab`: call-quality and load tools.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(version, about = "samtale QoE lab: load and call-quality measurement")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// N probe bots in one room against a fresh samtale process: forwarded
    /// packets per CPU-second of the SFU and bot→SFU→bot latency.
    Load {
        /// The samtale binary to start (build it with --release).
        #[arg(long, default_value = "target/release/samtale")]
        samtale: PathBuf,
        /// Room sizes to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "2,8,16,32")]
        bots: Vec<usize>,
        /// Measured seconds per size (after a 3 s warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Bytes per probe video frame (30 fps).
        #[arg(long, default_value_t = 1000)]
        video_bytes: usize,
        /// Runs per size; the median is reported.
        #[arg(long, default_value_t = 3)]
        runs: usize,
    },
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Load {
            samtale,
            bots,
            seconds,
            video_bytes,
            runs,
        } => {
            println!(
                "bots | forwarded pkt/s | SFU CPU % | pkts per CPU-second | p50 ms | p99 ms | audio delivered"
            );
            println!("---: | ---: | ---: | ---: | ---: | ---: | ---:");
            for n in bots {
                let mut results = Vec::new();
                for _ in 0..runs.max(1) {
                    results
                        .push(samtale_qoe_lab::load::run(&samtale, n, seconds, video_bytes).await?);
                }
                results.sort_by(|a, b| {
                    a.packets_per_cpu_second()
                        .total_cmp(&b.packets_per_cpu_second())
                });
                let r = &results[results.len() / 2];
                println!(
                    "{} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.1} %",
                    r.bots,
                    r.forwarded as f64 / r.seconds,
                    100.0 * r.cpu_seconds / r.seconds,
                    r.packets_per_cpu_second(),
                    r.p50_ms,
                    r.p99_ms,
                    100.0 * r.delivery
                );
            }
        }
    }
    Ok(())
}
