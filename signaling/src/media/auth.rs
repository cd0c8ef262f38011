//! Who a media request acts for: the device behind the messaging bearer
//! token ([`Authenticated`]), as the account that owns uploads (and is
//! charged against the quota) and the device that holds view-once grants.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::MediaApiError;
use crate::app::Shared;
use crate::msg::auth::Authenticated;

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
        parts: &mut Parts,
        state: &Shared,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(caller) = Authenticated::from_request_parts(parts, state)
            .await
            .map_err(|e| MediaApiError::new(e.0, e.1, e.2))?;
        Ok(Self {
            account: caller.account_id.to_string(),
            device: caller.device_id.to_string(),
        })
    }
}
