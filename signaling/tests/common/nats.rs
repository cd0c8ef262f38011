//! A real NATS server (Debian's `nats-server`, installed by the test
//! command) on a free loopback port, killed on drop.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct NatsServer {
    pub url: String,
    child: Child,
}

impl NatsServer {
    pub fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self {
            url: format!("nats://127.0.0.1:{port}"),
            child: spawn(port),
        }
    }

    /// Stops the server.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts it again on the same port (after [`Self::stop`]).
    pub fn restart(&mut self) {
        self.stop();
        let port = self.url.rsplit(':').next().unwrap().parse().unwrap();
        self.child = spawn(port);
    }
}

/// Starts nats-server on `port` and waits until it says it is ready.
fn spawn(port: u16) -> Child {
    let mut child = Command::new(program())
        .args(["-a", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start nats-server ({e}): apt-get install nats-server"));
    // It logs "Server is ready" on stderr; keep draining it afterwards.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if line.contains("Server is ready") {
                let _ = tx.send(());
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(15)).is_err() {
        let _ = child.kill();
        panic!("nats-server did not report ready within 15 s");
    }
    child
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `nats-server` from PATH, else where Debian puts it (`/usr/sbin`, not on
/// every user's PATH).
fn program() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("nats-server").is_file()))
        .unwrap_or(false);
    if on_path {
        "nats-server".into()
    } else {
        "/usr/sbin/nats-server".into()
    }
}
