//! [`MessagingService`]: the server side of messaging over a [`Store`] and
//! a [`Clock`], which signaling exposes over HTTP and WebSocket.
//!
//! It checks who may do what (a device acts for its account; a profile sees
//! only its own conversations; a guest token opens one conversation until
//! it expires), verifies every signature it relays (device lists, one-time
//! keys), enforces size limits, and otherwise moves opaque ciphertext.
//! Request and response bodies are in [`api`].

pub mod api;
mod error;
pub mod guest;
mod ttl_cache;

pub use error::ServiceError;
pub use guest::{GuestClaims, GuestKey};

use std::collections::HashSet;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::Duration;

use crate::clock::Clock;
use crate::crypto::{
    DeviceKeys, DeviceList, KeyUpload, PairCode, PairingOffer, QrPayload, SignedDeviceList,
};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::model::{Account, Profile};
use crate::policy::{Decision, Incoming, decide};
use crate::store::{
    Conversation, ConversationKind, DeviceRecord, Member, NewMessage, OutEnvelope, Store,
};
use api::*;
use ttl_cache::TtlCache;

/// Limits and lifetimes. Defaults in [`ServiceConfig::default`].
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// How long undelivered envelopes wait (default 30 days).
    pub envelope_ttl: Duration,
    /// How long a pair code works (default 5 minutes).
    pub pairing_ttl: Duration,
    /// Longest guest invite (default 24 hours).
    pub max_guest_ttl: Duration,
    /// Largest ciphertext per device (default 64 KiB).
    pub max_payload_bytes: usize,
    /// Most envelopes in one send (default 512: 32 members × 16 devices).
    pub max_envelopes: usize,
    /// Most keys in one upload (default 100).
    pub max_keys_per_upload: usize,
    /// Ask for more one-time keys below this many (default 10).
    pub replenish_below: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            envelope_ttl: Duration::days(30),
            pairing_ttl: Duration::minutes(5),
            max_guest_ttl: Duration::hours(24),
            max_payload_bytes: 64 * 1024,
            max_envelopes: 512,
            max_keys_per_upload: 100,
            replenish_below: 10,
        }
    }
}

/// The bytes a device signs to log in with `challenge` (see
/// [`MessagingService::auth_bytes`]).
pub fn device_auth_bytes(challenge: &str) -> Vec<u8> {
    format!("samtale-auth-v1|{challenge}").into_bytes()
}

/// Longest client message id.
pub const MAX_CLIENT_MSG_ID: usize = 64;
const PAIR_CODE_ATTEMPTS: usize = 4;

/// The messaging service.
#[derive(Debug)]
pub struct MessagingService<S, C> {
    store: S,
    clock: C,
    guest_key: GuestKey,
    config: ServiceConfig,
    devices: TtlCache<DeviceId, DeviceRecord>,
    conversations: TtlCache<ConversationId, Conversation>,
}

impl<S: Store, C: Clock> MessagingService<S, C> {
    /// A service over `store`, reading time from `clock`.
    pub fn new(store: S, clock: C, guest_key: GuestKey, config: ServiceConfig) -> Self {
        Self {
            store,
            clock,
            guest_key,
            config,
            devices: TtlCache::default(),
            conversations: TtlCache::default(),
        }
    }

    /// A bound device, from the cache when it was read moments ago.
    async fn device(&self, id: DeviceId) -> Result<DeviceRecord, crate::store::StoreError> {
        if let Some(d) = self.devices.get(&id) {
            return Ok(d);
        }
        let d = self.store.device(id).await?;
        self.devices.put(id, d.clone());
        Ok(d)
    }

    /// The store (maintenance, tests).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The bytes a device signs to authenticate a connection: signaling
    /// sends a random `challenge`, the device returns
    /// `Device::sign(&auth_bytes(challenge))`.
    pub fn auth_bytes(challenge: &str) -> Vec<u8> {
        device_auth_bytes(challenge)
    }

    /// Check a device's signature over a challenge; the caller identity for
    /// every later request on that connection.
    pub async fn verify_device_auth(
        &self,
        device: DeviceId,
        challenge: &str,
        signature: &str,
    ) -> Result<Caller, ServiceError> {
        let rec = self
            .store
            .device(device)
            .await
            .map_err(|_| ServiceError::Forbidden("unknown device"))?;
        rec.keys
            .verify(&Self::auth_bytes(challenge), signature)
            .map_err(|_| ServiceError::Forbidden("bad device signature"))?;
        Ok(Caller {
            account_id: rec.keys.account_id,
            device_id: device,
        })
    }

    async fn check_caller(&self, caller: &Caller) -> Result<DeviceRecord, ServiceError> {
        match self.device(caller.device_id).await {
            Ok(d) if d.keys.account_id == caller.account_id => Ok(d),
            _ => Err(ServiceError::Forbidden("unknown device")),
        }
    }

    fn check_upload(&self, device: &DeviceKeys, upload: &KeyUpload) -> Result<(), ServiceError> {
        if upload.one_time_keys.len() > self.config.max_keys_per_upload {
            return Err(ServiceError::TooLarge("too many keys in one upload"));
        }
        for k in &upload.one_time_keys {
            if k.fallback {
                return Err(ServiceError::BadRequest("one-time key flagged as fallback"));
            }
            k.verify(device)?;
        }
        if let Some(f) = &upload.fallback {
            if !f.fallback {
                return Err(ServiceError::BadRequest("fallback key not flagged"));
            }
            f.verify(device)?;
        }
        Ok(())
    }

    fn key_count(&self, n: u64) -> KeyCount {
        KeyCount {
            one_time_keys: n,
            replenish: n < self.config.replenish_below,
        }
    }

    /// Create an account with its first device.
    pub async fn register(&self, req: RegisterRequest) -> Result<Caller, ServiceError> {
        let now = self.clock.now();
        req.device.validate()?;
        let list = &req.device_list;
        list.verify_successor(None)?;
        let only = [crate::crypto::DeviceListEntry::from_keys(&req.device)];
        if list.list.version != 1
            || list.list.account_id != req.device.account_id
            || list.list.devices != only
            || list.signer != req.device.device_id
        {
            return Err(ServiceError::BadRequest(
                "first device list must hold only this device",
            ));
        }
        self.check_upload(&req.device, &req.keys)?;
        crate::model::validate_display_name(&req.device_name)
            .map_err(|_| ServiceError::BadRequest("invalid device name"))?;
        let account = Account::with_id(req.device.account_id, &req.display_name, now)
            .map_err(|_| ServiceError::BadRequest("invalid display name"))?;
        self.store.create_account(&account).await?;
        self.store
            .add_device(&DeviceRecord {
                keys: req.device.clone(),
                name: req.device_name.clone(),
                created_at: now,
            })
            .await?;
        self.store.put_device_list(list, None).await?;
        self.store
            .upload_keys(req.device.device_id, &req.keys)
            .await?;
        tracing::info!(account = %account.id, device = %req.device.device_id, "account registered");
        Ok(Caller {
            account_id: account.id,
            device_id: req.device.device_id,
        })
    }

    /// Upload one-time keys and/or a new fallback key.
    pub async fn upload_keys(
        &self,
        caller: &Caller,
        upload: &KeyUpload,
    ) -> Result<KeyCount, ServiceError> {
        let me = self.check_caller(caller).await?;
        self.check_upload(&me.keys, upload)?;
        let n = self.store.upload_keys(caller.device_id, upload).await?;
        Ok(self.key_count(n))
    }

    /// How many one-time keys the caller has left on the server.
    pub async fn key_count_for(&self, caller: &Caller) -> Result<KeyCount, ServiceError> {
        self.check_caller(caller).await?;
        Ok(self.key_count(self.store.one_time_key_count(caller.device_id).await?))
    }

    /// Claim one key of `device`: a one-time key once, then the fallback
    /// key, then [`ServiceError::NotFound`].
    pub async fn claim_key(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<ClaimedKey, ServiceError> {
        self.check_caller(caller).await?;
        let owner = self.device(device).await?;
        let key = self.store.claim_key(device).await?;
        Ok(ClaimedKey {
            device: owner.keys,
            key,
        })
    }

    /// An account's signed device list and bound devices.
    pub async fn devices(
        &self,
        caller: &Caller,
        account: AccountId,
    ) -> Result<DevicesResponse, ServiceError> {
        self.check_caller(caller).await?;
        Ok(DevicesResponse {
            device_list: self.store.device_list(account).await?,
            devices: self
                .store
                .devices(account)
                .await?
                .into_iter()
                .map(|d| d.keys)
                .collect(),
        })
    }

    /// A new (not yet bound) device asks to be paired.
    pub async fn start_pairing(
        &self,
        offer: &PairingOffer,
    ) -> Result<StartPairingResponse, ServiceError> {
        offer.validate()?;
        crate::model::validate_display_name(&offer.device_name)
            .map_err(|_| ServiceError::BadRequest("invalid device name"))?;
        let expires_at = self.clock.now() + self.config.pairing_ttl;
        for _ in 0..PAIR_CODE_ATTEMPTS {
            let code = PairCode::generate(&mut rand::rng());
            match self
                .store
                .put_pairing(code.as_str(), offer, expires_at)
                .await
            {
                Ok(()) => {
                    let qr = QrPayload::new(code.clone(), offer).to_uri();
                    return Ok(StartPairingResponse {
                        code,
                        qr,
                        expires_at,
                    });
                }
                Err(crate::store::StoreError::Conflict) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict)
    }

    async fn live_pairing(&self, code: &str) -> Result<crate::store::PairingRecord, ServiceError> {
        let code: PairCode = code.parse()?;
        let rec = self.store.pairing(code.as_str()).await?;
        if rec.expires_at <= self.clock.now() {
            return Err(ServiceError::Forbidden("pair code expired"));
        }
        Ok(rec)
    }

    /// The new device polls its pairing.
    pub async fn pairing_status(&self, code: &str) -> Result<PairingStatus, ServiceError> {
        let rec = self.live_pairing(code).await?;
        Ok(PairingStatus {
            approved_into: rec.approved_into,
            offer: rec.offer,
        })
    }

    /// An existing device looks up the offer behind a code.
    pub async fn pairing_offer(
        &self,
        caller: &Caller,
        code: &str,
    ) -> Result<PairingOffer, ServiceError> {
        self.check_caller(caller).await?;
        Ok(self.live_pairing(code).await?.offer)
    }

    async fn current_list(&self, account: AccountId) -> Result<DeviceList, ServiceError> {
        self.store
            .device_list(account)
            .await?
            .map(|l| l.list)
            .ok_or(ServiceError::NotFound)
    }

    /// An existing device approves a pairing with the next signed device
    /// list; the new device is bound to the account.
    pub async fn approve_pairing(
        &self,
        caller: &Caller,
        code: &str,
        req: &ApprovePairingRequest,
    ) -> Result<(), ServiceError> {
        self.check_caller(caller).await?;
        let rec = self.live_pairing(code).await?;
        if rec.approved_into.is_some() {
            return Err(ServiceError::Conflict);
        }
        let current = self.current_list(caller.account_id).await?;
        let next = &req.device_list;
        next.verify_successor(Some(&current))?;
        let offered = next
            .list
            .get(rec.offer.device_id)
            .ok_or(ServiceError::BadRequest("device list lacks the new device"))?;
        if offered.curve25519 != rec.offer.curve25519 || offered.ed25519 != rec.offer.ed25519 {
            return Err(ServiceError::BadRequest(
                "device list keys differ from the offer",
            ));
        }
        let mut expected = current.clone();
        expected.devices.push(offered.clone());
        let same = |l: &DeviceList| {
            l.devices
                .iter()
                .map(|d| d.device_id)
                .collect::<HashSet<_>>()
        };
        if same(&expected) != same(&next.list) {
            return Err(ServiceError::BadRequest(
                "device list changes more than the new device",
            ));
        }
        let code: PairCode = code.parse()?;
        let device = DeviceRecord {
            keys: offered.keys(caller.account_id),
            name: rec.offer.device_name.clone(),
            created_at: self.clock.now(),
        };
        self.store
            .bind_paired_device(next, current.version, &device, code.as_str())
            .await?;
        tracing::info!(account = %caller.account_id, device = %rec.offer.device_id, "device paired");
        Ok(())
    }

    /// Unbind devices: `device_list` is the next version without them,
    /// signed by a device of the current list. Their keys and pending
    /// envelopes are deleted.
    pub async fn unbind(
        &self,
        caller: &Caller,
        device_list: &SignedDeviceList,
    ) -> Result<Vec<DeviceId>, ServiceError> {
        self.check_caller(caller).await?;
        let current = self.current_list(caller.account_id).await?;
        device_list.verify_successor(Some(&current))?;
        if device_list
            .list
            .devices
            .iter()
            .any(|d| current.get(d.device_id) != Some(d))
        {
            return Err(ServiceError::BadRequest("unbinding cannot add devices"));
        }
        let removed: Vec<DeviceId> = current
            .devices
            .iter()
            .filter(|d| device_list.list.get(d.device_id).is_none())
            .map(|d| d.device_id)
            .collect();
        self.store
            .unbind_devices(device_list, current.version, &removed)
            .await?;
        self.devices.evict(&removed);
        Ok(removed)
    }

    /// The caller's profiles; a hidden (secret) profile only when the client
    /// says it is unlocked on this device.
    pub async fn list_profiles(
        &self,
        caller: &Caller,
        unlocked: &[ProfileId],
    ) -> Result<Vec<Profile>, ServiceError> {
        self.check_caller(caller).await?;
        let account = self.store.account(caller.account_id).await?;
        Ok(account
            .profiles
            .into_iter()
            .filter(|p| !p.is_hidden() || unlocked.contains(&p.id))
            .collect())
    }

    /// Add a profile.
    pub async fn add_profile(
        &self,
        caller: &Caller,
        req: &AddProfileRequest,
    ) -> Result<Profile, ServiceError> {
        self.check_caller(caller).await?;
        let mut account = self.store.account(caller.account_id).await?;
        let profile = account
            .add_profile(req.kind.clone(), &req.display_name)
            .map_err(|_| ServiceError::BadRequest("invalid or duplicate profile"))?
            .clone();
        self.store.put_profile(&profile).await?;
        Ok(profile)
    }

    /// Change a profile's name, avatar, theme or policy.
    pub async fn update_profile(
        &self,
        caller: &Caller,
        profile: &Profile,
    ) -> Result<(), ServiceError> {
        self.check_caller(caller).await?;
        let account = self.store.account(caller.account_id).await?;
        let existing = account
            .profile(profile.id)
            .ok_or(ServiceError::Forbidden("not your profile"))?;
        if profile.account_id != caller.account_id || profile.kind != existing.kind {
            return Err(ServiceError::Forbidden("not your profile"));
        }
        crate::model::validate_display_name(&profile.display_name)
            .map_err(|_| ServiceError::BadRequest("invalid display name"))?;
        self.store.put_profile(profile).await?;
        Ok(())
    }

    async fn own_profile(&self, caller: &Caller, profile: ProfileId) -> Result<(), ServiceError> {
        let account = self.store.account(caller.account_id).await?;
        account
            .profile(profile)
            .map(|_| ())
            .ok_or(ServiceError::Forbidden("not your profile"))
    }

    /// Start a conversation from one of my profiles.
    pub async fn create_conversation(
        &self,
        caller: &Caller,
        req: &CreateConversationRequest,
    ) -> Result<Conversation, ServiceError> {
        self.check_caller(caller).await?;
        self.own_profile(caller, req.profile_id).await?;
        let ok = match req.kind {
            ConversationKind::NoteToSelf => req.others.is_empty(),
            ConversationKind::Direct => req.others.len() == 1,
            ConversationKind::Group => req.others.len() < crate::crypto::MAX_GROUP_MEMBERS,
        };
        if !ok {
            return Err(ServiceError::BadRequest(
                "wrong number of members for this kind",
            ));
        }
        let me = Member {
            account_id: caller.account_id,
            profile_id: req.profile_id,
        };
        let mut accounts = HashSet::from([caller.account_id]);
        for m in &req.others {
            if !accounts.insert(m.account_id) {
                return Err(ServiceError::BadRequest("one profile per account"));
            }
            let acc = self.store.account(m.account_id).await?;
            if acc.profile(m.profile_id).is_none() {
                return Err(ServiceError::NotFound);
            }
        }
        let mut members: Vec<Member> = req.others.iter().copied().chain([me]).collect();
        members.sort();
        let conversation = Conversation {
            id: ConversationId::new(),
            kind: req.kind,
            created_at: self.clock.now(),
            members,
        };
        self.store.create_conversation(&conversation).await?;
        Ok(conversation)
    }

    /// The conversations of one of my profiles.
    pub async fn list_conversations(
        &self,
        caller: &Caller,
        profile: ProfileId,
    ) -> Result<Vec<Conversation>, ServiceError> {
        self.check_caller(caller).await?;
        self.own_profile(caller, profile).await?;
        Ok(self.store.conversations_for_profile(profile).await?)
    }

    async fn membership(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        profile: ProfileId,
    ) -> Result<Conversation, ServiceError> {
        let conv = match self.conversations.get(&conversation) {
            Some(c) => c,
            None => {
                let c = self.store.conversation(conversation).await?;
                self.conversations.put(conversation, c.clone());
                c
            }
        };
        let me = Member {
            account_id: caller.account_id,
            profile_id: profile,
        };
        if !conv.members.contains(&me) {
            return Err(ServiceError::Forbidden("not a member with this profile"));
        }
        Ok(conv)
    }

    /// Leave a group conversation with one of my profiles. The remaining
    /// members' clients see the smaller member list and rotate the group
    /// session on their next send.
    pub async fn leave_conversation(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        profile: ProfileId,
    ) -> Result<(), ServiceError> {
        self.check_caller(caller).await?;
        let conv = self.membership(caller, conversation, profile).await?;
        if conv.kind != ConversationKind::Group {
            return Err(ServiceError::BadRequest("only groups can be left"));
        }
        self.store.remove_member(conversation, profile).await?;
        self.conversations.evict([&conversation]);
        Ok(())
    }

    /// One device's public keys (to check who sent an envelope).
    pub async fn device_keys(
        &self,
        caller: &Caller,
        device: DeviceId,
    ) -> Result<DeviceKeys, ServiceError> {
        self.check_caller(caller).await?;
        Ok(self.device(device).await?.keys)
    }

    /// Every device of every member, for encrypting to the conversation.
    pub async fn conversation_devices(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        profile: ProfileId,
    ) -> Result<Vec<DeviceKeys>, ServiceError> {
        self.check_caller(caller).await?;
        let conv = self.membership(caller, conversation, profile).await?;
        let mut out = Vec::new();
        for m in &conv.members {
            out.extend(
                self.store
                    .devices(m.account_id)
                    .await?
                    .into_iter()
                    .map(|d| d.keys),
            );
        }
        Ok(out)
    }

    /// Accept a message for a conversation; returns once it is durable. A
    /// resend with the same `client_msg_id` returns the first answer.
    pub async fn send(
        &self,
        caller: &Caller,
        req: &SendRequest,
    ) -> Result<SendResponse, ServiceError> {
        self.check_caller(caller).await?;
        if req.client_msg_id.is_empty()
            || req.client_msg_id.len() > MAX_CLIENT_MSG_ID
            || req.client_msg_id.chars().any(|c| c.is_control())
        {
            return Err(ServiceError::BadRequest("invalid client message id"));
        }
        if req.envelopes.is_empty() {
            return Err(ServiceError::BadRequest("no envelopes"));
        }
        if req.envelopes.len() > self.config.max_envelopes {
            return Err(ServiceError::TooLarge("too many envelopes"));
        }
        let conv = self
            .membership(caller, req.conversation_id, req.profile_id)
            .await?;
        let mut envelopes = Vec::with_capacity(req.envelopes.len());
        let mut seen = HashSet::new();
        for e in &req.envelopes {
            // Base64 grows 4/3: refuse before decoding anything huge.
            if e.payload.len() > self.config.max_payload_bytes.div_ceil(3) * 4 {
                return Err(ServiceError::TooLarge("envelope payload"));
            }
            let payload = STANDARD_NO_PAD
                .decode(e.payload.trim_end_matches('='))
                .map_err(|_| ServiceError::BadRequest("malformed envelope"))?;
            if payload.is_empty() {
                return Err(ServiceError::BadRequest("malformed envelope"));
            }
            if payload.len() > self.config.max_payload_bytes {
                return Err(ServiceError::TooLarge("envelope payload"));
            }
            if !seen.insert(e.device_id) {
                return Err(ServiceError::BadRequest("two envelopes for one device"));
            }
            let target = self.device(e.device_id).await?;
            let member = conv
                .members
                .iter()
                .find(|m| m.account_id == target.keys.account_id)
                .ok_or(ServiceError::Forbidden("target device not in conversation"))?;
            envelopes.push(OutEnvelope {
                device_id: e.device_id,
                profile_id: member.profile_id,
                payload,
            });
        }
        let r = self
            .store
            .enqueue(&NewMessage {
                conversation_id: req.conversation_id,
                sender_device: caller.device_id,
                client_msg_id: req.client_msg_id.clone(),
                envelopes,
                now: self.clock.now(),
                ttl: self.config.envelope_ttl,
            })
            .await?;
        Ok(SendResponse {
            seq: r.seq,
            duplicate: r.duplicate,
        })
    }

    /// Envelopes waiting for the calling device, for one of its profiles or
    /// (with `None`) all of them.
    pub async fn fetch(
        &self,
        caller: &Caller,
        profile: Option<ProfileId>,
        limit: u32,
    ) -> Result<Vec<Delivery>, ServiceError> {
        self.check_caller(caller).await?;
        if let Some(p) = profile {
            self.own_profile(caller, p).await?;
        }
        let rows = self
            .store
            .pending(caller.device_id, profile, limit.min(1000))
            .await?;
        Ok(rows.iter().map(Delivery::from).collect())
    }

    /// The calling device acknowledges an envelope (after storing it).
    pub async fn ack(&self, caller: &Caller, req: &AckRequest) -> Result<bool, ServiceError> {
        self.check_caller(caller).await?;
        Ok(self
            .store
            .ack(caller.device_id, req.conversation_id, req.seq)
            .await?)
    }

    /// Invite a guest into a conversation for `ttl` (at most
    /// [`ServiceConfig::max_guest_ttl`]).
    pub async fn invite_guest(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        profile: ProfileId,
        ttl: Duration,
    ) -> Result<GuestInvite, ServiceError> {
        self.check_caller(caller).await?;
        self.membership(caller, conversation, profile).await?;
        if ttl <= Duration::zero() || ttl > self.config.max_guest_ttl {
            return Err(ServiceError::BadRequest(
                "guest invite lifetime out of range",
            ));
        }
        let expires_at = self.clock.now() + ttl;
        let token = self.guest_key.issue(&GuestClaims {
            conversation_id: conversation,
            guest_id: ulid::Ulid::new().to_string(),
            expires_at_ms: expires_at.timestamp_millis(),
        });
        Ok(GuestInvite { token, expires_at })
    }

    /// Check a guest token for `conversation` now: [`ServiceError::Forbidden`]
    /// when expired, altered or for another conversation.
    pub fn guest_access(
        &self,
        token: &str,
        conversation: ConversationId,
    ) -> Result<GuestClaims, ServiceError> {
        let claims = self.guest_key.verify(token, self.clock.now())?;
        if claims.conversation_id != conversation {
            return Err(ServiceError::Forbidden(
                "guest token is for another conversation",
            ));
        }
        Ok(claims)
    }

    /// What a recipient profile's policy says about `incoming` now.
    pub async fn notification_decision(
        &self,
        account: AccountId,
        profile: ProfileId,
        incoming: Incoming,
    ) -> Result<Decision, ServiceError> {
        let acc = self.store.account(account).await?;
        let p = acc.profile(profile).ok_or(ServiceError::NotFound)?;
        Ok(decide(&p.policy, incoming, self.clock.now()))
    }

    /// Drop expired envelopes, idempotency records and pairings. Signaling
    /// calls this periodically.
    pub async fn purge_expired(&self) -> Result<u64, ServiceError> {
        Ok(self.store.purge_expired(self.clock.now()).await?)
    }
}
