//! The long-term credential mechanism (RFC 8489 §9.2): keys, stateless
//! nonces, static users and TURN REST API ephemeral credentials.

mod credentials;
mod key;
mod nonce;
mod rest;
mod secret;

pub use credentials::{Candidates, CredentialError, CredentialStore, StaticUser};
pub use key::{LongTermKey, long_term_key};
pub use nonce::{NONCE_LEN, NonceIssuer, NonceStatus};
pub use rest::{
    RestCredentials, RestUsername, mint_rest_credentials, parse_rest_username, rest_password,
};
pub use secret::Secret;
