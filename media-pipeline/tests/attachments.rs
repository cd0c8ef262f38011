//! End-to-end-encrypted attachments: what storage holds is ciphertext; the
//! recipient decrypts with the key from the message; a wrong key, a
//! truncated file, reordered chunks and flipped bits fail cleanly.
// Shared helpers here are plain functions, not #[test] fns.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use common::local_backend;
use samtale_media::attachment::{
    AttachmentError, AttachmentKey, DEFAULT_CHUNK_SIZE, HEADER_LEN, TAG_LEN, ciphertext_len,
    decrypt, encrypt,
};
use samtale_media::storage::ObjectKey;

fn plaintext(n: usize) -> Vec<u8> {
    // Recognisable text, so "is it in storage?" is a meaningful check.
    b"samtale secret holiday photo "
        .iter()
        .copied()
        .cycle()
        .take(n)
        .collect()
}

const SEALED: usize = DEFAULT_CHUNK_SIZE as usize + TAG_LEN;

#[tokio::test]
async fn storage_holds_only_ciphertext_and_the_recipient_decrypts() {
    let b = local_backend().await;
    let plain = plaintext(200_000); // 4 chunks of 64 KiB
    let key = AttachmentKey::generate();
    let sealed = encrypt(&key, &plain).unwrap();
    assert_eq!(
        sealed.len() as u64,
        ciphertext_len(plain.len() as u64, DEFAULT_CHUNK_SIZE)
    );

    let k = ObjectKey::new("media/e2ee.bin").unwrap();
    b.storage
        .put(&k, "application/octet-stream", Bytes::from(sealed))
        .await
        .unwrap();
    let stored = b
        .storage
        .get(&k)
        .await
        .unwrap()
        .into_bytes(1 << 20)
        .await
        .unwrap();
    assert_ne!(stored.as_ref(), plain.as_slice());
    assert!(
        !stored.windows(16).any(|w| w == &plain[..16]),
        "plaintext visible in storage"
    );

    // The key travels in a message: the recipient rebuilds it from bytes.
    let received = AttachmentKey::from_bytes(*key.as_bytes());
    assert_eq!(decrypt(&received, &stored).unwrap(), plain);
}

#[test]
fn wrong_key_fails_before_any_chunk() {
    let sealed = encrypt(&AttachmentKey::generate(), &plaintext(1000)).unwrap();
    assert_eq!(
        decrypt(&AttachmentKey::generate(), &sealed),
        Err(AttachmentError::WrongKey)
    );
}

#[test]
fn truncation_is_detected() {
    let sealed = encrypt(&AttachmentKey::from_bytes([1; 32]), &plaintext(200_000)).unwrap();
    let key = AttachmentKey::from_bytes([1; 32]);
    // Cut at chunk boundaries: the last chunk left is not flagged as last.
    for chunks in [1, 2, 3] {
        let cut = HEADER_LEN + chunks * SEALED;
        assert_eq!(
            decrypt(&key, &sealed[..cut]),
            Err(AttachmentError::Truncated),
            "{chunks} chunks"
        );
    }
    // Header only, or part of it.
    assert_eq!(
        decrypt(&key, &sealed[..HEADER_LEN]),
        Err(AttachmentError::Truncated)
    );
    assert_eq!(
        decrypt(&key, &sealed[..10]),
        Err(AttachmentError::Truncated)
    );
    // Mid-chunk: that chunk fails authentication.
    assert!(matches!(
        decrypt(&key, &sealed[..HEADER_LEN + SEALED + 100]),
        Err(AttachmentError::Corrupt { chunk: 1 })
    ));
    // Dropping the final chunk (shorter than the others) also counts.
    assert_eq!(
        decrypt(
            &key,
            &sealed[..sealed.len() - (sealed.len() - HEADER_LEN) % SEALED]
        ),
        Err(AttachmentError::Truncated)
    );
}

#[test]
fn reordered_duplicated_or_flipped_chunks_fail() {
    let key = AttachmentKey::generate();
    let sealed = encrypt(&key, &plaintext(200_000)).unwrap();
    let chunk = |i: usize| &sealed[HEADER_LEN + i * SEALED..HEADER_LEN + (i + 1) * SEALED];

    let mut swapped = sealed[..HEADER_LEN].to_vec();
    swapped.extend_from_slice(chunk(1));
    swapped.extend_from_slice(chunk(0));
    swapped.extend_from_slice(&sealed[HEADER_LEN + 2 * SEALED..]);
    assert_eq!(swapped.len(), sealed.len());
    assert_eq!(
        decrypt(&key, &swapped),
        Err(AttachmentError::Corrupt { chunk: 0 })
    );

    let mut duplicated = sealed[..HEADER_LEN + SEALED].to_vec();
    duplicated.extend_from_slice(chunk(0));
    duplicated.extend_from_slice(&sealed[HEADER_LEN + 2 * SEALED..]);
    assert_eq!(
        decrypt(&key, &duplicated),
        Err(AttachmentError::Corrupt { chunk: 1 })
    );

    let mut flipped = sealed.clone();
    flipped[HEADER_LEN + 2 * SEALED + 7] ^= 1;
    assert_eq!(
        decrypt(&key, &flipped),
        Err(AttachmentError::Corrupt { chunk: 2 })
    );

    let mut header = sealed.clone();
    header[12] ^= 1; // nonce prefix: commitment no longer matches
    assert_eq!(decrypt(&key, &header), Err(AttachmentError::WrongKey));
    let mut magic = sealed;
    magic[0] = b'X';
    assert_eq!(decrypt(&key, &magic), Err(AttachmentError::BadHeader));
}
