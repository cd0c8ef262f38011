//! Sending: find the conversation's devices, check them against the signed
//! device lists, claim one-time keys where no Olm session exists, encrypt
//! (Olm per device for direct chats and note-to-self, Megolm plus key
//! shares for groups) and hand the server one envelope per device.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use serde_json::json;

use super::wire::{Content, ReceiptKind, Wire};
use super::{Client, ClientError};
use crate::crypto::{DeviceKeys, DeviceListVerifier, RotationPolicy, SignedOneTimeKey};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::service::api::*;
use crate::store::{Conversation, ConversationKind};

impl Client {
    /// Send text to a conversation from one of my profiles.
    pub async fn send_text(
        &mut self,
        conversation: &Conversation,
        profile: ProfileId,
        text: &str,
    ) -> Result<SendResponse, ClientError> {
        let content = Content::Text {
            body: text.to_owned(),
        };
        self.send_new(conversation, profile, &content).await
    }

    /// Tell the conversation I got or read messages `seqs`.
    pub async fn send_receipt(
        &mut self,
        conversation: &Conversation,
        profile: ProfileId,
        kind: ReceiptKind,
        seqs: Vec<u64>,
    ) -> Result<SendResponse, ClientError> {
        let content = Content::Receipt { kind, seqs };
        self.send_new(conversation, profile, &content).await
    }

    /// [`send`](Self::send) under a fresh client message id.
    async fn send_new(
        &mut self,
        conversation: &Conversation,
        profile: ProfileId,
        content: &Content,
    ) -> Result<SendResponse, ClientError> {
        let id = ulid::Ulid::new().to_string();
        self.send(conversation, profile, content, &id).await
    }

    /// Encrypt `content` for every other device in the conversation and
    /// send it. Resending with the same `client_msg_id` (after a dropped
    /// connection) does not duplicate the message.
    pub async fn send(
        &mut self,
        conversation: &Conversation,
        profile: ProfileId,
        content: &Content,
        client_msg_id: &str,
    ) -> Result<SendResponse, ClientError> {
        let plaintext = zeroize::Zeroizing::new(
            serde_json::to_vec(content).map_err(|e| ClientError::Protocol(e.to_string()))?,
        );
        let targets = self.verified_devices(conversation.id, profile).await?;
        if targets.is_empty() {
            return Err(ClientError::Protocol(
                "nobody to send to: no other device in this conversation".into(),
            ));
        }
        let claimed = self.claim_keys(&targets).await?;
        let wires: Vec<(DeviceId, Wire)> = match conversation.kind {
            ConversationKind::Group => {
                let sent = self.device.group_encrypt(
                    conversation.id,
                    &targets,
                    &claimed,
                    &plaintext,
                    &RotationPolicy::default(),
                    chrono::Utc::now(),
                )?;
                let mut shares: HashMap<DeviceId, _> = sent
                    .key_shares
                    .into_iter()
                    .map(|s| (s.recipient_device, s))
                    .collect();
                targets
                    .iter()
                    .map(|t| {
                        let wire = Wire::Group {
                            key_share: shares.remove(&t.device_id),
                            message: sent.message.clone(),
                        };
                        (t.device_id, wire)
                    })
                    .collect()
            }
            ConversationKind::Direct | ConversationKind::NoteToSelf => {
                let mut out = Vec::with_capacity(targets.len());
                for t in &targets {
                    let env = self
                        .device
                        .encrypt_olm(t, claimed.get(&t.device_id), &plaintext)?;
                    out.push((t.device_id, Wire::Olm { env }));
                }
                out
            }
        };
        // Ratchets moved: keep them before the server can deliver anything.
        self.save()?;
        let envelopes = wires
            .into_iter()
            .map(|(device_id, wire)| {
                let bytes =
                    serde_json::to_vec(&wire).map_err(|e| ClientError::Protocol(e.to_string()))?;
                Ok(WireEnvelope {
                    device_id,
                    payload: STANDARD_NO_PAD.encode(bytes),
                })
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        let req = SendRequest {
            conversation_id: conversation.id,
            profile_id: profile,
            client_msg_id: client_msg_id.to_owned(),
            envelopes,
        };
        let body = serde_json::to_value(&req).map_err(|e| ClientError::Protocol(e.to_string()))?;
        self.request("send", body).await
    }

    /// Every device of the conversation except this one, each checked
    /// against its account's signed device list.
    pub async fn verified_devices(
        &mut self,
        conversation: ConversationId,
        profile: ProfileId,
    ) -> Result<Vec<DeviceKeys>, ClientError> {
        let served: Vec<DeviceKeys> = self
            .request(
                "conversation_devices",
                json!({"conversation_id": conversation, "profile_id": profile}),
            )
            .await?;
        let mut by_account: BTreeMap<AccountId, Vec<DeviceKeys>> = BTreeMap::new();
        for d in served {
            by_account.entry(d.account_id).or_default().push(d);
        }
        let mut out = Vec::new();
        for (account, devices) in by_account {
            self.check_devices(account, &devices).await?;
            out.extend(
                devices
                    .into_iter()
                    .filter(|d| d.device_id != self.caller.device_id),
            );
        }
        Ok(out)
    }

    /// Check `served` devices of `account` against its trusted list,
    /// fetching and verifying a newer signed list when needed.
    pub(super) async fn check_devices(
        &mut self,
        account: AccountId,
        served: &[DeviceKeys],
    ) -> Result<(), ClientError> {
        let mut verifier = match self.trusted.get(&account) {
            Some(list) => DeviceListVerifier::trusting(list.clone()),
            None => DeviceListVerifier::new(account),
        };
        if verifier.check_served(served).is_ok() {
            return Ok(());
        }
        let fresh: DevicesResponse = self
            .request("devices", json!({ "account_id": account }))
            .await?;
        if let Some(list) = &fresh.device_list
            && verifier.trusted() != Some(&list.list)
        {
            verifier.accept(list)?;
        }
        verifier.check_served(served)?;
        if let Some(list) = verifier.trusted() {
            self.trusted.insert(account, list.clone());
        }
        Ok(())
    }

    /// Claim a one-time key for each target without an Olm session.
    async fn claim_keys(
        &mut self,
        targets: &[DeviceKeys],
    ) -> Result<HashMap<DeviceId, SignedOneTimeKey>, ClientError> {
        let mut claimed = HashMap::new();
        for t in targets {
            if self.device.has_session(t) {
                continue;
            }
            let key: ClaimedKey = self
                .request("claim_key", json!({ "device_id": t.device_id }))
                .await?;
            if key.device != *t {
                return Err(ClientError::Protocol(
                    "claimed key belongs to another device".into(),
                ));
            }
            key.key.verify(t)?;
            claimed.insert(t.device_id, key.key);
        }
        Ok(claimed)
    }
}
