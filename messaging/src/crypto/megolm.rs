//! Megolm group encryption for conversations of up to 32 members.
//!
//! The sender keeps one outbound group session per conversation and shares
//! its key over Olm with every member device that does not have it yet. The
//! session rotates (a new key nobody had) when a member device left, after
//! [`RotationPolicy::max_messages`] messages or [`RotationPolicy::max_age`].
//! Receivers refuse a second decryption of the same (session, index) as a
//! replay, and check the sealed conversation and sender.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use vodozemac::megolm::{DecryptionError, GroupSession, MegolmMessage, SessionConfig};

use super::device::{Device, OutboundGroup};
use super::keys::{DeviceKeys, SignedOneTimeKey};
use super::olm::{OlmContent, OlmEnvelope};
use super::{CryptoError, b64, unb64};
use crate::ids::{ConversationId, DeviceId};

/// Most members (accounts) in one group conversation.
pub const MAX_GROUP_MEMBERS: usize = 32;

/// When an outbound group session is replaced by a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RotationPolicy {
    /// Messages per session.
    pub max_messages: u32,
    /// Age of a session.
    pub max_age: Duration,
}

impl Default for RotationPolicy {
    /// 100 messages or one week, Matrix's defaults.
    fn default() -> Self {
        Self {
            max_messages: 100,
            max_age: Duration::days(7),
        }
    }
}

/// A Megolm ciphertext for a conversation, as the server stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMessage {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// Sending device.
    pub sender_device: DeviceId,
    /// Megolm session id.
    pub session_id: String,
    /// The Megolm message (base64).
    pub ciphertext: String,
}

/// What one group send produces: Olm key shares for devices that need the
/// session key, and the Megolm message for everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSend {
    /// One Olm envelope per device that gets the (new) session key.
    pub key_shares: Vec<OlmEnvelope>,
    /// The message.
    pub message: GroupMessage,
    /// Whether a new session was started for this send.
    pub rotated: bool,
}

#[derive(Serialize, Deserialize)]
struct GroupPayload {
    conversation_id: ConversationId,
    sender_device: DeviceId,
    body: String,
}

impl Device {
    /// The current outbound session id for `conversation`.
    pub fn group_session_id(&self, conversation: ConversationId) -> Option<String> {
        self.outbound
            .get(&conversation)
            .map(|g| g.session.session_id())
    }

    /// Member devices that need a claimed one-time key before
    /// [`Device::group_encrypt`] can share a key with them.
    pub fn devices_needing_keys<'a>(&self, members: &'a [DeviceKeys]) -> Vec<&'a DeviceKeys> {
        members
            .iter()
            .filter(|m| m.device_id != self.device_id && !self.has_session(m))
            .collect()
    }

    /// Encrypt `body` for every device in `members` (others' devices and my
    /// other devices; my own entry is skipped). `one_time_keys` holds claimed
    /// keys for devices without an Olm session.
    pub fn group_encrypt(
        &mut self,
        conversation_id: ConversationId,
        members: &[DeviceKeys],
        one_time_keys: &HashMap<DeviceId, SignedOneTimeKey>,
        body: &[u8],
        policy: &RotationPolicy,
        now: DateTime<Utc>,
    ) -> Result<GroupSend, CryptoError> {
        let members: Vec<&DeviceKeys> = members
            .iter()
            .filter(|m| m.device_id != self.device_id)
            .collect();
        let accounts: HashSet<_> = members
            .iter()
            .map(|m| m.account_id)
            .chain([self.account_id])
            .collect();
        if accounts.len() > MAX_GROUP_MEMBERS {
            return Err(CryptoError::TooManyMembers);
        }
        let ids: BTreeSet<DeviceId> = members.iter().map(|m| m.device_id).collect();
        let rotate = match self.outbound.get(&conversation_id) {
            None => true,
            Some(g) => {
                !g.shared_with.is_subset(&ids)
                    || g.sent >= policy.max_messages
                    || now - g.created_at >= policy.max_age
            }
        };
        let shared_with = if rotate {
            BTreeSet::new()
        } else {
            self.outbound
                .get(&conversation_id)
                .map(|g| g.shared_with.clone())
                .unwrap_or_default()
        };
        let targets: Vec<&DeviceKeys> = members
            .into_iter()
            .filter(|m| !shared_with.contains(&m.device_id))
            .collect();
        // Check everything before changing any state.
        for t in &targets {
            t.validate()?;
            if !self.has_session(t) && !one_time_keys.contains_key(&t.device_id) {
                return Err(CryptoError::NoSession(t.device_id));
            }
        }
        if rotate {
            self.outbound.insert(
                conversation_id,
                OutboundGroup {
                    session: GroupSession::new(SessionConfig::version_1()),
                    created_at: now,
                    sent: 0,
                    shared_with: BTreeSet::new(),
                },
            );
        }
        let (session_id, session_key) = match self.outbound.get(&conversation_id) {
            Some(g) => (g.session.session_id(), g.session.session_key().to_base64()),
            None => return Err(CryptoError::UnknownGroupSession),
        };
        let mut key_shares = Vec::with_capacity(targets.len());
        for t in targets {
            let content = OlmContent::RoomKey {
                conversation_id,
                session_id: session_id.clone(),
                session_key: session_key.clone(),
            };
            key_shares.push(self.encrypt_content(t, one_time_keys.get(&t.device_id), content)?);
            if let Some(g) = self.outbound.get_mut(&conversation_id) {
                g.shared_with.insert(t.device_id);
            }
        }
        let payload = GroupPayload {
            conversation_id,
            sender_device: self.device_id,
            body: b64(body),
        };
        let plaintext = serde_json::to_vec(&payload).map_err(|_| CryptoError::Malformed)?;
        let group = self
            .outbound
            .get_mut(&conversation_id)
            .ok_or(CryptoError::UnknownGroupSession)?;
        let message = group.session.encrypt(plaintext);
        group.sent = group.sent.saturating_add(1);
        Ok(GroupSend {
            key_shares,
            message: GroupMessage {
                conversation_id,
                sender_device: self.device_id,
                session_id,
                ciphertext: b64(&message.to_bytes()),
            },
            rotated: rotate,
        })
    }

    /// Decrypt a group message. Needs the session key, received earlier over
    /// Olm ([`Device::decrypt_olm`]).
    pub fn group_decrypt(&mut self, message: &GroupMessage) -> Result<Vec<u8>, CryptoError> {
        let group = self
            .inbound
            .get_mut(&message.session_id)
            .ok_or(CryptoError::UnknownGroupSession)?;
        if group.conversation_id != message.conversation_id
            || group.sender_device != message.sender_device
        {
            return Err(CryptoError::Tampered);
        }
        let bytes = unb64(&message.ciphertext)?;
        let parsed = MegolmMessage::from_bytes(&bytes).map_err(|_| CryptoError::Malformed)?;
        let decrypted = group.session.decrypt(&parsed).map_err(|e| match e {
            DecryptionError::UnknownMessageIndex(_, i) => CryptoError::UnknownMessageIndex(i),
            _ => CryptoError::Tampered,
        })?;
        if !group.seen.insert(decrypted.message_index) {
            return Err(CryptoError::Replay);
        }
        let payload: GroupPayload =
            serde_json::from_slice(&decrypted.plaintext).map_err(|_| CryptoError::Malformed)?;
        if payload.conversation_id != message.conversation_id
            || payload.sender_device != message.sender_device
        {
            return Err(CryptoError::Tampered);
        }
        unb64(&payload.body)
    }
}
