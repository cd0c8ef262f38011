//! Side-by-side thumbnail benchmark: `vipsthumbnail` (libvips) and
//! samtale's thumbnailer on the same generated 12-megapixel JPEG, to 320 px
//! and 1080 px wide; median wall time and peak RSS of several runs, and the
//! ratio. Not a test: run it by hand (see the root `BENCHMARKS.md`).
//!
//! Both sides run as child processes under `/usr/bin/time -f %M` (peak RSS
//! of that child only); wall time is measured here around each child, so
//! process start-up counts on both sides. libvips runs twice: with its
//! default thread pool and with `--vips-concurrency=1` (ours is
//! single-threaded).
//!
//! Two shapes: one image per process (a CLI call, start-up included), and
//! a batch of [`BATCH`] copies of the image in one process, from which the
//! marginal cost of one more image in a running process (a server's
//! steady state, start-up excluded) is `(batch - single) / (BATCH - 1)`.
//!
//! ```text
//! thumb-bench [--runs N] [--keep DIR]
//! thumb-bench --child WIDTH OUTDIR INPUT...   (internal: our thumbnailer)
//! ```

use std::error::Error;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use image::{ImageEncoder, RgbImage};
use samtale_media::thumbnail::{OutputFormat, ThumbnailLimits, ThumbnailSpec, thumbnails};

type Res<T> = Result<T, Box<dyn Error>>;

const WIDTH: u32 = 4000;
const HEIGHT: u32 = 3000;
const SOURCE_QUALITY: u8 = 92;
/// Output quality on both sides (vips's default is 75 too).
const OUTPUT_QUALITY: u8 = 75;
const TARGETS: [u32; 2] = [320, 1080];
/// Images per process in the batch shape.
const BATCH: usize = 8;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        return child(&args[2..]);
    }
    let mut runs = 7usize;
    let mut keep: Option<PathBuf> = None;
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().ok_or("--runs N")?.parse()?,
            "--keep" => keep = Some(it.next().ok_or("--keep DIR")?.into()),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let dir = match &keep {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("thumb-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    let result = bench(&dir, runs.max(1));
    if keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// Our thumbnailer on each input, in this (child) process.
fn child(args: &[String]) -> Res<()> {
    let [width, out_dir, inputs @ ..] = args else {
        return Err("--child WIDTH OUTDIR INPUT...".into());
    };
    let width: u32 = width.parse()?;
    let spec = ThumbnailSpec {
        max_width: width,
        max_height: u32::MAX,
        format: OutputFormat::Jpeg {
            quality: OUTPUT_QUALITY,
        },
    };
    let mut inner = Duration::ZERO;
    let mut size = (0, 0);
    for (i, input) in inputs.iter().enumerate() {
        let bytes = std::fs::read(input)?;
        let start = Instant::now();
        let thumbs = thumbnails(&bytes, &[spec], &ThumbnailLimits::default())?;
        inner += start.elapsed();
        let t = thumbs.first().ok_or("no thumbnail")?;
        size = (t.width, t.height);
        std::fs::write(
            Path::new(out_dir).join(format!("ours-{i}-{width}.jpg")),
            &t.bytes,
        )?;
    }
    // For the parent: in-process time per image and the output size.
    let per_image = inner / u32::try_from(inputs.len().max(1))?;
    println!("{} {} {}", per_image.as_micros(), size.0, size.1);
    Ok(())
}

/// A deterministic "photo": smooth gradients, soft shapes and sensor-like
/// noise, so the JPEG is neither trivial nor pure noise.
fn generate(path: &Path) -> Res<u64> {
    let mut seed: u32 = 0x9e37_79b9;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed % 25) as i32 - 12
    };
    let circles = [
        (1200.0f32, 900.0f32, 500.0f32, [220i32, 180, 60]),
        (2900.0, 1700.0, 800.0, [40, 110, 200]),
        (700.0, 2300.0, 350.0, [200, 60, 90]),
    ];
    let img = RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let mut c = [
            (fx / WIDTH as f32 * 200.0) as i32 + 20,
            (fy / HEIGHT as f32 * 160.0) as i32 + 40,
            (((fx + fy) / 40.0).sin() * 40.0 + 120.0) as i32,
        ];
        for (cx, cy, r, col) in circles {
            let d = ((fx - cx).powi(2) + (fy - cy).powi(2)).sqrt();
            let w = (1.0 - (d / r)).clamp(0.0, 1.0);
            for (v, target) in c.iter_mut().zip(col) {
                *v = (*v as f32 * (1.0 - w) + target as f32 * w) as i32;
            }
        }
        let n = noise();
        image::Rgb(c.map(|v| (v + n).clamp(0, 255) as u8))
    });
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    image::codecs::jpeg::JpegEncoder::new_with_quality(file, SOURCE_QUALITY).write_image(
        img.as_raw(),
        WIDTH,
        HEIGHT,
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(std::fs::metadata(path)?.len())
}

struct Sample {
    wall: Duration,
    rss_kib: u64,
    stdout: String,
}

/// Runs `program args` under `/usr/bin/time -f %M`.
fn timed(dir: &Path, program: &Path, args: &[String], env: &[(&str, &str)]) -> Res<Sample> {
    let rss_file = dir.join("rss.txt");
    let start = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_file)
        .arg(program)
        .args(args)
        .envs(env.iter().copied())
        .output()?;
    let wall = start.elapsed();
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            program.display(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let rss_kib = std::fs::read_to_string(&rss_file)?
        .lines()
        .last()
        .ok_or("empty /usr/bin/time output")?
        .trim()
        .parse()?;
    Ok(Sample {
        wall,
        rss_kib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

fn median<T: Copy + Ord>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

struct Summary {
    wall: Duration,
    rss_kib: u64,
    inner: Option<Duration>,
    out_size: String,
}

fn summarise(samples: &[Sample], inner: bool) -> Summary {
    let inner = inner.then(|| {
        median(
            samples
                .iter()
                .filter_map(|s| s.stdout.split_whitespace().next()?.parse().ok())
                .map(Duration::from_micros)
                .collect(),
        )
    });
    let out_size = samples
        .first()
        .and_then(|s| {
            let mut f = s.stdout.split_whitespace().skip(1);
            Some(format!("{}x{}", f.next()?, f.next()?))
        })
        .unwrap_or_default();
    Summary {
        wall: median(samples.iter().map(|s| s.wall).collect()),
        rss_kib: median(samples.iter().map(|s| s.rss_kib).collect()),
        inner,
        out_size,
    }
}

fn image_size(path: &Path) -> String {
    image::image_dimensions(path)
        .map(|(w, h)| format!("{w}x{h}"))
        .unwrap_or_else(|_| "?".into())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Median wall time and peak RSS of three programs, interleaved round by
/// round so drift (thermal, other load) hits all alike; round 0 warms up.
fn measure(dir: &Path, runs: usize, cases: &[(&Path, Vec<String>)]) -> Res<Vec<Vec<Sample>>> {
    let mut out: Vec<Vec<Sample>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..=runs {
        for (samples, (program, args)) in out.iter_mut().zip(cases) {
            let s = timed(dir, program, args, &[])?;
            if round > 0 {
                samples.push(s);
            }
        }
    }
    Ok(out)
}

fn bench(dir: &Path, runs: usize) -> Res<()> {
    let input = dir.join("source-0.jpg");
    let size = generate(&input)?;
    // Distinct files for the batch, so no cache can reuse a decode.
    let mut inputs = vec![input.to_string_lossy().into_owned()];
    for i in 1..BATCH {
        let copy = dir.join(format!("source-{i}.jpg"));
        std::fs::copy(&input, &copy)?;
        inputs.push(copy.to_string_lossy().into_owned());
    }
    let me = std::env::current_exe()?;
    let vips = PathBuf::from("vipsthumbnail");
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_owned())
        })
        .unwrap_or_default();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let vips_version = Command::new("vipsthumbnail")
        .arg("--vips-version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|_| "vipsthumbnail not found".into());
    println!(
        "source: {WIDTH}x{HEIGHT} JPEG q{SOURCE_QUALITY}, {:.1} MB; output JPEG q{OUTPUT_QUALITY}; \
         {runs} runs each (+1 warm-up), medians",
        size as f64 / 1e6
    );
    println!("cpu: {cpu} ({threads} threads); {vips_version}");
    let dir_s = dir.to_string_lossy().into_owned();
    for width in TARGETS {
        let ours_args = |inputs: &[String]| {
            let mut a = vec!["--child".to_owned(), width.to_string(), dir_s.clone()];
            a.extend_from_slice(inputs);
            a
        };
        // `-s Wx`: width W, height unconstrained; metadata stripped as ours.
        let vips_args = |inputs: &[String], single_thread: bool| {
            let mut a = inputs.to_vec();
            a.extend([
                "-s".to_owned(),
                format!("{width}x"),
                "-o".to_owned(),
                format!("{dir_s}/%s-vips-{width}.jpg[Q={OUTPUT_QUALITY},strip]"),
            ]);
            if single_thread {
                a.push("--vips-concurrency=1".to_owned());
            }
            a
        };
        let one = &inputs[..1];
        let single = measure(
            dir,
            runs,
            &[
                (&me, ours_args(one)),
                (&vips, vips_args(one, false)),
                (&vips, vips_args(one, true)),
            ],
        )?;
        let batch = measure(
            dir,
            runs,
            &[
                (&me, ours_args(&inputs)),
                (&vips, vips_args(&inputs, false)),
                (&vips, vips_args(&inputs, true)),
            ],
        )?;
        let vips_size = image_size(&dir.join(format!("source-0-vips-{width}.jpg")));
        let ours = summarise(&single[0], true);
        let ours_batch = summarise(&batch[0], true);
        println!();
        println!(
            "### {width} px wide (ours {}, vips {vips_size})",
            ours.out_size
        );
        println!();
        println!(
            "| tool | 1 image/process: wall ms | peak RSS MiB | {BATCH} images/process: wall ms | marginal ms/image | ours/vips (1 image) | ours/vips (marginal) |"
        );
        println!("|---|---|---|---|---|---|---|");
        let marginal = |s: &Summary, b: &Summary| (ms(b.wall) - ms(s.wall)) / (BATCH as f64 - 1.0);
        let ours_marginal = marginal(&ours, &ours_batch);
        let mut ratios = Vec::new();
        for (name, i) in [
            ("vipsthumbnail", 1),
            ("vipsthumbnail --vips-concurrency=1", 2),
        ] {
            let v = summarise(&single[i], false);
            let vb = summarise(&batch[i], false);
            let vm = marginal(&v, &vb);
            println!(
                "| {name} | {:.1} | {:.1} | {:.1} | {vm:.1} | | |",
                ms(v.wall),
                v.rss_kib as f64 / 1024.0,
                ms(vb.wall),
            );
            ratios.push((
                ms(ours.wall) / ms(v.wall),
                ours_marginal / vm,
                ours.rss_kib as f64 / v.rss_kib as f64,
            ));
        }
        println!(
            "| samtale `thumbnail::thumbnails` (in-process {:.1} ms/image) | {:.1} | {:.1} | {:.1} | {ours_marginal:.1} | {:.2}x ({:.2}x vs 1-thread vips) | {:.2}x ({:.2}x vs 1-thread vips) |",
            ours_batch.inner.map_or(0.0, ms),
            ms(ours.wall),
            ours.rss_kib as f64 / 1024.0,
            ms(ours_batch.wall),
            ratios[0].0,
            ratios[1].0,
            ratios[0].1,
            ratios[1].1,
        );
        println!(
            "\npeak RSS ours/vips (1 image): {:.2}x ({:.2}x vs 1-thread vips)",
            ratios[0].2, ratios[1].2
        );
    }
    Ok(())
}
