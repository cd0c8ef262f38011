//! Bots for tests: encoded clips and bounded waits on bot statistics.

use std::sync::Arc;
use std::time::Duration;

use samtale_qoe_lab::bot::{Bot, BotStats, MediaClip};

/// A 4-second VP8 + Opus clip of one colour (Y, U, V), encoded once per machine.
pub fn clip(name: &str, yuv: (u8, u8, u8)) -> Arc<MediaClip> {
    let dir = std::env::temp_dir().join("samtale-test-clips");
    Arc::new(MediaClip::encode(&dir, name, yuv, 4).expect("vpxenc/opusenc (run ./scripts/test.sh)"))
}

/// Polls the bot's statistics until `pred` holds; fails after 30 s.
pub async fn wait_stats(bot: &Bot, what: &str, pred: impl Fn(&BotStats) -> bool) -> BotStats {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tick.tick().await;
        let s = bot.stats();
        if pred(&s) {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
    }
}
