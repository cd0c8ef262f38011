//! The store suite on SQLite, durability across a re-open, and a search of
//! the database files for plaintext.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::suite::{self, account_with_device, conversation, member, t0};
use samtale_messaging::model::ProfileKind;
use samtale_messaging::store::{ConversationKind, NewMessage, OutEnvelope, SqlStore, Store};

async fn open(dir: &std::path::Path) -> SqlStore {
    SqlStore::open_sqlite_dir(dir).await.unwrap()
}

#[tokio::test]
async fn sqlite_passes_the_store_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    suite::all(&store).await;
    // Re-opening runs the migrations again without harm.
    store.close().await;
    let again = open(dir.path()).await;
    suite::pairing(&again).await;
}

#[tokio::test]
async fn reopening_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let (alice, a_phone) = account_with_device(&store, "Alice").await;
    let (bob, b_phone) = account_with_device(&store, "Bob").await;
    let bw = member(&bob, ProfileKind::Work);
    let conv = conversation(
        &store,
        ConversationKind::Direct,
        vec![member(&alice, ProfileKind::Work), bw],
    )
    .await;
    let to = [(b_phone.device_id(), bw.profile_id)];
    for i in 0..100 {
        let r = store
            .enqueue(&suite::message(
                conv,
                a_phone.device_id(),
                &format!("c{i}"),
                &to,
                t0(),
            ))
            .await
            .unwrap();
        assert_eq!(r.seq, i + 1);
    }
    // Bob reads and acks the first 50, then the server "restarts".
    for s in 1..=50 {
        assert!(store.ack(b_phone.device_id(), conv, s).await.unwrap());
    }
    store.close().await;
    drop(store);

    let store = open(dir.path()).await;
    let pending = store
        .pending(b_phone.device_id(), None, 1000)
        .await
        .unwrap();
    let seqs: Vec<u64> = pending.iter().map(|e| e.seq).collect();
    assert_eq!(
        seqs,
        (51..=100).collect::<Vec<_>>(),
        "exactly the unacked, in order"
    );
    // Acknowledged messages are still known: a resend is not duplicated.
    let r = store
        .enqueue(&suite::message(conv, a_phone.device_id(), "c10", &to, t0()))
        .await
        .unwrap();
    assert!(r.duplicate);
    assert_eq!(r.seq, 11);
    let next = store
        .enqueue(&suite::message(
            conv,
            a_phone.device_id(),
            "c100",
            &to,
            t0(),
        ))
        .await
        .unwrap();
    assert_eq!((next.seq, next.duplicate), (101, false));
}

fn needles(marker: &[u8]) -> Vec<Vec<u8>> {
    use base64::Engine;
    let hex: String = marker.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        marker.to_vec(),
        hex.into_bytes(),
        base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(marker)
            .into_bytes(),
    ]
}

fn files_contain(dir: &std::path::Path, marker: &[u8]) -> bool {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        bytes.extend(std::fs::read(entry.path()).unwrap());
    }
    needles(marker)
        .iter()
        .any(|n| bytes.windows(n.len()).any(|w| w == n.as_slice()))
}

#[tokio::test]
async fn database_files_hold_only_ciphertext() {
    let marker = b"PLAINTEXT-MARKER-be7d0c";
    for in_clear in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path()).await;
        let (alice, mut a_phone) = account_with_device(&store, "Alice").await;
        let (bob, mut b_phone) = account_with_device(&store, "Bob").await;
        let bw = member(&bob, ProfileKind::Work);
        let conv = conversation(
            &store,
            ConversationKind::Direct,
            vec![member(&alice, ProfileKind::Work), bw],
        )
        .await;
        store
            .upload_keys(b_phone.device_id(), &b_phone.key_upload(2, true))
            .await
            .unwrap();
        let otk = store.claim_key(b_phone.device_id()).await.unwrap();
        let env = a_phone
            .encrypt_olm(&b_phone.keys(), Some(&otk), marker)
            .unwrap();
        let payload = if in_clear {
            marker.to_vec() // positive control
        } else {
            serde_json::to_vec(&env).unwrap()
        };
        store
            .enqueue(&NewMessage {
                conversation_id: conv,
                sender_device: a_phone.device_id(),
                client_msg_id: "1".into(),
                envelopes: vec![OutEnvelope {
                    device_id: b_phone.device_id(),
                    profile_id: bw.profile_id,
                    payload,
                }],
                now: t0(),
                ttl: chrono::Duration::days(1),
            })
            .await
            .unwrap();
        // Bob can read it back and decrypt.
        let got = store.pending(b_phone.device_id(), None, 10).await.unwrap();
        if !in_clear {
            let env = serde_json::from_slice(&got[0].payload).unwrap();
            match b_phone.decrypt_olm(&a_phone.keys(), &env).unwrap() {
                samtale_messaging::crypto::Received::Message(m) => assert_eq!(m, marker),
                other => panic!("{other:?}"),
            }
        }
        // Search the database file and its -wal while the store is open.
        assert!(dir.path().join("messaging.sqlite3-wal").exists());
        assert_eq!(
            files_contain(dir.path(), marker),
            in_clear,
            "in_clear={in_clear}"
        );
        store.close().await;
    }
}
