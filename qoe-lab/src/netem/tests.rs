//! Statistical and determinism tests of the emulator. Every statistical
//! bound is a 4-sigma (or wider, where said) interval around the exact
//! expectation, so a correct implementation fails with probability below
//! about 1e-4 per check; the seeds are fixed, so the runs are reproducible.

use std::time::Duration;

use super::*;

const N: u64 = 100_000;
const FRAME: Duration = Duration::from_millis(20);

/// Loss pattern of `n` packets sent every 20 ms.
fn pattern(config: NetemConfig, n: u64) -> Vec<bool> {
    let mut net = Netem::new(config).unwrap();
    (0..n)
        .map(|i| net.send(FRAME * i as u32, 200).unwrap() == Fate::Lost)
        .collect()
}

/// (loss ratio, number of bursts, mean burst length).
fn measure(lost: &[bool]) -> (f64, f64, f64) {
    let total = lost.iter().filter(|l| **l).count() as f64;
    let bursts = lost
        .iter()
        .enumerate()
        .filter(|(i, l)| **l && (*i == 0 || !lost[i - 1]))
        .count() as f64;
    (total / lost.len() as f64, bursts, total / bursts.max(1.0))
}

fn config(loss: LossModel, seed: u64) -> NetemConfig {
    NetemConfig {
        seed,
        loss,
        ..NetemConfig::default()
    }
}

/// Checks loss ratio and mean burst length of a Gilbert-Elliott chain.
/// Loss: the asymptotic variance of the mean of a two-state Markov-modulated
/// Bernoulli sequence, [m(1-m) + 2 d² πG πB λ/(1-λ)] / N with d = lB - lG
/// and λ = 1 - p - r (lag-k covariance d² πG πB λ^k), 4 sigma.
/// Burst length: runs are geometric-like with variance E(E-1); the standard
/// error of their mean over the observed bursts, `burst_sigmas` sigma (4
/// for the simple Gilbert model where runs are exactly geometric, 6 for
/// presets where they are only approximately so).
fn check_ge(ge: GilbertElliott, seed: u64, burst_sigmas: f64) {
    let lost = pattern(config(LossModel::GilbertElliott(ge), seed), N);
    let (loss, bursts, burst) = measure(&lost);
    let m = ge.mean_loss();
    let (pb, pg) = (ge.bad_share(), 1.0 - ge.bad_share());
    let lambda = 1.0 - ge.p - ge.r;
    let d = ge.loss_bad - ge.loss_good;
    let var = (m * (1.0 - m) + 2.0 * d * d * pg * pb * lambda / (1.0 - lambda)) / N as f64;
    assert!(
        (loss - m).abs() <= 4.0 * var.sqrt(),
        "{ge:?}: loss {loss} vs {m} ± {}",
        4.0 * var.sqrt()
    );
    let e = ge.mean_burst();
    let sigma = (e * (e - 1.0)).sqrt() / bursts.sqrt();
    assert!(
        (burst - e).abs() <= burst_sigmas * sigma,
        "{ge:?}: burst {burst} vs {e} ± {}",
        burst_sigmas * sigma
    );
}

#[test]
fn random_loss_within_four_sigma_binomial() {
    for (p, seed) in [(0.01, 1), (0.05, 2), (0.1, 3), (0.3, 4)] {
        let lost = pattern(config(LossModel::Random { p }, seed), N);
        let (loss, bursts, burst) = measure(&lost);
        // Binomial(N, p): sigma of the ratio is sqrt(p(1-p)/N).
        let sigma = (p * (1.0 - p) / N as f64).sqrt();
        assert!((loss - p).abs() <= 4.0 * sigma, "p {p}: measured {loss}");
        // Runs of independent losses are geometric: mean 1/(1-p), variance p/(1-p)².
        let e = 1.0 / (1.0 - p);
        let sigma_burst = (p.sqrt() / (1.0 - p)) / bursts.sqrt();
        assert!(
            (burst - e).abs() <= 4.0 * sigma_burst,
            "p {p}: burst {burst} vs {e}"
        );
    }
}

#[test]
fn gilbert_loss_and_burst_within_bounds() {
    for (loss, burst, seed) in [
        (0.02, 1.5, 10),
        (0.05, 2.0, 11),
        (0.1, 3.0, 12),
        (0.2, 5.0, 13),
    ] {
        let ge = GilbertElliott::from_loss_and_burst(loss, burst).unwrap();
        assert!((ge.mean_loss() - loss).abs() < 1e-12);
        assert!((ge.mean_burst() - burst).abs() < 1e-9);
        check_ge(ge, seed, 4.0);
    }
}

#[test]
fn presets_within_bounds_and_documented() {
    for (name, ge, _) in PRESETS {
        assert_eq!(GilbertElliott::preset(name).unwrap(), *ge);
        check_ge(*ge, 20, 6.0);
    }
    let wifi = GilbertElliott::preset("wifi").unwrap();
    assert!((wifi.mean_loss() - 0.026).abs() < 0.001);
    let lte = GilbertElliott::preset("congested-lte").unwrap();
    assert!((lte.mean_loss() - 0.073).abs() < 0.001);
    assert!(lte.mean_burst() > wifi.mean_burst());
    assert!(matches!(
        GilbertElliott::preset("5g"),
        Err(NetemError::UnknownPreset(_))
    ));
}

#[test]
fn same_seed_same_fates_other_seed_differs() {
    let full = |seed| {
        let mut net = Netem::new(NetemConfig {
            seed,
            loss: LossModel::GilbertElliott(GilbertElliott::preset("congested-lte").unwrap()),
            delay: Duration::from_millis(50),
            jitter: Duration::from_millis(10),
            reorder: true,
            duplicate: 0.01,
            ..NetemConfig::default()
        })
        .unwrap();
        (0..5000u32)
            .map(|i| net.send(FRAME * i, 100).unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(full(7), full(7));
    assert_ne!(full(7), full(8));
}

#[test]
fn loss_pattern_does_not_depend_on_sizes_or_delay() {
    let lossy = |delay, size| {
        let mut net = Netem::new(NetemConfig {
            seed: 3,
            loss: LossModel::Random { p: 0.1 },
            delay,
            jitter: Duration::from_millis(5),
            ..NetemConfig::default()
        })
        .unwrap();
        (0..2000u32)
            .map(|i| net.send(FRAME * i, size).unwrap() == Fate::Lost)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        lossy(Duration::ZERO, 60),
        lossy(Duration::from_millis(100), 300)
    );
}

#[test]
fn fixed_delay_is_exact() {
    let mut net = Netem::new(NetemConfig {
        delay: Duration::from_millis(150),
        ..NetemConfig::default()
    })
    .unwrap();
    for i in 0..100u32 {
        let fate = net.send(FRAME * i, 100).unwrap();
        assert_eq!(
            fate,
            Fate::Delivered {
                at: FRAME * i + Duration::from_millis(150),
                duplicate: None
            }
        );
    }
}

fn arrivals(reorder: bool) -> Vec<Duration> {
    let mut net = Netem::new(NetemConfig {
        seed: 5,
        delay: Duration::from_millis(100),
        jitter: Duration::from_millis(30),
        reorder,
        ..NetemConfig::default()
    })
    .unwrap();
    (0..N as u32)
        .filter_map(|i| match net.send(FRAME * i, 100).unwrap() {
            Fate::Delivered { at, .. } => Some(at - FRAME * i),
            _ => None,
        })
        .collect()
}

#[test]
fn jitter_with_reordering_has_the_configured_spread() {
    let delays = arrivals(true);
    let n = delays.len() as f64;
    let mean = delays.iter().map(|d| d.as_secs_f64()).sum::<f64>() / n;
    let var = delays
        .iter()
        .map(|d| (d.as_secs_f64() - mean).powi(2))
        .sum::<f64>()
        / n;
    // Normal(100 ms, 30 ms), truncated at 0 (3.3 sigma: negligible).
    // Mean: 4 sigma = 4 · 30 ms / sqrt(N) ≈ 0.38 ms. Std dev: its standard
    // error is sigma / sqrt(2N) ≈ 0.067 ms; 4 of them ≈ 0.27 ms.
    assert!((mean - 0.100).abs() < 0.0004, "mean {mean}");
    assert!((var.sqrt() - 0.030).abs() < 0.0003, "sd {}", var.sqrt());
    // Packets 20 ms apart with 30 ms jitter reorder often.
    let sent: Vec<Duration> = delays
        .iter()
        .enumerate()
        .map(|(i, d)| FRAME * i as u32 + *d)
        .collect();
    assert!(sent.windows(2).filter(|w| w[1] < w[0]).count() > 1000);
}

#[test]
fn jitter_without_reordering_keeps_order() {
    let delays = arrivals(false);
    let at: Vec<Duration> = delays
        .iter()
        .enumerate()
        .map(|(i, d)| FRAME * i as u32 + *d)
        .collect();
    assert!(at.windows(2).all(|w| w[1] >= w[0]));
    assert!(delays.iter().any(|d| *d != delays[0]));
}

#[test]
fn rate_limit_queues_then_drops() {
    // 1 Mbit/s, 1250-byte packets take 10 ms each; one every 5 ms is twice
    // the rate, so the queue fills (10 kB = 8 packets) and then drops half.
    let mut net = Netem::new(NetemConfig {
        rate_bps: Some(1_000_000),
        queue_bytes: 10_000,
        ..NetemConfig::default()
    })
    .unwrap();
    let step = Duration::from_millis(5);
    let fates: Vec<Fate> = (0..1000u32)
        .map(|i| net.send(step * i, 1250).unwrap())
        .collect();
    assert_eq!(
        fates[0],
        Fate::Delivered {
            at: Duration::from_millis(10),
            duplicate: None
        }
    );
    let delivered: Vec<Duration> = fates
        .iter()
        .filter_map(|f| match f {
            Fate::Delivered { at, .. } => Some(*at),
            _ => None,
        })
        .collect();
    let drops = fates.iter().filter(|f| **f == Fate::QueueFull).count();
    // Over 5 s the link carries 500 packets and up to 8 more wait in the
    // queue at the end: 492..=500 of the 1000 are dropped.
    assert!((492..=500).contains(&drops), "drops {drops}");
    // Delivered back to back at the link rate, 10 ms apart.
    assert!(
        delivered
            .windows(2)
            .all(|w| w[1] - w[0] == Duration::from_millis(10))
    );
    assert_eq!(net.stats().queue_drops, drops as u64);
}

#[test]
fn duplication_rate_within_four_sigma() {
    let p = 0.05;
    let mut net = Netem::new(NetemConfig {
        seed: 9,
        duplicate: p,
        ..NetemConfig::default()
    })
    .unwrap();
    let dups = (0..N as u32)
        .filter(|i| {
            matches!(
                net.send(FRAME * *i, 100).unwrap(),
                Fate::Delivered {
                    duplicate: Some(_),
                    ..
                }
            )
        })
        .count() as f64;
    let sigma = (N as f64 * p * (1.0 - p)).sqrt();
    assert!((dups - N as f64 * p).abs() <= 4.0 * sigma, "dups {dups}");
    assert_eq!(net.stats().duplicated, dups as u64);
}

#[test]
fn bad_input_is_a_typed_error() {
    let bad = |loss| Netem::new(config(loss, 0)).err();
    assert!(matches!(
        bad(LossModel::Random { p: 1.5 }),
        Some(NetemError::Probability { .. })
    ));
    assert!(matches!(
        GilbertElliott::from_loss_and_burst(0.1, 0.5),
        Err(NetemError::InvalidParameter { .. })
    ));
    assert!(matches!(
        Netem::new(NetemConfig {
            duplicate: -0.1,
            ..NetemConfig::default()
        }),
        Err(NetemError::Probability { .. })
    ));
    assert!(matches!(
        Netem::new(NetemConfig {
            rate_bps: Some(0),
            ..NetemConfig::default()
        }),
        Err(NetemError::InvalidParameter { .. })
    ));
    let mut net = Netem::new(NetemConfig::default()).unwrap();
    net.send(Duration::from_millis(40), 10).unwrap();
    assert!(matches!(
        net.send(Duration::from_millis(20), 10),
        Err(NetemError::TimeWentBackwards { .. })
    ));
}

#[test]
fn queue_hands_out_packets_in_arrival_order() {
    let mut q = NetemQueue::new(NetemConfig {
        seed: 1,
        delay: Duration::from_millis(50),
        jitter: Duration::from_millis(40),
        reorder: true,
        ..NetemConfig::default()
    })
    .unwrap();
    for i in 0..200u32 {
        q.push(FRAME * i, i, 100).unwrap();
    }
    assert_eq!(q.len(), 200);
    assert!(q.poll(Duration::ZERO).is_none() || q.next_deadline().is_some());
    let mut last = Duration::ZERO;
    let mut got = Vec::new();
    while let Some(deadline) = q.next_deadline() {
        let (at, p) = q.poll(deadline).unwrap();
        assert!(at >= last);
        last = at;
        got.push(p);
    }
    assert!(q.is_empty());
    got.sort_unstable();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
}
