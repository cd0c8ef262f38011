//! The SFU core in virtual time: rooms, forwarding, cleanup, keyframe
//! throttling, simulcast layer switching, active speaker.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod harness;

use std::time::Duration;

use harness::Harness;
use samtale_sfu::str0m::media::MediaKind;
use samtale_sfu::{LeaveReason, RoomId, SfuConfig, SfuError, SfuEvent, SfuMetrics};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn three_party_room_each_receives_the_others() {
    let mut h = Harness::new(SfuConfig::default());
    for _ in 0..3 {
        h.join("room", false);
    }
    // A participant in another room must see none of it.
    h.join("elsewhere", false);
    h.run_for(secs(4));

    for c in &h.clients[..3] {
        for other in 0..3u8 {
            if other == c.index {
                assert_eq!(
                    c.frames_from(other, MediaKind::Video),
                    0,
                    "no echo of own media"
                );
                continue;
            }
            // 30 fps and 50 pps for ~3 s after connecting.
            let video = c.frames_from(other, MediaKind::Video);
            let audio = c.frames_from(other, MediaKind::Audio);
            assert!(
                video > 50,
                "client {} got {video} video frames from {other}",
                c.index
            );
            assert!(
                audio > 80,
                "client {} got {audio} audio frames from {other}",
                c.index
            );
        }
        assert_eq!(c.frames_from(3, MediaKind::Audio), 0, "rooms are isolated");
    }
    let outsider = &h.clients[3];
    assert!(
        outsider.received.is_empty(),
        "the lone participant receives nothing"
    );
    let m = h.sfu.metrics();
    assert!(SfuMetrics::get(&m.packets_forwarded) > 1000);
    assert_eq!(SfuMetrics::get(&m.rooms), 2);
    assert_eq!(SfuMetrics::get(&m.participants), 4);
}

#[test]
fn leave_and_crash_are_cleaned_up_and_media_keeps_flowing() {
    let config = SfuConfig {
        disconnect_grace: secs(3),
        ..SfuConfig::default()
    };
    let mut h = Harness::new(config);
    for _ in 0..4 {
        h.join("room", false);
    }
    h.run_for(secs(3));
    let room = RoomId::new("room").unwrap();

    // Client 0 leaves politely.
    let leaver = h.clients[0].id;
    h.sfu.leave(h.now, leaver).unwrap();
    h.clients[0].publishing = false;
    h.clients[0].unplugged = true;
    // Client 3 crashes: its packets stop.
    h.clients[3].unplugged = true;
    let crashed = h.clients[3].id;

    let before: Vec<u64> = (1..3)
        .map(|i| h.clients[i].frames_from(if i == 1 { 2 } else { 1 }, MediaKind::Video))
        .collect();
    h.run_for(secs(20));

    let left: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SfuEvent::Left {
                participant,
                reason,
                ..
            } => Some((*participant, *reason)),
            _ => None,
        })
        .collect();
    assert!(left.contains(&(leaver, LeaveReason::Left)), "{left:?}");
    assert!(left.contains(&(crashed, LeaveReason::Timeout)), "{left:?}");
    assert_eq!(h.sfu.members(&room), vec![h.clients[1].id, h.clients[2].id]);

    // The two left keep talking to each other.
    let after_1 = h.clients[1].frames_from(2, MediaKind::Video);
    let after_2 = h.clients[2].frames_from(1, MediaKind::Video);
    assert!(after_1 > before[0] + 300, "{} -> {after_1}", before[0]);
    assert!(after_2 > before[1] + 300, "{} -> {after_2}", before[1]);
    // And their sessions renegotiated the departed tracks away.
    for i in 1..3 {
        let offers = h
            .events
            .iter()
            .filter(|(_, e)| matches!(e, SfuEvent::Offer { participant, .. } if *participant == h.clients[i].id))
            .count();
        assert!(offers >= 2, "client {i} saw {offers} offers");
    }
    assert_eq!(SfuMetrics::get(&h.sfu.metrics().participants), 2);
}

#[test]
fn keyframe_requests_are_throttled_toward_the_publisher() {
    let mut h = Harness::new(SfuConfig::default());
    for _ in 0..4 {
        h.join("room", false);
    }
    h.run_for(secs(3));
    let seen_before = h.clients[0].keyframe_requests_seen;
    let throttled_before = SfuMetrics::get(&h.sfu.metrics().keyframe_requests_throttled);
    // Three subscribers each ask 10 times within 100 ms.
    for _ in 0..10 {
        for i in 1..4 {
            h.clients[i].request_keyframe_from_all();
        }
        h.run_for(Duration::from_millis(10));
    }
    h.run_for(Duration::from_millis(200));
    let seen = h.clients[0].keyframe_requests_seen - seen_before;
    // 30 requests in 300 ms; at most one per 500 ms may reach the publisher.
    assert!(seen >= 1, "the publisher must hear the request");
    assert!(
        seen <= 1,
        "publisher saw {seen} keyframe requests in 300 ms"
    );
    let throttled =
        SfuMetrics::get(&h.sfu.metrics().keyframe_requests_throttled) - throttled_before;
    assert!(throttled >= 20, "only {throttled} requests were throttled");
}

#[test]
fn simulcast_layer_drops_when_the_subscriber_estimate_drops() {
    let config = SfuConfig {
        initial_bitrate: 3_000_000,
        ..SfuConfig::default()
    };
    let mut h = Harness::new(config);
    let publisher = h.join("room", true);
    let subscriber = h.join("room", false);
    h.clients[subscriber].publishing = false;
    let (pid, sid) = (h.clients[publisher].id, h.clients[subscriber].id);
    h.run_for(secs(5));
    assert_eq!(h.sfu.forwarded_layer(sid, pid), Some(Some("f".into())));
    let big = *h.clients[subscriber].video_sizes[&0].last().unwrap();
    assert_eq!(big, harness::LAYERS[2].1, "full layer frames arrive");

    // The subscriber's downlink shrinks to 600 kbit/s.
    h.clients[subscriber].downlink.rate_bps = Some(600_000);
    h.run_for(secs(15));
    let layer = h.sfu.forwarded_layer(sid, pid).flatten();
    assert!(
        matches!(layer.as_deref(), Some("q") | Some("h")),
        "layer after the drop: {layer:?}"
    );
    let switched_down = h.events.iter().any(|(_, e)| {
        matches!(e, SfuEvent::LayerSwitched { subscriber, rid: Some(r), .. } if *subscriber == sid && r != "f")
    });
    assert!(switched_down);
    // Video keeps arriving at the lower layer.
    let before = h.clients[subscriber].frames_from(0, MediaKind::Video);
    h.run_for(secs(2));
    let after = h.clients[subscriber].frames_from(0, MediaKind::Video);
    assert!(after > before + 30, "{before} -> {after}");
    let last = *h.clients[subscriber].video_sizes[&0].last().unwrap();
    assert!(
        last < harness::LAYERS[2].1,
        "frames are smaller now: {last}"
    );
}

#[test]
fn a_small_view_gets_the_small_layer() {
    let mut h = Harness::new(SfuConfig {
        initial_bitrate: 5_000_000,
        ..SfuConfig::default()
    });
    let publisher = h.join("room", true);
    let subscriber = h.join("room", false);
    let (pid, sid) = (h.clients[publisher].id, h.clients[subscriber].id);
    h.sfu
        .set_layer_widths(
            pid,
            [("q".into(), 320), ("h".into(), 640), ("f".into(), 1280)],
        )
        .unwrap();
    h.run_for(secs(3));
    h.sfu.set_video_width(h.now, sid, pid, 300).unwrap();
    h.run_for(secs(3));
    assert_eq!(h.sfu.forwarded_layer(sid, pid), Some(Some("q".into())));
    let last = *h.clients[subscriber].video_sizes[&0].last().unwrap();
    assert_eq!(last, harness::LAYERS[0].1);
}

#[test]
fn the_loudest_participant_becomes_active_speaker() {
    let mut h = Harness::new(SfuConfig::default());
    for _ in 0..3 {
        h.join("room", false);
    }
    h.clients[1].audio_level = 20;
    h.run_for(secs(3));
    let speakers: Vec<_> = h
        .events
        .iter()
        .filter_map(|(_, e)| match e {
            SfuEvent::ActiveSpeaker { participant, .. } => Some(*participant),
            _ => None,
        })
        .collect();
    assert_eq!(speakers, vec![h.clients[1].id]);
    h.clients[1].audio_level = 127;
    h.clients[2].audio_level = 10;
    h.run_for(secs(2));
    let room = RoomId::new("room").unwrap();
    assert_eq!(h.sfu.active_speaker(&room), Some(h.clients[2].id));
}

#[test]
fn the_33rd_participant_is_refused() {
    let mut h = Harness::new(SfuConfig::default());
    let room = RoomId::new("full").unwrap();
    for _ in 0..32 {
        h.sfu.join(h.now, room.clone()).unwrap();
    }
    let err = h.sfu.join(h.now, room.clone()).unwrap_err();
    assert!(matches!(err, SfuError::RoomFull { max: 32, .. }), "{err}");
    assert_eq!(h.sfu.members(&room).len(), 32);
    // Another room is unaffected.
    h.sfu.join(h.now, RoomId::new("other").unwrap()).unwrap();
}

#[test]
fn bad_sdp_is_a_clear_error_and_the_room_survives() {
    let mut h = Harness::new(SfuConfig::default());
    h.join("room", false);
    h.join("room", false);
    let id = h.sfu.join(h.now, RoomId::new("room").unwrap()).unwrap();
    let err = h.sfu.accept_offer(h.now, id, "v=0\r\ngarbage").unwrap_err();
    assert!(matches!(err, SfuError::BadSdp(_)), "{err}");
    let err = h.sfu.accept_answer(h.now, id, "v=0\r\n").unwrap_err();
    assert!(
        matches!(err, SfuError::BadSdp(_) | SfuError::NoPendingOffer),
        "{err}"
    );
    h.run_for(secs(3));
    assert!(h.clients[0].frames_from(1, MediaKind::Video) > 40);
}

#[test]
fn a_late_simulcast_subscriber_gets_video_within_a_second() {
    let mut h = Harness::new(SfuConfig::default());
    let publisher = h.join("room", true);
    h.run_for(secs(5));
    // Joins when the publisher's only keyframe is long gone.
    let late = h.join("room", false);
    h.clients[late].publishing = false;
    // Its view size arrives before its subscriptions are negotiated (as a
    // browser's `videoSize` does), so the layer is chosen early.
    let (pid, lid) = (h.clients[publisher].id, h.clients[late].id);
    h.sfu.set_video_width(h.now, lid, pid, 640).unwrap();
    h.run_for(Duration::from_millis(1000));
    let got = h.clients[late].frames_from(h.clients[publisher].index, MediaKind::Video);
    assert!(
        got > 10,
        "late subscriber decoded {got} frames in its first second"
    );
}

#[test]
fn an_ice_tcp_participant_calls_with_a_udp_one() {
    let mut h = Harness::new(SfuConfig::default());
    let udp = h.join("room", false);
    let tcp = h.join_tcp("room");
    h.run_for(secs(3));
    assert!(h.clients[tcp].frames_from(h.clients[udp].index, MediaKind::Video) > 40);
    assert!(h.clients[udp].frames_from(h.clients[tcp].index, MediaKind::Video) > 40);
    assert!(h.clients[udp].frames_from(h.clients[tcp].index, MediaKind::Audio) > 60);
}
