//! Writes seed inputs for the messaging fuzz targets (real envelopes, QR
//! payloads and device lists): `cargo run -p samtale-messaging --example
//! msg_fuzz_seeds -- fuzz/corpus`.

use std::collections::HashMap;
use std::path::PathBuf;

use samtale_messaging::client::{Content, ReceiptKind, Wire};
use samtale_messaging::crypto::{
    Device, PairCode, PairingOffer, QrPayload, RotationPolicy, SignedDeviceList,
};
use samtale_messaging::{AccountId, ConversationId};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/corpus".into()),
    );
    let write = |target: &str, name: &str, bytes: &[u8]| -> std::io::Result<()> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)
    };

    let mut alice = Device::new(AccountId::new());
    let mut bob = Device::new(AccountId::new());
    let upload = bob.key_upload(2, true);
    let otk = upload.one_time_keys.first().ok_or("no key")?;
    let text = serde_json::to_vec(&Content::Text {
        body: "hello".into(),
    })?;
    let env = alice.encrypt_olm(&bob.keys(), Some(otk), &text)?;
    write(
        "msg_envelope",
        "olm-prekey",
        &serde_json::to_vec(&Wire::Olm { env })?,
    )?;
    let conv = ConversationId::new();
    let keys = HashMap::from([(bob.device_id(), upload.one_time_keys[1].clone())]);
    let sent = alice.group_encrypt(
        conv,
        &[bob.keys()],
        &keys,
        &text,
        &RotationPolicy::default(),
        chrono::Utc::now(),
    );
    if let Ok(sent) = sent {
        let wire = Wire::Group {
            key_share: sent.key_shares.into_iter().next(),
            message: sent.message,
        };
        write("msg_envelope", "group", &serde_json::to_vec(&wire)?)?;
    }
    let receipt = Content::Receipt {
        kind: ReceiptKind::Read,
        seqs: vec![1, 2],
    };
    write("msg_envelope", "receipt", &serde_json::to_vec(&receipt)?)?;

    let code = PairCode::generate(&mut rand::rng());
    let offer = PairingOffer::new(&bob.keys(), "laptop");
    write("msg_pairing", "code", code.as_str().as_bytes())?;
    write(
        "msg_pairing",
        "qr",
        QrPayload::new(code, &offer).to_uri().as_bytes(),
    )?;
    let genesis = SignedDeviceList::genesis(&alice);
    write("msg_pairing", "devlist", &serde_json::to_vec(&genesis)?)?;

    let send = serde_json::json!({
        "conversation_id": conv, "profile_id": ulid::Ulid::new().to_string(),
        "client_msg_id": "m1", "envelopes": [{"device_id": bob.device_id(), "payload": "AAAA"}],
    });
    write("msg_request", "send", format!("send\n{send}").as_bytes())?;
    write("msg_request", "challenge", b"challenge\nnull")?;
    let login = serde_json::json!({"device_id": alice.device_id(), "challenge": "c1.1.AA.x", "signature": "AA"});
    write("msg_request", "login", format!("login\n{login}").as_bytes())?;
    write(
        "msg_request",
        "token",
        b"t1.01M8B4JDMQF9XEZA28NPNBXF20.01M8B4JDMQE1JM502ZGPAQN75R.99.x",
    )?;
    Ok(())
}
