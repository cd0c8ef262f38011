//! A throwaway PostgreSQL cluster for tests: `initdb` into a temp dir, start
//! on a free loopback port with `pg_ctl`, stop (immediate) in `Drop`.
//!
//! PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` system user through `runuser`. Every external command is
//! bounded in time. [`PgCluster::start`] returns `None` when the binaries
//! are missing, unless `SAMTALE_REQUIRE_PG=1` (then it panics).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

pub struct PgCluster {
    dir: TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
}

fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Ok(p) = std::env::var("PG_BIN") {
        candidates.push(PathBuf::from(p));
    }
    if let Ok(path) = std::env::var("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.push(PathBuf::from("/usr/local/bin"));
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = rd.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    candidates
        .into_iter()
        .find(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Run `cmd` and wait at most `limit`; kill it past that.
fn run_bounded(mut cmd: Command, limit: Duration) -> Result<(), String> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                return Err(format!("{status}: {err}"));
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("timed out after {limit:?}"));
            }
            Err(e) => return Err(format!("wait: {e}")),
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl PgCluster {
    pub fn start() -> Option<Self> {
        let required = std::env::var("SAMTALE_REQUIRE_PG").is_ok_and(|v| v == "1");
        let Some(bin) = find_bin() else {
            assert!(
                !required,
                "SAMTALE_REQUIRE_PG=1 but pg_ctl/initdb not found"
            );
            eprintln!("skipping PostgreSQL tests: pg_ctl/initdb not found");
            return None;
        };
        let run_as = is_root().then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("samtale-pg-")
            .tempdir()
            .unwrap();
        if let Some(user) = &run_as {
            let st = Command::new("chown")
                .arg(format!("{user}:"))
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown of the cluster dir failed");
        }
        let mut cluster = Self {
            dir,
            bin,
            run_as,
            port: 0,
        };
        cluster
            .run(
                "initdb",
                &[
                    "-D",
                    &cluster.data().display().to_string(),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                Duration::from_secs(60),
            )
            .unwrap();
        let mut last = String::new();
        for _ in 0..3 {
            cluster.port = free_port();
            let opts = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
                cluster.port,
                cluster.dir.path().display()
            );
            let log = cluster.dir.path().join("server.log").display().to_string();
            match cluster.run(
                "pg_ctl",
                &[
                    "-D",
                    &cluster.data().display().to_string(),
                    "-l",
                    &log,
                    "-w",
                    "-t",
                    "30",
                    "-o",
                    &opts,
                    "start",
                ],
                Duration::from_secs(40),
            ) {
                Ok(()) => return Some(cluster),
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str], limit: Duration) -> Result<(), String> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(args).current_dir(Path::new("/"));
        run_bounded(cmd, limit)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.run(
            "pg_ctl",
            &["-D", &data, "-m", "immediate", "-w", "-t", "20", "stop"],
            Duration::from_secs(30),
        );
    }
}
