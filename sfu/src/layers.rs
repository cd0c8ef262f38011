//! Simulcast layers: how fast each arrives, how large it is, and which one a
//! subscriber gets.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use str0m::media::Rid;

/// Bytes received over a sliding window, as bits per second.
#[derive(Debug)]
pub struct BitrateMeter {
    window: Duration,
    samples: VecDeque<(Instant, usize)>,
    bytes_in_window: usize,
}

impl Default for BitrateMeter {
    fn default() -> Self {
        Self::new(Duration::from_secs(1))
    }
}

impl BitrateMeter {
    /// A meter over `window`.
    pub fn new(window: Duration) -> Self {
        BitrateMeter {
            window,
            samples: VecDeque::new(),
            bytes_in_window: 0,
        }
    }

    /// Records `bytes` received at `now`.
    pub fn record(&mut self, now: Instant, bytes: usize) {
        self.expire(now);
        self.samples.push_back((now, bytes));
        self.bytes_in_window += bytes;
    }

    /// The rate over the window ending at `now`, bits/s.
    pub fn bitrate(&mut self, now: Instant) -> u64 {
        self.expire(now);
        (self.bytes_in_window as u64 * 8 * 1000) / self.window.as_millis().max(1) as u64
    }

    fn expire(&mut self, now: Instant) {
        while let Some((t, n)) = self.samples.front().copied() {
            if now.saturating_duration_since(t) <= self.window {
                break;
            }
            self.samples.pop_front();
            self.bytes_in_window -= n;
        }
    }
}

/// One layer as the selector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerView {
    /// The layer's rid; `None` for a track without simulcast.
    pub rid: Option<Rid>,
    /// Measured rate, bits/s; 0 means the layer is not arriving.
    pub bitrate: u64,
    /// Width in pixels when known.
    pub width: Option<u32>,
}

/// Picks the layer for one subscription.
///
/// `layers` are ordered from lowest to highest quality. A layer is eligible
/// when it arrives (bitrate > 0). Among those, the choice is the lowest layer
/// at least as wide as the subscriber shows the video (`wanted_width`; `None`
/// = no limit; 0 = hidden, lowest layer), then lowered until it fits
/// `budget`. Moving *up* from `current` needs 15 % headroom so the choice
/// does not flap when the estimate hovers at a layer's rate.
pub fn select_layer(
    layers: &[LayerView],
    budget: u64,
    wanted_width: Option<u32>,
    current: Option<&Option<Rid>>,
) -> Option<Option<Rid>> {
    let arriving: Vec<(usize, &LayerView)> = layers
        .iter()
        .enumerate()
        .filter(|(_, l)| l.bitrate > 0)
        .collect();
    let (_, lowest) = arriving.first()?;

    // Size cap: the smallest arriving layer at least as wide as wanted.
    let size_cap = match wanted_width {
        None => arriving.len() - 1,
        Some(0) => 0,
        Some(w) => arriving
            .iter()
            .position(|(_, l)| l.width.is_some_and(|lw| lw >= w))
            .unwrap_or(arriving.len() - 1),
    };

    let current_pos = current.and_then(|c| arriving.iter().position(|(_, l)| &l.rid == c));
    let mut choice = 0;
    for (pos, (_, layer)) in arriving.iter().enumerate().take(size_cap + 1) {
        let needed = if current_pos.is_some_and(|c| pos > c) {
            layer.bitrate + layer.bitrate * 15 / 100
        } else {
            layer.bitrate
        };
        if needed <= budget {
            choice = pos;
        }
    }
    let chosen = arriving.get(choice).map(|(_, l)| l).unwrap_or(lowest);
    Some(chosen.rid)
}

/// Orders rids from lowest to highest quality: known sizes first by width,
/// then the conventions `q` < `h` < `f` and `l` < `m` < `h`.
pub fn rid_rank(rid: Option<&Rid>, width: Option<u32>) -> (u32, u8) {
    let by_name = match rid.map(|r| &**r) {
        Some("q") | Some("l") | Some("0") => 0,
        Some("m") | Some("1") => 1,
        Some("h") => 1,
        Some("f") | Some("2") => 2,
        _ => 1,
    };
    (width.unwrap_or(0), by_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(rid: &str, kbps: u64, width: u32) -> LayerView {
        LayerView {
            rid: Some(rid.into()),
            bitrate: kbps * 1000,
            width: Some(width),
        }
    }

    fn three() -> Vec<LayerView> {
        vec![
            layer("q", 150, 320),
            layer("h", 500, 640),
            layer("f", 1500, 1280),
        ]
    }

    #[test]
    fn meter_measures_window_rate() {
        let t0 = Instant::now();
        let mut m = BitrateMeter::new(Duration::from_secs(1));
        for i in 0..100 {
            m.record(t0 + Duration::from_millis(i * 10), 1250);
        }
        // 100 × 1250 bytes in 1 s = 1 Mbit/s.
        assert_eq!(m.bitrate(t0 + Duration::from_millis(990)), 1_000_000);
        assert_eq!(m.bitrate(t0 + Duration::from_secs(3)), 0);
    }

    #[test]
    fn budget_picks_highest_fitting_layer() {
        let l = three();
        assert_eq!(
            select_layer(&l, 5_000_000, None, None),
            Some(Some("f".into()))
        );
        assert_eq!(
            select_layer(&l, 800_000, None, None),
            Some(Some("h".into()))
        );
        assert_eq!(
            select_layer(&l, 100_000, None, None),
            Some(Some("q".into()))
        );
    }

    #[test]
    fn size_caps_the_layer() {
        let l = three();
        assert_eq!(
            select_layer(&l, 5_000_000, Some(300), None),
            Some(Some("q".into()))
        );
        assert_eq!(
            select_layer(&l, 5_000_000, Some(600), None),
            Some(Some("h".into()))
        );
        assert_eq!(
            select_layer(&l, 5_000_000, Some(0), None),
            Some(Some("q".into()))
        );
        assert_eq!(
            select_layer(&l, 5_000_000, Some(4000), None),
            Some(Some("f".into()))
        );
    }

    #[test]
    fn upgrade_needs_headroom() {
        let l = three();
        let h = Some("h".into());
        // 1.6 Mbit/s fits f (1.5) but not f + 15 %.
        assert_eq!(select_layer(&l, 1_600_000, None, Some(&h)), Some(h));
        assert_eq!(
            select_layer(&l, 1_800_000, None, Some(&h)),
            Some(Some("f".into()))
        );
        // Staying at f with 1.6 Mbit/s is fine.
        let f = Some("f".into());
        assert_eq!(select_layer(&l, 1_600_000, None, Some(&f)), Some(f));
    }

    #[test]
    fn only_arriving_layers_count() {
        let mut l = three();
        l[2].bitrate = 0;
        assert_eq!(
            select_layer(&l, 5_000_000, None, None),
            Some(Some("h".into()))
        );
        for x in &mut l {
            x.bitrate = 0;
        }
        assert_eq!(select_layer(&l, 5_000_000, None, None), None);
    }
}
