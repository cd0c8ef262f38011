//! A decompression bomb (a few-hundred-byte PNG declaring 100 000 × 100 000
//! pixels) is refused quickly and with bounded memory. Alone in its own
//! test binary so the process's peak RSS measures this test only.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::images::png_declaring;
use samtale_media::thumbnail::{
    OutputFormat, ThumbnailError, ThumbnailLimits, ThumbnailSpec, thumbnails,
};

/// Peak resident set size of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn png_declaring_100k_by_100k_is_refused_fast_with_bounded_memory() {
    let bomb = png_declaring(100_000, 100_000);
    assert!(bomb.len() < 200, "the bomb itself is tiny: {}", bomb.len());
    let specs = [ThumbnailSpec {
        max_width: 320,
        max_height: 320,
        format: OutputFormat::Jpeg { quality: 80 },
    }];
    let before = peak_rss_kib();
    let start = Instant::now();
    let err = thumbnails(&bomb, &specs, &ThumbnailLimits::default()).unwrap_err();
    assert!(matches!(
        err,
        ThumbnailError::DimensionsTooLarge {
            width: 100_000,
            height: 100_000,
            ..
        }
    ));
    // With a side limit large enough, the pixel-count limit refuses it.
    let wide = ThumbnailLimits {
        max_dimension: 200_000,
        ..ThumbnailLimits::default()
    };
    let err = thumbnails(&bomb, &specs, &wide).unwrap_err();
    assert!(
        matches!(err, ThumbnailError::TooManyPixels { .. }),
        "{err:?}"
    );
    let elapsed = start.elapsed();
    assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    if let (Some(before), Some(after)) = (before, peak_rss_kib()) {
        // Decoding it would need 30 GB; refusing it must cost almost nothing.
        assert!(
            after - before < 16 * 1024,
            "peak RSS grew by {} KiB",
            after - before
        );
    }
}
