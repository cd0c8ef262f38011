//! Records the [`Store`](super::Store) reads and writes.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::{DeviceKeys, PairingOffer};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};

/// A bound device: public keys and a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceRecord {
    /// Public identity keys (and ids).
    pub keys: DeviceKeys,
    /// A name for the device list.
    pub name: String,
    /// When it was bound.
    pub created_at: DateTime<Utc>,
}

/// A stored pairing offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairingRecord {
    /// The new device's offer.
    pub offer: PairingOffer,
    /// When the code stops working.
    pub expires_at: DateTime<Utc>,
    /// Set once an existing device approved it.
    pub approved_into: Option<AccountId>,
}

/// What kind of conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    /// Two profiles.
    Direct,
    /// Up to 32 profiles.
    Group,
    /// My own devices only.
    NoteToSelf,
}

impl ConversationKind {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
            Self::NoteToSelf => "note_to_self",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "direct" => Some(Self::Direct),
            "group" => Some(Self::Group),
            "note_to_self" => Some(Self::NoteToSelf),
            _ => None,
        }
    }
}

/// One member of a conversation: a profile of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// The account.
    pub account_id: AccountId,
    /// Which of its profiles takes part.
    pub profile_id: ProfileId,
}

/// A conversation and its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// Its id.
    pub id: ConversationId,
    /// Its kind.
    pub kind: ConversationKind,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Member profiles, sorted.
    pub members: Vec<Member>,
}

/// A contact in a profile's address book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The profile whose contact it is.
    pub owner_profile: ProfileId,
    /// The contact's account.
    pub contact_account: AccountId,
    /// The contact's profile.
    pub contact_profile: ProfileId,
    /// Name as saved by the owner.
    pub display_name: String,
}

/// Ciphertext for one target device.
#[derive(Clone, PartialEq, Eq)]
pub struct OutEnvelope {
    /// Target device.
    pub device_id: DeviceId,
    /// The target's profile in this conversation (routing on the device).
    pub profile_id: ProfileId,
    /// Opaque ciphertext.
    pub payload: Vec<u8>,
}

impl fmt::Debug for OutEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutEnvelope")
            .field("device_id", &self.device_id)
            .field("profile_id", &self.profile_id)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// A message to accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Sending device.
    pub sender_device: DeviceId,
    /// The client's id for this message; a resend reuses it.
    pub client_msg_id: String,
    /// One envelope per target device.
    pub envelopes: Vec<OutEnvelope>,
    /// Acceptance time.
    pub now: DateTime<Utc>,
    /// How long undelivered envelopes (and the idempotency record) live.
    pub ttl: Duration,
}

/// The result of [`Store::enqueue`](super::Store::enqueue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enqueued {
    /// Sequence number in the conversation.
    pub seq: u64,
    /// True when this was a resend of an accepted message.
    pub duplicate: bool,
}

/// Told, in commit order, which envelopes each commit made durable (see
/// [`Store::on_commit`](super::Store::on_commit)). It runs on the writer:
/// keep it short and never block.
pub type CommitListener = std::sync::Arc<dyn Fn(&[StoredEnvelope]) + Send + Sync>;

/// An envelope waiting for a device.
#[derive(Clone, PartialEq, Eq)]
pub struct StoredEnvelope {
    /// Target device.
    pub device_id: DeviceId,
    /// Target profile.
    pub profile_id: ProfileId,
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Sequence in the conversation.
    pub seq: u64,
    /// Sending device.
    pub sender_device: DeviceId,
    /// Opaque ciphertext.
    pub payload: Vec<u8>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for StoredEnvelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEnvelope")
            .field("device_id", &self.device_id)
            .field("profile_id", &self.profile_id)
            .field("conversation_id", &self.conversation_id)
            .field("seq", &self.seq)
            .field("sender_device", &self.sender_device)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}
