//! A real S3 server that verifies SigV4 (s3s-fs 0.14.1, see
//! `scripts/setup-media.sh`), killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const ACCESS_KEY: &str = "samtale-test-access";
pub const SECRET_KEY: &str = "samtale-test-secret-0123456789";
pub const BUCKET: &str = "media-test";

pub struct S3s {
    pub endpoint: String,
    pub addr: std::net::SocketAddr,
    pub dir: std::path::PathBuf,
    child: Child,
}

impl S3s {
    pub fn start() -> Self {
        let dir = super::server::temp_dir("s3s");
        std::fs::create_dir(dir.join(BUCKET)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let program = std::env::var_os("HOME")
            .map(|h| std::path::PathBuf::from(h).join(".cargo/bin/s3s-fs"))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| "s3s-fs".into());
        let mut child = Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&dir)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start s3s-fs ({e}): run scripts/setup-media.sh"));
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
            panic!("s3s-fs did not start within 15 s");
        }
        let addr = format!("127.0.0.1:{port}").parse().unwrap();
        Self {
            endpoint: format!("http://{addr}"),
            addr,
            dir,
            child,
        }
    }

    /// The file s3s-fs keeps an object in.
    pub fn object_file(&self, key: &str) -> std::path::PathBuf {
        self.dir.join(BUCKET).join(key)
    }
}

impl Drop for S3s {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
