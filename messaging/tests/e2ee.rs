//! Olm 1:1 and Megolm group encryption: first contact, replies, replay and
//! tampering, a 32-member group with rotation, note-to-self.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use samtale_messaging::crypto::{
    CryptoError, Device, DeviceKeys, GroupMessage, OlmEnvelope, Received, RotationPolicy,
    SignedOneTimeKey,
};
use samtale_messaging::{AccountId, ConversationId, DeviceId};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap()
}

fn otk(d: &mut Device) -> SignedOneTimeKey {
    d.key_upload(1, false).one_time_keys.remove(0)
}

fn claim_for(devices: &mut [&mut Device], me: &Device) -> HashMap<DeviceId, SignedOneTimeKey> {
    devices
        .iter_mut()
        .filter(|d| me.needs_one_time_key(&d.keys()))
        .map(|d| (d.device_id(), otk(d)))
        .collect()
}

fn flip_last_byte(env: &OlmEnvelope) -> OlmEnvelope {
    let mut bytes = vodozemac::base64_decode(&env.ciphertext).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    OlmEnvelope {
        ciphertext: vodozemac::base64_encode(bytes),
        ..env.clone()
    }
}

fn text(r: Received) -> Vec<u8> {
    match r {
        Received::Message(b) => b,
        other => panic!("expected a message, got {other:?}"),
    }
}

#[test]
fn olm_first_contact_reply_replay_and_tamper() {
    let mut alice = Device::new(AccountId::new());
    let mut bob = Device::new(AccountId::new());
    let bob_otk = otk(&mut bob);

    assert_eq!(
        alice.encrypt_olm(&bob.keys(), None, b"hi").unwrap_err(),
        CryptoError::NoSession(bob.device_id())
    );
    let first = alice
        .encrypt_olm(&bob.keys(), Some(&bob_otk), b"hello bob")
        .unwrap();
    assert_eq!(first.message_type, 0, "first contact is a pre-key message");

    // Tampered pre-key message: refused, and the real one still works.
    assert_eq!(
        bob.decrypt_olm(&alice.keys(), &flip_last_byte(&first)),
        Err(CryptoError::Tampered)
    );
    assert_eq!(
        text(bob.decrypt_olm(&alice.keys(), &first).unwrap()),
        b"hello bob"
    );
    // Replayed pre-key message.
    assert_eq!(
        bob.decrypt_olm(&alice.keys(), &first),
        Err(CryptoError::Replay)
    );

    let reply = bob.encrypt_olm(&alice.keys(), None, b"hi alice").unwrap();
    assert_eq!(reply.message_type, 1);
    assert_eq!(
        alice.decrypt_olm(&bob.keys(), &flip_last_byte(&reply)),
        Err(CryptoError::Tampered)
    );
    assert_eq!(
        text(alice.decrypt_olm(&bob.keys(), &reply).unwrap()),
        b"hi alice"
    );
    assert_eq!(
        alice.decrypt_olm(&bob.keys(), &reply),
        Err(CryptoError::Replay)
    );

    // Alice keeps talking on the same session.
    for i in 0..3 {
        let m = alice
            .encrypt_olm(&bob.keys(), None, format!("m{i}").as_bytes())
            .unwrap();
        assert_eq!(m.message_type, 1);
        assert_eq!(
            text(bob.decrypt_olm(&alice.keys(), &m).unwrap()),
            format!("m{i}").as_bytes()
        );
    }

    // Re-routed to another device, or claimed to come from someone else.
    let carol = Device::new(AccountId::new());
    let to_bob = alice.encrypt_olm(&bob.keys(), None, b"x").unwrap();
    let mut rerouted = to_bob.clone();
    rerouted.recipient_device = carol.device_id();
    assert_eq!(
        bob.decrypt_olm(&alice.keys(), &rerouted),
        Err(CryptoError::WrongRecipient)
    );
    assert_eq!(
        bob.decrypt_olm(&carol.keys(), &to_bob),
        Err(CryptoError::Tampered)
    );
    // Garbage.
    let mut garbage = to_bob.clone();
    garbage.ciphertext = "AAAA".into();
    assert_eq!(
        bob.decrypt_olm(&alice.keys(), &garbage),
        Err(CryptoError::Malformed)
    );
    garbage.ciphertext = "not base64!".into();
    assert_eq!(
        bob.decrypt_olm(&alice.keys(), &garbage),
        Err(CryptoError::Malformed)
    );
    // Nothing broke: the genuine message still decrypts.
    assert_eq!(text(bob.decrypt_olm(&alice.keys(), &to_bob).unwrap()), b"x");
}

#[test]
fn pre_key_message_with_a_used_one_time_key_is_refused() {
    let mut alice = Device::new(AccountId::new());
    let mut alice_again = Device::with_id(alice.account_id(), alice.device_id());
    let mut bob = Device::new(AccountId::new());
    let key = otk(&mut bob);
    let a = alice.encrypt_olm(&bob.keys(), Some(&key), b"one").unwrap();
    bob.decrypt_olm(&alice.keys(), &a).unwrap();
    // A second session from Alice's keys is impossible to fake; but a
    // different device reusing the consumed key is refused.
    let mut mallory = Device::new(AccountId::new());
    let b = mallory
        .encrypt_olm(&bob.keys(), Some(&key), b"two")
        .unwrap();
    assert_eq!(
        bob.decrypt_olm(&mallory.keys(), &b),
        Err(CryptoError::UnknownOneTimeKey)
    );
    let c = alice_again
        .encrypt_olm(&bob.keys(), Some(&key), b"three")
        .unwrap();
    assert_eq!(
        bob.decrypt_olm(&alice_again.keys(), &c),
        Err(CryptoError::UnknownOneTimeKey)
    );
}

#[test]
fn megolm_32_members_rotation_on_leave_replay_and_tamper() {
    let conv = ConversationId::new();
    let mut sender = Device::new(AccountId::new());
    let mut others: Vec<Device> = (0..31).map(|_| Device::new(AccountId::new())).collect();
    let policy = RotationPolicy::default();

    let members: Vec<DeviceKeys> = others.iter().map(Device::keys).collect();
    let keys = {
        let mut refs: Vec<&mut Device> = others.iter_mut().collect();
        claim_for(&mut refs, &sender)
    };
    let send = sender
        .group_encrypt(conv, &members, &keys, b"hello group", &policy, now())
        .unwrap();
    assert!(send.rotated);
    assert_eq!(send.key_shares.len(), 31);
    let deliver = |others: &mut Vec<Device>, sender: &Device, shares: &[OlmEnvelope]| {
        for share in shares {
            let d = others
                .iter_mut()
                .find(|d| d.device_id() == share.recipient_device)
                .unwrap();
            match d.decrypt_olm(&sender.keys(), share).unwrap() {
                Received::RoomKey {
                    conversation_id, ..
                } => assert_eq!(conversation_id, conv),
                other => panic!("{other:?}"),
            }
        }
    };
    deliver(&mut others, &sender, &send.key_shares);
    for d in &mut others {
        assert_eq!(d.group_decrypt(&send.message).unwrap(), b"hello group");
    }
    // Replay of the same (session, index).
    assert_eq!(
        others[0].group_decrypt(&send.message),
        Err(CryptoError::Replay)
    );

    // Second message: no new key shares, same session.
    let second = sender
        .group_encrypt(conv, &members, &HashMap::new(), b"second", &policy, now())
        .unwrap();
    assert!(!second.rotated && second.key_shares.is_empty());
    // Tampered group ciphertext.
    let mut bytes = vodozemac::base64_decode(&second.message.ciphertext).unwrap();
    bytes[10] ^= 0x40;
    let tampered = GroupMessage {
        ciphertext: vodozemac::base64_encode(bytes),
        ..second.message.clone()
    };
    assert_eq!(
        others[1].group_decrypt(&tampered),
        Err(CryptoError::Tampered)
    );
    // Moved to another conversation or attributed to another sender.
    let moved = GroupMessage {
        conversation_id: ConversationId::new(),
        ..second.message.clone()
    };
    assert_eq!(others[1].group_decrypt(&moved), Err(CryptoError::Tampered));
    assert_eq!(others[1].group_decrypt(&second.message).unwrap(), b"second");

    // A member leaves: the next send rotates and the leaver cannot read it.
    let leaver = others.remove(7);
    let mut leaver = leaver;
    let members: Vec<DeviceKeys> = others.iter().map(Device::keys).collect();
    let third = sender
        .group_encrypt(
            conv,
            &members,
            &HashMap::new(),
            b"after leave",
            &policy,
            now(),
        )
        .unwrap();
    assert!(third.rotated);
    assert_ne!(third.message.session_id, send.message.session_id);
    assert_eq!(third.key_shares.len(), 30);
    assert!(
        third
            .key_shares
            .iter()
            .all(|s| s.recipient_device != leaver.device_id())
    );
    deliver(&mut others, &sender, &third.key_shares);
    for d in &mut others {
        assert_eq!(d.group_decrypt(&third.message).unwrap(), b"after leave");
    }
    assert_eq!(
        leaver.group_decrypt(&third.message),
        Err(CryptoError::UnknownGroupSession)
    );

    // 33 members is too many.
    let mut crowd: Vec<DeviceKeys> = members.clone();
    crowd.extend((0..2).map(|_| Device::new(AccountId::new()).keys()));
    assert_eq!(
        sender
            .group_encrypt(conv, &crowd, &HashMap::new(), b"x", &policy, now())
            .unwrap_err(),
        CryptoError::TooManyMembers
    );
}

#[test]
fn megolm_rotates_on_count_and_age_and_new_members_get_current_key() {
    let conv = ConversationId::new();
    let mut a = Device::new(AccountId::new());
    let mut b = Device::new(AccountId::new());
    let mut c = Device::new(AccountId::new());
    let policy = RotationPolicy {
        max_messages: 2,
        max_age: Duration::hours(1),
    };
    let keys = HashMap::from([(b.device_id(), otk(&mut b))]);
    let s1 = a
        .group_encrypt(conv, &[b.keys()], &keys, b"1", &policy, now())
        .unwrap();
    let s2 = a
        .group_encrypt(conv, &[b.keys()], &HashMap::new(), b"2", &policy, now())
        .unwrap();
    let s3 = a
        .group_encrypt(conv, &[b.keys()], &HashMap::new(), b"3", &policy, now())
        .unwrap();
    assert!(s1.rotated && !s2.rotated && s3.rotated, "count limit");
    let s4 = a
        .group_encrypt(
            conv,
            &[b.keys()],
            &HashMap::new(),
            b"4",
            &policy,
            now() + Duration::hours(1),
        )
        .unwrap();
    assert!(s4.rotated, "age limit");
    for s in [&s1, &s3, &s4] {
        b.decrypt_olm(&a.keys(), &s.key_shares[0]).unwrap();
    }
    for (s, want) in [(&s1, b"1"), (&s2, b"2"), (&s3, b"3"), (&s4, b"4")] {
        assert_eq!(b.group_decrypt(&s.message).unwrap(), want);
    }
    // Carol joins: she gets the current session from its current index and
    // cannot read what came before she joined.
    let keys = HashMap::from([(c.device_id(), otk(&mut c))]);
    let s5 = a
        .group_encrypt(
            conv,
            &[b.keys(), c.keys()],
            &keys,
            b"5",
            &policy,
            now() + Duration::hours(1),
        )
        .unwrap();
    assert!(!s5.rotated);
    assert_eq!(s5.key_shares.len(), 1);
    c.decrypt_olm(&a.keys(), &s5.key_shares[0]).unwrap();
    assert_eq!(c.group_decrypt(&s5.message).unwrap(), b"5");
    assert_eq!(
        c.group_decrypt(&s4.message),
        Err(CryptoError::UnknownMessageIndex(0))
    );
    assert_eq!(b.group_decrypt(&s5.message).unwrap(), b"5");
}

#[test]
fn chat_with_myself_across_own_devices_and_unbinding() {
    let account = AccountId::new();
    let notes = ConversationId::new();
    let mut phone = Device::new(account);
    let mut laptop = Device::new(account);
    let mut tablet = Device::new(account);
    let policy = RotationPolicy::default();
    let mine = [phone.keys(), laptop.keys(), tablet.keys()];
    let keys = HashMap::from([
        (laptop.device_id(), otk(&mut laptop)),
        (tablet.device_id(), otk(&mut tablet)),
    ]);
    let s = phone
        .group_encrypt(notes, &mine, &keys, b"buy milk", &policy, now())
        .unwrap();
    assert_eq!(s.key_shares.len(), 2, "my own entry is skipped");
    for d in [&mut laptop, &mut tablet] {
        let share = s
            .key_shares
            .iter()
            .find(|e| e.recipient_device == d.device_id())
            .unwrap();
        d.decrypt_olm(&phone.keys(), share).unwrap();
        assert_eq!(d.group_decrypt(&s.message).unwrap(), b"buy milk");
    }
    // The tablet is unbound: its sessions are forgotten and the next note
    // uses a key it never gets.
    phone.forget_device(&tablet.keys());
    assert!(!phone.has_session(&tablet.keys()));
    let s2 = phone
        .group_encrypt(
            notes,
            &[laptop.keys()],
            &HashMap::new(),
            b"secret",
            &policy,
            now(),
        )
        .unwrap();
    assert!(s2.rotated);
    assert_eq!(
        tablet.group_decrypt(&s2.message),
        Err(CryptoError::UnknownGroupSession)
    );
    laptop
        .decrypt_olm(&phone.keys(), &s2.key_shares[0])
        .unwrap();
    assert_eq!(laptop.group_decrypt(&s2.message).unwrap(), b"secret");
}

#[test]
fn ciphertexts_never_contain_the_plaintext() {
    let marker = b"PLAINTEXT-MARKER-4f1c";
    let mut a = Device::new(AccountId::new());
    let mut b = Device::new(AccountId::new());
    let k = otk(&mut b);
    let olm = a.encrypt_olm(&b.keys(), Some(&k), marker).unwrap();
    let group = a
        .group_encrypt(
            ConversationId::new(),
            &[b.keys()],
            &HashMap::new(),
            marker,
            &RotationPolicy::default(),
            now(),
        )
        .unwrap();
    let wire = format!("{olm:?}{:?}{:?}", group.message, group.key_shares);
    let needles = [
        String::from_utf8(marker.to_vec()).unwrap(),
        vodozemac::base64_encode(marker),
        marker.iter().map(|b| format!("{b:02x}")).collect(),
    ];
    for n in &needles {
        assert!(!wire.contains(n.as_str()), "found {n}");
    }
    // Positive control: the search finds the marker when it is there.
    let clear = format!("{wire}{}", vodozemac::base64_encode(marker));
    assert!(needles.iter().any(|n| clear.contains(n.as_str())));
    assert_eq!(
        format!("{:?}", Received::Message(marker.to_vec())),
        "Message(21 bytes)"
    );
}
