//! IVF and Ogg Opus readers of the bot (files QA teams hand us).
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_qoe_lab::bot::media::{parse_ivf, parse_ogg_opus};

fuzz_target!(|data: &[u8]| {
    let _ = parse_ivf(data);
    let _ = parse_ogg_opus(data);
});
