//! Receiving: decrypt pushed envelopes, drop duplicates, save, then
//! acknowledge.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::wire::{Content, Wire};
use super::{Client, ClientError};
use crate::crypto::{CryptoError, DeviceKeys, Received};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::service::api::Delivery;

/// A received message.
#[derive(Debug)]
pub struct Message {
    /// Conversation.
    pub conversation_id: ConversationId,
    /// My profile it arrived in.
    pub profile_id: ProfileId,
    /// Sequence in the conversation.
    pub seq: u64,
    /// Who sent it.
    pub sender_account: Option<AccountId>,
    /// From which device.
    pub sender_device: DeviceId,
    /// When the server accepted it.
    pub sent_at: DateTime<Utc>,
    /// What it says, or why it could not be read (tampered, replayed,
    /// unknown session). Unreadable messages are acknowledged too, so one
    /// bad envelope never blocks the queue.
    pub content: Result<Content, ClientError>,
}

impl Client {
    /// The next new message, waiting at most `timeout` (`None` when nothing
    /// arrived). Duplicates of processed messages are acknowledged and
    /// skipped.
    pub async fn receive(&mut self, timeout: Duration) -> Result<Option<Message>, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Some(event) = self.conn.event(left).await? else {
                return Ok(None);
            };
            match event.get("event").and_then(Value::as_str) {
                Some("delivery") => {}
                Some("revoked") => return Err(ClientError::Revoked),
                Some("shutdown") => return Err(ClientError::Disconnected),
                _ => continue,
            }
            let delivery: Delivery =
                serde_json::from_value(event.get("delivery").cloned().unwrap_or(Value::Null))
                    .map_err(|e| ClientError::Protocol(e.to_string()))?;
            if let Some(m) = self.process(delivery).await? {
                return Ok(Some(m));
            }
        }
    }

    async fn process(&mut self, d: Delivery) -> Result<Option<Message>, ClientError> {
        let seen = self.seen.get(&d.conversation_id).copied().unwrap_or(0);
        if d.seq <= seen {
            self.ack(d.conversation_id, d.seq).await?;
            return Ok(None);
        }
        let sender = self.sender_keys(d.sender_device).await;
        let content = match &sender {
            Ok(keys) => self.decrypt(keys, &d),
            Err(e) => Err(ClientError::Protocol(e.to_string())),
        };
        self.seen.insert(d.conversation_id, d.seq);
        // Durable before acknowledged.
        self.save()?;
        self.ack(d.conversation_id, d.seq).await?;
        Ok(Some(Message {
            conversation_id: d.conversation_id,
            profile_id: d.profile_id,
            seq: d.seq,
            sender_account: sender.ok().map(|k| k.account_id),
            sender_device: d.sender_device,
            sent_at: d.sent_at,
            content,
        }))
    }

    async fn ack(&mut self, conversation: ConversationId, seq: u64) -> Result<(), ClientError> {
        self.request::<Value>("ack", json!({"conversation_id": conversation, "seq": seq}))
            .await?;
        Ok(())
    }

    /// The sender device's keys, checked against its account's signed list.
    async fn sender_keys(&mut self, device: DeviceId) -> Result<DeviceKeys, ClientError> {
        if let Some(k) = self.keys_cache.get(&device) {
            return Ok(k.clone());
        }
        let keys: DeviceKeys = self
            .request("device_keys", json!({ "device_id": device }))
            .await?;
        if keys.device_id != device {
            return Err(ClientError::Protocol("server sent another device".into()));
        }
        self.check_devices(keys.account_id, std::slice::from_ref(&keys))
            .await?;
        self.keys_cache.insert(device, keys.clone());
        Ok(keys)
    }

    /// Decrypt one delivery's payload (public for tests that take
    /// ciphertext straight from the server's database).
    pub fn decrypt(&mut self, sender: &DeviceKeys, d: &Delivery) -> Result<Content, ClientError> {
        let malformed = || ClientError::Crypto(CryptoError::Malformed);
        let bytes = STANDARD_NO_PAD
            .decode(d.payload.trim_end_matches('='))
            .map_err(|_| malformed())?;
        self.decrypt_wire(sender, &bytes)
    }

    /// Decrypt envelope bytes as stored by the server.
    pub fn decrypt_wire(
        &mut self,
        sender: &DeviceKeys,
        bytes: &[u8],
    ) -> Result<Content, ClientError> {
        let malformed = || ClientError::Crypto(CryptoError::Malformed);
        let wire: Wire = serde_json::from_slice(bytes).map_err(|_| malformed())?;
        let plaintext = zeroize::Zeroizing::new(match wire {
            Wire::Olm { env } => match self.device.decrypt_olm(sender, &env)? {
                Received::Message(body) => body,
                _ => return Err(malformed()),
            },
            Wire::Group { key_share, message } => {
                if message.sender_device != sender.device_id {
                    return Err(ClientError::Crypto(CryptoError::Tampered));
                }
                if let Some(share) = key_share {
                    match self.device.decrypt_olm(sender, &share)? {
                        Received::RoomKey { .. } => {}
                        _ => return Err(malformed()),
                    }
                }
                self.device.group_decrypt(&message)?
            }
        });
        serde_json::from_slice(&plaintext).map_err(|_| malformed())
    }
}
