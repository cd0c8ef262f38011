//! The S3-compatible backend: SigV4 query presigning by `rusty-s3`, and the
//! server's own PUT/GET/HEAD/DELETE/list requests sent with presigned URLs
//! over [`HttpClient`](super::http_client::HttpClient).
//!
//! Clock skew: URLs are signed as of `now - clock_skew` and live for
//! `expiry + clock_skew` (capped at 7 days), so a storage service whose
//! clock is behind ours does not see them as "not yet valid".
//!
//! Bucket set-up for browsers (S3 serves from its own origin, so stored XSS
//! cannot reach samtale's origin, but the web client must be allowed to PUT
//! and GET across origins): a CORS rule allowing `PUT`, `GET` and `HEAD`
//! from samtale's origin, with `AllowedHeaders: content-type` and
//! `ExposeHeaders: etag`. Downloads are signed with
//! `response-content-disposition=attachment` unless
//! [`S3Config::attachment_downloads`] is off.
//!
//! Multipart uploads: the server creates, completes and aborts them; the
//! client PUTs each part to a presigned URL (exact length signed) and
//! reports the `ETag` each answered, which is why CORS must expose `etag`.
//! The sweeper aborts the uploads the index knows once they are abandoned;
//! as a backstop for uploads the index lost, give the bucket a lifecycle
//! rule `AbortIncompleteMultipartUpload` with `DaysAfterInitiation: 2`
//! (this backend cannot list multipart uploads: `rusty-s3` has no
//! `ListMultipartUploads`).

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use http::{Method, StatusCode};
use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2};
use rusty_s3::{Bucket, Credentials, S3Action};

use super::http_client::{HttpClient, body_stream, read_body};
use super::{
    MAX_PARTS, MAX_PRESIGN_EXPIRY, MultipartUploadInfo, ObjectBody, ObjectInfo, ObjectKey,
    PresignedMethod, PresignedRequest, Storage, StorageError, check_content_type, check_expiry,
    check_part_number, check_upload_id,
};
use crate::clock::Clock;

/// Expiry of the URLs the server signs for its own requests.
const INTERNAL_EXPIRY: Duration = Duration::from_secs(15 * 60);
/// Largest listing page accepted.
const MAX_LIST_PAGE: u64 = 16 * 1024 * 1024;
/// Largest multipart create/complete response accepted.
const MAX_SMALL_RESPONSE: u64 = 1024 * 1024;

/// How bucket URLs are formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UrlStyle {
    /// `https://endpoint/bucket/key` (MinIO, s3s, most self-hosted).
    Path,
    /// `https://bucket.endpoint/key` (AWS's preferred style).
    VirtualHost,
}

/// Configuration of an S3-compatible store.
#[derive(Clone)]
pub struct S3Config {
    /// e.g. `https://s3.eu-north-1.amazonaws.com` or `http://127.0.0.1:9000`.
    pub endpoint: String,
    /// The bucket name.
    pub bucket: String,
    /// The region, e.g. `eu-north-1` (MinIO accepts `us-east-1`).
    pub region: String,
    /// Path- or virtual-host style URLs.
    pub url_style: UrlStyle,
    /// Access key id.
    pub access_key: String,
    /// Secret access key (never printed by `Debug`).
    pub secret_key: String,
    /// How far the storage service's clock may lag ours (default 5 min).
    pub clock_skew: Duration,
    /// Sign downloads with `response-content-disposition=attachment`
    /// (default on).
    pub attachment_downloads: bool,
    /// Time allowed for the response head of the server's own requests
    /// (default 30 s).
    pub request_timeout: Duration,
}

impl S3Config {
    /// A configuration with the defaults for everything but the essentials.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        region: impl Into<String>,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        Self {
            endpoint: endpoint.into(),
            bucket: bucket.into(),
            region: region.into(),
            url_style: UrlStyle::Path,
            access_key: access_key.into(),
            secret_key: secret_key.into(),
            clock_skew: Duration::from_secs(300),
            attachment_downloads: true,
            request_timeout: Duration::from_secs(30),
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("url_style", &self.url_style)
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("clock_skew", &self.clock_skew)
            .field("attachment_downloads", &self.attachment_downloads)
            .finish()
    }
}

/// Objects in an S3-compatible bucket.
#[derive(Clone)]
pub struct S3Storage {
    bucket: Bucket,
    credentials: Credentials,
    clock_skew: Duration,
    attachment_downloads: bool,
    http: HttpClient,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Storage")
            .field("bucket", &self.bucket.name())
            .field("region", &self.bucket.region())
            .finish_non_exhaustive()
    }
}

impl S3Storage {
    /// A store for `config`, signing with time from `clock`.
    pub fn new(config: S3Config, clock: Arc<dyn Clock>) -> Result<Self, StorageError> {
        let endpoint = url::Url::parse(&config.endpoint)
            .map_err(|e| StorageError::Config(format!("endpoint: {e}")))?;
        let style = match config.url_style {
            UrlStyle::Path => rusty_s3::UrlStyle::Path,
            UrlStyle::VirtualHost => rusty_s3::UrlStyle::VirtualHost,
        };
        let bucket = Bucket::new(endpoint, style, config.bucket, config.region)
            .map_err(|e| StorageError::Config(format!("bucket: {e}")))?;
        Ok(Self {
            bucket,
            credentials: Credentials::new(config.access_key, config.secret_key),
            clock_skew: config.clock_skew,
            attachment_downloads: config.attachment_downloads,
            http: HttpClient::new(config.request_timeout)?,
            clock,
        })
    }

    /// Signs `action` for `expiry` from now, backdated by the clock skew.
    /// Returns the URL and when it expires.
    fn sign<'a>(
        &self,
        action: &impl S3Action<'a>,
        expiry: Duration,
    ) -> Result<(url::Url, SystemTime), StorageError> {
        let now = self.clock.now();
        let signed_at = now.checked_sub(self.clock_skew).unwrap_or(now);
        let lifetime = (expiry + self.clock_skew).min(MAX_PRESIGN_EXPIRY);
        let ts = jiff::Timestamp::try_from(signed_at)
            .map_err(|e| StorageError::Config(format!("clock out of range: {e}")))?;
        let url = action.sign_with_time(lifetime, &ts);
        Ok((url, signed_at + lifetime))
    }

    fn put_action<'a>(
        &'a self,
        key: &'a ObjectKey,
        content_type: &str,
        len: u64,
    ) -> rusty_s3::actions::PutObject<'a> {
        let mut action = self
            .bucket
            .put_object(Some(&self.credentials), key.as_str());
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        action
            .headers_mut()
            .insert("content-length", len.to_string());
        action
    }

    async fn list_page(
        &self,
        prefix: &str,
        token: Option<&str>,
    ) -> Result<rusty_s3::actions::ListObjectsV2Response, StorageError> {
        let mut action = self.bucket.list_objects_v2(Some(&self.credentials));
        action.with_prefix(prefix.to_owned());
        if let Some(token) = token {
            action.with_continuation_token(token.to_owned());
        }
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let resp = self.http.send(Method::GET, &url, &[], Bytes::new()).await?;
        check_status(resp.status(), "list")?;
        let body = read_body(resp, MAX_LIST_PAGE).await?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| StorageError::BadResponse("listing is not UTF-8".into()))?;
        ListObjectsV2::parse_response(text)
            .map_err(|e| StorageError::BadResponse(format!("listing: {e}")))
    }
}

fn check_status(status: StatusCode, operation: &'static str) -> Result<(), StorageError> {
    if status.is_success() {
        Ok(())
    } else if status == StatusCode::NOT_FOUND {
        Err(StorageError::NotFound)
    } else {
        Err(StorageError::Status {
            operation,
            status: status.as_u16(),
        })
    }
}

/// The `<Code>` of an S3 error document, if `text` is one.
fn error_code(text: &str) -> Option<String> {
    if !text.contains("<Error>") {
        return None;
    }
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.chars().take(64).collect())
        .unwrap_or_else(|| "unknown".to_owned());
    Some(code)
}

fn header_str(resp: &http::Response<hyper::body::Incoming>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(s)
        .ok()
        .map(SystemTime::from)
}

#[async_trait]
impl Storage for S3Storage {
    async fn put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        body: Bytes,
    ) -> Result<(), StorageError> {
        check_content_type(content_type)?;
        let len = body.len() as u64;
        let (url, _) = self.sign(&self.put_action(key, content_type, len), INTERNAL_EXPIRY)?;
        let headers = [("content-type", content_type.to_owned())];
        let resp = self.http.send(Method::PUT, &url, &headers, body).await?;
        check_status(resp.status(), "PUT")
    }

    async fn get(&self, key: &ObjectKey) -> Result<ObjectBody, StorageError> {
        let action = self
            .bucket
            .get_object(Some(&self.credentials), key.as_str());
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let resp = self.http.send(Method::GET, &url, &[], Bytes::new()).await?;
        check_status(resp.status(), "GET")?;
        let size = header_str(&resp, "content-length").and_then(|s| s.parse().ok());
        let content_type = header_str(&resp, "content-type");
        Ok(ObjectBody {
            size,
            content_type,
            stream: body_stream(resp),
        })
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectInfo, StorageError> {
        let action = self
            .bucket
            .head_object(Some(&self.credentials), key.as_str());
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let resp = self
            .http
            .send(Method::HEAD, &url, &[], Bytes::new())
            .await?;
        check_status(resp.status(), "HEAD")?;
        let size = header_str(&resp, "content-length")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| StorageError::BadResponse("HEAD without content-length".into()))?;
        Ok(ObjectInfo {
            key: key.clone(),
            size,
            last_modified: header_str(&resp, "last-modified").and_then(|s| parse_http_date(&s)),
            content_type: header_str(&resp, "content-type"),
        })
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let action = self
            .bucket
            .delete_object(Some(&self.credentials), key.as_str());
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let resp = self
            .http
            .send(Method::DELETE, &url, &[], Bytes::new())
            .await?;
        match check_status(resp.status(), "DELETE") {
            Ok(()) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self.list_page(prefix, token.as_deref()).await?;
            for item in page.contents {
                let Ok(key) = ObjectKey::new(item.key) else {
                    continue;
                };
                out.push(ObjectInfo {
                    key,
                    size: item.size.unwrap_or(0),
                    last_modified: item
                        .last_modified
                        .and_then(|s| s.parse::<jiff::Timestamp>().ok())
                        .map(SystemTime::from),
                    content_type: None,
                });
            }
            match page.next_continuation_token {
                Some(next) if token.as_deref() != Some(next.as_str()) => token = Some(next),
                _ => break,
            }
        }
        Ok(out)
    }

    fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        content_length: u64,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        check_content_type(content_type)?;
        check_expiry(expiry)?;
        let action = self.put_action(key, content_type, content_length);
        let (url, expires_at) = self.sign(&action, expiry)?;
        Ok(PresignedRequest {
            method: PresignedMethod::Put,
            url: url.into(),
            headers: vec![
                ("content-type".to_owned(), content_type.to_owned()),
                ("content-length".to_owned(), content_length.to_string()),
            ],
            expires_at,
        })
    }

    async fn create_multipart(
        &self,
        key: &ObjectKey,
        content_type: &str,
    ) -> Result<String, StorageError> {
        check_content_type(content_type)?;
        let mut action = self
            .bucket
            .create_multipart_upload(Some(&self.credentials), key.as_str());
        action
            .headers_mut()
            .insert("content-type", content_type.to_owned());
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let headers = [("content-type", content_type.to_owned())];
        let resp = self
            .http
            .send(Method::POST, &url, &headers, Bytes::new())
            .await?;
        check_status(resp.status(), "create multipart")?;
        let body = read_body(resp, MAX_SMALL_RESPONSE).await?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| StorageError::BadResponse("multipart create is not UTF-8".into()))?;
        let parsed = CreateMultipartUpload::parse_response(text)
            .map_err(|e| StorageError::BadResponse(format!("multipart create: {e}")))?;
        let upload_id = parsed.upload_id().to_owned();
        check_upload_id(&upload_id)
            .map_err(|_| StorageError::BadResponse("unusable upload id".into()))?;
        Ok(upload_id)
    }

    fn presign_upload_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u16,
        content_length: u64,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        check_upload_id(upload_id)?;
        check_part_number(part_number)?;
        check_expiry(expiry)?;
        let mut action = self.bucket.upload_part(
            Some(&self.credentials),
            key.as_str(),
            part_number,
            upload_id,
        );
        action
            .headers_mut()
            .insert("content-length", content_length.to_string());
        let (url, expires_at) = self.sign(&action, expiry)?;
        Ok(PresignedRequest {
            method: PresignedMethod::Put,
            url: url.into(),
            headers: vec![("content-length".to_owned(), content_length.to_string())],
            expires_at,
        })
    }

    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), StorageError> {
        check_upload_id(upload_id)?;
        // rusty-s3 numbers the parts with a u16 (and panics past it).
        if etags.is_empty() || etags.len() > usize::from(MAX_PARTS) {
            return Err(StorageError::InvalidPart);
        }
        if etags
            .iter()
            .any(|e| e.is_empty() || e.len() > 128 || e.chars().any(char::is_control))
        {
            return Err(StorageError::InvalidPart);
        }
        let action = self.bucket.complete_multipart_upload(
            Some(&self.credentials),
            key.as_str(),
            upload_id,
            etags.iter().map(String::as_str),
        );
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let body = action.body();
        let resp = self
            .http
            .send(Method::POST, &url, &[], Bytes::from(body))
            .await?;
        let status = resp.status();
        let body = read_body(resp, MAX_SMALL_RESPONSE).await?;
        let text = String::from_utf8_lossy(&body);
        if let Some(code) = error_code(&text) {
            tracing::debug!(%status, %code, "multipart completion refused");
            return Err(match code.as_str() {
                "InvalidPart" | "InvalidPartOrder" | "EntityTooSmall" => StorageError::InvalidPart,
                "NoSuchUpload" => StorageError::NotFound,
                _ => StorageError::Refused {
                    operation: "complete multipart",
                    code,
                },
            });
        }
        check_status(status, "complete multipart")
    }

    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StorageError> {
        check_upload_id(upload_id)?;
        let action =
            self.bucket
                .abort_multipart_upload(Some(&self.credentials), key.as_str(), upload_id);
        let (url, _) = self.sign(&action, INTERNAL_EXPIRY)?;
        let resp = self
            .http
            .send(Method::DELETE, &url, &[], Bytes::new())
            .await?;
        match check_status(resp.status(), "abort multipart") {
            Ok(()) | Err(StorageError::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn stale_multipart_uploads(
        &self,
        _prefix: &str,
        _started_before: SystemTime,
    ) -> Result<Vec<MultipartUploadInfo>, StorageError> {
        // See the module docs: the bucket lifecycle rule is the backstop.
        Ok(Vec::new())
    }

    fn presign_get(
        &self,
        key: &ObjectKey,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError> {
        check_expiry(expiry)?;
        let mut action = self
            .bucket
            .get_object(Some(&self.credentials), key.as_str());
        if self.attachment_downloads {
            action
                .query_mut()
                .insert("response-content-disposition", "attachment");
        }
        let (url, expires_at) = self.sign(&action, expiry)?;
        Ok(PresignedRequest {
            method: PresignedMethod::Get,
            url: url.into(),
            headers: Vec::new(),
            expires_at,
        })
    }
}
