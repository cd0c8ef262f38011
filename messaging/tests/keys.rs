//! Device keys, signed one-time keys, signed device lists and pairing codes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use samtale_messaging::AccountId;
use samtale_messaging::crypto::{
    CryptoError, Device, DeviceListVerifier, PairCode, PairingOffer, QrPayload, SignedDeviceList,
};

#[test]
fn uploaded_keys_are_signed_and_checked() {
    let mut bob = Device::new(AccountId::new());
    let upload = bob.key_upload(5, true);
    assert_eq!(upload.one_time_keys.len(), 5);
    let fallback = upload.fallback.clone().unwrap();
    assert!(fallback.fallback);
    for k in upload.one_time_keys.iter().chain([&fallback]) {
        k.verify(&bob.keys()).unwrap();
    }
    // A second upload carries only new keys.
    let again = bob.key_upload(2, false);
    assert_eq!(again.one_time_keys.len(), 2);
    assert!(again.fallback.is_none());
    assert!(
        again
            .one_time_keys
            .iter()
            .all(|k| !upload.one_time_keys.contains(k))
    );

    // A key the server swapped, or a flag it flipped, fails.
    let mallory = Device::new(AccountId::new());
    let mut swapped = upload.one_time_keys[0].clone();
    swapped.key = mallory.keys().curve25519;
    assert_eq!(swapped.verify(&bob.keys()), Err(CryptoError::BadSignature));
    let mut flipped = upload.one_time_keys[0].clone();
    flipped.fallback = true;
    assert_eq!(flipped.verify(&bob.keys()), Err(CryptoError::BadSignature));
    assert_eq!(
        upload.one_time_keys[0].verify(&mallory.keys()),
        Err(CryptoError::BadSignature)
    );
    let mut garbage = upload.one_time_keys[0].clone();
    garbage.signature = "!!".into();
    assert_eq!(garbage.verify(&bob.keys()), Err(CryptoError::InvalidKey));
}

#[test]
fn device_list_chain_detects_a_device_the_server_added() {
    let account = AccountId::new();
    let phone = Device::new(account);
    let laptop = Device::new(account);
    let mut client = DeviceListVerifier::new(account);

    let v1 = SignedDeviceList::genesis(&phone);
    client.accept(&v1).unwrap();
    let v2 = SignedDeviceList::sign(&phone, v1.list.with_device(&laptop.keys()));
    client.accept(&v2).unwrap();
    client.check_served(&[phone.keys(), laptop.keys()]).unwrap();

    // The server adds its own device and serves it: not in the signed list.
    let rogue = Device::new(account);
    assert_eq!(
        client.check_served(&[phone.keys(), laptop.keys(), rogue.keys()]),
        Err(CryptoError::UntrustedDevice(rogue.device_id()))
    );
    // It forges a list signed by the rogue device itself.
    let forged = SignedDeviceList::sign(&rogue, v2.list.with_device(&rogue.keys()));
    assert_eq!(
        client.accept(&forged),
        Err(CryptoError::UnknownSigner(rogue.device_id()))
    );
    // It edits a genuinely signed list.
    let mut edited = v2.clone();
    edited.list = edited.list.with_device(&rogue.keys());
    assert_eq!(client.accept(&edited), Err(CryptoError::BadSignature));
    // It replays an old list.
    assert_eq!(
        client.accept(&v1),
        Err(CryptoError::StaleDeviceList { current: 2, got: 1 })
    );
    // Another account's list.
    let other = Device::new(AccountId::new());
    assert_eq!(
        client.accept(&SignedDeviceList::genesis(&other)),
        Err(CryptoError::WrongAccount)
    );
    // Unbinding the laptop, signed by the laptop itself, is fine.
    let v3 = SignedDeviceList::sign(&laptop, v2.list.without_device(laptop.device_id()));
    client.accept(&v3).unwrap();
    assert_eq!(
        client.check_served(&[laptop.keys()]),
        Err(CryptoError::UntrustedDevice(laptop.device_id()))
    );
    // Once gone, the laptop can no longer sign changes.
    let v4 = SignedDeviceList::sign(&laptop, v3.list.with_device(&laptop.keys()));
    assert_eq!(
        client.accept(&v4),
        Err(CryptoError::UnknownSigner(laptop.device_id()))
    );
    // Trust on first use still needs the signer inside the list.
    let mut fresh = DeviceListVerifier::new(account);
    let bad_genesis = SignedDeviceList::sign(&rogue, v1.list.clone());
    assert_eq!(
        fresh.accept(&bad_genesis),
        Err(CryptoError::UnknownSigner(rogue.device_id()))
    );
}

#[test]
fn pair_codes_and_qr_payloads() {
    let mut rng = rand::rng();
    let code = PairCode::generate(&mut rng);
    let shown = code.to_string();
    assert_eq!(shown.len(), 9);
    assert_eq!(shown.to_lowercase().parse::<PairCode>().unwrap(), code);
    assert_eq!(
        "7kq2 m9xa".parse::<PairCode>().unwrap().as_str(),
        "7KQ2M9XA"
    );
    assert_eq!(
        "O1IL-0000".parse::<PairCode>().unwrap().as_str(),
        "01110000"
    );
    for bad in ["", "1234567", "123456789", "ABCD-EFGU", "ÅBCD-EFGH"] {
        assert_eq!(
            bad.parse::<PairCode>(),
            Err(CryptoError::InvalidPairCode),
            "{bad}"
        );
    }
    assert_eq!(format!("{code:?}"), "PairCode(..)");

    let new_device = Device::new(AccountId::new());
    let offer = PairingOffer::new(&new_device.keys(), "laptop");
    let qr = QrPayload::new(code.clone(), &offer);
    let uri = qr.to_uri();
    assert!(uri.starts_with("samtale-pair:1:"));
    let scanned = QrPayload::parse(&uri).unwrap();
    assert_eq!(scanned, qr);
    assert!(scanned.matches(&offer));
    // The server substitutes its own device for the offer: caught.
    let rogue = PairingOffer::new(&Device::new(AccountId::new()).keys(), "laptop");
    assert!(!scanned.matches(&rogue));
    assert_ne!(offer.fingerprint(), rogue.fingerprint());
    assert_eq!(offer.fingerprint().len(), 23);
    for bad in [
        "",
        "samtale-pair:1:",
        "samtale-pair:1:!!!",
        "http://x",
        "samtale-pair:1:e30",
    ] {
        assert_eq!(
            QrPayload::parse(bad),
            Err(CryptoError::InvalidPairCode),
            "{bad}"
        );
    }
}

#[test]
fn debug_of_devices_prints_no_secret() {
    let mut d = Device::new(AccountId::new());
    d.key_upload(3, true);
    let k = d.keys();
    let expected = format!(
        "Device {{ account_id: {:?}, device_id: {:?}, curve25519: {:?}, ed25519: {:?}, \
         olm_sessions: 0, outbound_groups: 0, inbound_groups: 0, .. }}",
        d.account_id(),
        d.device_id(),
        k.curve25519,
        k.ed25519
    );
    assert_eq!(format!("{d:?}"), expected);
}
