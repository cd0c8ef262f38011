//! Account set-up and management: register, log in, pair and unbind
//! devices, profiles and conversations.

use std::collections::HashMap;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{Client, ClientError, Connection};
use crate::crypto::{Device, DeviceListVerifier, PairingOffer, QrPayload, SignedDeviceList};
use crate::ids::{AccountId, ConversationId, DeviceId, ProfileId};
use crate::model::{Profile, ProfileKind};
use crate::service::api::*;
use crate::store::{Conversation, ConversationKind, Member};

/// One-time keys uploaded at registration and on each top-up.
pub const ONE_TIME_KEY_BATCH: usize = 50;

fn parse<T: DeserializeOwned>(v: Value) -> Result<T, ClientError> {
    serde_json::from_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, ClientError> {
    serde_json::to_value(v).map_err(|e| ClientError::Protocol(e.to_string()))
}

/// A new device waiting for an existing one to approve it.
#[derive(Debug)]
pub struct PendingPairing {
    conn: Connection,
    server: String,
    device: Device,
    /// The code to type on the existing device.
    pub code: String,
    /// The QR payload to scan instead.
    pub qr: String,
}

impl PendingPairing {
    /// Wait until approved (polling once a second, at most `timeout`), then
    /// log in and upload keys.
    pub async fn wait(mut self, timeout: Duration) -> Result<Client, ClientError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let status: PairingStatus = parse(
                self.conn
                    .request("pairing_status", json!({"code": self.code}))
                    .await?,
            )?;
            if let Some(account) = status.approved_into {
                self.device.set_account(account);
                let mut client = Client::login(&self.server, self.device).await?;
                client.top_up_keys(true).await?;
                return Ok(client);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::Timeout);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

impl Client {
    /// Run one operation on the server.
    pub async fn request<T: DeserializeOwned>(
        &mut self,
        op: &str,
        body: Value,
    ) -> Result<T, ClientError> {
        parse(self.conn.request(op, body).await?)
    }

    /// Create an account with this new device and connect.
    pub async fn register(
        server: &str,
        display_name: &str,
        device_name: &str,
    ) -> Result<Client, ClientError> {
        let mut device = Device::new(AccountId::new());
        let keys = device.key_upload(ONE_TIME_KEY_BATCH, true);
        let req = RegisterRequest {
            display_name: display_name.to_owned(),
            device_name: device_name.to_owned(),
            device: device.keys(),
            device_list: SignedDeviceList::genesis(&device),
            keys,
        };
        let mut conn = Connection::connect(server).await?;
        conn.request("register", to_value(&req)?).await?;
        let mut client = Client::login(server, device).await?;
        client
            .trusted
            .insert(req.device.account_id, req.device_list.list.clone());
        Ok(client)
    }

    /// Connect and authenticate `device` with a signed challenge.
    pub async fn login(server: &str, device: Device) -> Result<Client, ClientError> {
        let mut conn = Connection::connect(server).await?;
        let token = conn.authenticate(&device).await?;
        Ok(Client {
            conn,
            token,
            server: server.to_owned(),
            caller: Caller {
                account_id: device.account_id(),
                device_id: device.device_id(),
            },
            device,
            seen: HashMap::new(),
            trusted: HashMap::new(),
            keys_cache: HashMap::new(),
            vault: None,
        })
    }

    /// A new device asks to join an existing account; show `code` or `qr`.
    pub async fn start_pairing(
        server: &str,
        device_name: &str,
    ) -> Result<PendingPairing, ClientError> {
        let device = Device::new(AccountId::new());
        let offer = PairingOffer::new(&device.keys(), device_name);
        let mut conn = Connection::connect(server).await?;
        let started: StartPairingResponse =
            parse(conn.request("start_pairing", to_value(&offer)?).await?)?;
        Ok(PendingPairing {
            conn,
            server: server.to_owned(),
            device,
            code: started.code.to_string(),
            qr: started.qr,
        })
    }

    /// Approve a new device by its pair code (or a scanned QR payload,
    /// whose key must match the offer) into this account.
    pub async fn approve_pairing(&mut self, code_or_qr: &str) -> Result<DeviceId, ClientError> {
        let (code, qr) = if code_or_qr.starts_with("samtale-pair:") {
            let qr = QrPayload::parse(code_or_qr)?;
            (qr.code.to_string(), Some(qr))
        } else {
            (code_or_qr.trim().to_owned(), None)
        };
        let offer: PairingOffer = self
            .request("pairing_offer", json!({ "code": code }))
            .await?;
        if qr.is_some_and(|q| !q.matches(&offer)) {
            return Err(ClientError::Protocol(
                "the QR code does not match the device asking to pair".into(),
            ));
        }
        let current = self.my_device_list().await?;
        let new_keys = crate::crypto::DeviceKeys {
            account_id: self.caller.account_id,
            device_id: offer.device_id,
            curve25519: offer.curve25519.clone(),
            ed25519: offer.ed25519.clone(),
        };
        let next = SignedDeviceList::sign(&self.device, current.with_device(&new_keys));
        self.request::<Value>(
            "approve_pairing",
            json!({"code": code, "device_list": next}),
        )
        .await?;
        self.trusted.insert(self.caller.account_id, next.list);
        self.save()?;
        Ok(offer.device_id)
    }

    /// Remove one of my other devices: its keys and sessions are revoked.
    pub async fn unbind(&mut self, device: DeviceId) -> Result<(), ClientError> {
        let current = self.my_device_list().await?;
        let next = SignedDeviceList::sign(&self.device, current.without_device(device));
        self.request::<Value>("unbind", json!({ "device_list": next }))
            .await?;
        self.trusted.insert(self.caller.account_id, next.list);
        self.save()
    }

    /// My account's device list, verified against what I trust.
    async fn my_device_list(&mut self) -> Result<crate::crypto::DeviceList, ClientError> {
        let me = self.caller.account_id;
        let served: DevicesResponse = self.request("devices", json!({ "account_id": me })).await?;
        let mut verifier = match self.trusted.get(&me) {
            Some(list) => DeviceListVerifier::trusting(list.clone()),
            None => DeviceListVerifier::new(me),
        };
        if let Some(list) = &served.device_list
            && verifier.trusted() != Some(&list.list)
        {
            verifier.accept(list)?;
        }
        verifier.check_served(&served.devices)?;
        let list = verifier
            .trusted()
            .cloned()
            .ok_or_else(|| ClientError::Protocol("account has no device list".into()))?;
        self.trusted.insert(me, list.clone());
        Ok(list)
    }

    /// Upload more one-time keys when the server says they run low.
    pub async fn top_up_keys(&mut self, force: bool) -> Result<(), ClientError> {
        let count: KeyCount = self.request("key_count", Value::Null).await?;
        if force || count.replenish {
            let upload = self.device.key_upload(ONE_TIME_KEY_BATCH, force);
            self.request::<KeyCount>("upload_keys", to_value(&upload)?)
                .await?;
            self.save()?;
        }
        Ok(())
    }

    /// My profiles (secret ones only when listed in `unlocked`).
    pub async fn profiles(&mut self, unlocked: &[ProfileId]) -> Result<Vec<Profile>, ClientError> {
        self.request("profiles", json!({ "unlocked": unlocked }))
            .await
    }

    /// The id of my first profile of `kind`.
    pub async fn profile_id(&mut self, kind: &ProfileKind) -> Result<ProfileId, ClientError> {
        self.profiles(&[])
            .await?
            .into_iter()
            .find(|p| &p.kind == kind)
            .map(|p| p.id)
            .ok_or_else(|| ClientError::Protocol("no such profile".into()))
    }

    /// What my profile's policy says about `incoming` now: notify, deliver
    /// silently or hold (do-not-disturb, mute rules; time-zone aware).
    pub async fn notification_decision(
        &mut self,
        profile: ProfileId,
        incoming: crate::policy::Incoming,
    ) -> Result<crate::policy::Decision, ClientError> {
        self.request(
            "notification_decision",
            json!({"profile_id": profile, "incoming": incoming}),
        )
        .await
    }

    /// Start a conversation from `profile` with `others`.
    pub async fn create_conversation(
        &mut self,
        profile: ProfileId,
        kind: ConversationKind,
        others: Vec<Member>,
    ) -> Result<Conversation, ClientError> {
        let req = CreateConversationRequest {
            profile_id: profile,
            kind,
            others,
        };
        self.request("create_conversation", to_value(&req)?).await
    }

    /// The conversations of one of my profiles.
    pub async fn conversations(
        &mut self,
        profile: ProfileId,
    ) -> Result<Vec<Conversation>, ClientError> {
        self.request("conversations", json!({ "profile_id": profile }))
            .await
    }

    /// Leave a group.
    pub async fn leave(
        &mut self,
        conversation: ConversationId,
        profile: ProfileId,
    ) -> Result<(), ClientError> {
        self.request::<Value>(
            "leave_conversation",
            json!({"conversation_id": conversation, "profile_id": profile}),
        )
        .await?;
        Ok(())
    }
}
