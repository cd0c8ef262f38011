//! Rust bots (str0m peers in-process, the QoE lab's load client) calling
//! through samtale with real Opus + VP8.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::bots::{clip, wait_stats};
use common::server::*;
use samtale_qoe_lab::bot::{Bot, BotConfig, MediaClip, Source, frame_hash};

fn hashes(clip: &MediaClip) -> HashSet<u64> {
    clip.video.iter().map(|f| frame_hash(&f.data)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_bots_exchange_real_opus_and_vp8_byte_for_byte() {
    let server = start(test_config("bots")).await;
    let (_, token) = create_room(&server).await;
    let base = server.url.trim_end_matches('/').to_string();
    let (red, blue) = (clip("red", (81, 90, 240)), clip("blue", (41, 240, 110)));
    let config = |name: &str, c: &Arc<MediaClip>| BotConfig {
        server: base.clone(),
        token: token.clone(),
        name: name.into(),
        source: Source::Clip(c.clone()),
        bind_ip: "127.0.0.1".parse().unwrap(),
    };
    let a = Bot::join(config("A", &red)).await.unwrap();
    let b = Bot::join(config("B", &blue)).await.unwrap();
    let (ida, idb) = (
        a.stats().participant_id.unwrap(),
        b.stats().participant_id.unwrap(),
    );

    for (bot, from, sent) in [(&a, &idb, &blue), (&b, &ida, &red)] {
        let s = wait_stats(bot, "media from the other bot", |s| {
            s.received
                .get(from)
                .is_some_and(|t| t.video_frames > 60 && t.audio_frames > 100)
        })
        .await;
        let t = &s.received[from];
        assert!(t.video_keyframes >= 1);
        // Every frame arrived exactly as encoded.
        let known = hashes(sent);
        let unknown = t.video_hashes.difference(&known).count();
        assert_eq!(
            unknown, 0,
            "{unknown} received frames differ from what was sent"
        );
        assert!(t.video_hashes.len() > 30);
        assert_eq!(
            s.received.len(),
            1,
            "only the other bot's media: {:?}",
            s.received.keys()
        );
    }
    a.leave().await.unwrap();
    // B sees A leave and stays healthy.
    let s = wait_stats(&b, "participantLeft", |s| {
        s.messages.get("participantLeft").copied().unwrap_or(0) >= 1
    })
    .await;
    assert!(s.last_error.is_none(), "{:?}", s.last_error);
    b.leave().await.unwrap();
    server.shutdown().await;
}
