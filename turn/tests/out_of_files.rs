//! `samtale-turn` out of file descriptors: its TCP accept loop pauses on
//! EMFILE instead of spinning (the queued connection keeps the listener
//! readable), and accepts again once descriptors are free. The server runs
//! as a child process with a hard limit of 64 open files, so this test
//! process keeps its own.

#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::child::{BOUND, ChildServer, TempDir};

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
    let toml = "listen_udp = \"127.0.0.1:0\"\nmetrics_listen = \"\"\n\
                core_threads = 1\nrelay_ports = \"47000-47099\"\n";
    let dir = TempDir::new("samtale-turn-nofile");
    let server = ChildServer::start(dir.path(), toml, Some(64));
    let addr = server.listening.tcp.expect("a TCP listener");
    wait_until_answered(addr);

    // More connections than the server has descriptors: it accepts until
    // EMFILE; the rest wait in the kernel's queue.
    let held: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr).unwrap())
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
    wait_until_answered(addr);
}
