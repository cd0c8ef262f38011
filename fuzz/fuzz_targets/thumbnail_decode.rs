//! Untrusted image bytes (uploads, and what a client thumbnails before
//! encrypting) into the thumbnailer, with small limits so the fuzzer
//! explores parsing rather than spending its time decoding big images.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_media::thumbnail::{
    OutputFormat, ThumbnailLimits, ThumbnailSpec, probe, thumbnails,
};

const LIMITS: ThumbnailLimits = ThumbnailLimits {
    max_input_bytes: 1024 * 1024,
    max_pixels: 1_000_000,
    max_dimension: 2048,
    max_alloc: 64 * 1024 * 1024,
};

const SPECS: [ThumbnailSpec; 2] = [
    ThumbnailSpec {
        max_width: 48,
        max_height: 48,
        format: OutputFormat::Jpeg { quality: 70 },
    },
    ThumbnailSpec {
        max_width: 16,
        max_height: 24,
        format: OutputFormat::WebP,
    },
];

fuzz_target!(|data: &[u8]| {
    let probed = probe(data, &LIMITS);
    if let Ok(thumbs) = thumbnails(data, &SPECS, &LIMITS) {
        assert!(probed.is_ok(), "thumbnailed what probe refused");
        for (t, spec) in thumbs.iter().zip(&SPECS) {
            let fits = t.width <= spec.max_width && t.height <= spec.max_height;
            assert!(fits && t.width > 0 && t.height > 0, "{t:?} for {spec:?}");
            assert!(!t.bytes.is_empty());
        }
    }
});
