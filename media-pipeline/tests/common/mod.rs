//! Shared test helpers: a real S3 server (s3s-fs), a tiny HTTP server in
//! front of the local backend, a plain HTTP client, and backend set-up.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

pub mod images;
pub mod s3s_fs;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use samtale_media::ManualClock;
use samtale_media::storage::{LocalSigner, LocalStorage, S3Config, S3Storage, Storage};

pub use s3s_fs::{ACCESS_KEY, BUCKET, SECRET_KEY};

/// A running s3s-fs over a temporary directory.
pub struct S3sServer {
    pub endpoint: String,
    _server: s3s_fs::S3sFs,
    _dir: tempfile::TempDir,
}

impl S3sServer {
    /// The directory s3s-fs serves (its buckets and upload state).
    pub fn root(&self) -> &std::path::Path {
        self._dir.path()
    }

    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = s3s_fs::S3sFs::start(dir.path());
        Self {
            endpoint: server.endpoint.clone(),
            _server: server,
            _dir: dir,
        }
    }
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
