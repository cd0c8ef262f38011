//! The `samtale` binary as a child process (for tests that kill it or read
//! its logs): stdout and stderr go to a log file; the URL is read from the
//! line the binary prints.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct ServerProcess {
    child: Child,
    pub url: String,
    pub log: PathBuf,
}

impl ServerProcess {
    /// Start `samtale` on a free loopback port with `data_dir`, appending
    /// logs to `log` (at `RUST_LOG=debug`, so a leak would show); waits for
    /// the URL it prints.
    pub fn start(data_dir: &Path, log: &Path) -> ServerProcess {
        Self::start_with(data_dir, log, &[], &[])
    }

    /// [`start`](Self::start) with more arguments and environment.
    pub fn start_with(
        data_dir: &Path,
        log: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> ServerProcess {
        let mut child = Command::new(env!("CARGO_BIN_EXE_samtale"))
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .env("RUST_LOG", "debug")
            .env_remove("SAMTALE_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start samtale");
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn std::io::Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .unwrap();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let _ = writeln!(file, "{line}");
                    if let (Some(tx), Some(url)) = (&tx, line.trim().strip_prefix("Open ")) {
                        let url = url.split_whitespace().next().unwrap_or_default();
                        let _ = tx.send(url.trim_end_matches('/').to_owned());
                    }
                }
            });
        }
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("samtale printed its URL");
        ServerProcess {
            child,
            url,
            log: log.to_owned(),
        }
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
