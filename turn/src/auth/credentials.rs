//! Where keys come from: static users (precomputed at start) and TURN REST
//! API secrets (derived per request, expiry checked).

use std::collections::HashMap;

use thiserror::Error;

use super::key::{LongTermKey, long_term_key};
use super::rest::{parse_rest_username, rest_password};
use super::secret::Secret;
use crate::saslprep::{SaslPrepError, saslprep};

/// A user with a fixed password, from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticUser {
    /// The USERNAME clients send.
    pub username: String,
    /// The password, SASLprep'd before the key is derived.
    pub password: Secret,
}

/// Why no key exists for a username.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialError {
    /// Neither a static user nor a REST username (or no REST secret is set).
    #[error("unknown user")]
    UnknownUser,
    /// A REST username whose expiry has passed.
    #[error("REST credentials expired at {expires_unix}")]
    Expired {
        /// The expiry in the username.
        expires_unix: u64,
    },
}

/// The keys a request's MESSAGE-INTEGRITY may be made with, and the user
/// its quota counts against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates<'u> {
    /// One key for a static user; one per configured secret for REST.
    pub keys: Vec<LongTermKey>,
    /// The static username, or the user part of a REST username (so minting
    /// fresh credentials does not reset a user's allocation quota).
    pub quota_user: &'u str,
}

/// Static users and REST secrets for one realm.
#[derive(Debug, Clone)]
pub struct CredentialStore {
    realm: String,
    static_keys: HashMap<String, LongTermKey>,
    rest_secrets: Vec<Secret>,
}

impl CredentialStore {
    /// Derives the static users' keys for `realm`; fails when a password
    /// holds a character SASLprep prohibits.
    pub fn new(
        realm: &str,
        users: &[StaticUser],
        rest_secrets: &[Secret],
    ) -> Result<Self, SaslPrepError> {
        let mut static_keys = HashMap::with_capacity(users.len());
        for user in users {
            let password = saslprep(user.password.expose())?;
            static_keys.insert(
                user.username.clone(),
                long_term_key(&user.username, realm, &password),
            );
        }
        Ok(Self {
            realm: realm.to_owned(),
            static_keys,
            rest_secrets: rest_secrets
                .iter()
                .filter(|s| !s.expose().is_empty())
                .cloned()
                .collect(),
        })
    }

    /// The realm keys are derived for.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// The candidate keys for `username` at `now_unix`.
    pub fn candidates<'u>(
        &self,
        username: &'u str,
        now_unix: u64,
    ) -> Result<Candidates<'u>, CredentialError> {
        if let Some(key) = self.static_keys.get(username) {
            return Ok(Candidates {
                keys: vec![*key],
                quota_user: username,
            });
        }
        if self.rest_secrets.is_empty() {
            return Err(CredentialError::UnknownUser);
        }
        let rest = parse_rest_username(username).ok_or(CredentialError::UnknownUser)?;
        if rest.expires_unix < now_unix {
            return Err(CredentialError::Expired {
                expires_unix: rest.expires_unix,
            });
        }
        let keys = self
            .rest_secrets
            .iter()
            .map(|secret| {
                let password = rest_password(secret.expose().as_bytes(), username);
                long_term_key(username, &self.realm, &password)
            })
            .collect();
        Ok(Candidates {
            keys,
            quota_user: rest.user,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint_rest_credentials;
    use std::time::Duration;

    fn store() -> CredentialStore {
        CredentialStore::new(
            "samtale",
            &[StaticUser {
                username: "ops".into(),
                password: Secret::new("pa\u{00AD}ss"),
            }],
            &[Secret::new("new-secret"), Secret::new("old-secret")],
        )
        .unwrap()
    }

    #[test]
    fn static_user_key_uses_saslprepped_password() {
        let c = store().candidates("ops", 0).unwrap();
        assert_eq!(c.keys, vec![long_term_key("ops", "samtale", "pass")]);
        assert_eq!(c.quota_user, "ops");
    }

    #[test]
    fn rest_credentials_from_either_secret_until_expiry() {
        let store = store();
        for secret in ["new-secret", "old-secret"] {
            let creds =
                mint_rest_credentials(secret.as_bytes(), "bob", Duration::from_secs(60), 1000);
            let c = store.candidates(&creds.username, 1060).unwrap();
            let expected = long_term_key(&creds.username, "samtale", &creds.password);
            assert!(c.keys.contains(&expected));
            assert_eq!(c.quota_user, "bob");
            assert_eq!(
                store.candidates(&creds.username, 1061),
                Err(CredentialError::Expired { expires_unix: 1060 })
            );
        }
        assert_eq!(
            store.candidates("mallory", 0),
            Err(CredentialError::UnknownUser)
        );
    }

    #[test]
    fn no_rest_without_secrets() {
        let store = CredentialStore::new("r", &[], &[Secret::new("")]).unwrap();
        assert_eq!(
            store.candidates("99999999999:bob", 0),
            Err(CredentialError::UnknownUser)
        );
    }
}
