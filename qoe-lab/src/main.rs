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
    /// ITU-T G.107 E-model: R and MOS from delay, loss, burstiness and codec.
    Emodel {
        /// Mean one-way mouth-to-ear delay in ms.
        #[arg(long, default_value_t = 0.0)]
        delay: f64,
        /// Packet loss in percent.
        #[arg(long, default_value_t = 0.0)]
        loss: f64,
        /// Burst ratio BurstR (1 = random loss).
        #[arg(long, default_value_t = 1.0)]
        burst: f64,
        /// Codec (see the error message for the list).
        #[arg(long, default_value = "opus-wb-24k")]
        codec: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// PESQ (P.862 narrowband and P.862.2 wideband) of a degraded recording
    /// against its reference: mono 16-bit WAVs at one rate (8, 16, 32 or 48 kHz).
    Score {
        /// The clean reference.
        reference: PathBuf,
        /// The degraded recording.
        degraded: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Runs speech through Opus, the network emulator, the jitter buffer and
    /// the decoder; writes the degraded WAV and prints its PESQ.
    Simulate(Box<SimulateArgs>),
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// 48 kHz mono reference; default: the alsa-utils voices.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Where to write the degraded WAV (48 kHz).
    #[arg(long, default_value = "degraded.wav")]
    out: PathBuf,
    /// Also write the reference used here.
    #[arg(long)]
    write_reference: Option<PathBuf>,
    /// Codec: `opus-<nb|mb|wb|swb|fb>-<kbps>k`.
    #[arg(long, default_value = "opus-wb-24k")]
    codec: String,
    /// Loss in percent (random, or bursty with --burst).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Mean burst length in packets (Gilbert model); 0 = random loss.
    #[arg(long, default_value_t = 0.0)]
    burst: f64,
    /// Gilbert-Elliott preset instead of --loss: wifi, congested-lte.
    #[arg(long)]
    preset: Option<String>,
    /// One-way delay in ms.
    #[arg(long, default_value_t = 40)]
    delay: u64,
    /// Jitter (standard deviation) in ms.
    #[arg(long, default_value_t = 0)]
    jitter: u64,
    /// Let jitter reorder packets.
    #[arg(long)]
    reorder: bool,
    /// Opus in-band FEC.
    #[arg(long)]
    fec: bool,
    /// RED depth (earlier frames repeated per packet).
    #[arg(long, default_value_t = 0)]
    red: usize,
    /// Emulator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
        Cmd::Emodel {
            delay,
            loss,
            burst,
            codec,
            json,
        } => emodel(delay, loss, burst, &codec, json)?,
        Cmd::Score {
            reference,
            degraded,
            json,
        } => {
            let s = samtale_qoe_lab::score::score_files(&reference, &degraded)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                print_scores(&s);
            }
        }
        Cmd::Simulate(args) => simulate(&args)?,
    }
    Ok(())
}

fn emodel(delay: f64, loss: f64, burst: f64, codec: &str, json: bool) -> anyhow::Result<()> {
    use samtale_qoe_lab::emodel;
    let c = emodel::codec(codec)?;
    let rating = emodel::rate(&emodel::Inputs::for_codec(codec, delay, loss, burst)?)?;
    if json {
        let out = serde_json::json!({ "codec": c, "delay_ms": delay, "loss_percent": loss, "burst_r": burst, "rating": rating });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let note = if c.estimated {
            " (estimated values)"
        } else {
            ""
        };
        println!("codec     {} Ie {} Bpl {}{note}", c.name, c.ie, c.bpl);
        println!("Idd       {:.2}", rating.idd);
        println!("Ie,eff    {:.2}", rating.ie_eff);
        println!("R         {:.1}", rating.r);
        println!("MOS-CQE   {:.2}", rating.mos);
    }
    Ok(())
}

fn print_scores(s: &samtale_qoe_lab::score::Scores) {
    println!(
        "PESQ NB   {:.3} MOS-LQO (raw {:.3})",
        s.pesq_nb, s.pesq_nb_raw
    );
    match s.pesq_wb {
        Some(wb) => println!("PESQ WB   {wb:.3} MOS-LQO"),
        None => println!("PESQ WB   n/a (8 kHz input)"),
    }
    println!(
        "delay     {:.1} ms, {:.2} s of speech scored",
        s.delay_ms, s.scored_seconds
    );
}

fn simulate(a: &SimulateArgs) -> anyhow::Result<()> {
    use samtale_qoe_lab::{audio, netem, pipeline, score};
    let reference = match &a.reference {
        Some(path) => audio::read_wav_at(path, pipeline::RATE)?,
        None => audio::alsa_speech(audio::ALSA_VOICES)?,
    };
    let loss = match (&a.preset, a.burst > 0.0) {
        (Some(name), _) => netem::LossModel::GilbertElliott(netem::GilbertElliott::preset(name)?),
        (None, true) => netem::LossModel::GilbertElliott(
            netem::GilbertElliott::from_loss_and_burst(a.loss / 100.0, a.burst)?,
        ),
        (None, false) => netem::LossModel::Random { p: a.loss / 100.0 },
    };
    let net = netem::NetemConfig {
        seed: a.seed,
        loss,
        delay: std::time::Duration::from_millis(a.delay),
        jitter: std::time::Duration::from_millis(a.jitter),
        reorder: a.reorder,
        ..netem::NetemConfig::default()
    };
    let mut cfg = pipeline::PipelineConfig::new(&a.codec, net)?;
    cfg.fec = a.fec;
    cfg.red_depth = a.red;
    let sim = pipeline::simulate(&reference, &cfg)?;
    audio::write_wav(&a.out, &sim.degraded)?;
    if let Some(path) = &a.write_reference {
        audio::write_wav(path, &reference)?;
    }
    let scores = score::score(&reference, &sim.degraded)?;
    if a.json {
        let out = serde_json::json!({ "codec": cfg.codec, "fec": cfg.fec, "red_depth": cfg.red_depth, "seed": a.seed, "stats": sim.stats, "scores": scores });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let st = &sim.stats;
        println!(
            "frames    {} sent, {} lost, {} FEC-decoded, {} from RED, {} concealed, {} late",
            st.frames,
            st.network.lost,
            st.fec_decoded,
            st.jitter.from_red,
            st.concealed,
            st.jitter.late
        );
        println!(
            "bitrate   {:.1} kb/s Opus, {:.1} kb/s on the wire (IP/UDP/RTP)",
            st.payload_bps / 1000.0,
            st.wire_bps / 1000.0
        );
        println!(
            "buffer    {:.0} ms mean playout delay",
            st.jitter.mean_delay_ms()
        );
        print_scores(&scores);
        println!("wrote     {}", a.out.display());
    }
    Ok(())
}
