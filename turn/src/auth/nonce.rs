//! Stateless nonces: the server remembers nothing per client, so a flood of
//! unauthenticated requests costs no memory.
//!
//! A nonce is `base64url(t || tag)`, 16 characters, where `t` is the issue
//! time (4 bytes, seconds on the server's monotonic clock) and `tag` the
//! first 8 bytes of `HMAC-SHA256(secret, t || client IP)`. It is checked by
//! recomputing the tag (constant-time) and comparing `t` with the lifetime.
//! Binding to the client IP keeps a nonce seen on the wire from being used
//! from elsewhere. Eight tag bytes are plenty: a forged nonce only skips
//! one 401 round trip, it does not authenticate anyone. Short nonces keep
//! the 401 answer small (no amplification).

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

const TIME_LEN: usize = 4;
const TAG_LEN: usize = 8;
/// Length of an encoded nonce in characters.
pub const NONCE_LEN: usize = 16;

/// The result of checking a nonce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NonceStatus {
    /// Issued by us, for this client, and not expired.
    Valid,
    /// Issued by us for this client but older than the lifetime: answer 438.
    Stale,
    /// Not one of ours (or for another client): answer 401.
    Invalid,
}

/// Issues and checks nonces from a secret (random per process by default).
#[derive(Clone)]
pub struct NonceIssuer {
    secret: [u8; 32],
    lifetime: Duration,
}

impl std::fmt::Debug for NonceIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NonceIssuer")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl NonceIssuer {
    /// An issuer with a given secret (tests, or several processes sharing one).
    pub fn new(secret: [u8; 32], lifetime: Duration) -> Self {
        Self { secret, lifetime }
    }

    /// An issuer with a fresh random secret.
    pub fn random(lifetime: Duration) -> Self {
        Self::new(rand::random(), lifetime)
    }

    /// A nonce for `client`, issued at `now_secs` (seconds on any clock
    /// that only moves forward; wraps after 136 years).
    pub fn issue(&self, now_secs: u64, client: IpAddr) -> String {
        let time = (now_secs as u32).to_be_bytes();
        let tag = self.tag(&time, client);
        let mut raw = [0u8; TIME_LEN + TAG_LEN];
        raw[..TIME_LEN].copy_from_slice(&time);
        raw[TIME_LEN..].copy_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// Checks a nonce received from `client` at `now_secs`.
    pub fn check(&self, nonce: &str, now_secs: u64, client: IpAddr) -> NonceStatus {
        if nonce.len() != NONCE_LEN {
            return NonceStatus::Invalid;
        }
        let mut raw = [0u8; TIME_LEN + TAG_LEN];
        match URL_SAFE_NO_PAD.decode_slice(nonce, &mut raw) {
            Ok(n) if n == raw.len() => {}
            _ => return NonceStatus::Invalid,
        }
        let (time, tag) = raw.split_at(TIME_LEN);
        let Ok(time): Result<[u8; TIME_LEN], _> = time.try_into() else {
            return NonceStatus::Invalid;
        };
        if !bool::from(self.tag(&time, client).ct_eq(tag)) {
            return NonceStatus::Invalid;
        }
        let issued = u32::from_be_bytes(time);
        let age = (now_secs as u32).wrapping_sub(issued);
        // A nonce "from the future" wraps to a huge age and reads as stale.
        if u64::from(age) < self.lifetime.as_secs() {
            NonceStatus::Valid
        } else {
            NonceStatus::Stale
        }
    }

    fn tag(&self, time: &[u8; TIME_LEN], client: IpAddr) -> [u8; TAG_LEN] {
        let mut tag = [0u8; TAG_LEN];
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return tag;
        };
        mac.update(time);
        match client {
            IpAddr::V4(ip) => mac.update(&ip.octets()),
            IpAddr::V6(ip) => mac.update(&ip.octets()),
        }
        tag.copy_from_slice(&mac.finalize().into_bytes()[..TAG_LEN]);
        tag
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 7));

    #[test]
    fn valid_until_the_lifetime_then_stale() {
        let issuer = NonceIssuer::new([9; 32], Duration::from_secs(600));
        let nonce = issuer.issue(1000, CLIENT);
        assert_eq!(nonce.len(), NONCE_LEN);
        assert_eq!(issuer.check(&nonce, 1000, CLIENT), NonceStatus::Valid);
        assert_eq!(issuer.check(&nonce, 1599, CLIENT), NonceStatus::Valid);
        assert_eq!(issuer.check(&nonce, 1600, CLIENT), NonceStatus::Stale);
        assert_eq!(issuer.check(&nonce, 999, CLIENT), NonceStatus::Stale);
    }

    #[test]
    fn bound_to_secret_and_client() {
        let issuer = NonceIssuer::new([9; 32], Duration::from_secs(600));
        let other = NonceIssuer::new([8; 32], Duration::from_secs(600));
        let nonce = issuer.issue(5, CLIENT);
        assert_eq!(other.check(&nonce, 5, CLIENT), NonceStatus::Invalid);
        let elsewhere = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 8));
        assert_eq!(issuer.check(&nonce, 5, elsewhere), NonceStatus::Invalid);
        for garbage in [
            "",
            "short",
            "################",
            "AAAAAAAAAAAAAAAA",
            "ÅÅÅÅÅÅÅÅ",
        ] {
            assert_eq!(issuer.check(garbage, 5, CLIENT), NonceStatus::Invalid);
        }
    }
}
