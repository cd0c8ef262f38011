//! TURN REST API ephemeral credentials, as coturn's `use-auth-secret`
//! implements them (draft-uberti-behave-turn-rest-00):
//! username `"<expiry unix seconds>:<user>"`, password
//! `base64(HMAC-SHA1(secret, username))`.
//!
//! Signaling calls [`mint_rest_credentials`]; the server checks the expiry
//! and tries each configured secret (several at once during rotation).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// One set of ephemeral credentials for an ICE-servers list.
#[derive(Clone, PartialEq, Eq)]
pub struct RestCredentials {
    /// `"<expiry>:<user>"` (just `"<expiry>"` when `user` is empty).
    pub username: String,
    /// `base64(HMAC-SHA1(secret, username))`.
    pub password: String,
    /// Unix time (seconds) after which the server refuses them.
    pub expires_unix: u64,
}

impl std::fmt::Debug for RestCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestCredentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("expires_unix", &self.expires_unix)
            .finish()
    }
}

/// Mints credentials for `user`, valid for `ttl` from `now_unix` (seconds
/// since the Unix epoch), signed with `secret` (the `static-auth-secret`).
pub fn mint_rest_credentials(
    secret: &[u8],
    user: &str,
    ttl: Duration,
    now_unix: u64,
) -> RestCredentials {
    let expires_unix = now_unix.saturating_add(ttl.as_secs());
    let username = if user.is_empty() {
        expires_unix.to_string()
    } else {
        format!("{expires_unix}:{user}")
    };
    let password = rest_password(secret, &username);
    RestCredentials {
        username,
        password,
        expires_unix,
    }
}

/// `base64(HMAC-SHA1(secret, username))`.
pub fn rest_password(secret: &[u8], username: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A REST username split into its expiry and user parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestUsername<'a> {
    /// Unix expiry time in seconds.
    pub expires_unix: u64,
    /// The user id (may be empty).
    pub user: &'a str,
}

/// Parses `"<expiry>:<user>"`, `"<expiry>"` or, as coturn also accepts,
/// `"<user>:<expiry>"`. `None` when no part is a decimal timestamp.
pub fn parse_rest_username(username: &str) -> Option<RestUsername<'_>> {
    let timestamp = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    match username.split_once(':') {
        None => timestamp(username).map(|expires_unix| RestUsername {
            expires_unix,
            user: "",
        }),
        Some((first, rest)) => {
            if let Some(expires_unix) = timestamp(first) {
                return Some(RestUsername {
                    expires_unix,
                    user: rest,
                });
            }
            let (user, last) = username.rsplit_once(':')?;
            timestamp(last).map(|expires_unix| RestUsername { expires_unix, user })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_coturn_compatible_credentials() {
        let creds =
            mint_rest_credentials(b"north", "alice", Duration::from_secs(3600), 1_700_000_000);
        assert_eq!(creds.username, "1700003600:alice");
        assert_eq!(creds.expires_unix, 1_700_003_600);
        assert_eq!(creds.password, rest_password(b"north", "1700003600:alice"));
        assert!(!format!("{creds:?}").contains(&creds.password));
    }

    #[test]
    fn known_hmac_sha1_value() {
        // printf '%s' 1700003600:alice | openssl dgst -sha1 -hmac north -binary | base64
        assert_eq!(
            rest_password(b"north", "1700003600:alice"),
            "wjwSXO2ch1B6VaLTLMy2Avn5O9o="
        );
    }

    #[test]
    fn parses_username_forms() {
        assert_eq!(
            parse_rest_username("1700003600:alice"),
            Some(RestUsername {
                expires_unix: 1_700_003_600,
                user: "alice"
            })
        );
        assert_eq!(
            parse_rest_username("alice:1700003600"),
            Some(RestUsername {
                expires_unix: 1_700_003_600,
                user: "alice"
            })
        );
        assert_eq!(
            parse_rest_username("42"),
            Some(RestUsername {
                expires_unix: 42,
                user: ""
            })
        );
        assert_eq!(
            parse_rest_username("12:a:b"),
            Some(RestUsername {
                expires_unix: 12,
                user: "a:b"
            })
        );
        assert_eq!(parse_rest_username("alice"), None);
        assert_eq!(parse_rest_username("alice:bob"), None);
        assert_eq!(parse_rest_username("+5:alice"), None);
        assert_eq!(parse_rest_username("99999999999999999999999:a"), None);
    }
}
