//! The Rust messaging client: one device's vodozemac state (pickled and
//! encrypted at rest in a [`vault`] file with a caller-provided key), a
//! WebSocket to signaling, and send / receive / receipts / profiles on top.
//!
//! Delivery is at-least-once from the server; the client drops duplicates
//! by `(conversation, seq)` and acknowledges an envelope only after its
//! state (ratchets, the new high-water mark) is saved, so a crash between
//! the two re-delivers rather than loses. Device lists are checked on every
//! use: a device the server serves that no signed list contains is refused
//! ([`ClientError::Crypto`] with `UntrustedDevice`).

mod receive;
mod send;
mod session;
pub mod transport;
pub mod vault;
pub mod wire;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::crypto::{CryptoError, Device, DeviceKeys, DeviceList, DevicePickle};
use crate::ids::{AccountId, ConversationId, DeviceId};
use crate::service::api::Caller;
pub use receive::Message;
pub use transport::Connection;
pub use vault::{VaultError, VaultKey};
pub use wire::{Content, ReceiptKind, Wire};

/// What went wrong in the client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// Connecting or talking to the server failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The connection closed.
    #[error("disconnected from the server")]
    Disconnected,
    /// The server did not answer in time.
    #[error("request timed out")]
    Timeout,
    /// The server refused the request.
    #[error("server said {status} {code}: {message}")]
    Server {
        /// HTTP-like status.
        status: u16,
        /// Machine-readable code.
        code: String,
        /// Explanation.
        message: String,
    },
    /// Encryption, decryption or a signature check failed.
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    /// The saved state could not be read or written.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The server sent something this client does not understand.
    #[error("protocol: {0}")]
    Protocol(String),
    /// This device was unbound from its account.
    #[error("this device was unbound")]
    Revoked,
}

impl ClientError {
    /// The server's status code, if the server refused.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What the vault file holds.
#[derive(Serialize, Deserialize)]
struct SavedState {
    server: String,
    device: DevicePickle,
    /// Highest sequence processed per conversation.
    seen: HashMap<ConversationId, u64>,
    /// Trusted device lists per account.
    trusted: HashMap<AccountId, DeviceList>,
}

/// A connected, authenticated device.
pub struct Client {
    conn: Connection,
    /// Access token for HTTP endpoints (media uploads).
    token: String,
    server: String,
    device: Device,
    caller: Caller,
    seen: HashMap<ConversationId, u64>,
    trusted: HashMap<AccountId, DeviceList>,
    /// Device keys looked up this session.
    keys_cache: HashMap<DeviceId, DeviceKeys>,
    vault: Option<(PathBuf, VaultKey)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.server)
            .field("caller", &self.caller)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Who this client is.
    pub fn caller(&self) -> Caller {
        self.caller
    }

    /// The device's public keys.
    pub fn device_keys(&self) -> DeviceKeys {
        self.device.keys()
    }

    /// The access token, for HTTP endpoints such as media uploads
    /// (`Authorization: Bearer …`). Secret: never log it.
    pub fn access_token(&self) -> &str {
        &self.token
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The vodozemac state (tests, advanced use).
    pub fn device_mut(&mut self) -> &mut Device {
        &mut self.device
    }

    /// Keep the state in `path`, encrypted with `key`, and save it now.
    /// From then on every change is saved before it is acknowledged.
    pub fn keep_in(&mut self, path: PathBuf, key: VaultKey) -> Result<(), ClientError> {
        self.vault = Some((path, key));
        self.save()
    }

    /// Save the state to the vault file (no-op without one).
    pub fn save(&self) -> Result<(), ClientError> {
        let Some((path, key)) = &self.vault else {
            return Ok(());
        };
        let state = SavedState {
            server: self.server.clone(),
            device: self.device.to_pickle(),
            seen: self.seen.clone(),
            trusted: self.trusted.clone(),
        };
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&state).map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        vault::write(path, key, &json)?;
        Ok(())
    }

    /// Open a saved client and log in again.
    pub async fn open(path: PathBuf, key: VaultKey) -> Result<Client, ClientError> {
        Self::open_at(path, key, None).await
    }

    /// Open a saved client and log in at `server` (the server moved) or
    /// at the saved URL.
    pub async fn open_at(
        path: PathBuf,
        key: VaultKey,
        server: Option<&str>,
    ) -> Result<Client, ClientError> {
        let json = vault::read(&path, &key)?;
        let state: SavedState =
            serde_json::from_slice(&json).map_err(|_| VaultError::Unreadable)?;
        let device = Device::from_pickle(state.device);
        let server = server.unwrap_or(&state.server).to_owned();
        let mut client = Client::login(&server, device).await?;
        client.seen = state.seen;
        client.trusted = state.trusted;
        client.vault = Some((path, key));
        // Others claimed one-time keys while this device was away.
        client.top_up_keys(false).await?;
        Ok(client)
    }
}
