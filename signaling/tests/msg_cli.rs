//! `samtale msg`: register, pair a second device, start a conversation,
//! send and read, all through the binary against a real server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

fn cli(vault: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_samtale"));
    c.arg("msg")
        .arg("--vault")
        .arg(vault)
        .env("SAMTALE_MSG_PASSPHRASE", "correct horse battery staple")
        .env_remove("SAMTALE_MSG_VAULT")
        .kill_on_drop(true);
    c
}

async fn run(vault: &Path, args: &[&str]) -> String {
    let out = tokio::time::timeout(Duration::from_secs(60), cli(vault).args(args).output())
        .await
        .expect("the CLI finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "samtale msg {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn field<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
        .split_whitespace()
        .next()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_pair_send_and_read_from_the_terminal() {
    let mut config = common::server::test_config("msg-cli");
    config.turn_embedded = false;
    let dir = config.data_dir.clone();
    let server = common::server::start(config).await;
    let url = format!("http://{}", server.http_addr);
    let (alice, laptop, bob) = (
        dir.join("alice.vault"),
        dir.join("laptop.vault"),
        dir.join("bob.vault"),
    );

    run(&alice, &["register", "--server", &url, "--name", "Alice"]).await;
    run(&bob, &["register", "--server", &url, "--name", "Bob"]).await;

    // Pair Alice's laptop: it prints a code, her phone approves it.
    let mut pair = cli(&laptop)
        .args(["pair", "--server", &url, "--device-name", "laptop"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(pair.stdout.take().unwrap()).lines();
    let code = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(code) = line.strip_prefix("pair code: ") {
                return code.to_owned();
            }
        }
        panic!("pair exited without a code");
    })
    .await
    .unwrap();
    assert!(
        run(&alice, &["approve", &code])
            .await
            .contains("approved device")
    );
    let status = tokio::time::timeout(Duration::from_secs(60), pair.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());

    let bob_me = run(&bob, &["whoami"]).await;
    let bob_private = bob_me
        .lines()
        .find(|l| l.starts_with("profile Private"))
        .and_then(|l| l.split("share as ").nth(1))
        .map(|s| s.trim_end_matches(')').to_owned())
        .unwrap();
    let started = run(
        &alice,
        &["start", "--profile", "private", "--with", &bob_private],
    )
    .await;
    let conv = field(&started, "conversation ").to_owned();
    run(&alice, &["send", &conv, "hello from the terminal"]).await;

    let read = run(&bob, &["read", "--wait", "2"]).await;
    assert!(read.contains("hello from the terminal"), "{read}");
    let on_laptop = run(&laptop, &["read", "--wait", "2"]).await;
    assert!(on_laptop.contains("hello from the terminal"), "{on_laptop}");
    run(&bob, &["send", &conv, "hi from Bob"]).await;
    let read = run(&alice, &["read", "--wait", "2"]).await;
    assert!(read.contains("hi from Bob"), "{read}");

    // A wrong passphrase opens nothing.
    let out = cli(&bob)
        .env("SAMTALE_MSG_PASSPHRASE", "wrong")
        .arg("whoami")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong key"));
    server.shutdown().await;
}
