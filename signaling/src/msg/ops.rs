//! The messaging operations, one enum for both transports: an HTTP request
//! `POST /api/msg/{op}` with the body as JSON, or a WebSocket frame
//! `{"id": n, "op": "...", "body": {...}}`. [`dispatch`] runs one operation
//! for a caller and returns its JSON answer.

use axum::http::StatusCode;
use samtale_messaging::crypto::{KeyUpload, PairingOffer, SignedDeviceList};
use samtale_messaging::model::Profile;
use samtale_messaging::policy::Incoming;
use samtale_messaging::service::api::*;
use samtale_messaging::service::{MessagingService, ServiceError};
use samtale_messaging::{AccountId, ConversationId, DeviceId, ProfileId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::MsgState;
use super::auth::unauthorized;
use crate::app::ApiError;

/// Most deliveries one `fetch` returns.
pub const MAX_FETCH: u32 = 500;

/// One messaging operation.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", content = "body", rename_all = "snake_case")]
pub enum Op {
    /// Create an account with its first device.
    Register(RegisterRequest),
    /// A challenge to sign.
    Challenge,
    /// Trade a signed challenge for an access token.
    Login(LoginRequest),
    /// A new device offers itself for pairing.
    StartPairing(PairingOffer),
    /// The new device polls its pairing.
    PairingStatus(CodeRequest),
    /// An existing device reads the offer behind a code.
    PairingOffer(CodeRequest),
    /// An existing device approves it with the next device list.
    ApprovePairing(ApproveRequest),
    /// Remove a device with the next device list.
    Unbind(DeviceListRequest),
    /// Upload one-time / fallback keys.
    UploadKeys(KeyUpload),
    /// How many one-time keys are left.
    KeyCount,
    /// Claim one key of a device.
    ClaimKey(DeviceRequest),
    /// An account's devices and signed device list.
    Devices(AccountRequest),
    /// One device's public keys.
    DeviceKeys(DeviceRequest),
    /// My profiles (secret ones only when unlocked).
    Profiles(ProfilesRequest),
    /// Add a profile.
    AddProfile(AddProfileRequest),
    /// Change a profile (name, theme, policy).
    UpdateProfile(Profile),
    /// Start a conversation.
    CreateConversation(CreateConversationRequest),
    /// A profile's conversations.
    Conversations(ProfileRequest),
    /// Every device in a conversation.
    ConversationDevices(ConversationRequest),
    /// Leave a group.
    LeaveConversation(ConversationRequest),
    /// Send ciphertext to a conversation's devices.
    Send(SendRequest),
    /// Envelopes waiting for me.
    Fetch(FetchRequest),
    /// I stored an envelope; the server may drop its copy.
    Ack(AckRequest),
    /// Invite a guest into a conversation.
    InviteGuest(InviteRequest),
    /// Check a guest token (no account needed).
    GuestAccess(GuestAccessRequest),
    /// What my profile's policy says about an incoming event now.
    NotificationDecision(DecisionRequest),
}

/// `login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The device.
    pub device_id: DeviceId,
    /// The challenge from `challenge`.
    pub challenge: String,
    /// Ed25519 signature of `auth_bytes(challenge)`, base64.
    pub signature: String,
}

/// A pair code.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeRequest {
    /// The code.
    pub code: String,
}

/// `approve_pairing`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The code.
    pub code: String,
    /// The next device list, with the new device.
    pub device_list: SignedDeviceList,
}

/// `unbind`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceListRequest {
    /// The next device list, without the removed device(s).
    pub device_list: SignedDeviceList,
}

/// A device.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceRequest {
    /// The device.
    pub device_id: DeviceId,
}

/// An account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRequest {
    /// The account.
    pub account_id: AccountId,
}

/// `profiles`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilesRequest {
    /// Secret profiles unlocked on this device.
    #[serde(default)]
    pub unlocked: Vec<ProfileId>,
}

/// A profile.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileRequest {
    /// The profile.
    pub profile_id: ProfileId,
}

/// A conversation seen from one of my profiles.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationRequest {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// My profile in it.
    pub profile_id: ProfileId,
}

/// `fetch`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// Only this profile's envelopes.
    #[serde(default)]
    pub profile_id: Option<ProfileId>,
    /// At most this many (default and cap [`MAX_FETCH`]).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `invite_guest`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// My profile in it.
    pub profile_id: ProfileId,
    /// Lifetime of the invite.
    pub ttl_seconds: i64,
}

/// `guest_access`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestAccessRequest {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The invite token.
    pub token: String,
}

/// `notification_decision`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// My profile.
    pub profile_id: ProfileId,
    /// What arrived.
    pub incoming: Incoming,
}

/// The API error for a service error.
pub fn service_error(e: ServiceError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
    let code = match status.as_u16() {
        400 => "bad-request",
        403 => "forbidden",
        404 => "not-found",
        409 => "conflict",
        413 => "too-large",
        _ => "internal",
    };
    ApiError(status, code, e.to_string())
}

fn to_json<T: serde::Serialize>(v: T) -> Result<Value, ApiError> {
    serde_json::to_value(v)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))
}

fn need(caller: Option<Caller>) -> Result<Caller, ApiError> {
    caller.ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a device access token is required".into(),
        )
    })
}

/// Run `op` for `caller` (None: not logged in).
pub async fn dispatch(state: &MsgState, caller: Option<Caller>, op: Op) -> Result<Value, ApiError> {
    let svc = &state.service;
    let e = service_error;
    match op {
        Op::Register(req) => to_json(svc.register(req).await.map_err(e)?),
        Op::Challenge => Ok(json!({ "challenge": state.auth.challenge() })),
        Op::Login(req) => {
            state
                .auth
                .check_challenge(&req.challenge)
                .map_err(unauthorized)?;
            let who = svc
                .verify_device_auth(req.device_id, &req.challenge, &req.signature)
                .await
                .map_err(e)?;
            let (token, expires_at) = state.auth.issue(&who);
            Ok(json!({
                "token": token,
                "expires_at": expires_at,
                "account_id": who.account_id,
                "device_id": who.device_id,
            }))
        }
        Op::StartPairing(offer) => to_json(svc.start_pairing(&offer).await.map_err(e)?),
        Op::PairingStatus(r) => to_json(svc.pairing_status(&r.code).await.map_err(e)?),
        Op::PairingOffer(r) => to_json(
            svc.pairing_offer(&need(caller)?, &r.code)
                .await
                .map_err(e)?,
        ),
        Op::ApprovePairing(r) => {
            let req = ApprovePairingRequest {
                device_list: r.device_list,
            };
            svc.approve_pairing(&need(caller)?, &r.code, &req)
                .await
                .map_err(e)?;
            Ok(json!({}))
        }
        Op::Unbind(r) => {
            let removed = svc
                .unbind(&need(caller)?, &r.device_list)
                .await
                .map_err(e)?;
            state.notifier.revoke(&removed);
            Ok(json!({ "removed": removed }))
        }
        Op::UploadKeys(up) => to_json(svc.upload_keys(&need(caller)?, &up).await.map_err(e)?),
        Op::KeyCount => to_json(svc.key_count_for(&need(caller)?).await.map_err(e)?),
        Op::ClaimKey(r) => to_json(
            svc.claim_key(&need(caller)?, r.device_id)
                .await
                .map_err(e)?,
        ),
        Op::Devices(r) => to_json(svc.devices(&need(caller)?, r.account_id).await.map_err(e)?),
        Op::DeviceKeys(r) => to_json(
            svc.device_keys(&need(caller)?, r.device_id)
                .await
                .map_err(e)?,
        ),
        Op::Profiles(r) => to_json(
            svc.list_profiles(&need(caller)?, &r.unlocked)
                .await
                .map_err(e)?,
        ),
        Op::AddProfile(r) => to_json(svc.add_profile(&need(caller)?, &r).await.map_err(e)?),
        Op::UpdateProfile(p) => {
            svc.update_profile(&need(caller)?, &p).await.map_err(e)?;
            Ok(json!({}))
        }
        Op::CreateConversation(r) => to_json(
            svc.create_conversation(&need(caller)?, &r)
                .await
                .map_err(e)?,
        ),
        Op::Conversations(r) => to_json(
            svc.list_conversations(&need(caller)?, r.profile_id)
                .await
                .map_err(e)?,
        ),
        Op::ConversationDevices(r) => to_json(
            svc.conversation_devices(&need(caller)?, r.conversation_id, r.profile_id)
                .await
                .map_err(e)?,
        ),
        Op::LeaveConversation(r) => {
            svc.leave_conversation(&need(caller)?, r.conversation_id, r.profile_id)
                .await
                .map_err(e)?;
            Ok(json!({}))
        }
        // The store's commit listener pushes the envelopes to live
        // connections (see `MsgState::open`).
        Op::Send(req) => to_json(svc.send(&need(caller)?, &req).await.map_err(e)?),
        Op::Fetch(r) => {
            let limit = r.limit.unwrap_or(MAX_FETCH).clamp(1, MAX_FETCH);
            to_json(
                svc.fetch(&need(caller)?, r.profile_id, limit)
                    .await
                    .map_err(e)?,
            )
        }
        Op::Ack(r) => {
            let deleted = svc.ack(&need(caller)?, &r).await.map_err(e)?;
            Ok(json!({ "acknowledged": deleted }))
        }
        Op::InviteGuest(r) => {
            if r.ttl_seconds <= 0 {
                return Err(service_error(ServiceError::BadRequest(
                    "guest invite lifetime out of range",
                )));
            }
            to_json(
                svc.invite_guest(
                    &need(caller)?,
                    r.conversation_id,
                    r.profile_id,
                    chrono::Duration::seconds(r.ttl_seconds.min(10 * 365 * 86_400)),
                )
                .await
                .map_err(e)?,
            )
        }
        Op::GuestAccess(r) => {
            let claims = svc.guest_access(&r.token, r.conversation_id).map_err(e)?;
            Ok(json!({
                "conversation_id": claims.conversation_id,
                "guest_id": claims.guest_id,
                "expires_at_ms": claims.expires_at_ms,
            }))
        }
        Op::NotificationDecision(r) => {
            let me = need(caller)?;
            // Only for my own profiles.
            svc.list_profiles(&me, &[r.profile_id])
                .await
                .map_err(e)?
                .iter()
                .find(|p| p.id == r.profile_id)
                .ok_or_else(|| service_error(ServiceError::Forbidden("not your profile")))?;
            to_json(
                svc.notification_decision(me.account_id, r.profile_id, r.incoming)
                    .await
                    .map_err(e)?,
            )
        }
    }
}

/// Keeps the service type nameable in signatures.
pub type Service =
    MessagingService<samtale_messaging::store::SqlStore, samtale_messaging::SystemClock>;
