//! The HTTP side of the local backend, independent of any web framework:
//! the signaling server routes `<base>/<key>` here with the request's
//! parts and body and sends back the response. Multipart part uploads
//! arrive on the same route (their query names the upload and part) and
//! answer with the part's `ETag`.

use std::fmt::Display;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http::{HeaderMap, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;

use super::{LocalRequest, LocalStorage, PresignedMethod, Storage, StorageError, VerifyError};
use crate::serve::user_object_headers;

/// The response body type of [`LocalStorage::handle`].
pub type LocalBody = UnsyncBoxBody<Bytes, StorageError>;

fn text(status: StatusCode, msg: &'static str) -> Response<LocalBody> {
    let mut resp = Response::new(
        Full::new(Bytes::from_static(msg.as_bytes()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn verify_status(e: &VerifyError) -> (StatusCode, &'static str) {
    match e {
        VerifyError::Malformed => (StatusCode::BAD_REQUEST, "malformed presigned URL\n"),
        VerifyError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n"),
        VerifyError::Expired => (StatusCode::FORBIDDEN, "presigned URL expired\n"),
        VerifyError::ContentTypeMismatch => (StatusCode::FORBIDDEN, "content type not signed\n"),
        VerifyError::LengthMismatch => (StatusCode::FORBIDDEN, "content length not signed\n"),
        _ => (StatusCode::FORBIDDEN, "bad signature\n"),
    }
}

impl LocalStorage {
    /// Handles one request for `<base>/<key>?<query>`: verifies the
    /// presigned URL (with this store's clock), then stores the upload or
    /// streams the object with [`user_object_headers`].
    pub async fn handle<B>(
        &self,
        method: &http::Method,
        key: &str,
        query: &str,
        headers: &HeaderMap,
        body: B,
    ) -> Response<LocalBody>
    where
        B: http_body::Body<Data = Bytes> + Send,
        B::Error: Display,
    {
        let header =
            |name: http::header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        let request = LocalRequest {
            method: method.as_str(),
            key,
            query,
            content_type: header(http::header::CONTENT_TYPE),
            content_length: header(http::header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
        };
        let verified = match self.signer().verify(&request, self.clock().now()) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(error = %e, "local presigned request refused");
                let (status, msg) = verify_status(&e);
                return text(status, msg);
            }
        };
        match verified.method {
            PresignedMethod::Put if verified.part.is_some() => {
                match self.accept_part(&verified, body.into_data_stream()).await {
                    Ok(etag) => {
                        let mut resp = text(StatusCode::OK, "");
                        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                            resp.headers_mut().insert(http::header::ETAG, v);
                        }
                        resp
                    }
                    Err(StorageError::LengthMismatch { .. }) => text(
                        StatusCode::BAD_REQUEST,
                        "body length differs from the signed one\n",
                    ),
                    Err(StorageError::NotFound) => {
                        text(StatusCode::NOT_FOUND, "no such multipart upload\n")
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "local part upload failed");
                        text(StatusCode::INTERNAL_SERVER_ERROR, "upload failed\n")
                    }
                }
            }
            PresignedMethod::Put => {
                match self.accept_upload(&verified, body.into_data_stream()).await {
                    Ok(()) => text(StatusCode::OK, ""),
                    Err(StorageError::LengthMismatch { .. }) => text(
                        StatusCode::BAD_REQUEST,
                        "body length differs from the signed one\n",
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "local upload failed");
                        text(StatusCode::INTERNAL_SERVER_ERROR, "upload failed\n")
                    }
                }
            }
            PresignedMethod::Get => match self.get(&verified.key).await {
                Ok(object) => {
                    let hdrs = user_object_headers(object.content_type.as_deref(), object.size);
                    let body: LocalBody = if method == http::Method::HEAD {
                        Empty::new().map_err(|never| match never {}).boxed_unsync()
                    } else {
                        BodyExt::boxed_unsync(StreamBody::new(object.stream.map_ok(Frame::data)))
                    };
                    let mut resp = Response::new(body);
                    *resp.headers_mut() = hdrs;
                    resp
                }
                Err(StorageError::NotFound) => text(StatusCode::NOT_FOUND, "not found\n"),
                Err(e) => {
                    tracing::warn!(error = %e, "local download failed");
                    text(StatusCode::INTERNAL_SERVER_ERROR, "download failed\n")
                }
            },
        }
    }
}
