//! A real S3 server that verifies SigV4 (s3s-fs 0.14.1, installed by
//! `scripts/setup-media.sh`) serving a directory, killed on drop. Std only,
//! so the signaling tests include this file too.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ACCESS_KEY: &str = "samtale-test-access";
pub const SECRET_KEY: &str = "samtale-test-secret-0123456789";
pub const BUCKET: &str = "media-test";

/// A running s3s-fs with bucket [`BUCKET`].
pub struct S3sFs {
    pub endpoint: String,
    child: Child,
}

impl S3sFs {
    /// Serves `dir` (creating the bucket in it) with the test keys.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir.join(BUCKET)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(program())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start s3s-fs ({e}): the S3 tests need it on PATH; \
                     run scripts/setup-media.sh (cargo install s3s-fs@0.14.1 --locked --features binary)"
                )
            });
        // Wait for its "server is running" line; keep draining its output
        // afterwards so it never blocks on a full pipe.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.contains("server is running") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(15)).is_err() {
            let _ = child.kill();
            panic!("s3s-fs did not report that it is running within 15 s");
        }
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s3s-fs` from PATH, else from cargo's default install root.
fn program() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("s3s-fs").is_file()))
        .unwrap_or(false);
    if !on_path {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
        if let Some(bin) = cargo_home.map(|c| c.join("bin").join("s3s-fs"))
            && bin.is_file()
        {
            return bin;
        }
    }
    "s3s-fs".into()
}
