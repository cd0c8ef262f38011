//! `qoe-lab score` reads WAV files QA recorded anywhere: the reader must
//! return audio or a typed error for any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use samtale_qoe_lab::audio;

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = audio::read_wav_bytes(data) {
        assert!(a.samples.len() <= audio::MAX_WAV_SAMPLES as usize);
        let _ = a.seconds();
        let _ = audio::active_range(&a);
    }
});
