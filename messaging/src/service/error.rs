//! The service's error type, with the HTTP status signaling should send.

use crate::crypto::CryptoError;
use crate::store::StoreError;

/// Errors a client can see. `Internal` hides database details (they are
/// logged instead).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No such thing (or, for a key claim, no one-time and no fallback key).
    #[error("not found")]
    NotFound,
    /// The caller may not do this (other account, other profile, expired or
    /// forged guest token).
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// Malformed input.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// Over a size limit.
    #[error("too large: {0}")]
    TooLarge(&'static str),
    /// A concurrent change won, or the id is taken.
    #[error("conflict")]
    Conflict,
    /// A signature or key check failed.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The store failed.
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl ServiceError {
    /// The HTTP status for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotFound => 404,
            Self::Forbidden(_) => 403,
            Self::BadRequest(_) | Self::Crypto(_) => 400,
            Self::TooLarge(_) => 413,
            Self::Conflict => 409,
            Self::Internal(_) => 500,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict => Self::Conflict,
            other => {
                tracing::error!(error = %other, "messaging store error");
                Self::Internal(other)
            }
        }
    }
}
