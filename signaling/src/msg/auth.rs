//! Device authentication for the messaging API.
//!
//! A device proves it holds its Ed25519 identity key: it asks for a
//! challenge, signs `MessagingService::auth_bytes(challenge)` and trades the
//! signature for an access token. Both are stateless HMAC-SHA256 tokens
//! under a key derived from the server's messaging secret (a file in the
//! data directory), so they survive restarts and cost no memory under a
//! flood:
//!
//! - challenge: `c1.<expiry ms>.<nonce>.<mac>`, valid for 2 minutes;
//! - access token: `t1.<account>.<device>.<expiry s>.<mac>`, valid for
//!   [`ACCESS_TOKEN_TTL`]. Every request re-checks that the device is still
//!   bound, so unbinding a device revokes its token at once.
//!
//! HTTP requests carry the token as `Authorization: Bearer`; the WebSocket
//! sends it in its first frame (tokens stay out of URLs and access logs).

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use samtale_messaging::service::api::Caller;
use samtale_messaging::{AccountId, DeviceId};
use sha2::Sha256;

use crate::app::{ApiError, Shared};
use crate::token::constant_time_eq;

type HmacSha256 = Hmac<Sha256>;

/// How long a challenge may be answered.
pub const CHALLENGE_TTL_MS: u64 = 120_000;
/// How long an access token works.
pub const ACCESS_TOKEN_TTL_SECS: u64 = 24 * 3600;
/// The same, as a `Duration`.
pub const ACCESS_TOKEN_TTL: std::time::Duration =
    std::time::Duration::from_secs(ACCESS_TOKEN_TTL_SECS);
const MAX_TOKEN_LEN: usize = 256;

/// Signs challenges and access tokens.
pub struct AuthKeys {
    key: [u8; 32],
}

impl std::fmt::Debug for AuthKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthKeys { key: <redacted> }")
    }
}

/// Why a challenge or token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// Not issued by this server, or altered.
    #[error("invalid token")]
    Invalid,
    /// Genuine but past its expiry.
    #[error("token expired")]
    Expired,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl AuthKeys {
    /// Keys derived from the server's messaging secret.
    pub fn new(key: [u8; 32]) -> Self {
        Self { key }
    }

    fn mac(&self, label: &str, body: &str) -> String {
        let mut m = match HmacSha256::new_from_slice(&self.key) {
            Ok(m) => m,
            // HMAC accepts keys of any length.
            Err(_) => return String::new(),
        };
        m.update(label.as_bytes());
        m.update(b"|");
        m.update(body.as_bytes());
        B64.encode(m.finalize().into_bytes())
    }

    fn seal(&self, label: &str, body: String) -> String {
        let mac = self.mac(label, &body);
        format!("{body}.{mac}")
    }

    fn open<'a>(&self, label: &str, token: &'a str) -> Result<&'a str, AuthError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Invalid);
        }
        let (body, mac) = token.rsplit_once('.').ok_or(AuthError::Invalid)?;
        let expected = self.mac(label, body);
        if expected.is_empty() || !constant_time_eq(mac, &expected) {
            return Err(AuthError::Invalid);
        }
        Ok(body)
    }

    /// A fresh challenge for a device to sign.
    pub fn challenge(&self) -> String {
        let nonce: [u8; 16] = rand::random();
        let body = format!("c1.{}.{}", now_ms() + CHALLENGE_TTL_MS, B64.encode(nonce));
        self.seal("challenge", body)
    }

    /// Check that `challenge` is ours and still valid.
    pub fn check_challenge(&self, challenge: &str) -> Result<(), AuthError> {
        let body = self.open("challenge", challenge)?;
        let mut parts = body.split('.');
        let (Some("c1"), Some(exp), Some(_nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Invalid);
        };
        let exp: u64 = exp.parse().map_err(|_| AuthError::Invalid)?;
        if now_ms() > exp {
            return Err(AuthError::Expired);
        }
        Ok(())
    }

    /// An access token for an authenticated device; returns the token and
    /// its expiry (Unix seconds).
    pub fn issue(&self, caller: &Caller) -> (String, u64) {
        let exp = now_ms() / 1000 + ACCESS_TOKEN_TTL_SECS;
        let body = format!("t1.{}.{}.{exp}", caller.account_id, caller.device_id);
        (self.seal("access", body), exp)
    }

    /// The device an access token speaks for.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let body = self.open("access", token)?;
        let mut parts = body.split('.');
        let (Some("t1"), Some(account), Some(device), Some(exp), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(AuthError::Invalid);
        };
        let exp: u64 = exp.parse().map_err(|_| AuthError::Invalid)?;
        if now_ms() / 1000 > exp {
            return Err(AuthError::Expired);
        }
        Ok(Caller {
            account_id: account
                .parse::<AccountId>()
                .map_err(|_| AuthError::Invalid)?,
            device_id: device.parse::<DeviceId>().map_err(|_| AuthError::Invalid)?,
        })
    }
}

/// The error a request without a valid token gets.
pub fn unauthorized(e: AuthError) -> ApiError {
    let code = match e {
        AuthError::Invalid => "unauthorized",
        AuthError::Expired => "token-expired",
    };
    ApiError(StatusCode::UNAUTHORIZED, code, e.to_string())
}

/// The token of an `Authorization: Bearer <token>` header.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// A request made by an authenticated device (`Authorization: Bearer`).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub Caller);

impl FromRequestParts<Shared> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Shared) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            ApiError(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a device access token is required".into(),
            )
        })?;
        state
            .msg
            .auth
            .verify(token)
            .map(Authenticated)
            .map_err(unauthorized)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller {
            account_id: AccountId::new(),
            device_id: DeviceId::new(),
        }
    }

    #[test]
    fn token_round_trip_and_tamper() {
        let keys = AuthKeys::new([7; 32]);
        let c = caller();
        let (token, _) = keys.issue(&c);
        assert_eq!(keys.verify(&token), Ok(c));
        let other = caller();
        let forged = token.replace(&c.device_id.to_string(), &other.device_id.to_string());
        assert_eq!(keys.verify(&forged), Err(AuthError::Invalid));
        assert_eq!(
            AuthKeys::new([8; 32]).verify(&token),
            Err(AuthError::Invalid)
        );
        assert_eq!(keys.verify("t1.x"), Err(AuthError::Invalid));
        assert_eq!(keys.verify(&"a".repeat(5000)), Err(AuthError::Invalid));
    }

    #[test]
    fn challenge_is_not_a_token() {
        let keys = AuthKeys::new([7; 32]);
        let ch = keys.challenge();
        assert_eq!(keys.check_challenge(&ch), Ok(()));
        assert_eq!(keys.verify(&ch), Err(AuthError::Invalid));
        let (token, _) = keys.issue(&caller());
        assert_eq!(keys.check_challenge(&token), Err(AuthError::Invalid));
    }

    #[test]
    fn expired_challenge_is_refused() {
        let keys = AuthKeys::new([7; 32]);
        let body = format!("c1.{}.AAAA", now_ms() - 1);
        let old = keys.seal("challenge", body);
        assert_eq!(keys.check_challenge(&old), Err(AuthError::Expired));
    }
}
