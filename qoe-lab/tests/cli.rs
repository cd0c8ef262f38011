//! The `qoe-lab emodel`, `score` and `simulate` subcommands, run as a user
//! would: output, JSON and clear errors on bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::path::PathBuf;
use std::process::{Command, Output};

fn qoe_lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qoe-lab"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("qoe-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn emodel_prints_r_and_mos() {
    let out = qoe_lab(&[
        "emodel",
        "--delay",
        "150",
        "--loss",
        "5",
        "--burst",
        "2",
        "--codec",
        "opus-wb-24k",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("MOS-CQE") && text.contains("estimated"),
        "{text}"
    );

    let out = qoe_lab(&["emodel", "--codec", "g711", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = v["rating"]["r"].as_f64().unwrap();
    assert!((r - 93.2).abs() < 0.05, "{v}");
    assert!((v["rating"]["mos"].as_f64().unwrap() - 4.41).abs() < 0.005);
}

#[test]
fn emodel_unknown_codec_is_a_clear_error() {
    let out = qoe_lab(&["emodel", "--codec", "speex"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("unknown codec \"speex\"") && err.contains("opus-wb-24k"),
        "{err}"
    );
}

#[test]
fn simulate_then_score_round_trip() {
    let dir = temp_dir("sim");
    let reference = dir.join("ref.wav");
    let degraded = dir.join("deg.wav");
    let out = qoe_lab(&[
        "simulate",
        "--reference",
        "/usr/share/sounds/alsa/Front_Center.wav",
        "--write-reference",
        reference.to_str().unwrap(),
        "--out",
        degraded.to_str().unwrap(),
        "--loss",
        "5",
        "--fec",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let sim: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sim["codec"]["bitrate"], 24_000);

    let out = qoe_lab(&[
        "score",
        reference.to_str().unwrap(),
        degraded.to_str().unwrap(),
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["pesq_wb"], sim["scores"]["pesq_wb"]);
    assert_eq!(s["visqol"], sim["scores"]["visqol"]);
    let v = s["visqol"].as_f64().unwrap();
    assert!((1.0..=5.0).contains(&v), "{s}");
    let text = stdout(&qoe_lab(&[
        "score",
        reference.to_str().unwrap(),
        degraded.to_str().unwrap(),
    ]));
    assert!(
        text.contains("PESQ NB") && text.contains("PESQ WB") && text.contains("ViSQOL"),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_wavs_are_clear_errors() {
    let dir = temp_dir("bad");
    let stereo = dir.join("stereo.wav");
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&stereo, spec).unwrap();
    for _ in 0..9600 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
    let voice = "/usr/share/sounds/alsa/Front_Center.wav";
    let out = qoe_lab(&["score", voice, stereo.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("2 channels, expected mono"),
        "{}",
        stderr(&out)
    );

    let low = dir.join("low.wav");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&low, spec).unwrap();
    for i in 0..16_000 {
        w.write_sample(((i % 40) * 100) as i16).unwrap();
    }
    w.finalize().unwrap();
    let out = qoe_lab(&["score", voice, low.to_str().unwrap()]);
    assert!(
        stderr(&out).contains("reference is 48000 Hz but degraded is 16000 Hz"),
        "{}",
        stderr(&out)
    );
    let out = qoe_lab(&[
        "simulate",
        "--reference",
        low.to_str().unwrap(),
        "--out",
        dir.join("x.wav").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("16000 Hz, expected 48000 Hz"),
        "{}",
        stderr(&out)
    );
    let out = qoe_lab(&[
        "simulate",
        "--codec",
        "opus-wb-24",
        "--out",
        dir.join("x.wav").to_str().unwrap(),
    ]);
    assert!(
        stderr(&out).contains("unknown codec \"opus-wb-24\""),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
