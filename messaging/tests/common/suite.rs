//! The store behaviour suite: every backend must pass all of it. Functions
//! only look at rows they created, so they can share one database.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, TimeZone, Utc};
use samtale_messaging::crypto::{Device, PairingOffer, SignedDeviceList};
use samtale_messaging::model::{Account, ProfileKind, ThemePreset};
use samtale_messaging::store::{
    Contact, Conversation, ConversationKind, DeviceRecord, Member, NewMessage, OutEnvelope, Store,
    StoreError,
};
use samtale_messaging::{ConversationId, DeviceId, ProfileId};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

pub async fn account_with_device(store: &dyn Store, name: &str) -> (Account, Device) {
    let account = Account::new(name, t0()).unwrap();
    store.create_account(&account).await.unwrap();
    let device = Device::new(account.id);
    store
        .add_device(&DeviceRecord {
            keys: device.keys(),
            name: format!("{name}'s phone"),
            created_at: t0(),
        })
        .await
        .unwrap();
    (account, device)
}

pub fn member(a: &Account, kind: ProfileKind) -> Member {
    let p = a.profiles.iter().find(|p| p.kind == kind).unwrap();
    Member {
        account_id: a.id,
        profile_id: p.id,
    }
}

pub async fn conversation(
    store: &dyn Store,
    kind: ConversationKind,
    members: Vec<Member>,
) -> ConversationId {
    let id = ConversationId::new();
    store
        .create_conversation(&Conversation {
            id,
            kind,
            created_at: t0(),
            members,
        })
        .await
        .unwrap();
    id
}

pub fn message(
    conv: ConversationId,
    sender: DeviceId,
    client_id: &str,
    to: &[(DeviceId, ProfileId)],
    at: DateTime<Utc>,
) -> NewMessage {
    NewMessage {
        conversation_id: conv,
        sender_device: sender,
        client_msg_id: client_id.to_owned(),
        envelopes: to
            .iter()
            .map(|(d, p)| OutEnvelope {
                device_id: *d,
                profile_id: *p,
                payload: format!("ciphertext {client_id}").into_bytes(),
            })
            .collect(),
        now: at,
        ttl: Duration::days(7),
    }
}

pub async fn accounts_profiles_devices(store: &dyn Store) {
    let (mut alice, phone) = account_with_device(store, "Alice").await;
    assert_eq!(store.account(alice.id).await.unwrap().profiles.len(), 2);
    assert!(matches!(
        store.create_account(&alice).await,
        Err(StoreError::Conflict)
    ));
    let secret = alice.add_profile(ProfileKind::Secret, "A").unwrap().clone();
    store.put_profile(&secret).await.unwrap();
    let mut work = alice.profiles[0].clone();
    work.theme = ThemePreset::Dark;
    store.put_profile(&work).await.unwrap();
    let stored = store.account(alice.id).await.unwrap();
    assert_eq!(stored.profiles.len(), 3);
    assert_eq!(stored.profile(work.id).unwrap().theme, ThemePreset::Dark);
    assert!(matches!(
        store.account(samtale_messaging::AccountId::new()).await,
        Err(StoreError::NotFound)
    ));

    // Devices and the signed device list (compare-and-swap on version).
    assert_eq!(
        store.device(phone.device_id()).await.unwrap().keys,
        phone.keys()
    );
    let laptop = Device::new(alice.id);
    let v1 = SignedDeviceList::genesis(&phone);
    store.put_device_list(&v1, None).await.unwrap();
    assert!(matches!(
        store.put_device_list(&v1, None).await,
        Err(StoreError::Conflict)
    ));
    let v2 = SignedDeviceList::sign(&phone, v1.list.with_device(&laptop.keys()));
    store.put_device_list(&v2, Some(1)).await.unwrap();
    assert!(matches!(
        store.put_device_list(&v2, Some(1)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.device_list(alice.id).await.unwrap(), Some(v2));
    store
        .add_device(&DeviceRecord {
            keys: laptop.keys(),
            name: "laptop".into(),
            created_at: t0(),
        })
        .await
        .unwrap();
    assert_eq!(store.devices(alice.id).await.unwrap().len(), 2);
    store.remove_device(laptop.device_id()).await.unwrap();
    assert!(matches!(
        store.remove_device(laptop.device_id()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.devices(alice.id).await.unwrap().len(), 1);
}

pub async fn key_claims(store: &dyn Store) {
    let (_bob, mut phone) = account_with_device(store, "Bob").await;
    let d = phone.device_id();
    assert!(matches!(
        store.claim_key(d).await,
        Err(StoreError::NotFound)
    ));
    let upload = phone.key_upload(3, true);
    assert_eq!(store.upload_keys(d, &upload).await.unwrap(), 3);
    // Uploading the same keys again adds nothing.
    assert_eq!(store.upload_keys(d, &upload).await.unwrap(), 3);
    let mut claimed = Vec::new();
    for _ in 0..3 {
        let k = store.claim_key(d).await.unwrap();
        assert!(!k.fallback);
        k.verify(&phone.keys()).unwrap();
        claimed.push(k);
    }
    claimed.sort_by(|a, b| a.key_id.cmp(&b.key_id));
    claimed.dedup();
    assert_eq!(claimed.len(), 3, "each one-time key handed out once");
    assert_eq!(store.one_time_key_count(d).await.unwrap(), 0);
    for _ in 0..2 {
        let f = store.claim_key(d).await.unwrap();
        assert!(f.fallback);
        assert_eq!(Some(&f), upload.fallback.as_ref());
    }
    // Unbinding revokes the keys: a clear NotFound.
    store.remove_device(d).await.unwrap();
    assert!(matches!(
        store.claim_key(d).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn store_and_forward(store: &dyn Store) {
    let (alice, a_phone) = account_with_device(store, "Alice").await;
    let (bob, b_phone) = account_with_device(store, "Bob").await;
    let b_laptop = Device::new(bob.id);
    let (aw, bw) = (
        member(&alice, ProfileKind::Work),
        member(&bob, ProfileKind::Work),
    );
    let conv = conversation(store, ConversationKind::Direct, vec![aw, bw]).await;
    let targets = [
        (b_phone.device_id(), bw.profile_id),
        (b_laptop.device_id(), bw.profile_id),
    ];
    let before = store.envelope_count().await.unwrap();

    for (i, id) in ["m1", "m2", "m3"].iter().enumerate() {
        let r = store
            .enqueue(&message(conv, a_phone.device_id(), id, &targets, t0()))
            .await
            .unwrap();
        assert_eq!((r.seq, r.duplicate), (i as u64 + 1, false));
    }
    // A resend after a dropped connection: same seq, nothing new.
    let again = store
        .enqueue(&message(conv, a_phone.device_id(), "m2", &targets, t0()))
        .await
        .unwrap();
    assert_eq!((again.seq, again.duplicate), (2, true));
    assert_eq!(store.envelope_count().await.unwrap(), before + 6);
    // Unknown conversation.
    assert!(matches!(
        store
            .enqueue(&message(
                ConversationId::new(),
                a_phone.device_id(),
                "x",
                &targets,
                t0()
            ))
            .await,
        Err(StoreError::NotFound)
    ));

    let pending = store.pending(b_phone.device_id(), None, 100).await.unwrap();
    let seqs: Vec<u64> = pending.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3]);
    assert_eq!(pending[1].payload, b"ciphertext m2");
    assert_eq!(pending[0].sender_device, a_phone.device_id());
    assert_eq!(
        store
            .pending(b_phone.device_id(), None, 2)
            .await
            .unwrap()
            .len(),
        2
    );

    for s in 1..=3 {
        assert!(store.ack(b_phone.device_id(), conv, s).await.unwrap());
    }
    assert!(
        !store.ack(b_phone.device_id(), conv, 1).await.unwrap(),
        "second ack is a no-op"
    );
    assert!(
        store
            .pending(b_phone.device_id(), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .pending(b_laptop.device_id(), None, 100)
            .await
            .unwrap()
            .len(),
        3
    );
    for s in 1..=3 {
        store.ack(b_laptop.device_id(), conv, s).await.unwrap();
    }
    assert_eq!(
        store.envelope_count().await.unwrap(),
        before,
        "deleted once every device acked"
    );
    // Still idempotent after delivery.
    let late = store
        .enqueue(&message(conv, a_phone.device_id(), "m3", &targets, t0()))
        .await
        .unwrap();
    assert!(late.duplicate);

    // TTL: undelivered envelopes and idempotency records expire.
    store
        .enqueue(&message(conv, a_phone.device_id(), "m4", &targets, t0()))
        .await
        .unwrap();
    assert_eq!(
        store.purge_expired(t0() + Duration::days(6)).await.unwrap(),
        0
    );
    assert!(store.purge_expired(t0() + Duration::days(8)).await.unwrap() >= 2);
    assert!(
        store
            .pending(b_laptop.device_id(), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn profile_isolation(store: &dyn Store) {
    let (alice, _a) = account_with_device(store, "Alice").await;
    let (bob, b_phone) = account_with_device(store, "Bob").await;
    let (aw, ap) = (
        member(&alice, ProfileKind::Work),
        member(&alice, ProfileKind::Private),
    );
    let (bw, bp) = (
        member(&bob, ProfileKind::Work),
        member(&bob, ProfileKind::Private),
    );
    let work = conversation(store, ConversationKind::Direct, vec![aw, bw]).await;
    let private = conversation(store, ConversationKind::Direct, vec![ap, bp]).await;
    let ids = |v: Vec<Conversation>| v.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .conversations_for_profile(bw.profile_id)
            .await
            .unwrap()),
        vec![work]
    );
    assert_eq!(
        ids(store
            .conversations_for_profile(bp.profile_id)
            .await
            .unwrap()),
        vec![private]
    );

    store
        .enqueue(&message(
            work,
            DeviceId::new(),
            "w1",
            &[(b_phone.device_id(), bw.profile_id)],
            t0(),
        ))
        .await
        .unwrap();
    let for_private = store
        .pending(b_phone.device_id(), Some(bp.profile_id), 100)
        .await
        .unwrap();
    assert!(
        for_private.is_empty(),
        "a work message never shows in the private profile"
    );
    assert_eq!(
        store
            .pending(b_phone.device_id(), Some(bw.profile_id), 100)
            .await
            .unwrap()
            .len(),
        1
    );

    store
        .put_contact(&Contact {
            owner_profile: bw.profile_id,
            contact_account: alice.id,
            contact_profile: aw.profile_id,
            display_name: "Alice (ACME)".into(),
        })
        .await
        .unwrap();
    assert_eq!(store.contacts(bw.profile_id).await.unwrap().len(), 1);
    assert!(store.contacts(bp.profile_id).await.unwrap().is_empty());

    // Membership changes.
    store.remove_member(work, bw.profile_id).await.unwrap();
    assert!(
        store
            .conversations_for_profile(bw.profile_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.remove_member(work, bw.profile_id).await,
        Err(StoreError::NotFound)
    ));
    store.add_member(work, bw).await.unwrap();
    assert_eq!(store.conversation(work).await.unwrap().members.len(), 2);
}

pub async fn pairing(store: &dyn Store) {
    let (alice, _phone) = account_with_device(store, "Alice").await;
    let newcomer = Device::new(samtale_messaging::AccountId::new());
    let offer = PairingOffer::new(&newcomer.keys(), "laptop");
    let code = format!("C{}", &newcomer.device_id().to_string()[..7]);
    store
        .put_pairing(&code, &offer, t0() + Duration::minutes(5))
        .await
        .unwrap();
    assert!(matches!(
        store.put_pairing(&code, &offer, t0()).await,
        Err(StoreError::Conflict)
    ));
    let rec = store.pairing(&code).await.unwrap();
    assert_eq!((rec.offer, rec.approved_into), (offer, None));
    store.approve_pairing(&code, alice.id).await.unwrap();
    assert!(matches!(
        store.approve_pairing(&code, alice.id).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store.pairing(&code).await.unwrap().approved_into,
        Some(alice.id)
    );
    store.delete_pairing(&code).await.unwrap();
    assert!(matches!(
        store.pairing(&code).await,
        Err(StoreError::NotFound)
    ));
}

/// Binding a paired device and unbinding devices are all-or-nothing: a
/// failing step leaves the list, the devices and the pairing as they were.
pub async fn device_changes_are_atomic(store: &dyn Store) {
    let (alice, phone) = account_with_device(store, "Alice").await;
    let v1 = SignedDeviceList::genesis(&phone);
    store.put_device_list(&v1, None).await.unwrap();
    let laptop = Device::new(alice.id);
    let offer = PairingOffer::new(&laptop.keys(), "laptop");
    let code = format!("A{}", &laptop.device_id().to_string()[..7]);
    store
        .put_pairing(&code, &offer, t0() + Duration::minutes(5))
        .await
        .unwrap();
    let v2 = SignedDeviceList::sign(&phone, v1.list.with_device(&laptop.keys()));
    let record = DeviceRecord {
        keys: laptop.keys(),
        name: "laptop".into(),
        created_at: t0(),
    };
    // The pairing was approved meanwhile: the last step fails, so the list
    // and the device row must not change either.
    store.approve_pairing(&code, alice.id).await.unwrap();
    assert!(matches!(
        store.bind_paired_device(&v2, 1, &record, &code).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.device_list(alice.id).await.unwrap(), Some(v1.clone()));
    assert!(matches!(
        store.device(laptop.device_id()).await,
        Err(StoreError::NotFound)
    ));
    // A fresh pairing binds all three together.
    let code2 = format!("B{}", &laptop.device_id().to_string()[..7]);
    store
        .put_pairing(&code2, &offer, t0() + Duration::minutes(5))
        .await
        .unwrap();
    store
        .bind_paired_device(&v2, 1, &record, &code2)
        .await
        .unwrap();
    assert_eq!(store.device_list(alice.id).await.unwrap(), Some(v2.clone()));
    assert_eq!(store.devices(alice.id).await.unwrap().len(), 2);
    assert_eq!(
        store.pairing(&code2).await.unwrap().approved_into,
        Some(alice.id)
    );
    // Unbinding with a stale expected version changes nothing.
    let v3 = SignedDeviceList::sign(&phone, v2.list.without_device(laptop.device_id()));
    assert!(matches!(
        store.unbind_devices(&v3, 1, &[laptop.device_id()]).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.devices(alice.id).await.unwrap().len(), 2);
    store
        .unbind_devices(&v3, 2, &[laptop.device_id()])
        .await
        .unwrap();
    assert_eq!(store.devices(alice.id).await.unwrap().len(), 1);
    assert_eq!(store.device_list(alice.id).await.unwrap(), Some(v3));
}

/// Many sends and acks at once (they share transactions in the store):
/// every send gets its own seq, a duplicate in the same burst gets the
/// first one's, a send to a missing conversation fails alone.
pub async fn concurrent_writes(store: &dyn Store) {
    let heard: Arc<Mutex<Vec<(ConversationId, u64)>>> = Arc::default();
    let log = heard.clone();
    assert!(store.on_commit(Arc::new(move |durable| {
        let mut log = log.lock().unwrap();
        log.extend(durable.iter().map(|e| (e.conversation_id, e.seq)));
    })));
    assert!(!store.on_commit(Arc::new(|_| {})), "one listener per store");

    let (alice, a_phone) = account_with_device(store, "Alice").await;
    let (bob, b_phone) = account_with_device(store, "Bob").await;
    let (aw, bw) = (
        member(&alice, ProfileKind::Work),
        member(&bob, ProfileKind::Work),
    );
    let conv = conversation(store, ConversationKind::Direct, vec![aw, bw]).await;
    let other = conversation(store, ConversationKind::Group, vec![aw, bw]).await;
    let to = [(b_phone.device_id(), bw.profile_id)];
    // 40 sends to `conv` and 10 to `other`, interleaved; then a resend, an
    // unknown conversation, a send the database refuses (two envelopes for
    // one device), and one client id used in both conversations at once
    // (writers may run them in either order: exactly one wins).
    let mut sends: Vec<NewMessage> = (0..50)
        .map(|i| {
            let c = if i % 5 == 4 { other } else { conv };
            message(c, a_phone.device_id(), &format!("burst{i}"), &to, t0())
        })
        .collect();
    sends.push(message(conv, a_phone.device_id(), "burst7", &to, t0()));
    sends.push(message(
        ConversationId::new(),
        a_phone.device_id(),
        "nowhere",
        &to,
        t0(),
    ));
    let twice = [to[0], to[0]];
    sends.push(message(conv, a_phone.device_id(), "twice", &twice, t0()));
    sends.push(message(conv, a_phone.device_id(), "reused", &to, t0()));
    sends.push(message(other, a_phone.device_id(), "reused", &to, t0()));
    let results = futures_util::future::join_all(sends.iter().map(|m| store.enqueue(m))).await;
    let [dup, nowhere, refused, reused_a, reused_b] = &results[50..] else {
        unreachable!()
    };
    assert!(
        matches!(refused, Err(StoreError::Database(_))),
        "{refused:?}"
    );
    assert!(matches!(nowhere, Err(StoreError::NotFound)), "{nowhere:?}");
    let dup = dup.as_ref().unwrap();
    assert!(dup.duplicate);
    assert_eq!(dup.seq, results[7].as_ref().unwrap().seq);
    let reused_in_conv = match (reused_a, reused_b) {
        (Ok(_), Err(StoreError::Conflict)) => true,
        (Err(StoreError::Conflict), Ok(_)) => false,
        other => panic!("one reused id must win, one conflict: {other:?}"),
    };
    // A later reuse of an accepted id in another conversation: conflict.
    let late = store
        .enqueue(&message(other, a_phone.device_id(), "burst8", &to, t0()))
        .await;
    assert!(matches!(late, Err(StoreError::Conflict)), "{late:?}");

    let accepted = |c: ConversationId| -> Vec<u64> {
        let mut seqs: Vec<u64> = sends
            .iter()
            .zip(&results)
            .filter(|(m, _)| m.conversation_id == c)
            .filter_map(|(_, r)| r.as_ref().ok().filter(|e| !e.duplicate).map(|e| e.seq))
            .collect();
        seqs.sort_unstable();
        seqs
    };
    let (in_conv, in_other) = (accepted(conv), accepted(other));
    let conv_count = 40 + u64::from(reused_in_conv);
    assert_eq!(in_conv, (1..=conv_count).collect::<Vec<u64>>(), "gap-free");
    assert_eq!(in_other, (1..=(51 - conv_count)).collect::<Vec<u64>>());
    // The listener heard every accepted envelope once, each conversation
    // in sequence order, and nothing refused.
    let heard = heard.lock().unwrap().clone();
    for (c, expected) in [(conv, &in_conv), (other, &in_other)] {
        let got: Vec<u64> = heard.iter().filter(|h| h.0 == c).map(|h| h.1).collect();
        assert_eq!(&got, expected, "commit order of {c}");
    }
    assert_eq!(heard.len(), 51);

    // Acknowledge everything, `conv`'s first envelope twice at once.
    let acks = futures_util::future::join_all(
        [(conv, 1)]
            .into_iter()
            .chain(in_conv.iter().map(|s| (conv, *s)))
            .chain(in_other.iter().map(|s| (other, *s)))
            .map(|(c, s)| store.ack(b_phone.device_id(), c, s)),
    )
    .await;
    let acks: Vec<bool> = acks.into_iter().map(Result::unwrap).collect();
    assert_eq!(
        acks.iter().filter(|a| **a).count(),
        51,
        "each envelope once"
    );
    assert!(!(acks[0] && acks[1]), "a repeated ack is not pending twice");
    assert!(
        store
            .pending(b_phone.device_id(), None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Every suite function in order, on one store.
pub async fn all(store: &dyn Store) {
    accounts_profiles_devices(store).await;
    key_claims(store).await;
    store_and_forward(store).await;
    profile_isolation(store).await;
    pairing(store).await;
    device_changes_are_atomic(store).await;
    concurrent_writes(store).await;
}
