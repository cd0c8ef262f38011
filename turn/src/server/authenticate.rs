//! The server side of the long-term credential mechanism (RFC 8489
//! §9.2.4), stateless: nothing is stored for a request that fails.

use std::net::IpAddr;

use crate::auth::{CredentialStore, LongTermKey, NonceIssuer, NonceStatus};
use crate::codec::{Attribute, Message, attr_type};

use super::reply::code;

/// A request that passed: the key its MESSAGE-INTEGRITY was made with.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated {
    pub key: LongTermKey,
    pub username: String,
    pub quota_user: String,
}

/// Why a request did not pass, as the error code to answer with. 401 and
/// 438 answers carry REALM and a fresh NONCE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// No MESSAGE-INTEGRITY: the normal first request (401, not a failure).
    Challenge,
    /// 400: MESSAGE-INTEGRITY without USERNAME, REALM or NONCE.
    BadRequest,
    /// 401: unknown user, expired REST credentials, wrong realm or nonce,
    /// or a MESSAGE-INTEGRITY that does not match.
    Unauthorized,
    /// 438: a nonce we issued, but too old.
    StaleNonce,
}

impl Rejected {
    pub fn code(self) -> u16 {
        match self {
            Rejected::Challenge | Rejected::Unauthorized => code::UNAUTHORIZED,
            Rejected::BadRequest => code::BAD_REQUEST,
            Rejected::StaleNonce => code::STALE_NONCE,
        }
    }
}

/// Checks a request's credentials.
pub(crate) fn authenticate(
    msg: &Message<'_>,
    credentials: &CredentialStore,
    nonces: &NonceIssuer,
    client: IpAddr,
    now_secs: u64,
    now_unix: u64,
) -> Result<Authenticated, Rejected> {
    if !msg.contains(attr_type::MESSAGE_INTEGRITY) {
        return Err(Rejected::Challenge);
    }
    let (
        Ok(Some(Attribute::Username(username))),
        Ok(Some(Attribute::Realm(realm))),
        Ok(Some(Attribute::Nonce(nonce))),
    ) = (
        msg.decode(attr_type::USERNAME),
        msg.decode(attr_type::REALM),
        msg.decode(attr_type::NONCE),
    )
    else {
        return Err(Rejected::BadRequest);
    };
    match nonces.check(nonce, now_secs, client) {
        NonceStatus::Valid => {}
        NonceStatus::Stale => return Err(Rejected::StaleNonce),
        NonceStatus::Invalid => return Err(Rejected::Unauthorized),
    }
    if realm != credentials.realm() {
        return Err(Rejected::Unauthorized);
    }
    let candidates = credentials
        .candidates(username, now_unix)
        .map_err(|_| Rejected::Unauthorized)?;
    let key = candidates
        .keys
        .iter()
        .find(|key| msg.verify_integrity(key.as_slice()))
        .ok_or(Rejected::Unauthorized)?;
    Ok(Authenticated {
        key: *key,
        username: username.to_owned(),
        quota_user: candidates.quota_user.to_owned(),
    })
}
