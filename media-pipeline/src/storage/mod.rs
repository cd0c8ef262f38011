//! Object storage: the [`Storage`] trait and its two backends.
//!
//! * [`LocalStorage`]: files under a root directory (the embedded default).
//!   Its "presigned" URLs point at samtale itself and carry an HMAC-SHA256
//!   signature over method, key, content type, length and expiry;
//!   [`LocalSigner::verify`] is what the HTTP layer calls before serving or
//!   accepting bytes.
//! * [`S3Storage`]: any S3-compatible service (AWS S3 in an EU region, MinIO,
//!   Ceph, …), SigV4 query presigning by `rusty-s3`; the server's own
//!   requests go through presigned URLs too, over a small hyper client.
//!
//! Presigned PUTs sign the content type and the exact content length, so a
//! client cannot upload more than its slot allowed nor change the type.
//! Expiry is bounded by [`MAX_PRESIGN_EXPIRY`] (7 days, the SigV4 limit).

mod http_client;
mod key;
mod local;
mod local_http;
mod local_sign;
mod s3;

use std::fmt::Debug;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

pub use key::{KeyError, MAX_KEY_LEN, ObjectKey};
pub use local::LocalStorage;
pub use local_http::LocalBody;
pub use local_sign::{LocalRequest, LocalSigner, VerifiedPart, VerifiedRequest, VerifyError};
pub use s3::{S3Config, S3Storage, UrlStyle};

/// Longest expiry a presigned URL may have (SigV4's limit: 7 days).
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest content type accepted, in bytes.
pub const MAX_CONTENT_TYPE_LEN: usize = 255;

/// Most parts a multipart upload may have (S3's limit).
pub const MAX_PARTS: u16 = 10_000;

/// Smallest size of every part but the last (S3's limit: 5 MiB).
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;

/// Largest part (S3's limit: 5 GiB).
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;

/// Longest multipart upload id accepted, in bytes.
pub const MAX_UPLOAD_ID_LEN: usize = 1024;

/// A stream of an object's bytes.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// What can go wrong talking to storage. Messages never contain URLs (a
/// presigned URL is a bearer credential) nor credentials.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// No object under that key.
    #[error("object not found")]
    NotFound,
    /// The key is not acceptable.
    #[error(transparent)]
    InvalidKey(#[from] KeyError),
    /// The content type is empty, too long or has control characters.
    #[error("invalid content type")]
    InvalidContentType,
    /// The requested expiry is zero or longer than [`MAX_PRESIGN_EXPIRY`].
    #[error("presign expiry must be between 1 s and {max:?}", max = MAX_PRESIGN_EXPIRY)]
    InvalidExpiry,
    /// The body did not have the declared length.
    #[error("body length mismatch: declared {declared}, got at least {actual}")]
    LengthMismatch {
        /// The declared length.
        declared: u64,
        /// The bytes seen (at least).
        actual: u64,
    },
    /// The object is bigger than the caller allowed.
    #[error("object larger than {limit} bytes")]
    TooLarge {
        /// The caller's limit.
        limit: u64,
    },
    /// The storage service answered with an unexpected HTTP status.
    #[error("storage {operation} failed with HTTP status {status}")]
    Status {
        /// Which operation (`PUT`, `GET`, `list`, …).
        operation: &'static str,
        /// The HTTP status code.
        status: u16,
    },
    /// The storage service could not be reached or broke the connection.
    #[error("storage transport error: {0}")]
    Transport(String),
    /// The storage service sent something we could not parse.
    #[error("unparsable storage response: {0}")]
    BadResponse(String),
    /// Misconfiguration (endpoint, bucket name, TLS set-up).
    #[error("storage configuration: {0}")]
    Config(String),
    /// A local file-system error.
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A multipart upload id that is empty, too long, or (for the local
    /// backend) not one it issued.
    #[error("invalid multipart upload id")]
    InvalidUploadId,
    /// A part number outside 1..=[`MAX_PARTS`], or a completion naming a
    /// part that was not uploaded (or with another ETag).
    #[error("invalid part in a multipart upload")]
    InvalidPart,
    /// The storage service answered a request with an error document
    /// (S3 can do so with status 200 on completion).
    #[error("storage {operation} refused: {code}")]
    Refused {
        /// Which operation.
        operation: &'static str,
        /// The service's error code (e.g. `InvalidPart`).
        code: String,
    },
}

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// The object's key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
    /// When it was last written, when the backend knows.
    pub last_modified: Option<SystemTime>,
    /// Its content type, when the backend knows it (not from listings).
    pub content_type: Option<String>,
}

/// An object being read.
pub struct ObjectBody {
    /// Its size in bytes, when known up front.
    pub size: Option<u64>,
    /// Its content type, when known.
    pub content_type: Option<String>,
    /// The bytes.
    pub stream: ByteStream,
}

impl Debug for ObjectBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectBody")
            .field("size", &self.size)
            .field("content_type", &self.content_type)
            .finish_non_exhaustive()
    }
}

impl ObjectBody {
    /// Reads the whole object into memory, refusing more than `limit` bytes.
    pub async fn into_bytes(mut self, limit: u64) -> Result<Bytes, StorageError> {
        if self.size.is_some_and(|s| s > limit) {
            return Err(StorageError::TooLarge { limit });
        }
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.stream.next().await {
            let chunk = chunk?;
            if (buf.len() + chunk.len()) as u64 > limit {
                return Err(StorageError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

/// A multipart upload in progress, as listed by
/// [`Storage::stale_multipart_uploads`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartUploadInfo {
    /// The key the upload will create.
    pub key: ObjectKey,
    /// The upload id.
    pub upload_id: String,
    /// When it was started, when the backend knows.
    pub started: Option<SystemTime>,
}

/// HTTP method of a presigned request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresignedMethod {
    /// Upload.
    Put,
    /// Download.
    Get,
}

impl PresignedMethod {
    /// `"PUT"` or `"GET"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Put => "PUT",
            Self::Get => "GET",
        }
    }
}

/// A presigned request to hand to a client. The URL is a bearer credential
/// until it expires: never log it.
#[derive(Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    /// The method to use.
    pub method: PresignedMethod,
    /// The URL (absolute for S3; for the local backend, the configured base
    /// URL, which may be a path on samtale's own origin).
    pub url: String,
    /// Headers the client must send exactly (`content-type`,
    /// `content-length` for uploads).
    pub headers: Vec<(String, String)>,
    /// When the URL stops working.
    pub expires_at: SystemTime,
}

impl Debug for PresignedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresignedRequest")
            .field("method", &self.method)
            .field("url", &"<redacted>")
            .field("headers", &self.headers)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Object storage, as the media pipeline needs it.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// Stores `body` under `key` (replacing any object there).
    async fn put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        body: Bytes,
    ) -> Result<(), StorageError>;

    /// Opens the object for reading; [`StorageError::NotFound`] if absent.
    async fn get(&self, key: &ObjectKey) -> Result<ObjectBody, StorageError>;

    /// The object's metadata; [`StorageError::NotFound`] if absent.
    async fn head(&self, key: &ObjectKey) -> Result<ObjectInfo, StorageError>;

    /// Deletes the object; deleting an absent object succeeds.
    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError>;

    /// Every object whose key starts with `prefix` (for the sweeper's orphan
    /// check; not paginated for the caller).
    async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StorageError>;

    /// A URL the client can PUT exactly `content_length` bytes of
    /// `content_type` to, valid for `expiry`.
    fn presign_put(
        &self,
        key: &ObjectKey,
        content_type: &str,
        content_length: u64,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError>;

    /// A URL the client can GET the object from, valid for `expiry`.
    fn presign_get(
        &self,
        key: &ObjectKey,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError>;

    /// Starts a multipart upload of `content_type` to `key`; returns its
    /// upload id. Nothing is visible under `key` until
    /// [`complete_multipart`](Self::complete_multipart).
    async fn create_multipart(
        &self,
        key: &ObjectKey,
        content_type: &str,
    ) -> Result<String, StorageError>;

    /// A URL the client can PUT part `part_number` (1..=[`MAX_PARTS`]) of
    /// exactly `content_length` bytes to, valid for `expiry`. The response's
    /// `ETag` header is what [`complete_multipart`](Self::complete_multipart)
    /// needs for that part. Uploading a part again replaces it.
    fn presign_upload_part(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u16,
        content_length: u64,
        expiry: Duration,
    ) -> Result<PresignedRequest, StorageError>;

    /// Assembles parts `1..=etags.len()` (`etags[i]` is part `i + 1`'s
    /// ETag, as its upload answered) into the object under `key`.
    async fn complete_multipart(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        etags: &[String],
    ) -> Result<(), StorageError>;

    /// Aborts a multipart upload and deletes its parts; aborting an unknown
    /// (or already finished) upload succeeds.
    async fn abort_multipart(&self, key: &ObjectKey, upload_id: &str) -> Result<(), StorageError>;

    /// Multipart uploads under `prefix` started before `started_before`,
    /// for the sweeper's orphan check (uploads the index lost track of).
    ///
    /// The S3 backend returns an empty list: `rusty-s3` has no
    /// `ListMultipartUploads`, and the bucket's lifecycle rule
    /// `AbortIncompleteMultipartUpload` (see [`S3Storage`]) is the backstop
    /// there; uploads the index knows are aborted by the sweeper on both.
    async fn stale_multipart_uploads(
        &self,
        prefix: &str,
        started_before: SystemTime,
    ) -> Result<Vec<MultipartUploadInfo>, StorageError>;
}

/// Checks a part number against 1..=[`MAX_PARTS`].
pub(crate) fn check_part_number(part_number: u16) -> Result<(), StorageError> {
    if (1..=MAX_PARTS).contains(&part_number) {
        Ok(())
    } else {
        Err(StorageError::InvalidPart)
    }
}

/// Checks an upload id: 1..=[`MAX_UPLOAD_ID_LEN`] bytes of visible ASCII.
pub(crate) fn check_upload_id(upload_id: &str) -> Result<(), StorageError> {
    let ok = !upload_id.is_empty()
        && upload_id.len() <= MAX_UPLOAD_ID_LEN
        && upload_id.bytes().all(|b| (0x21..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidUploadId)
    }
}

/// Checks a content type: 1..=255 bytes of visible ASCII or spaces.
pub(crate) fn check_content_type(content_type: &str) -> Result<(), StorageError> {
    let ok = !content_type.is_empty()
        && content_type.len() <= MAX_CONTENT_TYPE_LEN
        && content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidContentType)
    }
}

/// Checks a presign expiry against [`MAX_PRESIGN_EXPIRY`].
pub(crate) fn check_expiry(expiry: Duration) -> Result<(), StorageError> {
    if expiry.is_zero() || expiry > MAX_PRESIGN_EXPIRY {
        Err(StorageError::InvalidExpiry)
    } else {
        Ok(())
    }
}
