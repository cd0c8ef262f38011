//! Request and response bodies of the messaging API (serde, JSON on the
//! wire). Signaling maps them onto HTTP routes and WebSocket frames; ids are
//! ULID strings and binary payloads are unpadded standard base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::crypto::{
    DeviceKeys, KeyUpload, PairCode, PairingOffer, SignedDeviceList, SignedOneTimeKey,
};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::model::ProfileKind;
use crate::store::{ConversationKind, Member, StoredEnvelope};

/// Who is calling: a device authenticated by signaling (see
/// [`MessagingService::verify_device_auth`](super::MessagingService::verify_device_auth)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    /// The device's account.
    pub account_id: AccountId,
    /// The device.
    pub device_id: DeviceId,
}

/// `POST /api/msg/register`: create an account with its first device.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RegisterRequest {
    /// Display name for the work and private profiles.
    pub display_name: String,
    /// A name for the device.
    pub device_name: String,
    /// The device's public keys (`account_id` chosen by the client).
    pub device: DeviceKeys,
    /// Version 1 of the device list, signed by this device.
    pub device_list: SignedDeviceList,
    /// Initial one-time keys and fallback key.
    pub keys: KeyUpload,
}

/// Number of unclaimed one-time keys and whether to upload more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyCount {
    /// Unclaimed one-time keys on the server.
    pub one_time_keys: u64,
    /// True when below the replenish threshold.
    pub replenish: bool,
}

/// A claimed key with its device's identity keys (to verify the signature).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClaimedKey {
    /// The owner.
    pub device: DeviceKeys,
    /// The key (`fallback: true` when one-time keys ran out).
    pub key: SignedOneTimeKey,
}

/// `GET /api/msg/accounts/{id}/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DevicesResponse {
    /// The signed list the client verifies with its `DeviceListVerifier`.
    pub device_list: Option<SignedDeviceList>,
    /// The devices the server has bound (checked against the list).
    pub devices: Vec<DeviceKeys>,
}

/// `POST /api/msg/pairing`: a new device asks to be paired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartPairingResponse {
    /// Show this code.
    pub code: PairCode,
    /// Or this QR payload.
    pub qr: String,
    /// The code stops working then.
    pub expires_at: DateTime<Utc>,
}

/// `POST /api/msg/pairing/{code}/approve` by an existing device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovePairingRequest {
    /// The next device list, containing the new device.
    pub device_list: SignedDeviceList,
}

/// `GET /api/msg/pairing/{code}` by the new device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingStatus {
    /// Set once approved.
    pub approved_into: Option<AccountId>,
    /// The offer.
    pub offer: PairingOffer,
}

/// `POST /api/msg/profiles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddProfileRequest {
    /// Kind (custom name inside).
    pub kind: ProfileKind,
    /// Display name.
    pub display_name: String,
}

/// `POST /api/msg/conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateConversationRequest {
    /// My profile in it.
    pub profile_id: ProfileId,
    /// Kind.
    pub kind: ConversationKind,
    /// The other members (empty for note-to-self).
    pub others: Vec<Member>,
}

/// Ciphertext for one device, as sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEnvelope {
    /// Target device.
    pub device_id: DeviceId,
    /// Ciphertext, base64.
    pub payload: String,
}

/// `POST /api/msg/send` (or a `send` WebSocket frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The sender's profile in it.
    pub profile_id: ProfileId,
    /// Client-chosen id; a resend reuses it.
    pub client_msg_id: String,
    /// One ciphertext per target device.
    pub envelopes: Vec<WireEnvelope>,
}

/// The answer to a send: returned only after the message is durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// Sequence number in the conversation.
    pub seq: u64,
    /// True when this was a resend of an accepted message.
    pub duplicate: bool,
}

/// An envelope handed to a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// The recipient profile it belongs to.
    pub profile_id: ProfileId,
    /// Sequence in the conversation.
    pub seq: u64,
    /// Sending device.
    pub sender_device: DeviceId,
    /// Ciphertext, base64.
    pub payload: String,
    /// When the server accepted it.
    pub sent_at: DateTime<Utc>,
}

impl From<&StoredEnvelope> for Delivery {
    fn from(e: &StoredEnvelope) -> Self {
        Self {
            conversation_id: e.conversation_id,
            profile_id: e.profile_id,
            seq: e.seq,
            sender_device: e.sender_device,
            payload: STANDARD_NO_PAD.encode(&e.payload),
            sent_at: e.created_at,
        }
    }
}

/// `POST /api/msg/ack`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckRequest {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Sequence.
    pub seq: u64,
}

/// `POST /api/msg/conversations/{id}/guests`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestInvite {
    /// The token to put in the invite link.
    pub token: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}
