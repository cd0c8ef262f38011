//! Olm 1:1 encryption between devices.
//!
//! The first message to a device is a pre-key message built from one of its
//! claimed one-time keys (signature checked); later ones use the session.
//! Inside the ciphertext the sender seals both devices' ids and Ed25519
//! keys, so a server cannot re-route a ciphertext to another device or
//! pretend it came from someone else. A replayed message (pre-key or
//! normal) is refused with [`CryptoError::Replay`], a modified one with
//! [`CryptoError::Tampered`].

use std::fmt;

use serde::{Deserialize, Serialize};
use vodozemac::megolm::{InboundGroupSession, SessionKey};
use vodozemac::olm::{DecryptionError, OlmMessage, SessionConfig, SessionCreationError};

use super::device::{Device, InboundGroup};
use super::keys::{DeviceKeys, SignedOneTimeKey};
use super::{CryptoError, b64, unb64};
use crate::ids::{ConversationId, DeviceId};

/// An Olm ciphertext from one device to another, as the server stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OlmEnvelope {
    /// Sending device.
    pub sender_device: DeviceId,
    /// Its Curve25519 key (base64).
    pub sender_key: String,
    /// Receiving device.
    pub recipient_device: DeviceId,
    /// 0 = pre-key message, 1 = normal message.
    pub message_type: u8,
    /// The Olm message (base64).
    pub ciphertext: String,
}

/// What travels inside Olm.
#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum OlmContent {
    /// An application message (base64 body).
    Message { body: String },
    /// A Megolm session key for a conversation.
    RoomKey {
        conversation_id: ConversationId,
        session_id: String,
        session_key: String,
    },
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    sender: DeviceId,
    sender_ed25519: String,
    recipient: DeviceId,
    recipient_ed25519: String,
    content: OlmContent,
}

/// What an Olm message carried.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Received {
    /// An application message.
    Message(Vec<u8>),
    /// A group session key, now installed.
    RoomKey {
        /// For this conversation.
        conversation_id: ConversationId,
        /// The Megolm session id.
        session_id: String,
    },
}

impl fmt::Debug for Received {
    // Plaintext never goes to logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Message(b) => write!(f, "Message({} bytes)", b.len()),
            Self::RoomKey {
                conversation_id,
                session_id,
            } => f
                .debug_struct("RoomKey")
                .field("conversation_id", conversation_id)
                .field("session_id", session_id)
                .finish(),
        }
    }
}

fn map_decrypt(e: &DecryptionError) -> CryptoError {
    match e {
        DecryptionError::MissingMessageKey(_) => CryptoError::Replay,
        _ => CryptoError::Tampered,
    }
}

impl Device {
    /// Whether a message to `peer` needs one of its one-time keys first.
    pub fn needs_one_time_key(&self, peer: &DeviceKeys) -> bool {
        !self.has_session(peer)
    }

    /// Encrypt `body` for `peer`. Without a session, `one_time_key` (claimed
    /// from the server, signed by `peer`) starts one.
    pub fn encrypt_olm(
        &mut self,
        peer: &DeviceKeys,
        one_time_key: Option<&SignedOneTimeKey>,
        body: &[u8],
    ) -> Result<OlmEnvelope, CryptoError> {
        let content = OlmContent::Message { body: b64(body) };
        self.encrypt_content(peer, one_time_key, content)
    }

    pub(super) fn encrypt_content(
        &mut self,
        peer: &DeviceKeys,
        one_time_key: Option<&SignedOneTimeKey>,
        content: OlmContent,
    ) -> Result<OlmEnvelope, CryptoError> {
        Self::check_keys(peer)?;
        if !self.has_session(peer) {
            let otk = one_time_key.ok_or(CryptoError::NoSession(peer.device_id))?;
            let otk = otk.verify(peer)?;
            let session = self
                .olm
                .create_outbound_session(SessionConfig::version_1(), peer.curve25519()?, otk)
                .map_err(|_| CryptoError::InvalidKey)?;
            self.sessions
                .entry(peer.curve25519.clone())
                .or_default()
                .push(session);
        }
        let sealed = Sealed {
            sender: self.device_id,
            sender_ed25519: self.keys().ed25519,
            recipient: peer.device_id,
            recipient_ed25519: peer.ed25519.clone(),
            content,
        };
        let plaintext = serde_json::to_vec(&sealed).map_err(|_| CryptoError::Malformed)?;
        let session = self
            .sessions
            .get_mut(&peer.curve25519)
            .and_then(|s| s.last_mut())
            .ok_or(CryptoError::NoSession(peer.device_id))?;
        let message = session
            .encrypt(plaintext)
            .map_err(|_| CryptoError::InvalidKey)?;
        let (message_type, bytes) = message.to_parts();
        Ok(OlmEnvelope {
            sender_device: self.device_id,
            sender_key: self.curve_b64(),
            recipient_device: peer.device_id,
            message_type: u8::try_from(message_type).map_err(|_| CryptoError::Malformed)?,
            ciphertext: b64(&bytes),
        })
    }

    /// Decrypt an Olm message from `sender` (whose keys come from the
    /// trusted device list). Room keys are installed and reported.
    pub fn decrypt_olm(
        &mut self,
        sender: &DeviceKeys,
        envelope: &OlmEnvelope,
    ) -> Result<Received, CryptoError> {
        if envelope.recipient_device != self.device_id {
            return Err(CryptoError::WrongRecipient);
        }
        if envelope.sender_key != sender.curve25519 || envelope.sender_device != sender.device_id {
            return Err(CryptoError::Tampered);
        }
        Self::check_keys(sender)?;
        let bytes = unb64(&envelope.ciphertext)?;
        let message = OlmMessage::from_parts(usize::from(envelope.message_type), &bytes)
            .map_err(|_| CryptoError::Malformed)?;
        let plaintext = self.olm_plaintext(sender, &message)?;
        let sealed: Sealed =
            serde_json::from_slice(&plaintext).map_err(|_| CryptoError::Malformed)?;
        if sealed.recipient != self.device_id || sealed.recipient_ed25519 != self.keys().ed25519 {
            return Err(CryptoError::WrongRecipient);
        }
        if sealed.sender != sender.device_id || sealed.sender_ed25519 != sender.ed25519 {
            return Err(CryptoError::Tampered);
        }
        match sealed.content {
            OlmContent::Message { body } => Ok(Received::Message(unb64(&body)?)),
            OlmContent::RoomKey {
                conversation_id,
                session_id,
                session_key,
            } => {
                let key =
                    SessionKey::from_base64(&session_key).map_err(|_| CryptoError::Malformed)?;
                let session =
                    InboundGroupSession::new(&key, vodozemac::megolm::SessionConfig::version_1());
                if session.session_id() != session_id {
                    return Err(CryptoError::Tampered);
                }
                // A key received again must not reset the replay record.
                self.inbound
                    .entry(session_id.clone())
                    .or_insert_with(|| InboundGroup {
                        session,
                        conversation_id,
                        sender_device: sender.device_id,
                        seen: Default::default(),
                    });
                Ok(Received::RoomKey {
                    conversation_id,
                    session_id,
                })
            }
        }
    }

    fn olm_plaintext(
        &mut self,
        sender: &DeviceKeys,
        message: &OlmMessage,
    ) -> Result<Vec<u8>, CryptoError> {
        let sessions = self.sessions.entry(sender.curve25519.clone()).or_default();
        if let OlmMessage::PreKey(pre_key) = message {
            let id = pre_key.session_id();
            if let Some(existing) = sessions.iter_mut().find(|s| s.session_id() == id) {
                return existing.decrypt(message).map_err(|e| map_decrypt(&e));
            }
            let created = self
                .olm
                .create_inbound_session(SessionConfig::version_1(), sender.curve25519()?, pre_key)
                .map_err(|e| match e {
                    SessionCreationError::MissingOneTimeKey(_) => CryptoError::UnknownOneTimeKey,
                    SessionCreationError::Decryption(d) => map_decrypt(&d),
                    _ => CryptoError::Tampered,
                })?;
            self.sessions
                .entry(sender.curve25519.clone())
                .or_default()
                .push(created.session);
            return Ok(created.plaintext);
        }
        if sessions.is_empty() {
            return Err(CryptoError::NoSession(sender.device_id));
        }
        let mut worst = CryptoError::Tampered;
        for session in sessions.iter_mut().rev() {
            match session.decrypt(message) {
                Ok(p) => return Ok(p),
                Err(e) => {
                    if map_decrypt(&e) == CryptoError::Replay {
                        worst = CryptoError::Replay;
                    }
                }
            }
        }
        Err(worst)
    }
}
