//! A device's secret state: its vodozemac `Account` (Curve25519 + Ed25519
//! identity keys, one-time and fallback keys), its Olm sessions per peer and
//! its Megolm group sessions. `Debug` prints ids and public keys only.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use vodozemac::megolm::{GroupSession, InboundGroupSession};
use vodozemac::olm::{Account, Session};

use super::keys::{DeviceKeys, KeyUpload, SignedOneTimeKey};
use super::{CryptoError, b64};
use crate::ids::{AccountId, ConversationId, DeviceId};

/// The group session this device sends with in one conversation.
pub(super) struct OutboundGroup {
    pub(super) session: GroupSession,
    pub(super) created_at: DateTime<Utc>,
    pub(super) sent: u32,
    /// Devices the session key was shared with.
    pub(super) shared_with: BTreeSet<DeviceId>,
}

/// A group session received from another device.
pub(super) struct InboundGroup {
    pub(super) session: InboundGroupSession,
    pub(super) conversation_id: ConversationId,
    pub(super) sender_device: DeviceId,
    /// Message indices already decrypted (replay detection).
    pub(super) seen: BTreeSet<u32>,
}

/// One device's cryptographic state.
pub struct Device {
    pub(super) account_id: AccountId,
    pub(super) device_id: DeviceId,
    pub(super) olm: Account,
    /// Olm sessions by peer Curve25519 key (base64), newest last.
    pub(super) sessions: HashMap<String, Vec<Session>>,
    pub(super) outbound: HashMap<ConversationId, OutboundGroup>,
    /// Inbound group sessions by session id.
    pub(super) inbound: HashMap<String, InboundGroup>,
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = self.olm.identity_keys();
        f.debug_struct("Device")
            .field("account_id", &self.account_id)
            .field("device_id", &self.device_id)
            .field("curve25519", &keys.curve25519.to_base64())
            .field("ed25519", &keys.ed25519.to_base64())
            .field(
                "olm_sessions",
                &self.sessions.values().map(Vec::len).sum::<usize>(),
            )
            .field("outbound_groups", &self.outbound.len())
            .field("inbound_groups", &self.inbound.len())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// A new device with fresh identity keys.
    pub fn new(account_id: AccountId) -> Self {
        Self::with_id(account_id, DeviceId::new())
    }

    /// A new device with fresh identity keys and a given id.
    pub fn with_id(account_id: AccountId, device_id: DeviceId) -> Self {
        Self {
            account_id,
            device_id,
            olm: Account::new(),
            sessions: HashMap::new(),
            outbound: HashMap::new(),
            inbound: HashMap::new(),
        }
    }

    /// Move the device to another account (used once, when a freshly made
    /// device is paired into an existing account).
    pub fn set_account(&mut self, account_id: AccountId) {
        self.account_id = account_id;
    }

    /// Its account.
    pub fn account_id(&self) -> AccountId {
        self.account_id
    }

    /// Its id.
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    /// Its public identity keys.
    pub fn keys(&self) -> DeviceKeys {
        let k = self.olm.identity_keys();
        DeviceKeys {
            account_id: self.account_id,
            device_id: self.device_id,
            curve25519: k.curve25519.to_base64(),
            ed25519: k.ed25519.to_base64(),
        }
    }

    /// Sign `message` with the Ed25519 identity key (base64 signature).
    pub fn sign(&self, message: &[u8]) -> String {
        self.olm.sign(message).to_base64()
    }

    /// Generate `count` one-time keys (and a new fallback key when
    /// `new_fallback`), sign them and mark them published.
    pub fn key_upload(&mut self, count: usize, new_fallback: bool) -> KeyUpload {
        self.olm.generate_one_time_keys(count);
        if new_fallback {
            self.olm.generate_fallback_key();
        }
        let mut one_time_keys: Vec<_> = self
            .olm
            .one_time_keys()
            .into_iter()
            .map(|(id, key)| self.signed_key(id.to_base64(), key.to_base64(), false))
            .collect();
        one_time_keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        let fallback = self
            .olm
            .fallback_key()
            .into_iter()
            .next()
            .map(|(id, key)| self.signed_key(id.to_base64(), key.to_base64(), true));
        self.olm.mark_keys_as_published();
        KeyUpload {
            one_time_keys,
            fallback,
        }
    }

    fn signed_key(&self, key_id: String, key: String, fallback: bool) -> SignedOneTimeKey {
        let bytes = SignedOneTimeKey::signing_bytes(self.device_id, &key_id, &key, fallback);
        SignedOneTimeKey {
            signature: self.sign(&bytes),
            key_id,
            key,
            fallback,
        }
    }

    /// Forget every Olm session with `peer` (after it was unbound) and mark
    /// every group it had keys for to rotate on the next send.
    pub fn forget_device(&mut self, peer: &DeviceKeys) {
        self.sessions.remove(&peer.curve25519);
        for group in self.outbound.values_mut() {
            if group.shared_with.contains(&peer.device_id) {
                // Force rotation: a removed member must not read what follows.
                group.sent = u32::MAX;
            }
        }
        self.inbound
            .retain(|_, g| g.sender_device != peer.device_id);
    }

    /// Whether this device has an Olm session with `peer`.
    pub fn has_session(&self, peer: &DeviceKeys) -> bool {
        self.sessions
            .get(&peer.curve25519)
            .is_some_and(|s| !s.is_empty())
    }

    pub(super) fn curve_b64(&self) -> String {
        b64(self.olm.curve25519_key().as_bytes())
    }

    pub(super) fn check_keys(peer: &DeviceKeys) -> Result<(), CryptoError> {
        peer.validate()
    }
}
