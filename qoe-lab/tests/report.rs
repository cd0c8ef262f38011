//! `qoe-lab run`: a tiny scenario end to end (report, plots, CSV and JSON
//! hold every cell), and clear errors for bad scenario files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn qoe_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qoe-lab"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qoe-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(dir: &Path, scenario: &str) -> (Output, PathBuf) {
    let file = dir.join("scenario.toml");
    std::fs::write(&file, scenario).unwrap();
    let out = dir.join("out");
    let o = qoe_lab(&[
        "run",
        file.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    (o, out)
}

fn is_png(path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    // PNG signature, and more than an empty canvas.
    data.starts_with(b"\x89PNG\r\n\x1a\n") && data.len() > 10_000
}

/// 2 protections × 2 loss models × 2 loss rates = 8 cells, 2 seeds each,
/// on one 1.4 s voice, PESQ only (ViSQOL is slow in debug builds: it gets
/// its own one-run scenario below).
#[test]
fn tiny_scenario_report_has_every_cell() {
    let dir = temp_dir("tiny");
    let (o, out) = run(
        &dir,
        r#"
        name = "CI <tiny> scenario"
        voices = ["Front_Center"]
        codecs = ["opus-wb-24k"]
        protection = ["plc", "fec+red"]
        loss_models = ["random", "bursty"]
        loss_percent = [0, 10]
        burst_length = 3
        seeds = [1, 2]
        visqol = false
        "#,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // Progress: one line per run, numbered.
    assert!(
        stderr.contains("[ 1/16]") && stderr.contains("[16/16]"),
        "{stderr}"
    );

    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("CI &lt;tiny&gt; scenario"),
        "title is escaped"
    );
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 8, "{csv}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let cells = json["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    // The cells each plot on the page shows.
    let plotted: Vec<&str> = html
        .split("data-cells=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    for cell in cells {
        let id = cell["cell"]["id"].as_str().unwrap();
        assert!(
            html.contains(&format!("<tr id=\"cell-{id}\">")),
            "{id} in the table"
        );
        assert!(
            csv.lines().any(|l| l.starts_with(&format!("{id},"))),
            "{id} in CSV"
        );
        let runs = std::fs::read_to_string(out.join(format!("cells/{id}.csv"))).unwrap();
        assert_eq!(runs.lines().count(), 3, "{id}: header + 2 seeds");
        assert!(out.join(format!("cells/{id}.json")).exists());
        assert_eq!(cell["runs"].as_array().unwrap().len(), 2);
        let wb = cell["pesq_wb"]["mean"].as_f64().unwrap();
        assert!((1.0..=4.65).contains(&wb), "{id}: {wb}");
        assert!(cell["visqol"].is_null(), "ViSQOL off");
        // Every cell is drawn in some plot that the page shows.
        assert!(
            plotted.iter().any(|p| p.split(' ').any(|c| c == id)),
            "{id} in a plot"
        );
    }
    // Loss 0 scores the same for both loss models; 10 % scores lower.
    let wb = |id: &str| {
        cells.iter().find(|c| c["cell"]["id"] == id).unwrap()["pesq_wb"]["mean"]
            .as_f64()
            .unwrap()
    };
    assert!(wb("opus-wb-24k_plc_random_l10_d40_j0") < wb("opus-wb-24k_plc_random_l0_d40_j0"));

    // Plots: PESQ and E-model per loss model, no ViSQOL; all linked and valid.
    let pngs: Vec<_> = std::fs::read_dir(out.join("plots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(pngs.len(), 4, "{pngs:?}");
    for png in &pngs {
        assert!(is_png(png), "{}", png.display());
        let name = png.file_name().unwrap().to_str().unwrap();
        assert!(
            html.contains(&format!("src=\"plots/{name}\"")),
            "{name} linked"
        );
        assert!(!name.starts_with("visqol"));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One run with ViSQOL on: its column and plot appear.
#[test]
fn visqol_column_and_plot() {
    let dir = temp_dir("visqol");
    let (o, out) = run(
        &dir,
        "voices = [\"Rear_Left\"]\ncodecs = [\"opus-wb-24k\"]\nprotection = [\"fec\"]\n\
         loss_models = [\"random\"]\nloss_percent = [5]\nseeds = [3]\n",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let row: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let visqol: f64 = row[13].parse().unwrap();
    assert!((1.0..=5.0).contains(&visqol), "{csv}");
    assert!(is_png(
        &out.join("plots/visqol_opus-wb-24k_random_d40_j0.png")
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_scenarios_are_clear_errors() {
    let dir = temp_dir("bad");
    let cases = [
        (
            "codecs = [\"opus-wb-24k\"\nseeds = [1]\n",
            "scenario.toml: TOML parse error at line 2, column 1",
        ),
        ("codecs = [\"g722-64k\"]\n", "unknown codec \"g722-64k\""),
        (
            "codecs = [\"opus-wb-24k\"]\nloss_models = [\"satellite\"]\n",
            "unknown loss model \"satellite\" (known: random, bursty, wifi, congested-lte)",
        ),
        (
            "codecs = [\"opus-wb-24k\"]\nseeds = \"1\"\n",
            "invalid type",
        ),
        (
            "codecs = [\"opus-wb-24k\"]\nloss = [1]\n",
            "unknown field `loss`",
        ),
    ];
    for (text, expected) in cases {
        let (o, out) = run(&dir, text);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{text}");
        assert!(err.contains(expected), "{text}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(!out.exists(), "nothing written for a bad scenario");
    }
    let o = qoe_lab(&["run", dir.join("missing.toml").to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("missing.toml"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
