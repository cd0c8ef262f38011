//! Real headless Chromium in calls through our SFU, driven over the
//! DevTools protocol. `scripts/test.sh` installs Chromium when missing; a
//! machine without it fails these tests rather than skipping them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::time::Duration;

use common::browser::{Browser, Page};
use common::server::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(40);

/// Tabs in one browser must not be throttled as background tabs.
fn browser_args() -> Vec<String> {
    [
        "--disable-background-timer-throttling",
        "--disable-backgrounding-occluded-windows",
        "--disable-renderer-backgrounding",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn open(
    browser: &Browser,
    server: &samtale::Running,
    room: &str,
    token: &str,
    name: &str,
    extra: &str,
) -> Page {
    let url = format!(
        "{}?room={room}&autojoin=1&name={name}{extra}#token={token}",
        server.url
    );
    let page = browser.new_page(&url).await.unwrap();
    page.wait_for(
        &format!("{name} joined"),
        "window.samtale && window.samtale.state().joined === true",
        WAIT,
    )
    .await
    .unwrap();
    page
}

async fn my_id(page: &Page) -> String {
    page.eval("window.samtale.state().participantId")
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

async fn stats(page: &Page) -> Value {
    page.eval("window.samtale.stats()").await.unwrap()
}

/// Waits until `page` decodes video from each of `from`, with frames rising.
async fn wait_video_flowing(page: &Page, from: &[String]) {
    let ids = serde_json::to_string(from).unwrap();
    let expr = format!(
        "(async () => {{ const s = await window.samtale.stats(); return {ids}.map(id => (s.remotes[id] && s.remotes[id].video.framesDecoded) || 0); }})()"
    );
    let first = page
        .wait_until("video decoding starts", &expr, WAIT, |v| {
            v.as_array()
                .is_some_and(|a| a.iter().all(|n| n.as_u64().unwrap_or(0) > 0))
        })
        .await
        .unwrap();
    let before: Vec<u64> = first
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    page.wait_until("video frames keep rising", &expr, WAIT, |v| {
        v.as_array().is_some_and(|a| {
            a.iter()
                .zip(&before)
                .all(|(n, b)| n.as_u64().unwrap_or(0) > b + 10)
        })
    })
    .await
    .unwrap();
}

async fn launch() -> Browser {
    assert!(
        common::browser::chromium_path().is_some(),
        "Chromium is missing: run ./scripts/test.sh, which installs it"
    );
    Browser::launch(&browser_args()).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_two_participants_see_and_hear_each_other() {
    let server = start(test_config("browser2")).await;
    let (room, token) = create_room(&server).await;
    let browser = launch().await;
    let a = open(&browser, &server, &room, &token, "Ada", "&fake=red").await;
    let b = open(&browser, &server, &room, &token, "Bo", "&fake=blue").await;
    let (ida, idb) = (my_id(&a).await, my_id(&b).await);

    wait_video_flowing(&a, std::slice::from_ref(&idb)).await;
    wait_video_flowing(&b, std::slice::from_ref(&ida)).await;

    for (page, other) in [(&a, &idb), (&b, &ida)] {
        let s1 = stats(page).await;
        let energy1 = s1["remotes"][other]["audio"]["totalAudioEnergy"]
            .as_f64()
            .unwrap_or(0.0);
        let audio_expr = format!(
            "(async () => {{ const s = await window.samtale.stats(); return s.remotes['{other}'].audio; }})()"
        );
        let audio = page
            .wait_until("audio energy rises", &audio_expr, WAIT, |v| {
                v["totalAudioEnergy"].as_f64().unwrap_or(0.0) > energy1
                    && v["totalSamplesReceived"].as_u64().unwrap_or(0) > 48_000
            })
            .await
            .unwrap();
        let concealed = audio["concealedSamples"].as_f64().unwrap_or(1.0);
        let total = audio["totalSamplesReceived"].as_f64().unwrap_or(1.0);
        assert!(
            concealed / total < 0.1,
            "concealed {concealed} of {total} samples"
        );
    }
    let (_, metrics) = http(server.http_addr, "GET", "/metrics", &[], "").await;
    assert!(
        !metrics.contains("\nsamtale_packets_forwarded_total 0\n"),
        "{metrics}"
    );

    // An ICE restart (what the client does when the network drops) keeps
    // the call: the server offers new ICE credentials, media continues.
    let offers = "window.samtale.events.filter(e => e.type === 'offer').length";
    let before = a.eval(offers).await.unwrap().as_u64().unwrap();
    assert_eq!(
        a.eval("window.samtale.restartIce()").await.unwrap(),
        Value::Bool(true)
    );
    a.wait_until("ICE-restart offer", offers, WAIT, |v| {
        v.as_u64().unwrap_or(0) > before
    })
    .await
    .unwrap();
    a.wait_for(
        "connected after restart",
        "['connected', 'completed'].includes(window.samtale.state().iceState)",
        WAIT,
    )
    .await
    .unwrap();
    wait_video_flowing(&a, std::slice::from_ref(&idb)).await;
    wait_video_flowing(&b, std::slice::from_ref(&ida)).await;
    drop(browser);
    server.shutdown().await;
}

/// The centre colour a receiver sees for each sender must be that sender's.
fn close_to(marker: &Value, rgb: [i64; 3]) -> bool {
    let Some(m) = marker.as_array() else {
        return false;
    };
    m.len() == 3
        && m.iter()
            .zip(rgb)
            .all(|(v, c)| (v.as_i64().unwrap_or(-999) - c).abs() < 60)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_four_participants_get_three_distinct_videos_and_survive_a_leave() {
    let server = start(test_config("browser4")).await;
    let (room, token) = create_room(&server).await;
    let browser = launch().await;
    let colours: [(&str, [i64; 3]); 4] = [
        ("red", [255, 0, 0]),
        ("lime", [0, 255, 0]),
        ("blue", [0, 0, 255]),
        ("yellow", [255, 255, 0]),
    ];
    let mut pages = Vec::new();
    for (i, (colour, _)) in colours.iter().enumerate() {
        let extra = format!("&fake={colour}&simulcast=0&fakew=320&fakeh=180");
        pages.push(open(&browser, &server, &room, &token, &format!("P{i}"), &extra).await);
    }
    let mut ids = Vec::new();
    for p in &pages {
        ids.push(my_id(p).await);
    }
    for (i, page) in pages.iter().enumerate() {
        let others: Vec<String> = ids
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, id)| id.clone())
            .collect();
        wait_video_flowing(page, &others).await;
    }
    // Each receiver sees each sender's own colour.
    for (i, page) in pages.iter().enumerate() {
        for (j, id) in ids.iter().enumerate() {
            if i == j {
                continue;
            }
            let expr = format!(
                "(async () => (await window.samtale.stats()).remotes['{id}'].video.marker)()"
            );
            let want = colours[j].1;
            page.wait_until(&format!("P{i} sees P{j}'s colour"), &expr, WAIT, |v| {
                close_to(v, want)
            })
            .await
            .unwrap();
        }
    }

    // For people checking the UI: SAMTALE_SCREENSHOT=/tmp/call.png.
    if let Ok(path) = std::env::var("SAMTALE_SCREENSHOT") {
        std::fs::write(path, pages[0].screenshot_png().await.unwrap()).unwrap();
    }

    // P3 leaves; the others see it go and keep receiving each other.
    pages[3].eval("window.samtale.leave()").await.unwrap();
    let gone = &ids[3];
    for page in &pages[..3] {
        let expr = format!(
            "window.samtale.events.some(e => e.type === 'participantLeft' && e.participantId === '{gone}') && !window.samtale.state().remoteIds.includes('{gone}')"
        );
        page.wait_for("participantLeft seen", &expr, WAIT)
            .await
            .unwrap();
    }
    for (i, page) in pages[..3].iter().enumerate() {
        let others: Vec<String> = (0..3).filter(|j| *j != i).map(|j| ids[j].clone()).collect();
        wait_video_flowing(page, &others).await;
    }
    drop(browser);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_simulcast_small_view_gets_a_smaller_layer() {
    let server = start(test_config("browsersim")).await;
    let (room, token) = create_room(&server).await;
    let browser = launch().await;
    let sender = open(
        &browser,
        &server,
        &room,
        &token,
        "Sender",
        "&fake=purple&fakew=1280&fakeh=720",
    )
    .await;
    let small = open(
        &browser,
        &server,
        &room,
        &token,
        "Small",
        "&fake=gray&simulcast=0&fakew=160&fakeh=90",
    )
    .await;
    let big = open(
        &browser,
        &server,
        &room,
        &token,
        "Big",
        "&fake=gray&simulcast=0&fakew=160&fakeh=90",
    )
    .await;
    let sid = my_id(&sender).await;
    assert_eq!(
        small
            .eval(&format!("window.samtale.setVideoSize('{sid}', 320, 180)"))
            .await
            .unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        big.eval(&format!("window.samtale.setVideoSize('{sid}', 1280, 720)"))
            .await
            .unwrap(),
        Value::Bool(true)
    );

    let width = format!(
        "(async () => {{ const r = (await window.samtale.stats()).remotes['{sid}']; return r ? r.video : null; }})()"
    );
    // The large view climbs above the quarter layer once bandwidth allows.
    big.wait_until(
        "large view gets a layer wider than 320",
        &width,
        Duration::from_secs(60),
        |v| v["frameWidth"].as_u64().unwrap_or(0) > 320,
    )
    .await
    .unwrap();
    // The small view gets the quarter layer, and frames keep decoding.
    let v = small
        .wait_until("small view gets ≤ 320 px", &width, WAIT, |v| {
            let w = v["frameWidth"].as_u64().unwrap_or(0);
            w > 0 && w <= 320
        })
        .await
        .unwrap();
    let decoded = v["framesDecoded"].as_u64().unwrap_or(0);
    let v = small
        .wait_until("small view keeps decoding", &width, WAIT, |v| {
            v["framesDecoded"].as_u64().unwrap_or(0) > decoded + 30
        })
        .await
        .unwrap();
    let w = v["frameWidth"].as_u64().unwrap_or(0);
    assert!(w <= 320, "small view width {w}");
    drop(browser);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_decodes_a_bot_and_the_bot_receives_the_browser() {
    use common::bots::{clip, wait_stats};
    use samtale_qoe_lab::bot::{Bot, BotConfig, Source};

    let server = start(test_config("browserbot")).await;
    let (room, token) = create_room(&server).await;
    let bot = Bot::join(BotConfig {
        server: server.url.trim_end_matches('/').to_string(),
        token: token.clone(),
        name: "Bot".into(),
        source: Source::Clip(clip("green", (145, 54, 34))),
        bind_ip: "127.0.0.1".parse().unwrap(),
    })
    .await
    .unwrap();
    let bot_id = bot.stats().participant_id.unwrap();
    let browser = launch().await;
    let page = open(
        &browser,
        &server,
        &room,
        &token,
        "Human",
        "&fake=orange&simulcast=0",
    )
    .await;
    let human = my_id(&page).await;

    // Chromium decodes the bot's VP8 and plays its Opus.
    wait_video_flowing(&page, std::slice::from_ref(&bot_id)).await;
    let audio = format!("(async () => (await window.samtale.stats()).remotes['{bot_id}'].audio)()");
    page.wait_until("bot audio plays", &audio, WAIT, |v| {
        v["totalAudioEnergy"].as_f64().unwrap_or(0.0) > 0.0
            && v["totalSamplesReceived"].as_u64().unwrap_or(0) > 48_000
    })
    .await
    .unwrap();
    // And the bot receives Chromium's media.
    wait_stats(&bot, "media from Chromium", |s| {
        s.received
            .get(&human)
            .is_some_and(|t| t.video_frames > 30 && t.audio_frames > 50)
    })
    .await;
    bot.leave().await.unwrap();
    drop(browser);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_joins_over_https_and_wss() {
    let mut config = test_config("tls");
    let (cert, key) = (
        config.data_dir.join("cert.pem"),
        config.data_dir.join("key.pem"),
    );
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (run ./scripts/test.sh)");
    assert!(status.success());
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    let server = start(config).await;
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let (_, token) = {
        // Room creation over HTTPS from the page itself (secure context).
        let browser = Browser::launch(&["--ignore-certificate-errors".to_string()])
            .await
            .unwrap();
        let page = browser.new_page(&server.url).await.unwrap();
        page.wait_for(
            "page loaded",
            "location.protocol === 'https:' && document.readyState === 'complete'",
            WAIT,
        )
        .await
        .unwrap();
        let created = page
            .eval("fetch('/api/rooms', {method: 'POST', headers: {'Content-Type': 'application/json'}, body: '{}'}).then(r => r.json())")
            .await
            .unwrap();
        let ctx = page.eval("window.isSecureContext").await.unwrap();
        assert_eq!(ctx, Value::Bool(true));
        (
            created["roomId"].as_str().unwrap().to_string(),
            created["token"].as_str().unwrap().to_string(),
        )
    };
    let room = server.state.tokens.verify(&token, 0).unwrap().room;
    let mut args = browser_args();
    args.push("--ignore-certificate-errors".into());
    let browser = Browser::launch(&args).await.unwrap();
    let a = open(
        &browser,
        &server,
        &room,
        &token,
        "Ada",
        "&fake=red&simulcast=0",
    )
    .await;
    let b = open(
        &browser,
        &server,
        &room,
        &token,
        "Bo",
        "&fake=blue&simulcast=0",
    )
    .await;
    let idb = my_id(&b).await;
    wait_video_flowing(&a, std::slice::from_ref(&idb)).await;
    drop(browser);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_call_relayed_through_our_turn() {
    let server = start(test_config("browserturn")).await;
    let (room, token) = create_room(&server).await;
    let browser = launch().await;
    let a = open(
        &browser,
        &server,
        &room,
        &token,
        "Ada",
        "&fake=red&simulcast=0&relay=1",
    )
    .await;
    let b = open(
        &browser,
        &server,
        &room,
        &token,
        "Bo",
        "&fake=blue&simulcast=0&relay=1",
    )
    .await;
    let (ida, idb) = (my_id(&a).await, my_id(&b).await);
    wait_video_flowing(&a, std::slice::from_ref(&idb)).await;
    wait_video_flowing(&b, std::slice::from_ref(&ida)).await;
    for page in [&a, &b] {
        let pair = page
            .wait_until(
                "a selected candidate pair",
                "(async () => (await window.samtale.stats()).selectedCandidatePairType)()",
                WAIT,
                |v| v["local"].is_string(),
            )
            .await
            .unwrap();
        assert_eq!(pair["local"], "relay", "{pair}");
    }
    // The relayed packets went through the embedded TURN server (its
    // statistics are published once a second: wait for them, bounded).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = http(server.http_addr, "GET", "/metrics", &[], "").await;
        let relayed: u64 = metrics
            .lines()
            .find_map(|l| {
                l.strip_prefix("turn_relayed_packets_to_peers_total{region=\"embedded\"} ")
            })
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if relayed > 100 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(browser);
    server.shutdown().await;
}
