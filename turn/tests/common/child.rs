//! The real `samtale-turn` binary as a child process: started with a TOML
//! config (and optionally a lower open-file limit), its log lines on a
//! channel, its CPU time from `/proc`, signals sent with `kill`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any awaited event may take.
pub const BOUND: Duration = Duration::from_secs(10);

/// A loopback port free for UDP and TCP just now.
pub fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

/// A fresh directory under the system's temporary one.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{name}-{:x}", rand::random::<u64>()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct ChildServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    exited: Option<ExitStatus>,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ChildServer {
    /// Starts `samtale-turn --config <dir>/turn.toml` with `toml`; with
    /// `open_files`, under that hard limit on open files.
    pub fn start(dir: &std::path::Path, toml: &str, open_files: Option<u32>) -> ChildServer {
        let config = dir.join("turn.toml");
        std::fs::write(&config, toml).unwrap();
        let binary = env!("CARGO_BIN_EXE_samtale-turn");
        let limit = open_files
            .map(|n| format!("ulimit -Sn {n} && ulimit -Hn {n} && "))
            .unwrap_or_default();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{limit}exec {binary} --config {}",
                config.display()
            ))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().unwrap());
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().unwrap());
        for pipe in [out, err] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        ChildServer {
            child,
            lines,
            exited: None,
        }
    }

    /// Waits (within [`BOUND`]) for a log line containing `text`.
    pub fn wait_for_line(&self, text: &str) {
        let deadline = Instant::now() + BOUND;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no log line with {text:?}");
    }

    /// The server's CPU time (user + system), in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Sends a signal (`HUP`, `TERM`, …).
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -s {name}");
    }

    /// Waits (within `bound`) for the process to exit by itself: its
    /// output pipes close, then it is reaped.
    pub fn wait_exit(&mut self, bound: Duration) -> ExitStatus {
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("still running after {bound:?}"),
            }
        }
        let status = self.child.wait().unwrap();
        self.exited = Some(status);
        status
    }
}

/// An HTTP/1.1 GET on loopback: the status code and body, or `None` if
/// nothing answers.
pub fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(BOUND)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: turn\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())?;
    Some((status, body))
}
