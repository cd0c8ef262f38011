//! `samtale-turn` out of file descriptors: its TCP accept loop pauses on
//! EMFILE instead of spinning (the queued connection keeps the listener
//! readable), and accepts again once descriptors are free. The server runs
//! as a child process with a hard limit of 64 open files, so this test
//! process keeps its own.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BOUND: Duration = Duration::from_secs(10);

/// A loopback port free for UDP and TCP just now.
fn free_port() -> u16 {
    for _ in 0..50 {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port");
}

struct Server {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(open_files: u32) -> Server {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("samtale-turn-nofile-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("turn.toml");
        std::fs::write(
            &config,
            format!(
                "listen_udp = \"127.0.0.1:{port}\"\nlisten_tcp = \"127.0.0.1:{port}\"\n\
                 metrics_listen = \"\"\ncore_threads = 1\nrelay_ports = \"47000-47099\"\n"
            ),
        )
        .unwrap();
        let binary = env!("CARGO_BIN_EXE_samtale-turn");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -Sn {open_files} && ulimit -Hn {open_files} && exec {binary} --config {}",
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
        Server {
            child,
            lines,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    /// Waits (within [`BOUND`]) for a log line containing `text`.
    fn wait_for_line(&self, text: &str) {
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
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }
}

/// A STUN Binding request over a new TCP connection, answered.
fn binding_answered(server: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&server, Duration::from_secs(1)) else {
        return false;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let request = [
        0u8, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ];
    if stream.write_all(&request).is_err() {
        return false;
    }
    let mut header = [0u8; 20];
    stream.read_exact(&mut header).is_ok() && header[..2] == [1, 1] && header[8..] == request[8..]
}

fn wait_until_answered(server: SocketAddr) {
    let deadline = Instant::now() + BOUND;
    while !binding_answered(server) {
        assert!(Instant::now() < deadline, "no Binding answer over TCP");
    }
}

#[test]
fn accepting_pauses_while_out_of_files_and_resumes_when_they_are_back() {
    let server = Server::start(64);
    wait_until_answered(server.addr);

    // More connections than the server has descriptors: it accepts until
    // EMFILE; the rest wait in the kernel's queue.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(server.addr).unwrap())
        .collect();
    server.wait_for_line("out of resources");

    // While the queue stays full, the accept loop must not spin: over one
    // second the server may use a small part of a CPU, not all of it.
    let ticks_per_sec = 100; // USER_HZ on Linux
    let before = server.cpu_ticks();
    std::thread::sleep(Duration::from_secs(1));
    let used = server.cpu_ticks() - before;
    assert!(
        used < ticks_per_sec / 4,
        "{used} ticks of CPU in one second out of files"
    );

    // The clients leave; the server frees their descriptors and serves
    // new connections again.
    drop(held);
    wait_until_answered(server.addr);
}
