//! Shared test helpers: a real S3 server (s3s-fs), a tiny HTTP server in
//! front of the local backend, a plain HTTP client, and backend set-up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod images;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use samtale_media::ManualClock;
use samtale_media::storage::{LocalSigner, LocalStorage, S3Config, S3Storage, Storage};

pub const ACCESS_KEY: &str = "samtale-test-access";
pub const SECRET_KEY: &str = "samtale-test-secret-0123456789";
pub const BUCKET: &str = "media-test";

/// A running s3s-fs, killed on drop.
pub struct S3sServer {
    pub endpoint: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl S3sServer {
    /// The directory s3s-fs serves (its buckets and upload state).
    pub fn root(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join(BUCKET)).unwrap();
        let port = free_port();
        let mut child = Command::new(s3s_fs_program())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(dir.path())
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
            _dir: dir,
        }
    }
}

impl Drop for S3sServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `s3s-fs` from PATH, else from cargo's default install root.
fn s3s_fs_program() -> std::path::PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("s3s-fs").is_file()))
        .unwrap_or(false);
    if !on_path {
        let cargo_home = std::env::var_os("CARGO_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cargo"))
            });
        if let Some(bin) = cargo_home.map(|c| c.join("bin").join("s3s-fs"))
            && bin.is_file()
        {
            return bin;
        }
    }
    "s3s-fs".into()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An HTTP server routing `/media/<key>` to a [`LocalStorage`], as the
/// signaling server will. Stopped on drop.
pub struct LocalServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn local_server(
    storage: Arc<LocalStorage>,
    listener: tokio::net::TcpListener,
) -> LocalServer {
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let storage = storage.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let storage = storage.clone();
                        async move {
                            let (parts, body) = req.into_parts();
                            let path = parts.uri.path().to_owned();
                            let query = parts.uri.query().unwrap_or("").to_owned();
                            let key = path.strip_prefix("/media/").unwrap_or("");
                            let resp = storage
                                .handle(&parts.method, key, &query, &parts.headers, body)
                                .await;
                            Ok::<_, std::convert::Infallible>(resp)
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    LocalServer { addr, task }
}

/// A test backend: the storage, its clock, and what keeps it alive.
pub struct Backend {
    pub name: &'static str,
    pub storage: Arc<dyn Storage>,
    pub clock: Arc<ManualClock>,
    _local: Option<(LocalServer, tempfile::TempDir)>,
    _s3: Option<S3sServer>,
}

impl Backend {
    /// Files anywhere under the backend's directory whose path contains
    /// `needle` (e.g. a multipart upload id).
    pub fn files_containing(&self, needle: &str) -> Vec<std::path::PathBuf> {
        let root = match (&self._local, &self._s3) {
            (Some((_, dir)), _) => dir.path().to_owned(),
            (_, Some(s3)) => s3.root().to_owned(),
            _ => return Vec::new(),
        };
        let mut out = Vec::new();
        let mut dirs = vec![root];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains(needle) {
                    out.push(path.clone());
                }
                if path.is_dir() {
                    dirs.push(path);
                }
            }
        }
        out
    }
}

pub async fn local_backend() -> Backend {
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/media", listener.local_addr().unwrap());
    let storage = Arc::new(
        LocalStorage::open(dir.path(), &base, LocalSigner::generate(), clock.clone())
            .await
            .unwrap(),
    );
    let server = local_server(storage.clone(), listener).await;
    Backend {
        name: "local",
        storage,
        clock,
        _local: Some((server, dir)),
        _s3: None,
    }
}

pub async fn s3_backend() -> Backend {
    let server = S3sServer::start();
    let clock = Arc::new(ManualClock::new(SystemTime::now()));
    let config = S3Config::new(
        &server.endpoint,
        BUCKET,
        "us-east-1",
        ACCESS_KEY,
        SECRET_KEY,
    );
    let storage = Arc::new(S3Storage::new(config, clock.clone()).unwrap());
    Backend {
        name: "s3",
        storage,
        clock,
        _local: None,
        _s3: Some(server),
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Sends one plain-HTTP request with a 10 s bound.
pub async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: &[u8]) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::copy_from_slice(body))).unwrap();
    let fut = async {
        let resp = client.request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut)
        .await
        .expect("HTTP request timed out")
}

/// Sends a presigned request with its required headers.
pub async fn send_presigned(req: &samtale_media::storage::PresignedRequest, body: &[u8]) -> Reply {
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .filter(|(k, _)| k != "content-length")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    http(req.method.as_str(), &req.url, &headers, body).await
}
