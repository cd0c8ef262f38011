//! Runs a [`Scenario`] and writes its report: `results.json`,
//! `results.csv` (one row per cell), `cells/<id>.json` and
//! `cells/<id>.csv` (one row per seed), PNG plots of MOS against loss per
//! configuration with 95 % confidence bands across seeds (`plots/`), and
//! `report.html` tying them together.
//!
//! Runs (cell × seed) are spread over the machine's cores; results are
//! collected in matrix order, so the files do not depend on scheduling.

mod html;
mod plot;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::audio::{self, Audio, AudioError};
use crate::emodel;
use crate::pipeline::{self, PipelineStats};
use crate::scenario::{Cell, Reference, Scenario, ScenarioError};
use crate::score::{self, ScoreOptions, Scores};

/// Why a report could not be produced. (A run whose audio cannot be
/// scored is not an error: it is recorded in its cell.)
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The scenario is not runnable.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The reference speech could not be loaded.
    #[error("reference speech: {0}")]
    Audio(#[from] AudioError),
    /// Writing an output failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Drawing a plot failed.
    #[error("plot {path}: {message}")]
    Plot {
        /// The PNG.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// One seed of one cell.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    /// Emulator seed.
    pub seed: u64,
    /// Pipeline counters.
    pub stats: PipelineStats,
    /// Scores, if the degraded audio could be scored.
    pub scores: Option<Scores>,
    /// Why it could not, otherwise.
    pub error: Option<String>,
    /// G.107 MOS-CQE predicted from the measured loss, BurstR and the
    /// mouth-to-ear delay, if the codec is in the E-model table.
    pub emodel_mos: Option<f64>,
}

impl Run {
    /// Measured loss in percent of the frames sent.
    pub fn loss_percent(&self) -> f64 {
        100.0 * self.stats.network.lost as f64 / self.stats.frames.max(1) as f64
    }
}

/// Mean and 95 % confidence half-width of a metric across seeds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stat {
    /// Mean.
    pub mean: f64,
    /// Half-width of the 95 % confidence interval of the mean (Student's
    /// t with n − 1 degrees of freedom); 0 for one seed.
    pub ci95: f64,
    /// Seeds that produced a value.
    pub n: usize,
}

impl Stat {
    /// Mean and 95 % confidence interval of `values`; `None` if empty.
    pub fn of(values: &[f64]) -> Option<Self> {
        let n = values.len();
        if n == 0 {
            return None;
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        let ci95 = if n < 2 {
            0.0
        } else {
            let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
            t95(n - 1) * (var / n as f64).sqrt()
        };
        Some(Self { mean, ci95, n })
    }
}

/// Two-sided 95 % quantile of Student's t distribution.
fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    T.get(df.wrapping_sub(1)).copied().unwrap_or(1.960)
}

/// A cell with its runs and their summary.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CellResult {
    /// The settings.
    pub cell: Cell,
    /// One run per seed, in the scenario's seed order.
    pub runs: Vec<Run>,
    /// WB-PESQ (P.862.2) across seeds.
    pub pesq_wb: Option<Stat>,
    /// NB-PESQ MOS-LQO (P.862.1) across seeds.
    pub pesq_nb: Option<Stat>,
    /// ViSQOL speech mode across seeds.
    pub visqol: Option<Stat>,
    /// E-model MOS-CQE across seeds.
    pub emodel_mos: Option<Stat>,
    /// Measured loss, % of frames, mean across seeds.
    pub measured_loss_percent: f64,
    /// Bits per second on the wire (IP/UDP/RTP/RED), mean across seeds.
    pub wire_kbps: f64,
    /// Opus payload bits per second, mean across seeds.
    pub payload_kbps: f64,
}

impl CellResult {
    fn new(cell: Cell, runs: Vec<Run>) -> Self {
        let collect = |f: &dyn Fn(&Run) -> Option<f64>| {
            Stat::of(&runs.iter().filter_map(f).collect::<Vec<_>>())
        };
        let mean =
            |f: &dyn Fn(&Run) -> f64| runs.iter().map(f).sum::<f64>() / runs.len().max(1) as f64;
        Self {
            pesq_wb: collect(&|r| r.scores.and_then(|s| s.pesq_wb)),
            pesq_nb: collect(&|r| r.scores.map(|s| s.pesq_nb)),
            visqol: collect(&|r| r.scores.and_then(|s| s.visqol)),
            emodel_mos: collect(&|r| r.emodel_mos),
            measured_loss_percent: mean(&Run::loss_percent),
            wire_kbps: mean(&|r| r.stats.wire_bps / 1000.0),
            payload_kbps: mean(&|r| r.stats.payload_bps / 1000.0),
            cell,
            runs,
        }
    }

    /// Seeds whose audio could not be scored.
    pub fn errors(&self) -> usize {
        self.runs.iter().filter(|r| r.error.is_some()).count()
    }
}

/// A finished scenario.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    /// The scenario.
    pub scenario: Scenario,
    /// Seconds of reference speech.
    pub reference_seconds: f64,
    /// Cells in matrix order.
    pub cells: Vec<CellResult>,
    /// Wall time of the runs.
    pub elapsed_seconds: f64,
    /// The files written, relative to the output directory.
    pub files: Vec<String>,
}

/// One finished run, reported as it completes.
#[derive(Debug, Clone)]
pub struct Progress<'a> {
    /// Runs finished so far (including this one).
    pub done: usize,
    /// Runs in the scenario.
    pub total: usize,
    /// The cell.
    pub cell: &'a Cell,
    /// This run.
    pub run: &'a Run,
    /// How long it took.
    pub took: Duration,
}

/// Loads the scenario's reference speech (48 kHz mono).
pub fn reference_audio(scenario: &Scenario) -> Result<Audio, ReportError> {
    Ok(match &scenario.reference {
        Reference::Voices(v) => {
            let names: Vec<&str> = v.iter().map(String::as_str).collect();
            audio::speech(&names)?
        }
        Reference::Wav(path) => audio::read_wav_at(path, pipeline::RATE)?,
    })
}

/// Runs every cell and seed of `scenario` on `threads` threads (0: one per
/// core), calling `progress` after each run, then writes the report into
/// `out` (created if needed).
pub fn run(
    scenario: &Scenario,
    out: &Path,
    threads: usize,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Report, ReportError> {
    let reference = reference_audio(scenario)?;
    let cells = scenario.cells();
    let jobs: Vec<(usize, u64)> = (0..cells.len())
        .flat_map(|c| scenario.seeds.iter().map(move |s| (c, *s)))
        .collect();
    // Check every configuration before spending time on any.
    let configs = jobs
        .iter()
        .map(|(c, seed)| scenario.pipeline(&cells[*c], *seed))
        .collect::<Result<Vec<_>, _>>()?;
    let threads = if threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        threads
    }
    .min(jobs.len())
    .max(1);

    let start = Instant::now();
    let mut results: Vec<Option<Run>> = vec![None; jobs.len()];
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel::<(usize, Run, Duration)>();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let tx = tx.clone();
            let (next, jobs, configs, cells, reference) =
                (&next, &jobs, &configs, &cells, &reference);
            scope.spawn(move || {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let (Some((c, seed)), Some(cfg)) = (jobs.get(i), configs.get(i)) else {
                        break;
                    };
                    let t = Instant::now();
                    let run = one_run(scenario, &cells[*c], *seed, cfg, reference);
                    if tx.send((i, run, t.elapsed())).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for (done, (i, run, took)) in rx.iter().enumerate() {
            progress(Progress {
                done: done + 1,
                total: jobs.len(),
                cell: &cells[jobs[i].0],
                run: &run,
                took,
            });
            results[i] = Some(run);
        }
    });
    let elapsed_seconds = start.elapsed().as_secs_f64();

    let mut runs = results.into_iter().flatten();
    let cells: Vec<CellResult> = cells
        .into_iter()
        .map(|cell| {
            let r: Vec<Run> = runs.by_ref().take(scenario.seeds.len()).collect();
            CellResult::new(cell, r)
        })
        .collect();
    let mut report = Report {
        scenario: scenario.clone(),
        reference_seconds: reference.seconds(),
        cells,
        elapsed_seconds,
        files: Vec::new(),
    };
    write(&mut report, out)?;
    Ok(report)
}

fn one_run(
    scenario: &Scenario,
    cell: &Cell,
    seed: u64,
    cfg: &pipeline::PipelineConfig,
    reference: &Audio,
) -> Run {
    let options = ScoreOptions {
        visqol: scenario.visqol,
    };
    let (stats, scored) = match pipeline::simulate(reference, cfg) {
        Ok(sim) => (
            sim.stats,
            score::score_with(reference, &sim.degraded, options).map_err(|e| e.to_string()),
        ),
        Err(e) => (PipelineStats::default(), Err(e.to_string())),
    };
    let mut run = Run {
        seed,
        stats,
        scores: None,
        error: None,
        emodel_mos: None,
    };
    match scored {
        Ok(s) => run.scores = Some(s),
        Err(e) => run.error = Some(e),
    }
    run.emodel_mos = emodel_mos(scenario, cell, &run);
    run
}

/// The E-model's MOS for a run: mouth-to-ear delay = network delay +
/// mean jitter-buffer delay + one 20 ms frame + Opus look-ahead (6.5 ms).
/// The FEC variant of the codec's table entry is used when FEC is on and
/// the table has one.
fn emodel_mos(scenario: &Scenario, cell: &Cell, run: &Run) -> Option<f64> {
    let fec_name = format!("{}-fec", cell.codec);
    let name = if cell.protection.name().contains("fec") && emodel::codec(&fec_name).is_ok() {
        fec_name.as_str()
    } else {
        cell.codec.as_str()
    };
    let delay = cell.delay_ms as f64 + run.stats.jitter.mean_delay_ms() + 20.0 + 6.5;
    let inputs =
        emodel::Inputs::for_codec(name, delay, run.loss_percent(), scenario.burst_r(cell)).ok()?;
    emodel::rate(&inputs).ok().map(|r| r.mos)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

fn write_file(
    out: &Path,
    name: &str,
    data: &[u8],
    files: &mut Vec<String>,
) -> Result<(), ReportError> {
    let path = out.join(name);
    std::fs::write(&path, data).map_err(io(&path))?;
    files.push(name.to_owned());
    Ok(())
}

const CELL_CSV_HEADER: &str = "id,codec,protection,loss_model,loss_percent,delay_ms,jitter_ms,seeds,measured_loss_percent,wire_kbps,payload_kbps,pesq_wb_mean,pesq_wb_ci95,visqol_mean,visqol_ci95,pesq_nb_mean,pesq_nb_ci95,emodel_mos_mean,errors";
const RUN_CSV_HEADER: &str = "id,seed,frames,lost,measured_loss_percent,fec_decoded,from_red,concealed,late,jitter_buffer_ms,wire_kbps,payload_kbps,pesq_wb,visqol,pesq_nb,delay_ms,emodel_mos,error";

fn opt(v: Option<f64>) -> String {
    v.map_or_else(String::new, |v| format!("{v:.4}"))
}

/// A number with at most three decimals and no trailing zeros.
pub(crate) fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn csv_text(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn cell_row(c: &CellResult) -> String {
    let stat = |s: Option<Stat>| format!("{},{}", opt(s.map(|s| s.mean)), opt(s.map(|s| s.ci95)));
    format!(
        "{},{},{},{},{},{},{},{},{:.3},{:.3},{:.3},{},{},{},{},{}",
        c.cell.id,
        c.cell.codec,
        c.cell.protection.name(),
        csv_text(c.cell.loss_model.name()),
        trim(c.cell.loss_percent),
        c.cell.delay_ms,
        c.cell.jitter_ms,
        c.runs.len(),
        c.measured_loss_percent,
        c.wire_kbps,
        c.payload_kbps,
        stat(c.pesq_wb),
        stat(c.visqol),
        stat(c.pesq_nb),
        opt(c.emodel_mos.map(|s| s.mean)),
        c.errors()
    )
}

fn run_row(id: &str, r: &Run) -> String {
    let st = &r.stats;
    format!(
        "{id},{},{},{},{:.3},{},{},{},{},{:.1},{:.3},{:.3},{},{},{},{},{},{}",
        r.seed,
        st.frames,
        st.network.lost,
        r.loss_percent(),
        st.fec_decoded,
        st.jitter.from_red,
        st.concealed,
        st.jitter.late,
        st.jitter.mean_delay_ms(),
        st.wire_bps / 1000.0,
        st.payload_bps / 1000.0,
        opt(r.scores.and_then(|s| s.pesq_wb)),
        opt(r.scores.and_then(|s| s.visqol)),
        opt(r.scores.map(|s| s.pesq_nb)),
        opt(r.scores.map(|s| s.delay_ms)),
        opt(r.emodel_mos),
        csv_text(r.error.as_deref().unwrap_or_default())
    )
}

fn json(v: &impl serde::Serialize) -> Vec<u8> {
    // Serializing our own plain structs cannot fail; an empty file would
    // show it if it ever did.
    serde_json::to_vec_pretty(v).unwrap_or_default()
}

/// Writes every output of `report` into `out`.
fn write(report: &mut Report, out: &Path) -> Result<(), ReportError> {
    let cells_dir = out.join("cells");
    let plots_dir = out.join("plots");
    for dir in [out, &cells_dir, &plots_dir] {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let mut files = Vec::new();
    let mut csv = vec![CELL_CSV_HEADER.to_owned()];
    for c in &report.cells {
        csv.push(cell_row(c));
        let mut rows = vec![RUN_CSV_HEADER.to_owned()];
        rows.extend(c.runs.iter().map(|r| run_row(&c.cell.id, r)));
        write_file(
            out,
            &format!("cells/{}.csv", c.cell.id),
            (rows.join("\n") + "\n").as_bytes(),
            &mut files,
        )?;
        write_file(
            out,
            &format!("cells/{}.json", c.cell.id),
            &json(c),
            &mut files,
        )?;
    }
    write_file(
        out,
        "results.csv",
        (csv.join("\n") + "\n").as_bytes(),
        &mut files,
    )?;
    let plots = plot::draw_all(report, out)?;
    files.extend(plots.iter().map(|p| p.file.clone()));
    files.push("results.json".into());
    files.push("report.html".into());
    report.files = files;
    let html = html::render(report, &plots);
    std::fs::write(out.join("report.html"), html).map_err(io(&out.join("report.html")))?;
    std::fs::write(out.join("results.json"), json(report))
        .map_err(io(&out.join("results.json")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_intervals_use_student_t() {
        assert!(Stat::of(&[]).is_none());
        let one = Stat::of(&[3.0]).unwrap();
        assert_eq!((one.mean, one.ci95, one.n), (3.0, 0.0, 1));
        // Two values 1 and 3: mean 2, s = √2, half-width 12.706 · √2/√2.
        let two = Stat::of(&[1.0, 3.0]).unwrap();
        assert!((two.ci95 - 12.706).abs() < 1e-9, "{two:?}");
        let many = Stat::of(&vec![1.0; 50]).unwrap();
        assert_eq!(many.ci95, 0.0);
        assert_eq!(t95(100), 1.960);
        assert_eq!(t95(0), 1.960);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_text("a,b"), "\"a,b\"");
        assert_eq!(csv_text("say \"x\", y"), "\"say \"\"x\"\", y\"");
        assert_eq!(csv_text("plain"), "plain");
    }
}
