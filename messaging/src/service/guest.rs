//! Guest tokens: a time-limited invite that lets someone without an account
//! into one conversation (or its call). `base64url(claims).base64url(mac)`
//! with HMAC-SHA256 under a server secret; expired or altered tokens get
//! [`ServiceError::Forbidden`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::ServiceError;
use crate::ids::ConversationId;

/// Longest accepted token.
pub const MAX_GUEST_TOKEN_BYTES: usize = 512;

/// What a guest token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestClaims {
    /// The one conversation.
    pub conversation_id: ConversationId,
    /// A random id for this guest.
    pub guest_id: String,
    /// Unix milliseconds after which the token is refused.
    pub expires_at_ms: i64,
}

/// The HMAC key for guest tokens. `Debug` does not print it.
#[derive(Clone)]
pub struct GuestKey([u8; 32]);

impl GuestKey {
    /// A key from 32 secret bytes (e.g. the data directory's secret file).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A random key.
    pub fn random() -> Self {
        Self(rand::random())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC zero-pads keys shorter than the 64-byte block, so this is
        // HMAC under the 32-byte key, through the infallible constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&self.0);
        <Hmac<Sha256> as KeyInit>::new(&block.into())
    }

    /// Sign claims into a token.
    pub fn issue(&self, claims: &GuestClaims) -> String {
        let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{body}.{tag}")
    }

    /// Check a token's MAC and expiry at `now`.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<GuestClaims, ServiceError> {
        if token.len() > MAX_GUEST_TOKEN_BYTES {
            return Err(ServiceError::Forbidden("invalid guest token"));
        }
        let (body, tag) = token
            .split_once('.')
            .ok_or(ServiceError::Forbidden("invalid guest token"))?;
        let tag = URL_SAFE_NO_PAD
            .decode(tag)
            .map_err(|_| ServiceError::Forbidden("invalid guest token"))?;
        let mut mac = self.mac();
        mac.update(body.as_bytes());
        mac.verify_slice(&tag)
            .map_err(|_| ServiceError::Forbidden("invalid guest token"))?;
        let claims: GuestClaims = URL_SAFE_NO_PAD
            .decode(body)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(ServiceError::Forbidden("invalid guest token"))?;
        if now.timestamp_millis() >= claims.expires_at_ms {
            return Err(ServiceError::Forbidden("guest token expired"));
        }
        Ok(claims)
    }
}

impl fmt::Debug for GuestKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GuestKey(..)")
    }
}
