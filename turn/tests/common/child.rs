//! The real `samtale-turn` binary as a child process: started with a TOML
//! config (and optionally a lower open-file limit) on ports it picks itself
//! (port 0), which it prints; its log lines on a channel, its CPU time from
//! `/proc`, signals sent with `kill`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long any awaited event may take.
pub const BOUND: Duration = Duration::from_secs(10);

/// A fresh directory under the system's temporary one, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("{name}-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where the server listens, from its start-up line.
#[derive(Debug, Clone, Copy)]
pub struct Listening {
    pub udp: SocketAddr,
    pub tcp: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

impl Listening {
    /// Parses "samtale-turn listening: udp A tcp B tls C … metrics
    /// http://D/metrics" ("off"/"disabled" for none).
    fn parse(line: &str) -> Option<Listening> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |key: &str| -> Option<&str> {
            let i = words.iter().position(|w| *w == key)?;
            words.get(i + 1).copied()
        };
        let metrics = after("metrics")?
            .strip_prefix("http://")
            .and_then(|a| a.strip_suffix("/metrics"))
            .and_then(|a| a.parse().ok());
        Some(Listening {
            udp: after("udp")?.parse().ok()?,
            tcp: after("tcp")?.parse().ok(),
            tls: after("tls")?.parse().ok(),
            metrics,
        })
    }
}

pub struct ChildServer {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Lines read so far, for failure messages.
    seen: std::sync::Mutex<Vec<String>>,
    exited: Option<ExitStatus>,
    pub listening: Listening,
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
    /// Starts `samtale-turn --config <dir>/turn.toml` with `toml` (listen
    /// on port 0: the server prints what it got); with `open_files`, under
    /// that hard limit on open files. Returns once it listens.
    pub fn start(dir: &Path, toml: &str, open_files: Option<u32>) -> ChildServer {
        let config = dir.join("turn.toml");
        std::fs::write(&config, toml).unwrap();
        let binary = env!("CARGO_BIN_EXE_samtale-turn");
        let limit = open_files
            .map(|n| format!("ulimit -Sn {n} && ulimit -Hn {n} && "))
            .unwrap_or_default();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{limit}exec \"$0\" --config \"$1\""))
            .arg(binary)
            .arg(&config)
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
        let mut server = ChildServer {
            child,
            lines,
            seen: std::sync::Mutex::new(Vec::new()),
            exited: None,
            listening: Listening {
                udp: SocketAddr::from(([0, 0, 0, 0], 0)),
                tcp: None,
                tls: None,
                metrics: None,
            },
        };
        let line = server.wait_for_line("samtale-turn listening:");
        server.listening = Listening::parse(&line).unwrap_or_else(|| panic!("{line}"));
        server
    }

    /// Waits (within [`BOUND`]) for the next log line containing `text`
    /// (lines are buffered: one printed before the call counts, if no
    /// earlier wait took it) and returns it.
    pub fn wait_for_line(&self, text: &str) -> String {
        let deadline = Instant::now() + BOUND;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.lock().unwrap().push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => break,
            }
        }
        let seen = self.seen.lock().unwrap().join("\n");
        panic!("no log line with {text:?}; the server said:\n{seen}");
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
