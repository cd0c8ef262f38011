//! The small HTTP/1.1 client the S3 backend uses for its own requests
//! (always through presigned URLs). HTTPS uses rustls with the Mozilla root
//! store (`webpki-roots`); plain HTTP is allowed for a local MinIO or s3s.

use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::{ByteStream, StorageError};

#[derive(Clone)]
pub(crate) struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpClient")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub(crate) fn new(timeout: Duration) -> Result<Self, StorageError> {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::aws_lc_rs::default_provider())
            .map_err(|e| StorageError::Config(format!("TLS set-up: {e}")))?
            .https_or_http()
            .enable_http1()
            .build();
        let inner = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { inner, timeout })
    }

    /// Sends one request and waits (bounded by the timeout) for the
    /// response head. The URL is never put into errors.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &url::Url,
        headers: &[(&str, String)],
        body: Bytes,
    ) -> Result<Response<Incoming>, StorageError> {
        let mut req = Request::builder().method(method).uri(url.as_str());
        for (name, value) in headers {
            req = req.header(*name, value);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| StorageError::Transport(format!("building request: {e}")))?;
        match tokio::time::timeout(self.timeout, self.inner.request(req)).await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(e)) => Err(StorageError::Transport(describe(&e))),
            Err(_) => Err(StorageError::Transport("timed out".into())),
        }
    }
}

/// A transport error's chain of causes, without the request URL.
fn describe(e: &hyper_util::client::legacy::Error) -> String {
    use std::error::Error as _;
    let mut out = if e.is_connect() {
        "connect failed".to_owned()
    } else {
        "request failed".to_owned()
    };
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The response body as a byte stream.
pub(crate) fn body_stream(resp: Response<Incoming>) -> ByteStream {
    Box::pin(
        resp.into_body()
            .into_data_stream()
            .map_err(|e| StorageError::Transport(e.to_string())),
    )
}

/// Reads a (small) response body, refusing more than `limit` bytes.
pub(crate) async fn read_body(resp: Response<Incoming>, limit: u64) -> Result<Bytes, StorageError> {
    super::ObjectBody {
        size: None,
        content_type: None,
        stream: body_stream(resp),
    }
    .into_bytes(limit)
    .await
}
