//! G.107 anchor values.

use super::*;

#[test]
fn default_connection_is_93_2_and_mos_4_41() {
    let r = rate(&Inputs::default()).unwrap();
    assert!((r.r - 93.2).abs() < 0.05, "R {}", r.r);
    assert!((mos(93.2) - 4.41).abs() < 0.005, "MOS {}", mos(93.2));
    assert!((r.mos - 4.41).abs() < 0.005);
}

#[test]
fn mos_anchors() {
    assert!((mos(80.0) - 4.02).abs() < 0.005, "{}", mos(80.0));
    assert_eq!(mos(-3.0), 1.0);
    assert_eq!(mos(120.0), 4.5);
}

#[test]
fn idd_anchors() {
    for (ta, want) in [(150.0, 0.16), (200.0, 3.04), (300.0, 14.76), (400.0, 24.07)] {
        let got = idd(ta);
        assert!((got - want).abs() <= 0.01, "Idd({ta}) = {got}, want {want}");
    }
    assert_eq!(idd(100.0), 0.0);
}

#[test]
fn g711_plc_at_two_percent_random_loss() {
    let i = Inputs::for_codec("g711-plc", 0.0, 2.0, 1.0).unwrap();
    let r = rate(&i).unwrap();
    assert!((r.ie_eff - 7.0).abs() < 0.05, "Ie,eff {}", r.ie_eff);
}

#[test]
fn burstiness_and_delay_lower_the_rating() {
    let at = |delay, loss, burst| {
        rate(&Inputs::for_codec("opus-wb-24k", delay, loss, burst).unwrap())
            .unwrap()
            .r
    };
    assert!(at(0.0, 5.0, 2.0) < at(0.0, 5.0, 1.0));
    assert!(at(300.0, 5.0, 1.0) < at(150.0, 5.0, 1.0));
    assert!(at(0.0, 10.0, 1.0) < at(0.0, 5.0, 1.0));
}

#[test]
fn bad_input_is_a_typed_error() {
    assert!(matches!(
        Inputs::for_codec("speex", 0.0, 0.0, 1.0),
        Err(EmodelError::UnknownCodec(_))
    ));
    let msg = codec("speex").unwrap_err().to_string();
    assert!(msg.contains("opus-wb-24k"), "{msg}");
    let bad = Inputs {
        ppl: -1.0,
        ..Inputs::default()
    };
    assert!(matches!(rate(&bad), Err(EmodelError::OutOfRange { .. })));
    let nan = Inputs {
        delay_ms: f64::NAN,
        ..Inputs::default()
    };
    assert!(matches!(rate(&nan), Err(EmodelError::OutOfRange { .. })));
    assert!(codec("OPUS-WB-24K").is_ok());
}
