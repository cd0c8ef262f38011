//! The attachment key travels inside an Olm message of the messaging core:
//! Alice encrypts a file, uploads only ciphertext through an upload slot,
//! and sends the key and object reference to Bob's device in an Olm
//! message; Bob decrypts the message, fetches the object with a presigned
//! GET and decrypts it. The server side (storage, index, the Olm envelope)
//! never holds the key or the plaintext.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{http, local_backend, send_presigned};
use samtale_media::attachment::{
    AttachmentError, AttachmentKey, DEFAULT_CHUNK_SIZE, HEADER_LEN, TAG_LEN, decrypt, encrypt,
};
use samtale_media::index::MemoryIndex;
use samtale_media::media::{MediaConfig, MediaStore};
use samtale_media::storage::ObjectKey;
use samtale_messaging::AccountId;
use samtale_messaging::crypto::{Device, Received};
use serde_json::json;

const SEALED_CHUNK: usize = DEFAULT_CHUNK_SIZE as usize + TAG_LEN;

fn photo() -> Vec<u8> {
    b"holiday photo, strictly private "
        .iter()
        .copied()
        .cycle()
        .take(300_000)
        .collect()
}

#[tokio::test]
async fn key_in_an_olm_message_opens_the_stored_ciphertext() {
    let backend = local_backend().await;
    let media = MediaStore::new(
        backend.storage.clone(),
        Arc::new(MemoryIndex::new()),
        MediaConfig::default(),
    );
    let now = SystemTime::now();
    let mut alice = Device::new(AccountId::new());
    let mut bob = Device::new(AccountId::new());
    let bob_otk = bob.key_upload(1, false).one_time_keys.remove(0);

    // Alice: encrypt, upload the ciphertext through a slot, confirm.
    let plain = photo();
    let key = AttachmentKey::generate();
    let sealed = encrypt(&key, &plain).unwrap();
    let slot = media
        .request_upload(
            "alice",
            "application/octet-stream",
            sealed.len() as u64,
            false,
            now,
        )
        .await
        .unwrap();
    assert_eq!(send_presigned(&slot.request, &sealed).await.status, 200);
    media.confirm_upload("alice", &slot.key, now).await.unwrap();

    // The key and the object reference go to Bob inside an Olm message.
    let key_b64 = STANDARD.encode(key.as_bytes());
    let body = json!({
        "type": "attachment",
        "object": slot.key.as_str(),
        "key": key_b64,
        "size": plain.len(),
        "mime": "image/jpeg",
    });
    let envelope = alice
        .encrypt_olm(&bob.keys(), Some(&bob_otk), body.to_string().as_bytes())
        .unwrap();
    // What the messaging server relays does not show the key.
    let relayed = serde_json::to_string(&envelope).unwrap();
    assert!(!relayed.contains(&key_b64), "key visible in the envelope");

    // Storage holds ciphertext only.
    let stored = backend
        .storage
        .get(&slot.key)
        .await
        .unwrap()
        .into_bytes(1 << 20)
        .await
        .unwrap();
    assert_eq!(stored.as_ref(), sealed.as_slice());
    assert!(!stored.windows(32).any(|w| w == &plain[..32]));

    // Bob: decrypt the message, fetch the object, decrypt the file.
    let Received::Message(bytes) = bob.decrypt_olm(&alice.keys(), &envelope).unwrap() else {
        panic!("expected an application message");
    };
    let message: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let object = ObjectKey::new(message["object"].as_str().unwrap()).unwrap();
    let received_key: [u8; 32] = STANDARD
        .decode(message["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let received_key = AttachmentKey::from_bytes(received_key);
    let url = media.download_url(&object, now).await.unwrap();
    let fetched = http("GET", &url.url, &[], b"").await;
    assert_eq!(fetched.status, 200);
    assert_eq!(decrypt(&received_key, &fetched.body).unwrap(), plain);

    // What a recipient with a wrong key, a cut download or a reordered
    // object gets: a clean error, never plaintext.
    assert_eq!(
        decrypt(&AttachmentKey::generate(), &fetched.body),
        Err(AttachmentError::WrongKey)
    );
    assert_eq!(
        decrypt(
            &received_key,
            &fetched.body[..HEADER_LEN + 2 * SEALED_CHUNK]
        ),
        Err(AttachmentError::Truncated)
    );
    let chunk = |i: usize| &fetched.body[HEADER_LEN + i * SEALED_CHUNK..][..SEALED_CHUNK];
    let mut reordered = fetched.body[..HEADER_LEN].to_vec();
    reordered.extend_from_slice(chunk(1));
    reordered.extend_from_slice(chunk(0));
    reordered.extend_from_slice(&fetched.body[HEADER_LEN + 2 * SEALED_CHUNK..]);
    assert_eq!(
        decrypt(&received_key, &reordered),
        Err(AttachmentError::Corrupt { chunk: 0 })
    );
}
