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
    /// PESQ (P.862 narrowband and P.862.2 wideband) and ViSQOL (v3.1 speech
    /// mode) of a degraded recording against its reference: mono 16-bit
    /// WAVs at one rate (8, 16, 32 or 48 kHz; ViSQOL needs 16 kHz or more).
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
    /// Runs a scenario file (TOML matrix of codec × protection × loss ×
    /// delay × jitter × seeds) and writes JSON, CSV, PNG plots and an HTML
    /// report into --out.
    Run {
        /// The scenario file.
        scenario: PathBuf,
        /// Output directory (created if needed).
        #[arg(long, default_value = "qoe-report")]
        out: PathBuf,
        /// Worker threads (0: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// No progress lines.
        #[arg(long)]
        quiet: bool,
    },
    /// A live call: two bots through a samtale SFU with the impairment
    /// proxy in the media path (the SFU announces the proxy's address);
    /// the sender sends reference speech as Opus, the receiver's decoded
    /// audio is scored.
    Live(Box<LiveArgs>),
}

#[derive(Debug, clap::Args)]
struct LiveArgs {
    /// The samtale binary to start (unless --server is given).
    #[arg(long, default_value = "target/release/samtale")]
    samtale: PathBuf,
    /// Use a running samtale at this URL instead (it must have been started
    /// with --announce-addr set to --proxy-listen, and --sfu-media as its
    /// --media-listen).
    #[arg(long, requires = "sfu_media")]
    server: Option<String>,
    /// The running samtale's real UDP media address.
    #[arg(long)]
    sfu_media: Option<std::net::SocketAddr>,
    /// Where the proxy listens (the address samtale announces).
    #[arg(long, default_value = "127.0.0.1:0")]
    proxy_listen: std::net::SocketAddr,
    /// 48 kHz mono reference; default: the alsa-utils voices.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Codec: `opus-<nb|mb|wb|swb|fb>-<kbps>k`.
    #[arg(long, default_value = "opus-wb-24k")]
    codec: String,
    /// Opus in-band FEC (encoder and receiver).
    #[arg(long)]
    fec: bool,
    /// Loss toward the SFU, percent (each media packet crosses it once).
    #[arg(long, default_value_t = 0.0)]
    loss: f64,
    /// Mean burst length in packets (Gilbert model); 0 = random loss.
    #[arg(long, default_value_t = 0.0)]
    burst: f64,
    /// One-way delay added toward the SFU, ms.
    #[arg(long, default_value_t = 0)]
    delay: u64,
    /// Jitter toward the SFU (standard deviation), ms.
    #[arg(long, default_value_t = 0)]
    jitter: u64,
    /// Proxy emulator seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds recorded after the receiver first hears the sender.
    #[arg(long, default_value_t = 12)]
    seconds: u64,
    /// Seconds of the recording scored.
    #[arg(long, default_value_t = 8.0)]
    score_seconds: f64,
    /// Skip ViSQOL.
    #[arg(long)]
    no_visqol: bool,
    /// Write reference.wav and received.wav (the scored segments) here.
    #[arg(long)]
    write_wavs: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
        Cmd::Run {
            scenario,
            out,
            threads,
            quiet,
        } => run_scenario(&scenario, &out, threads, quiet)?,
        Cmd::Live(args) => live(&args).await?,
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

fn run_scenario(
    path: &std::path::Path,
    out: &std::path::Path,
    threads: usize,
    quiet: bool,
) -> anyhow::Result<()> {
    use samtale_qoe_lab::{report, scenario::Scenario};
    let scenario = Scenario::load(path)?;
    let cells = scenario.cells().len();
    if !quiet {
        eprintln!(
            "{}: {cells} cells × {} seeds = {} runs",
            scenario.name,
            scenario.seeds.len(),
            cells * scenario.seeds.len()
        );
    }
    let report = report::run(&scenario, out, threads, &mut |p| {
        if quiet {
            return;
        }
        let score = |v: Option<f64>| v.map_or_else(|| "-".into(), |v| format!("{v:.3}"));
        let result = match (&p.run.scores, &p.run.error) {
            (Some(s), _) => format!("WB-PESQ {} ViSQOL {}", score(s.pesq_wb), score(s.visqol)),
            (None, Some(e)) => format!("unscored: {e}"),
            (None, None) => String::new(),
        };
        eprintln!(
            "[{:>width$}/{}] {} seed {}: loss {:.1} %, {result} ({:.1} s)",
            p.done,
            p.total,
            p.cell.id,
            p.run.seed,
            p.run.loss_percent(),
            p.took.as_secs_f64(),
            width = p.total.to_string().len()
        );
    })?;
    println!(
        "wrote {} ({} cells, {} files) in {:.1} s",
        out.join("report.html").display(),
        report.cells.len(),
        report.files.len(),
        report.elapsed_seconds
    );
    Ok(())
}

async fn live(a: &LiveArgs) -> anyhow::Result<()> {
    use samtale_qoe_lab::{audio, live, netem, pipeline, proxy};
    let reference = match &a.reference {
        Some(path) => audio::read_wav_at(path, pipeline::RATE)?,
        None => audio::alsa_speech(audio::ALSA_VOICES)?,
    };
    pipeline::OpusCodec::parse(&a.codec)?;
    let loss = if a.burst > 0.0 {
        netem::LossModel::GilbertElliott(netem::GilbertElliott::from_loss_and_burst(
            a.loss / 100.0,
            a.burst,
        )?)
    } else {
        netem::LossModel::Random { p: a.loss / 100.0 }
    };
    let config = proxy::ProxyConfig {
        to_sfu: netem::NetemConfig {
            seed: a.seed,
            loss,
            delay: std::time::Duration::from_millis(a.delay),
            jitter: std::time::Duration::from_millis(a.jitter),
            ..netem::NetemConfig::default()
        },
        to_client: netem::NetemConfig::default(),
    };
    let proxy = proxy::ImpairmentProxy::bind(a.proxy_listen, config).await?;
    let (_server, url) = match (&a.server, a.sfu_media) {
        (Some(url), Some(media)) => {
            proxy.set_upstream(media);
            (None, url.clone())
        }
        _ => {
            let s = live::spawn_samtale(&a.samtale, proxy.local_addr()).await?;
            proxy.set_upstream(s.media_addr);
            let url = s.url.clone();
            (Some(s), url)
        }
    };
    let mut cfg = live::LiveConfig::new(url, reference);
    cfg.codec = a.codec.clone();
    cfg.fec = a.fec;
    cfg.record = std::time::Duration::from_secs(a.seconds);
    cfg.score_seconds = a.score_seconds;
    cfg.visqol = !a.no_visqol;
    let report = live::run(&cfg, &proxy).await;
    proxy.stop().await;
    let report = report?;
    if let (Some(dir), Some((r, d))) = (&a.write_wavs, &report.segments) {
        std::fs::create_dir_all(dir)?;
        audio::write_wav(&dir.join("reference.wav"), r)?;
        audio::write_wav(&dir.join("received.wav"), d)?;
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    let rx = &report.received;
    println!(
        "received  {} of {} packets: {:.2} % lost, {} FEC-recovered, {} concealed ({:.2} %), jitter {:.2} ms, jitter-buffer delay {:.1} ms mean / {:.1} ms p95 ({:.1} / {:.1} ms after the first 2 s)",
        rx.received,
        rx.expected,
        100.0 * rx.loss(),
        rx.fec_recovered,
        rx.concealed,
        100.0 * rx.concealment_ratio(),
        rx.jitter_ms,
        rx.jitter_buffer_delay_ms.mean,
        rx.jitter_buffer_delay_ms.p95,
        rx.jitter_buffer_delay_steady_ms.mean,
        rx.jitter_buffer_delay_steady_ms.p95
    );
    let p = &report.proxy;
    println!(
        "proxy     to SFU {} in, {} out, {} dropped; to clients {} in, {} out, {} dropped; all bot traffic through the proxy: {}",
        p.to_sfu.packets_in,
        p.to_sfu.packets_out,
        p.to_sfu.dropped,
        p.to_client.packets_in,
        p.to_client.packets_out,
        p.to_client.dropped,
        report.only_through_proxy
    );
    println!(
        "bitrate   {:.1} kb/s Opus, {:.1} kb/s on the wire (IP/UDP/RTP, before SRTP)",
        report.payload_bps / 1000.0,
        report.wire_bps / 1000.0
    );
    match (&report.scores, &report.score_error) {
        (Some(s), _) => print_scores(s),
        (None, Some(e)) => println!("score     not scorable: {e}"),
        _ => {}
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
    match s.visqol {
        Some(v) => println!("ViSQOL    {v:.3} MOS-LQO (v3.1 speech mode, 16 kHz)"),
        None if s.pesq_wb.is_none() => println!("ViSQOL    n/a (8 kHz input)"),
        None => println!("ViSQOL    not computed"),
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
