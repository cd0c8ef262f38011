//! Media errors as HTTP answers: `{"error": {"code", "message"}}` with the
//! status that fits (the same shape as the rest of the API).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use samtale_media::media::MediaError;
use samtale_media::storage::StorageError;
use serde_json::json;

/// An error answer of the media API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code, e.g. `quota-exceeded`.
    pub code: &'static str,
    /// What happened, for people.
    pub message: String,
}

impl MediaApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 with code `bad-request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 500 with code `internal`; the details stay in the server's log.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// 503 with code `busy`: try again later.
    pub fn busy(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message)
    }
}

impl IntoResponse for MediaApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<MediaError> for MediaApiError {
    fn from(e: MediaError) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        let (status, code) = match &e {
            MediaError::TooLarge { .. } => (S::PAYLOAD_TOO_LARGE, "too-large"),
            MediaError::QuotaExceeded { .. } => (S::FORBIDDEN, "quota-exceeded"),
            MediaError::NotFound => (S::NOT_FOUND, "not-found"),
            MediaError::NotOwner => (S::FORBIDDEN, "not-owner"),
            MediaError::NotUploaded => (S::CONFLICT, "not-uploaded"),
            MediaError::SizeMismatch { .. } => (S::UNPROCESSABLE_ENTITY, "size-mismatch"),
            MediaError::ViewOnceOnly => (S::CONFLICT, "view-once-only"),
            MediaError::NotViewOnce => (S::CONFLICT, "not-view-once"),
            MediaError::Gone => (S::GONE, "gone"),
            MediaError::UnknownGrant => (S::NOT_FOUND, "unknown-grant"),
            MediaError::WrongDevice => (S::FORBIDDEN, "wrong-device"),
            MediaError::NotMultipart => (S::CONFLICT, "not-multipart"),
            MediaError::InvalidPartNumber { .. } | MediaError::PartCount { .. } => {
                (S::BAD_REQUEST, "invalid-part")
            }
            MediaError::Storage(s) => return storage_error(s),
            other => {
                tracing::warn!(error = %other, "media request failed");
                return Self::internal();
            }
        };
        Self::new(status, code, message)
    }
}

fn storage_error(e: &StorageError) -> MediaApiError {
    use StatusCode as S;
    match e {
        StorageError::InvalidContentType => {
            MediaApiError::new(S::BAD_REQUEST, "bad-content-type", e.to_string())
        }
        StorageError::InvalidPart | StorageError::Refused { .. } => {
            MediaApiError::new(S::BAD_REQUEST, "invalid-part", e.to_string())
        }
        StorageError::NotFound => MediaApiError::new(S::NOT_FOUND, "not-found", e.to_string()),
        other => {
            // Storage messages never carry URLs or credentials.
            tracing::warn!(error = %other, "media storage failed");
            MediaApiError::new(
                S::BAD_GATEWAY,
                "storage-unavailable",
                "media storage failed",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_fit_the_errors() {
        let e = |m: MediaError| MediaApiError::from(m);
        assert_eq!(e(MediaError::Gone).status, StatusCode::GONE);
        assert_eq!(
            e(MediaError::TooLarge { size: 2, limit: 1 }).status,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            e(MediaError::QuotaExceeded { used: 1, quota: 1 }).code,
            "quota-exceeded"
        );
        let io = e(MediaError::Storage(StorageError::Transport(
            "http://secret-url".into(),
        )));
        assert_eq!(io.status, StatusCode::BAD_GATEWAY);
        assert!(!io.message.contains("secret-url"));
    }
}
