//! Who a media request acts for: an authenticated account and device.
//!
//! Until messaging auth is wired in (`crate::msg::auth`), no bearer token
//! is accepted: every media API call answers 401.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;

use super::MediaApiError;
use crate::app::Shared;

/// The authenticated caller of a media route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaCaller {
    /// The account (owner of uploads, charged against the quota).
    pub account: String,
    /// The device (holder of view-once grants).
    pub device: String,
}

impl FromRequestParts<Shared> for MediaCaller {
    type Rejection = MediaApiError;

    async fn from_request_parts(
        _parts: &mut Parts,
        _state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        Err(MediaApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a device bearer token is required",
        ))
    }
}
