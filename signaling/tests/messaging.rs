//! Messaging end to end: real `samtale` servers on loopback, the Rust
//! client library, and the server's own files inspected afterwards.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::process::ServerProcess;
use common::server::temp_dir;
use samtale_messaging::client::{Client, ClientError, Content, Message, ReceiptKind, VaultKey};
use samtale_messaging::model::ProfileKind;
use samtale_messaging::store::{Conversation, ConversationKind, Member, SqlStore, Store};
use samtale_messaging::{ConversationId, ProfileId};

const WAIT: Duration = Duration::from_secs(20);

async fn member(c: &mut Client, kind: ProfileKind) -> (ProfileId, Member) {
    let profile = c.profile_id(&kind).await.unwrap();
    let account_id = c.caller().account_id;
    (
        profile,
        Member {
            account_id,
            profile_id: profile,
        },
    )
}

/// A direct conversation from `alice` to `bob`, both with their `kind`
/// profile: alice's profile and the conversation.
async fn direct_chat(
    alice: &mut Client,
    bob: &mut Client,
    kind: ProfileKind,
) -> (ProfileId, Conversation) {
    let (alice_p, _) = member(alice, kind.clone()).await;
    let (_, bob_m) = member(bob, kind).await;
    let conv = alice
        .create_conversation(alice_p, ConversationKind::Direct, vec![bob_m])
        .await
        .unwrap();
    (alice_p, conv)
}

/// The next message's text; fails after [`WAIT`].
async fn next_text(c: &mut Client) -> (Message, String) {
    let m = c
        .receive(WAIT)
        .await
        .unwrap()
        .expect("a message within the wait");
    let text = match &m.content {
        Ok(Content::Text { body }) => body.clone(),
        other => panic!("expected text, got {other:?}"),
    };
    (m, text)
}

fn encodings(marker: &str) -> Vec<Vec<u8>> {
    let raw = marker.as_bytes();
    let mut out = vec![
        raw.to_vec(),
        hex(raw).into_bytes(),
        hex(raw).to_uppercase().into_bytes(),
    ];
    // Base64 of the marker at each of the three alignments inside a longer
    // string, minus the edge characters that depend on the neighbours.
    for engine in [
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ] {
        for pad in 0..3 {
            let mut bytes = vec![0u8; pad];
            bytes.extend_from_slice(raw);
            let enc = engine.encode(&bytes);
            let skip = if pad == 0 {
                0
            } else {
                (pad * 4).div_ceil(3) + 1
            };
            let inner = &enc[skip..enc.len() - 2];
            out.push(inner.as_bytes().to_vec());
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Files under `dir` (and the log) that contain any encoding of `marker`.
fn files_containing(paths: &[&Path], marker: &str) -> Vec<String> {
    let needles = encodings(marker);
    let mut hits = Vec::new();
    for p in paths {
        let Ok(bytes) = std::fs::read(p) else {
            continue;
        };
        for n in &needles {
            if bytes.windows(n.len()).any(|w| w == n.as_slice()) {
                hits.push(format!("{} ({})", p.display(), String::from_utf8_lossy(n)));
                break;
            }
        }
    }
    hits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_devices_exchange_messages_and_the_server_holds_no_plaintext() {
    let dir = temp_dir("msg-plain");
    let log = dir.join("server.log");
    let server = ServerProcess::start(&dir, &log);
    let url = server.url.clone();

    let mut alice1 = Client::register(&url, "Alice", "phone").await.unwrap();
    let pending = Client::start_pairing(&url, "laptop").await.unwrap();
    let code = pending.code.clone();
    let approve = async {
        alice1.approve_pairing(&code).await.unwrap();
    };
    let (_, alice2) = tokio::join!(approve, pending.wait(WAIT));
    let mut alice2 = alice2.unwrap();
    assert_eq!(alice2.caller().account_id, alice1.caller().account_id);
    let mut bob = Client::register(&url, "Bob", "phone").await.unwrap();

    let (alice_private, _) = member(&mut alice1, ProfileKind::Private).await;
    let (bob_private, bob_member) = member(&mut bob, ProfileKind::Private).await;
    let conv = alice1
        .create_conversation(alice_private, ConversationKind::Direct, vec![bob_member])
        .await
        .unwrap();

    let marker = format!("PLAINTEXT-MARKER-{:016x}", rand::random::<u64>());
    let hello = format!("hello Bob {marker}");
    alice1
        .send_text(&conv, alice_private, &hello)
        .await
        .unwrap();
    let (m, text) = next_text(&mut bob).await;
    assert_eq!(text, hello);
    assert_eq!(m.sender_account, Some(alice1.caller().account_id));
    assert_eq!(m.profile_id, bob_private);
    let (_, text) = next_text(&mut alice2).await;
    assert_eq!(text, hello, "Alice's other device sees her own message");

    let reply = format!("hi Alice {marker}");
    bob.send_text(&conv, bob_private, &reply).await.unwrap();
    assert_eq!(next_text(&mut alice1).await.1, reply);
    assert_eq!(next_text(&mut alice2).await.1, reply);
    let from2 = format!("from the laptop {marker}");
    alice2
        .send_text(&conv, alice_private, &from2)
        .await
        .unwrap();
    assert_eq!(next_text(&mut bob).await.1, from2);
    assert_eq!(next_text(&mut alice1).await.1, from2);

    // Read receipts are end-to-end encrypted messages too.
    let read_seq = m.seq;
    bob.send_receipt(&conv, bob_private, ReceiptKind::Read, vec![read_seq])
        .await
        .unwrap();
    for device in [&mut alice1, &mut alice2] {
        let got = device.receive(WAIT).await.unwrap().expect("a receipt");
        match got.content {
            Ok(Content::Receipt { kind, seqs }) => {
                assert_eq!((kind, seqs), (ReceiptKind::Read, vec![read_seq]));
            }
            other => panic!("expected a receipt, got {other:?}"),
        }
    }

    // Positive control: a profile name is stored in the clear, and the same
    // search finds it in the same files.
    let control = format!("CLEAR-CONTROL-{:016x}", rand::random::<u64>());
    let mut p = bob.profiles(&[]).await.unwrap().remove(0);
    p.display_name = control.clone();
    bob.request::<serde_json::Value>("update_profile", serde_json::to_value(&p).unwrap())
        .await
        .unwrap();

    let db = dir.join("messaging.sqlite3");
    let wal = dir.join("messaging.sqlite3-wal");
    let files = [db.as_path(), wal.as_path(), log.as_path()];
    let found = files_containing(&files[..2], &control);
    assert!(
        !found.is_empty(),
        "the control marker must be found in the database"
    );
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("samtale started"),
        "the log is being captured"
    );
    assert_eq!(
        files_containing(&files, &marker),
        Vec::<String>::new(),
        "plaintext reached the server's files"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_device_gets_100_messages_once_in_order_across_a_sigkill() {
    let dir = temp_dir("msg-crash");
    let log = dir.join("server.log");
    let server = ServerProcess::start(&dir, &log);
    let url = server.url.clone();

    let key = || VaultKey::new([9; 32]);
    let mut alice = Client::register(&url, "Alice", "phone").await.unwrap();
    alice.keep_in(dir.join("alice.vault"), key()).unwrap();
    let mut bob = Client::register(&url, "Bob", "phone").await.unwrap();
    bob.keep_in(dir.join("bob.vault"), key()).unwrap();
    let (alice_p, conv) = direct_chat(&mut alice, &mut bob, ProfileKind::Work).await;
    drop(bob); // offline from here on

    for i in 1..=50 {
        alice
            .send_text(&conv, alice_p, &format!("message {i}"))
            .await
            .unwrap();
    }
    // Killed right after the 50th acknowledgement.
    server.kill();
    let server = ServerProcess::start(&dir, &log);
    let url = server.url.clone();
    drop(alice);
    let mut alice = Client::open_at(dir.join("alice.vault"), key(), Some(&url))
        .await
        .unwrap();
    for i in 51..=100 {
        alice
            .send_text(&conv, alice_p, &format!("message {i}"))
            .await
            .unwrap();
    }

    let store = SqlStore::open_sqlite_dir(&dir).await.unwrap();
    assert_eq!(store.envelope_count().await.unwrap(), 100);

    let mut bob = Client::open_at(dir.join("bob.vault"), key(), Some(&url))
        .await
        .unwrap();
    let mut last_seq = 0;
    for i in 1..=100 {
        let (m, text) = next_text(&mut bob).await;
        assert_eq!(text, format!("message {i}"));
        assert!(m.seq > last_seq, "in order");
        last_seq = m.seq;
    }
    // Nothing more: each arrived exactly once.
    assert!(
        bob.receive(Duration::from_millis(500))
            .await
            .unwrap()
            .is_none()
    );
    // Acknowledged envelopes are gone from the server (the client returns
    // a message only after the server answered its ack).
    assert_eq!(store.envelope_count().await.unwrap(), 0);
    drop(server);
}

fn group_of(members: &[Member], me: usize) -> Vec<Member> {
    members
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, m)| *m)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_32_rotates_its_key_when_a_member_leaves() {
    let mut config = common::server::test_config("msg-group");
    config.turn_embedded = false;
    let dir = config.data_dir.clone();
    let server = common::server::start(config).await;
    let url = format!("http://{}", server.http_addr);

    let mut clients = Vec::new();
    let mut members = Vec::new();
    let mut profiles = Vec::new();
    for i in 0..32 {
        let mut c = Client::register(&url, &format!("member {i}"), "phone")
            .await
            .unwrap();
        let (p, m) = member(&mut c, ProfileKind::Private).await;
        clients.push(c);
        members.push(m);
        profiles.push(p);
    }
    let conv: Conversation = clients[0]
        .create_conversation(profiles[0], ConversationKind::Group, group_of(&members, 0))
        .await
        .unwrap();
    clients[0]
        .send_text(&conv, profiles[0], "welcome, all 32")
        .await
        .unwrap();

    // Before member 5 reads it, take its envelope from the database: the
    // client decrypts it once, and refuses the same Megolm index again.
    let store = SqlStore::open_sqlite_dir(&dir).await.unwrap();
    let raw5 = store
        .pending(clients[5].caller().device_id, None, 10)
        .await
        .unwrap()
        .remove(0)
        .payload;
    let sender_keys = clients[0].device_keys();
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        let (m, text) = next_text(c).await;
        assert_eq!(text, "welcome, all 32", "member {i}");
        assert_eq!(m.conversation_id, conv.id);
    }
    let replay = clients[5].decrypt_wire(&sender_keys, &raw5);
    assert!(
        matches!(replay, Err(ClientError::Crypto(_))),
        "a replayed Megolm message must be refused, got {replay:?}"
    );

    // Member 31 leaves; the next message rotates the session.
    let leaver = clients.pop().unwrap();
    let leaver_device = leaver.caller().device_id;
    let mut leaver = leaver;
    leaver.leave(conv.id, profiles[31]).await.unwrap();
    let old_session = clients[0].device_mut().group_session_id(conv.id).unwrap();
    clients[0]
        .send_text(&conv, profiles[0], "after the leave")
        .await
        .unwrap();
    let new_session = clients[0].device_mut().group_session_id(conv.id).unwrap();
    assert_ne!(old_session, new_session, "the group key rotated");
    assert!(
        store
            .pending(leaver_device, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "nothing is addressed to the leaver"
    );
    // Hand the leaver a remaining member's new ciphertext straight from
    // the database: it cannot read it, with or without the key share.
    let raw = store
        .pending(clients[1].caller().device_id, None, 10)
        .await
        .unwrap()
        .remove(0)
        .payload;
    assert!(leaver.decrypt_wire(&sender_keys, &raw).is_err());
    let mut wire: samtale_messaging::client::Wire = serde_json::from_slice(&raw).unwrap();
    if let samtale_messaging::client::Wire::Group { key_share, .. } = &mut wire {
        *key_share = None;
    }
    let stripped = serde_json::to_vec(&wire).unwrap();
    assert!(leaver.decrypt_wire(&sender_keys, &stripped).is_err());
    for (i, c) in clients.iter_mut().enumerate().skip(1) {
        assert_eq!(next_text(c).await.1, "after the leave", "member {i}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_conversations_stay_out_of_the_private_profile() {
    let mut config = common::server::test_config("msg-profiles");
    config.turn_embedded = false;
    let server = common::server::start(config).await;
    let url = format!("http://{}", server.http_addr);
    let mut alice = Client::register(&url, "Alice", "phone").await.unwrap();
    let mut bob = Client::register(&url, "Bob", "phone").await.unwrap();
    let (a_work, _) = member(&mut alice, ProfileKind::Work).await;
    let (a_private, _) = member(&mut alice, ProfileKind::Private).await;
    let (b_work, b_work_m) = member(&mut bob, ProfileKind::Work).await;
    let conv = alice
        .create_conversation(a_work, ConversationKind::Direct, vec![b_work_m])
        .await
        .unwrap();

    assert!(alice.conversations(a_private).await.unwrap().is_empty());
    let ids: Vec<ConversationId> = alice
        .conversations(a_work)
        .await
        .unwrap()
        .iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(ids, vec![conv.id]);
    // Using the private profile on the work conversation is refused.
    let err = alice
        .send_text(&conv, a_private, "wrong persona")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");

    bob.send_text(&conv, b_work, "work only").await.unwrap();
    // While it waits, the private profile's queue shows nothing of it.
    let queue = |p: ProfileId| serde_json::json!({ "profile_id": p });
    let private: Vec<serde_json::Value> = alice.request("fetch", queue(a_private)).await.unwrap();
    assert!(private.is_empty());
    let work: Vec<serde_json::Value> = alice.request("fetch", queue(a_work)).await.unwrap();
    assert_eq!(work.len(), 1);
    let (m, text) = next_text(&mut alice).await;
    assert_eq!(text, "work only");
    assert_eq!(m.profile_id, a_work, "arrives in the work profile");

    // Each profile's own policy decides how it notifies.
    use samtale_messaging::policy::{Decision, Incoming, NotifyRule};
    let mut work = alice
        .profiles(&[])
        .await
        .unwrap()
        .into_iter()
        .find(|p| p.id == a_work)
        .unwrap();
    work.policy.do_not_disturb = None;
    work.policy.notify = NotifyRule::MuteAll;
    alice
        .request::<serde_json::Value>("update_profile", serde_json::to_value(&work).unwrap())
        .await
        .unwrap();
    let message = Incoming::Message { mentions_me: false };
    let muted = alice.notification_decision(a_work, message).await.unwrap();
    assert_eq!(muted, Decision::DeliverSilently);
    let private = alice
        .notification_decision(a_private, message)
        .await
        .unwrap();
    assert_ne!(
        private,
        Decision::DeliverSilently,
        "the private profile is not muted"
    );
    // Not for someone else's profile.
    let err = bob
        .notification_decision(a_work, message)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "{err}");
    server.shutdown().await;
}

async fn raw_pending(store: &SqlStore, c: &Client) -> Vec<Vec<u8>> {
    store
        .pending(c.caller().device_id, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.payload)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_clear_errors_and_breaks_nothing() {
    use samtale_messaging::crypto::{CryptoError, Device, KeyUpload, SignedDeviceList};
    use serde_json::json;

    let mut config = common::server::test_config("msg-bad");
    config.turn_embedded = false;
    let dir = config.data_dir.clone();
    let server = common::server::start(config).await;
    let addr = server.http_addr;
    let url = format!("http://{addr}");
    let store = SqlStore::open_sqlite_dir(&dir).await.unwrap();
    let mut alice = Client::register(&url, "Alice", "phone").await.unwrap();
    let mut bob = Client::register(&url, "Bob", "phone").await.unwrap();
    let (a_p, _) = member(&mut alice, ProfileKind::Private).await;
    let (b_p, b_m) = member(&mut bob, ProfileKind::Private).await;
    let conv = alice
        .create_conversation(a_p, ConversationKind::Direct, vec![b_m])
        .await
        .unwrap();
    let alice_keys = alice.device_keys();

    // Tampered ciphertext, then the genuine one still decrypts.
    alice.send_text(&conv, a_p, "first").await.unwrap();
    let first = raw_pending(&store, &bob).await.remove(0);
    let mut wire: serde_json::Value = serde_json::from_slice(&first).unwrap();
    let ct = wire["env"]["ciphertext"].as_str().unwrap().to_owned();
    let mid = ct.len() / 2;
    let flipped = if &ct[mid..=mid] == "A" { "B" } else { "A" };
    wire["env"]["ciphertext"] = json!(format!("{}{}{}", &ct[..mid], flipped, &ct[mid + 1..]));
    let tampered = bob.decrypt_wire(&alice_keys, &serde_json::to_vec(&wire).unwrap());
    assert!(
        matches!(tampered, Err(ClientError::Crypto(_))),
        "{tampered:?}"
    );
    assert_eq!(next_text(&mut bob).await.1, "first");
    // The same pre-key message again is a replay.
    let replay = bob.decrypt_wire(&alice_keys, &first);
    assert!(
        matches!(replay, Err(ClientError::Crypto(CryptoError::Replay))),
        "{replay:?}"
    );

    // A device with no keys left at all: a clear 404 on claim.
    let bare = Device::new(samtale_messaging::AccountId::new());
    let register = json!({
        "display_name": "Bare", "device_name": "old phone",
        "device": bare.keys(), "device_list": SignedDeviceList::genesis(&bare),
        "keys": KeyUpload { one_time_keys: vec![], fallback: None },
    });
    alice
        .request::<serde_json::Value>("register", register)
        .await
        .unwrap();
    let claim = alice
        .request::<serde_json::Value>("claim_key", json!({ "device_id": bare.device_id() }))
        .await
        .unwrap_err();
    assert_eq!(claim.status(), Some(404), "{claim}");

    // Malformed and oversized envelopes, over the WebSocket.
    let send = |payload: String| {
        json!({
            "conversation_id": conv.id, "profile_id": a_p, "client_msg_id": ulid(),
            "envelopes": [{ "device_id": bob.caller().device_id, "payload": payload }],
        })
    };
    let bad = alice
        .request::<serde_json::Value>("send", send("not base64 !!".into()))
        .await
        .unwrap_err();
    assert_eq!(bad.status(), Some(400), "{bad}");
    let big = alice
        .request::<serde_json::Value>("send", send("A".repeat(200_000)))
        .await
        .unwrap_err();
    assert_eq!(big.status(), Some(413), "{big}");

    // A device list with a forged signature is refused.
    let mut forged = SignedDeviceList::genesis(&bare);
    forged.list.account_id = alice.caller().account_id;
    forged.list.version = 9;
    let refused = alice
        .request::<serde_json::Value>("unbind", json!({ "device_list": forged }))
        .await
        .unwrap_err();
    assert_eq!(refused.status(), Some(400), "{refused}");

    // A device the server adds on its own (here: written straight into the
    // database) is noticed by the sender and gets nothing.
    let intruder = Device::new(bob.caller().account_id);
    store
        .add_device(&samtale_messaging::store::DeviceRecord {
            keys: intruder.keys(),
            name: "evil".into(),
            created_at: chrono::Utc::now(),
        })
        .await
        .unwrap();
    let noticed = alice
        .send_text(&conv, a_p, "to Bob only")
        .await
        .unwrap_err();
    assert!(
        matches!(noticed, ClientError::Crypto(CryptoError::UntrustedDevice(d)) if d == intruder.device_id()),
        "{noticed}"
    );
    store.remove_device(intruder.device_id()).await.unwrap();

    // HTTP fallback: typed errors for a missing token, an unknown
    // operation, bad JSON and an oversized body.
    let http = |path: &'static str, headers: Vec<(&'static str, String)>, body: String| async move {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        common::server::http(addr, "POST", path, &h, &body).await
    };
    let (status, body) = http("/api/msg/key_count", vec![], String::new()).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = http("/api/msg/teleport", vec![], "{}".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("unknown-op"), "{body}");
    let (status, body) = http("/api/msg/send", vec![], "{not json".into()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("bad-json"), "{body}");
    let huge = format!("{{\"pad\":\"{}\"}}", "x".repeat(5 * 1024 * 1024));
    let (status, body) = http("/api/msg/send", vec![], huge).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = http(
        "/api/msg/key_count",
        vec![("authorization", "Bearer t1.forged.token.1.x".into())],
        String::new(),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    // The HTTP login flow: challenge, signature, bearer token.
    let (status, body) = http("/api/msg/challenge", vec![], String::new()).await;
    assert_eq!(status, 200, "{body}");
    let challenge = serde_json::from_str::<serde_json::Value>(&body).unwrap()["challenge"]
        .as_str()
        .unwrap()
        .to_owned();
    let signature = bare.sign(&samtale_messaging::service::device_auth_bytes(&challenge));
    let login =
        json!({"device_id": bare.device_id(), "challenge": challenge, "signature": signature});
    let (status, body) = http("/api/msg/login", vec![], login.to_string()).await;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bearer = vec![("authorization", format!("Bearer {token}"))];
    let (status, body) = http("/api/msg/key_count", bearer, String::new()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"one_time_keys\":0"), "{body}");
    let wrong = json!({"device_id": bare.device_id(), "challenge": challenge, "signature": bob.device_mut().sign(b"x")});
    let (status, body) = http("/api/msg/login", vec![], wrong.to_string()).await;
    assert_eq!(status, 403, "{body}");

    // After all that, messages still flow both ways.
    alice.send_text(&conv, a_p, "still here").await.unwrap();
    assert_eq!(next_text(&mut bob).await.1, "still here");
    bob.send_text(&conv, b_p, "me too").await.unwrap();
    assert_eq!(next_text(&mut alice).await.1, "me too");
    server.shutdown().await;
}

fn ulid() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A test CA and a leaf certificate for 127.0.0.1 signed by it.
fn test_pki(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let openssl = |args: &[&str]| {
        let ok = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl (run ./scripts/test.sh)")
            .success();
        assert!(ok, "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509", "-days", "1", "-subj", "/CN=samtale test CA"];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.pem"]);
    openssl(&ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "key.pem", "-out", "leaf.csr"]);
    openssl(&csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "cert.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_talk_over_https() {
    let mut config = common::server::test_config("msg-tls");
    config.turn_embedded = false;
    let (ca, cert, key) = test_pki(&config.data_dir);
    config.tls_cert = Some(cert);
    config.tls_key = Some(key);
    let server = common::server::start(config).await;
    let url = format!("https://{}", server.http_addr);
    // Without the private CA the server is not trusted.
    let refused = Client::register(&url, "Eve", "phone").await.unwrap_err();
    assert!(matches!(refused, ClientError::Transport(_)), "{refused}");
    samtale_messaging::client::transport::trust_extra_roots(&std::fs::read(ca).unwrap()).unwrap();
    let mut alice = Client::register(&url, "Alice", "phone").await.unwrap();
    let mut bob = Client::register(&url, "Bob", "phone").await.unwrap();
    let (a_p, conv) = direct_chat(&mut alice, &mut bob, ProfileKind::Private).await;
    alice.send_text(&conv, a_p, "over TLS").await.unwrap();
    assert_eq!(next_text(&mut bob).await.1, "over TLS");
    server.shutdown().await;
}

/// Two samtale processes in `dir` sharing one messaging database, with
/// `extra` appended to their config file.
fn two_nodes(dir: &Path, extra: &str) -> (ServerProcess, ServerProcess) {
    let db = dir.join("shared.sqlite3");
    let config = dir.join("samtale.toml");
    let database = format!(
        "messaging_database = \"sqlite://{}?mode=rwc\"\n",
        db.display()
    );
    std::fs::write(&config, database + extra).unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let node_a = ServerProcess::start_with(&dir.join("a"), &dir.join("a.log"), &args, &[]);
    let node_b = ServerProcess::start_with(&dir.join("b"), &dir.join("b.log"), &args, &[]);
    (node_a, node_b)
}

/// Two nodes on one database: node B's commits are never announced to node
/// A's WebSockets. A push on node A must not overtake an older envelope
/// that B committed (the client drops anything older than what it has
/// seen): node A notices the gap and reads the store first.
#[tokio::test]
async fn a_push_never_overtakes_an_envelope_another_node_committed() {
    let dir = temp_dir("msg-two-nodes");
    let (node_a, node_b) = two_nodes(&dir, "");

    let key = || VaultKey::new([7; 32]);
    let mut alice = Client::register(&node_a.url, "Alice", "phone")
        .await
        .unwrap();
    alice.keep_in(dir.join("alice.vault"), key()).unwrap();
    let mut bob = Client::register(&node_a.url, "Bob", "phone").await.unwrap();
    let (alice_p, conv) = direct_chat(&mut alice, &mut bob, ProfileKind::Work).await;

    // Bob, live on node A, gets the first one pushed.
    alice.send_text(&conv, alice_p, "first").await.unwrap();
    assert_eq!(next_text(&mut bob).await.1, "first");
    // Alice moves to node B for the second, then back to A for the third.
    drop(alice);
    let mut alice = Client::open_at(dir.join("alice.vault"), key(), Some(&node_b.url))
        .await
        .unwrap();
    alice.send_text(&conv, alice_p, "second").await.unwrap();
    drop(alice);
    let mut alice = Client::open_at(dir.join("alice.vault"), key(), Some(&node_a.url))
        .await
        .unwrap();
    alice.send_text(&conv, alice_p, "third").await.unwrap();

    assert_eq!(next_text(&mut bob).await.1, "second");
    assert_eq!(next_text(&mut bob).await.1, "third");
    drop((node_a, node_b));
}

/// Two nodes on one database, linked by a real NATS server: what one node
/// commits or revokes reaches the device's WebSocket on the other at once
/// (without NATS, Bob below would wait for his next store read).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_carries_pushes_and_revocations_between_nodes() {
    let mut nats = common::nats::NatsServer::start();
    let dir = temp_dir("msg-nats");
    let nats_url = format!("messaging_nats_url = \"{}\"\n", nats.url);
    let (node_a, node_b) = two_nodes(&dir, &nats_url);

    let key = || VaultKey::new([9; 32]);
    let mut alice = Client::register(&node_a.url, "Alice", "phone")
        .await
        .unwrap();
    alice.keep_in(dir.join("alice.vault"), key()).unwrap();
    let pending = Client::start_pairing(&node_a.url, "laptop").await.unwrap();
    let code = pending.code.clone();
    let approve = async {
        alice.approve_pairing(&code).await.unwrap();
    };
    let (_, laptop) = tokio::join!(approve, pending.wait(WAIT));
    let mut laptop = laptop.unwrap();
    let mut bob = Client::register(&node_a.url, "Bob", "phone").await.unwrap();
    let (alice_p, conv) = direct_chat(&mut alice, &mut bob, ProfileKind::Private).await;

    // Alice moves to node B; Bob and her laptop stay live on node A.
    drop(alice);
    let mut alice = Client::open_at(dir.join("alice.vault"), key(), Some(&node_b.url))
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        alice.send_text(&conv, alice_p, text).await.unwrap();
        assert_eq!(next_text(&mut bob).await.1, text);
        assert_eq!(next_text(&mut laptop).await.1, text);
    }

    // While NATS is down, node B's commit reaches nobody on A; once it is
    // back, node A has its connections read the store.
    nats.stop();
    alice
        .send_text(&conv, alice_p, "while NATS was away")
        .await
        .unwrap();
    nats.restart();
    assert_eq!(next_text(&mut bob).await.1, "while NATS was away");
    assert_eq!(next_text(&mut laptop).await.1, "while NATS was away");

    // Unbinding the laptop through node B closes its connection on A.
    alice.unbind(laptop.caller().device_id).await.unwrap();
    let outcome = laptop.receive(WAIT).await;
    assert!(matches!(outcome, Err(ClientError::Revoked)), "{outcome:?}");
    drop((node_a, node_b, nats));
}
