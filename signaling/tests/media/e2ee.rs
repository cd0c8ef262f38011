//! An end-to-end-encrypted attachment through a real samtale: Alice
//! encrypts a file, uploads the ciphertext with the media API and sends
//! the key and media id to Bob in an E2EE message (the messaging API);
//! Bob decrypts the message, downloads and decrypts the file. Afterwards
//! no file the server wrote holds the plaintext or the key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use samtale_media::attachment::{AttachmentError, AttachmentKey, decrypt, encrypt};
use samtale_messaging::client::{Client, Content};
use samtale_messaging::model::ProfileKind;
use samtale_messaging::store::{ConversationKind, Member};
use serde_json::{Value, json};

use super::*;

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_owned()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_key_travels_in_an_e2ee_message_and_never_reaches_the_server() {
    let config = test_config("media-e2ee");
    let data_dir = config.data_dir.clone();
    let server = start(config).await;
    let url = format!("http://{}", server.http_addr);
    let mut alice = Client::register(&url, "Alice", "phone").await.unwrap();
    let mut bob = Client::register(&url, "Bob", "phone").await.unwrap();
    let alice_profile = alice.profile_id(&ProfileKind::Private).await.unwrap();
    let bob_member = Member {
        account_id: bob.caller().account_id,
        profile_id: bob.profile_id(&ProfileKind::Private).await.unwrap(),
    };
    let conversation = alice
        .create_conversation(alice_profile, ConversationKind::Direct, vec![bob_member])
        .await
        .unwrap();

    // Alice: encrypt, upload only ciphertext, send the key in a message.
    let marker = format!("HOLIDAY-PHOTO-{:016x} ", rand::random::<u64>());
    let plain: Vec<u8> = marker.bytes().cycle().take(200_000).collect();
    let key = AttachmentKey::generate();
    let sealed = encrypt(&key, &plain).unwrap();
    let alice_device = Device {
        account: alice.caller().account_id.to_string(),
        device: alice.caller().device_id.to_string(),
        token: alice.access_token().to_owned(),
    };
    let id = super::api::api_upload(
        &server,
        &alice_device,
        "application/octet-stream",
        &sealed,
        false,
    )
    .await;
    let note =
        json!({"attachment": id, "key": STANDARD.encode(key.as_bytes()), "name": "beach.jpg"});
    alice
        .send_text(&conversation, alice_profile, &note.to_string())
        .await
        .unwrap();

    // Bob: the message, then the file.
    let message = bob
        .receive(Duration::from_secs(20))
        .await
        .unwrap()
        .expect("a message within 20 s");
    let Ok(Content::Text { body }) = &message.content else {
        panic!("expected text, got {:?}", message.content);
    };
    let note: Value = serde_json::from_str(body).unwrap();
    let key_bytes: [u8; 32] = STANDARD
        .decode(note["key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let received_key = AttachmentKey::from_bytes(key_bytes);
    let path = format!("/api/media/{}", note["attachment"].as_str().unwrap());
    let r = api(
        server.http_addr,
        "GET",
        &path,
        bob.access_token(),
        &Value::Null,
    )
    .await;
    assert_eq!(r.status, 200);
    let download = send_presigned(server.http_addr, &r.json()["download"], b"").await;
    assert_eq!(download.status, 200);
    assert_eq!(
        download.body, sealed,
        "storage holds exactly the ciphertext"
    );
    assert_eq!(decrypt(&received_key, &download.body).unwrap(), plain);
    assert_eq!(
        decrypt(&AttachmentKey::generate(), &download.body),
        Err(AttachmentError::WrongKey)
    );
    server.shutdown().await;

    // Nothing the server wrote (objects, both databases with their WAL
    // files, secrets) holds the plaintext or the key in any encoding.
    let key_hex: String = key.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let needles: Vec<Vec<u8>> = vec![
        marker.trim_end().as_bytes().to_vec(),
        key.as_bytes().to_vec(),
        STANDARD.encode(key.as_bytes()).into_bytes(),
        URL_SAFE_NO_PAD.encode(key.as_bytes()).into_bytes(),
        key_hex.into_bytes(),
    ];
    let files = files_under(&data_dir);
    assert!(
        files.iter().any(|f| f.ends_with("media.sqlite3")),
        "{files:?}"
    );
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        for needle in &needles {
            assert!(
                !contains(&bytes, needle),
                "{} holds the plaintext or the key",
                file.display()
            );
        }
    }
}
