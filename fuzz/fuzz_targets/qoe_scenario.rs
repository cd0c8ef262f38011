//! Scenario files are written by QA and shared around: the TOML parser and
//! validator must turn any text into a scenario or a typed error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_qoe_lab::scenario::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(s) = Scenario::parse(text) else {
        return;
    };
    // A checked scenario must expand into cells whose pipeline settings are
    // either built or refused with an error, never a panic. Cap the work:
    // axes may be long.
    for cell in s.cells().iter().take(64) {
        let _ = s.burst_r(cell);
        for seed in s.seeds.iter().take(4) {
            let _ = s.pipeline(cell, *seed);
        }
    }
});
