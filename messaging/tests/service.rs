//! The service API end to end on SQLite with an injected clock: register,
//! pair a second device, E2EE delivery to every device, idempotent resend,
//! profile isolation, bad input, guest tokens, unbinding.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use chrono::Duration;
use common::suite::t0;
use samtale_messaging::crypto::{
    Device, DeviceKeys, DeviceListVerifier, OlmEnvelope, PairingOffer, QrPayload, Received,
    SignedDeviceList,
};
use samtale_messaging::model::ProfileKind;
use samtale_messaging::policy::{Decision, Incoming, Policy};
use samtale_messaging::service::api::*;
use samtale_messaging::service::{GuestKey, MessagingService, ServiceConfig, ServiceError};
use samtale_messaging::store::{ConversationKind, Member, SqlStore, Store};
use samtale_messaging::{AccountId, ConversationId, ManualClock, ProfileId};

type Svc = MessagingService<SqlStore, Arc<ManualClock>>;

async fn service(dir: &std::path::Path) -> (Svc, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(t0()));
    let store = SqlStore::open_sqlite_dir(dir).await.unwrap();
    let svc = MessagingService::new(
        store,
        clock.clone(),
        GuestKey::random(),
        ServiceConfig::default(),
    );
    (svc, clock)
}

async fn register(svc: &Svc, name: &str) -> (Caller, Device) {
    let mut d = Device::new(AccountId::new());
    let keys = d.key_upload(5, true);
    let caller = svc
        .register(RegisterRequest {
            display_name: name.into(),
            device_name: format!("{name}'s phone"),
            device: d.keys(),
            device_list: SignedDeviceList::genesis(&d),
            keys,
        })
        .await
        .unwrap();
    (caller, d)
}

async fn profile(svc: &Svc, c: &Caller, kind: ProfileKind) -> ProfileId {
    svc.list_profiles(c, &[])
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.kind == kind)
        .unwrap()
        .id
}

/// Encrypt `text` from `sender` to every other device in `targets` (Olm,
/// claiming keys where needed) and build the send request.
#[allow(clippy::too_many_arguments)]
async fn encrypt_to_all(
    svc: &Svc,
    caller: &Caller,
    sender: &mut Device,
    targets: &[DeviceKeys],
    conv: ConversationId,
    profile: ProfileId,
    id: &str,
    text: &[u8],
) -> SendRequest {
    let mut envelopes = Vec::new();
    let me = sender.device_id();
    for t in targets.iter().filter(|t| t.device_id != me) {
        let otk = if sender.needs_one_time_key(t) {
            let claimed = svc.claim_key(caller, t.device_id).await.unwrap();
            Some(claimed.key)
        } else {
            None
        };
        let env = sender.encrypt_olm(t, otk.as_ref(), text).unwrap();
        envelopes.push(WireEnvelope {
            device_id: t.device_id,
            payload: STANDARD_NO_PAD.encode(serde_json::to_vec(&env).unwrap()),
        });
    }
    SendRequest {
        conversation_id: conv,
        profile_id: profile,
        client_msg_id: id.into(),
        envelopes,
    }
}

async fn receive_all(
    svc: &Svc,
    caller: &Caller,
    device: &mut Device,
    senders: &[DeviceKeys],
) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for d in svc.fetch(caller, None, 100).await.unwrap() {
        let env: OlmEnvelope =
            serde_json::from_slice(&STANDARD_NO_PAD.decode(&d.payload).unwrap()).unwrap();
        let sender = senders
            .iter()
            .find(|s| s.device_id == d.sender_device)
            .unwrap();
        match device.decrypt_olm(sender, &env).unwrap() {
            Received::Message(m) => out.push(m),
            other => panic!("{other:?}"),
        }
        assert!(
            svc.ack(
                caller,
                &AckRequest {
                    conversation_id: d.conversation_id,
                    seq: d.seq
                }
            )
            .await
            .unwrap()
        );
    }
    out
}

#[tokio::test]
async fn two_accounts_three_devices_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, clock) = service(dir.path()).await;
    let (alice, mut a_phone) = register(&svc, "Alice").await;
    let (bob, mut b_phone) = register(&svc, "Bob").await;

    // Device auth: a signed challenge identifies the device.
    let sig = a_phone.sign(&Svc::auth_bytes("nonce-1"));
    assert_eq!(
        svc.verify_device_auth(a_phone.device_id(), "nonce-1", &sig)
            .await
            .unwrap(),
        alice
    );
    assert!(matches!(
        svc.verify_device_auth(a_phone.device_id(), "nonce-2", &sig)
            .await,
        Err(ServiceError::Forbidden(_))
    ));

    // Pair Alice's laptop with a code; her phone approves.
    let mut a_laptop = Device::new(AccountId::new());
    let offer = PairingOffer::new(&a_laptop.keys(), "laptop");
    let started = svc.start_pairing(&offer).await.unwrap();
    let scanned = QrPayload::parse(&started.qr).unwrap();
    let seen = svc
        .pairing_offer(&alice, &started.code.to_string())
        .await
        .unwrap();
    assert!(scanned.matches(&seen));
    let current = svc
        .devices(&alice, alice.account_id)
        .await
        .unwrap()
        .device_list
        .unwrap();
    let mut laptop_keys = a_laptop.keys();
    laptop_keys.account_id = alice.account_id;
    let next = SignedDeviceList::sign(&a_phone, current.list.with_device(&laptop_keys));
    // A list signed by the laptop itself (not yet trusted) is refused.
    let forged = SignedDeviceList::sign(&a_laptop, current.list.with_device(&laptop_keys));
    let err = svc
        .approve_pairing(
            &alice,
            started.code.as_str(),
            &ApprovePairingRequest {
                device_list: forged,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 400, "{err}");
    svc.approve_pairing(
        &alice,
        started.code.as_str(),
        &ApprovePairingRequest {
            device_list: next.clone(),
        },
    )
    .await
    .unwrap();
    let status = svc.pairing_status(started.code.as_str()).await.unwrap();
    assert_eq!(status.approved_into, Some(alice.account_id));
    a_laptop.set_account(alice.account_id);
    let laptop = Caller {
        account_id: alice.account_id,
        device_id: a_laptop.device_id(),
    };
    let count = svc
        .upload_keys(&laptop, &a_laptop.key_upload(5, true))
        .await
        .unwrap();
    assert_eq!(
        count,
        KeyCount {
            one_time_keys: 5,
            replenish: true
        }
    );

    // Bob checks Alice's device list chain and what the server serves.
    let mut bob_view = DeviceListVerifier::new(alice.account_id);
    bob_view.accept(&current).unwrap();
    let served = svc.devices(&bob, alice.account_id).await.unwrap();
    bob_view
        .accept(served.device_list.as_ref().unwrap())
        .unwrap();
    bob_view.check_served(&served.devices).unwrap();

    // Alice (work) talks to Bob (work).
    let (aw, bw) = (
        profile(&svc, &alice, ProfileKind::Work).await,
        profile(&svc, &bob, ProfileKind::Work).await,
    );
    let bp = profile(&svc, &bob, ProfileKind::Private).await;
    let conv = svc
        .create_conversation(
            &alice,
            &CreateConversationRequest {
                profile_id: aw,
                kind: ConversationKind::Direct,
                others: vec![Member {
                    account_id: bob.account_id,
                    profile_id: bw,
                }],
            },
        )
        .await
        .unwrap();
    let devices = svc.conversation_devices(&alice, conv.id, aw).await.unwrap();
    assert_eq!(devices.len(), 3);
    let req = encrypt_to_all(
        &svc,
        &alice,
        &mut a_phone,
        &devices,
        conv.id,
        aw,
        "c1",
        b"hello from alice",
    )
    .await;
    let sent = svc.send(&alice, &req).await.unwrap();
    assert_eq!(
        sent,
        SendResponse {
            seq: 1,
            duplicate: false
        }
    );
    // Resend after a dropped connection.
    assert_eq!(
        svc.send(&alice, &req).await.unwrap(),
        SendResponse {
            seq: 1,
            duplicate: true
        }
    );

    // Profile isolation through the API.
    assert!(svc.fetch(&bob, Some(bp), 100).await.unwrap().is_empty());
    assert!(svc.list_conversations(&bob, bp).await.unwrap().is_empty());
    assert_eq!(svc.list_conversations(&bob, bw).await.unwrap().len(), 1);
    assert!(matches!(
        svc.list_conversations(&bob, aw).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        svc.fetch(&bob, Some(aw), 100).await,
        Err(ServiceError::Forbidden(_))
    ));
    let mut wrong_profile = req.clone();
    wrong_profile.profile_id = bp;
    assert!(matches!(
        svc.send(&bob, &wrong_profile).await,
        Err(ServiceError::Forbidden(_))
    ));

    // Every other device decrypts; acks empty the server.
    assert_eq!(
        receive_all(&svc, &bob, &mut b_phone, &devices).await,
        vec![b"hello from alice".to_vec()]
    );
    assert_eq!(
        receive_all(&svc, &laptop, &mut a_laptop, &devices).await,
        vec![b"hello from alice".to_vec()]
    );
    // Bob replies; Alice's phone and laptop both get it.
    let reply = encrypt_to_all(
        &svc,
        &bob,
        &mut b_phone,
        &devices,
        conv.id,
        bw,
        "b1",
        b"hi alice",
    )
    .await;
    assert_eq!(svc.send(&bob, &reply).await.unwrap().seq, 2);
    assert_eq!(
        receive_all(&svc, &alice, &mut a_phone, &devices).await,
        vec![b"hi alice".to_vec()]
    );
    assert_eq!(
        receive_all(&svc, &laptop, &mut a_laptop, &devices).await,
        vec![b"hi alice".to_vec()]
    );
    assert_eq!(svc.store().envelope_count().await.unwrap(), 0);

    // Bad input: clear errors, nothing else breaks.
    let mut big = req.clone();
    big.client_msg_id = "big".into();
    big.envelopes[0].payload = STANDARD_NO_PAD.encode(vec![7u8; 64 * 1024 + 1]);
    assert_eq!(svc.send(&alice, &big).await.unwrap_err().http_status(), 413);
    let mut garbage = req.clone();
    garbage.client_msg_id = "garbage".into();
    garbage.envelopes[0].payload = "!!not base64!!".into();
    assert_eq!(
        svc.send(&alice, &garbage).await.unwrap_err().http_status(),
        400
    );
    let mut no_id = req.clone();
    no_id.client_msg_id = String::new();
    assert_eq!(
        svc.send(&alice, &no_id).await.unwrap_err().http_status(),
        400
    );
    let mut outsider = req.clone();
    outsider.client_msg_id = "outsider".into();
    outsider.envelopes[0].device_id = register(&svc, "Eve").await.1.device_id();
    assert_eq!(
        svc.send(&alice, &outsider).await.unwrap_err().http_status(),
        403
    );
    let hi = encrypt_to_all(
        &svc,
        &alice,
        &mut a_phone,
        &devices,
        conv.id,
        aw,
        "c2",
        b"still works",
    )
    .await;
    assert_eq!(svc.send(&alice, &hi).await.unwrap().seq, 3);

    // Guest invite: works until it expires, only for its conversation.
    let invite = svc
        .invite_guest(&alice, conv.id, aw, Duration::hours(1))
        .await
        .unwrap();
    svc.guest_access(&invite.token, conv.id).unwrap();
    assert!(matches!(
        svc.guest_access(&invite.token, ConversationId::new()),
        Err(ServiceError::Forbidden(_))
    ));
    let tampered = format!("x{}", invite.token);
    assert!(matches!(
        svc.guest_access(&tampered, conv.id),
        Err(ServiceError::Forbidden(_))
    ));
    clock.advance(Duration::hours(1));
    let expired = svc.guest_access(&invite.token, conv.id).unwrap_err();
    assert_eq!(expired.http_status(), 403);
    assert_eq!(expired.to_string(), "forbidden: guest token expired");
    assert!(
        svc.invite_guest(&alice, conv.id, aw, Duration::days(2))
            .await
            .is_err()
    );
    assert!(matches!(
        svc.invite_guest(&bob, conv.id, bp, Duration::hours(1))
            .await,
        Err(ServiceError::Forbidden(_))
    ));

    // Unbind the laptop: its keys, envelopes and access are gone.
    let without = SignedDeviceList::sign(&a_phone, next.list.without_device(a_laptop.device_id()));
    assert_eq!(
        svc.unbind(&alice, &without).await.unwrap(),
        vec![a_laptop.device_id()]
    );
    assert!(matches!(
        svc.fetch(&laptop, None, 10).await,
        Err(ServiceError::Forbidden(_))
    ));
    assert!(matches!(
        svc.claim_key(&bob, a_laptop.device_id()).await,
        Err(ServiceError::NotFound)
    ));
    let served = svc.devices(&bob, alice.account_id).await.unwrap();
    bob_view
        .accept(served.device_list.as_ref().unwrap())
        .unwrap();
    bob_view.check_served(&served.devices).unwrap();
}

#[tokio::test]
async fn key_claims_run_out_with_a_clear_404() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, _clock) = service(dir.path()).await;
    let (alice, _) = register(&svc, "Alice").await;
    let (bob, b_phone) = register(&svc, "Bob").await;
    for _ in 0..5 {
        assert!(
            !svc.claim_key(&alice, b_phone.device_id())
                .await
                .unwrap()
                .key
                .fallback
        );
    }
    let f = svc.claim_key(&alice, b_phone.device_id()).await.unwrap();
    assert!(f.key.fallback);
    f.key.verify(&f.device).unwrap();
    assert_eq!(
        svc.key_count_for(&bob).await.unwrap(),
        KeyCount {
            one_time_keys: 0,
            replenish: true
        }
    );

    // A device that uploaded nothing: 404.
    let mut bare = Device::new(AccountId::new());
    let empty = bare.key_upload(0, false);
    let carol = svc
        .register(RegisterRequest {
            display_name: "Carol".into(),
            device_name: "phone".into(),
            device: bare.keys(),
            device_list: SignedDeviceList::genesis(&bare),
            keys: empty,
        })
        .await
        .unwrap();
    let err = svc.claim_key(&alice, carol.device_id).await.unwrap_err();
    assert_eq!(err.http_status(), 404);
    // Keys signed by another device are refused on upload.
    let mut other = Device::new(AccountId::new());
    let foreign = other.key_upload(2, false);
    assert_eq!(
        svc.upload_keys(&carol, &foreign)
            .await
            .unwrap_err()
            .http_status(),
        400
    );
    // A registration whose genesis list names another device is refused.
    let mut d = Device::new(AccountId::new());
    let bad = svc
        .register(RegisterRequest {
            display_name: "Mallory".into(),
            device_name: "phone".into(),
            device: d.keys(),
            device_list: SignedDeviceList::genesis(&other),
            keys: d.key_upload(1, false),
        })
        .await
        .unwrap_err();
    assert_eq!(bad.http_status(), 400);
}

#[tokio::test]
async fn secret_profile_policy_and_pair_code_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (svc, clock) = service(dir.path()).await;
    let (alice, _phone) = register(&svc, "Alice").await;
    let secret = svc
        .add_profile(
            &alice,
            &AddProfileRequest {
                kind: ProfileKind::Secret,
                display_name: "A".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(svc.list_profiles(&alice, &[]).await.unwrap().len(), 2);
    assert_eq!(
        svc.list_profiles(&alice, &[secret.id]).await.unwrap().len(),
        3
    );

    // Work hours in Oslo: t0 is Friday 1 May 2026 12:00 UTC (14:00 CEST).
    let mut work = svc.list_profiles(&alice, &[]).await.unwrap().remove(0);
    work.policy = Policy::work_hours(chrono_tz::Europe::Oslo);
    svc.update_profile(&alice, &work).await.unwrap();
    let incoming = Incoming::Message { mentions_me: false };
    assert_eq!(
        svc.notification_decision(alice.account_id, work.id, incoming)
            .await
            .unwrap(),
        Decision::Notify
    );
    clock.advance(Duration::hours(4));
    assert_eq!(
        svc.notification_decision(alice.account_id, work.id, incoming)
            .await
            .unwrap(),
        Decision::DeliverSilently
    );
    // Someone else's profile cannot be edited.
    let (bob, _) = register(&svc, "Bob").await;
    assert!(matches!(
        svc.update_profile(&bob, &work).await,
        Err(ServiceError::Forbidden(_))
    ));

    // Pair codes expire.
    let newcomer = Device::new(AccountId::new());
    let started = svc
        .start_pairing(&PairingOffer::new(&newcomer.keys(), "tablet"))
        .await
        .unwrap();
    clock.advance(Duration::minutes(5));
    assert!(matches!(
        svc.pairing_status(started.code.as_str()).await,
        Err(ServiceError::Forbidden("pair code expired"))
    ));
    assert_eq!(
        svc.pairing_status("bad code!")
            .await
            .unwrap_err()
            .http_status(),
        400
    );
    assert_eq!(format!("{:?}", GuestKey::random()), "GuestKey(..)");
}
