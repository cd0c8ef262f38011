//! Room tokens: `base64url(payload).base64url(HMAC-SHA256(secret, payload))`,
//! payload `{"room":…,"exp":unix seconds}`. Verification is constant-time.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Longest token accepted (before any decoding).
const MAX_TOKEN_LEN: usize = 1024;

/// What a valid token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomClaims {
    /// The room.
    pub room: String,
    /// Expiry, Unix seconds.
    pub exp: u64,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a token of ours (bad format or signature).
    #[error("invalid room token")]
    Invalid,
    /// A genuine token past its expiry.
    #[error("room token expired")]
    Expired,
}

/// Signs and verifies room tokens with one secret.
pub struct TokenSigner {
    secret: Vec<u8>,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenSigner { secret: <redacted> }")
    }
}

impl TokenSigner {
    /// A signer with the given secret (at least 32 random bytes).
    pub fn new(secret: Vec<u8>) -> Self {
        TokenSigner { secret }
    }

    fn mac(&self) -> HmacSha256 {
        // HMAC takes keys of any length.
        match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => unreachable_hmac(),
        }
    }

    /// Issues a token.
    pub fn sign(&self, claims: &RoomClaims) -> String {
        let payload = serde_json::to_vec(claims).unwrap_or_default();
        let mut mac = self.mac();
        mac.update(&payload);
        let sig = mac.finalize().into_bytes();
        format!("{}.{}", B64.encode(&payload), B64.encode(sig))
    }

    /// Checks a token at time `now` (Unix seconds).
    pub fn verify(&self, token: &str, now: u64) -> Result<RoomClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Invalid);
        }
        let (payload_b64, sig_b64) = token.split_once('.').ok_or(TokenError::Invalid)?;
        let payload = B64.decode(payload_b64).map_err(|_| TokenError::Invalid)?;
        let sig = B64.decode(sig_b64).map_err(|_| TokenError::Invalid)?;
        let mut mac = self.mac();
        mac.update(&payload);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&sig).map_err(|_| TokenError::Invalid)?;
        let claims: RoomClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenError::Invalid)?;
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

#[cold]
fn unreachable_hmac() -> HmacSha256 {
    // HMAC accepts every key length; this branch cannot run. Fall back to an
    // unguessable key rather than panic.
    let key: [u8; 32] = rand::random();
    HmacSha256::new_from_slice(&key).unwrap_or_else(|_| unreachable_hmac())
}

/// Compares two secrets in constant time.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> TokenSigner {
        TokenSigner::new(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn round_trip_and_expiry() {
        let s = signer();
        let claims = RoomClaims {
            room: "r1".into(),
            exp: 1000,
        };
        let t = s.sign(&claims);
        assert_eq!(s.verify(&t, 999), Ok(claims));
        assert_eq!(s.verify(&t, 1000), Err(TokenError::Expired));
    }

    #[test]
    fn tampering_and_garbage_are_invalid() {
        let s = signer();
        let t = s.sign(&RoomClaims {
            room: "r1".into(),
            exp: 1000,
        });
        let (p, sig) = t.split_once('.').unwrap();
        let forged = B64.encode(br#"{"room":"r2","exp":1000}"#);
        assert_eq!(
            s.verify(&format!("{forged}.{sig}"), 1),
            Err(TokenError::Invalid)
        );
        assert_eq!(s.verify(&format!("{p}.AAAA"), 1), Err(TokenError::Invalid));
        for bad in ["", ".", "a.b", "no-dot", &"x".repeat(1100)] {
            assert_eq!(s.verify(bad, 1), Err(TokenError::Invalid), "{bad}");
        }
        let other = TokenSigner::new(b"another secret of 32 bytes......".to_vec());
        assert_eq!(other.verify(&t, 1), Err(TokenError::Invalid));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "abcd"));
    }
}
