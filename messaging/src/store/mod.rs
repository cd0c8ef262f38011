//! Storage: the [`Store`] trait and its one implementation, [`SqlStore`]
//! (sqlx's `Any` driver over SQLite by default or PostgreSQL by URL, with
//! embedded migrations and runtime-checked queries only).
//!
//! Store-and-forward: [`Store::enqueue`] writes one envelope per target
//! device in one transaction and returns only after commit; a resend with
//! the same client message id returns the first result and writes nothing;
//! each conversation has its own gap-free sequence; [`Store::ack`] deletes a
//! device's envelope; [`Store::purge_expired`] drops what outlived its TTL.
//! The store never sees plaintext: payloads are opaque ciphertext bytes.

mod sql;
mod types;

pub use sql::{Backend, SQLITE_FILE, SqlStore};
pub use types::*;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::crypto::{KeyUpload, PairingOffer, SignedDeviceList, SignedOneTimeKey};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::model::{Account, Profile};

/// Storage errors. Database details go to the log, not to clients.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The row does not exist (or a key directory ran dry).
    #[error("not found")]
    NotFound,
    /// A concurrent change won (unique key, or a compare-and-swap).
    #[error("conflict")]
    Conflict,
    /// Stored data that does not decode (corruption or a newer schema).
    #[error("corrupt stored data in {0}")]
    Corrupt(&'static str),
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A URL that selects no supported backend.
    #[error("unsupported database URL scheme (use sqlite: or postgres:)")]
    UnsupportedUrl,
}

/// Everything the messaging service persists.
#[async_trait]
pub trait Store: Send + Sync {
    /// Store a new account and its profiles.
    async fn create_account(&self, account: &Account) -> Result<(), StoreError>;
    /// An account with its profiles.
    async fn account(&self, id: AccountId) -> Result<Account, StoreError>;
    /// Insert or replace a profile.
    async fn put_profile(&self, profile: &Profile) -> Result<(), StoreError>;

    /// Bind a device (public keys only).
    async fn add_device(&self, device: &DeviceRecord) -> Result<(), StoreError>;
    /// A device.
    async fn device(&self, id: DeviceId) -> Result<DeviceRecord, StoreError>;
    /// An account's devices.
    async fn devices(&self, account: AccountId) -> Result<Vec<DeviceRecord>, StoreError>;
    /// Unbind a device: its keys and pending envelopes go with it.
    async fn remove_device(&self, id: DeviceId) -> Result<(), StoreError>;

    /// The account's signed device list.
    async fn device_list(&self, account: AccountId)
    -> Result<Option<SignedDeviceList>, StoreError>;
    /// Replace the device list if the stored version is still `expected`
    /// (`None`: no list yet); [`StoreError::Conflict`] otherwise.
    async fn put_device_list(
        &self,
        list: &SignedDeviceList,
        expected: Option<u64>,
    ) -> Result<(), StoreError>;

    /// In one transaction: replace the device list (stored version must
    /// be `expected`), bind `device` and mark the pairing approved.
    async fn bind_paired_device(
        &self,
        list: &SignedDeviceList,
        expected: u64,
        device: &DeviceRecord,
        pairing_code: &str,
    ) -> Result<(), StoreError>;
    /// In one transaction: replace the device list (stored version must be
    /// `expected`) and unbind `removed` with their keys and envelopes.
    async fn unbind_devices(
        &self,
        list: &SignedDeviceList,
        expected: u64,
        removed: &[DeviceId],
    ) -> Result<(), StoreError>;

    /// Add one-time keys and (if given) replace the fallback key. Returns
    /// the number of unclaimed one-time keys.
    async fn upload_keys(&self, device: DeviceId, upload: &KeyUpload) -> Result<u64, StoreError>;
    /// Unclaimed one-time keys of a device.
    async fn one_time_key_count(&self, device: DeviceId) -> Result<u64, StoreError>;
    /// Hand out one one-time key (each only once), else the fallback key,
    /// else [`StoreError::NotFound`].
    async fn claim_key(&self, device: DeviceId) -> Result<SignedOneTimeKey, StoreError>;

    /// Register a pairing offer under `code`.
    async fn put_pairing(
        &self,
        code: &str,
        offer: &PairingOffer,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A pairing offer.
    async fn pairing(&self, code: &str) -> Result<PairingRecord, StoreError>;
    /// Mark a pairing approved into `account`.
    async fn approve_pairing(&self, code: &str, account: AccountId) -> Result<(), StoreError>;
    /// Forget a pairing.
    async fn delete_pairing(&self, code: &str) -> Result<(), StoreError>;

    /// Create a conversation with its members.
    async fn create_conversation(&self, conversation: &Conversation) -> Result<(), StoreError>;
    /// A conversation.
    async fn conversation(&self, id: ConversationId) -> Result<Conversation, StoreError>;
    /// Conversations a profile is a member of.
    async fn conversations_for_profile(
        &self,
        profile: ProfileId,
    ) -> Result<Vec<Conversation>, StoreError>;
    /// Add a member profile.
    async fn add_member(
        &self,
        conversation: ConversationId,
        member: Member,
    ) -> Result<(), StoreError>;
    /// Remove a member profile.
    async fn remove_member(
        &self,
        conversation: ConversationId,
        profile: ProfileId,
    ) -> Result<(), StoreError>;

    /// Insert or replace a contact of a profile.
    async fn put_contact(&self, contact: &Contact) -> Result<(), StoreError>;
    /// A profile's contacts.
    async fn contacts(&self, owner: ProfileId) -> Result<Vec<Contact>, StoreError>;

    /// Hear about envelopes as they become durable: per conversation in
    /// sequence order, before `enqueue` returns. One listener per store;
    /// false if one was already set. Live connections push from here
    /// instead of reading every envelope back; the store still holds them
    /// until acknowledged, so a listener that drops one costs latency only.
    fn on_commit(&self, listener: CommitListener) -> bool;
    /// Accept a message: one envelope per target, durable on return.
    async fn enqueue(&self, message: &NewMessage) -> Result<Enqueued, StoreError>;
    /// Envelopes waiting for a device (optionally for one of its profiles),
    /// ordered by conversation and sequence.
    async fn pending(
        &self,
        device: DeviceId,
        profile: Option<ProfileId>,
        limit: u32,
    ) -> Result<Vec<StoredEnvelope>, StoreError>;
    /// A device acknowledges an envelope; returns whether it was pending.
    async fn ack(
        &self,
        device: DeviceId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<bool, StoreError>;
    /// Drop envelopes, idempotency records and pairings past their expiry.
    /// Returns the number of envelopes dropped.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Envelopes waiting in total (metrics, tests).
    async fn envelope_count(&self) -> Result<u64, StoreError>;
}
