//! End-to-end-encrypted attachments: chunked AES-256-GCM.
//!
//! The sender makes a random [`AttachmentKey`] per file, encrypts the file
//! with [`Encryptor`] (or [`encrypt`]), uploads only the ciphertext and
//! sends the key inside an end-to-end-encrypted message (the messaging
//! core's job). The server never sees the key. No server-side dedup: equal
//! files under different keys give unrelated ciphertexts.
//!
//! Format (version 1):
//!
//! ```text
//! header = "SMAT" | version (1 byte, = 1) | chunk size (u32 BE)
//!        | nonce prefix (8 random bytes) | key commitment (32 bytes)
//! chunk  = AES-256-GCM(enc key, nonce = prefix | counter (u32 BE),
//!                      aad = header[..17] | last flag (0 or 1),
//!                      up to chunk-size plaintext bytes) | 16-byte tag
//! ```
//!
//! * The encryption key is HMAC-SHA256(file key, "samtale-attachment-v1
//!   enc" | header[..17]) and the commitment HMAC-SHA256(file key,
//!   "samtale-attachment-v1 commit" | header[..17]): a wrong key is reported
//!   as [`AttachmentError::WrongKey`] before any chunk is tried, and one
//!   ciphertext cannot decrypt validly under two keys.
//! * The counter in the nonce makes reordered or duplicated chunks fail
//!   authentication; the last-chunk flag in the AAD makes a file cut at a
//!   chunk boundary fail as [`AttachmentError::Truncated`].
//! * Every chunk but the last holds exactly chunk-size bytes; the last holds
//!   0..=chunk-size (an empty file is one empty last chunk).

use std::fmt;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// Default plaintext bytes per chunk (64 KiB).
pub const DEFAULT_CHUNK_SIZE: u32 = 64 * 1024;
/// Smallest chunk size accepted.
pub const MIN_CHUNK_SIZE: u32 = 1024;
/// Largest chunk size accepted (bounds a decryptor's buffer).
pub const MAX_CHUNK_SIZE: u32 = 16 * 1024 * 1024;
/// Bytes of header before the first chunk.
pub const HEADER_LEN: usize = 17 + 32;
/// Bytes of authentication tag per chunk.
pub const TAG_LEN: usize = 16;

const MAGIC: &[u8; 4] = b"SMAT";
const VERSION: u8 = 1;
const BOUND_LEN: usize = 17;

/// Why encryption or decryption failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AttachmentError {
    /// Not an attachment of a format this code knows.
    #[error("not a samtale attachment (bad magic or version)")]
    BadHeader,
    /// Chunk size outside [`MIN_CHUNK_SIZE`]..=[`MAX_CHUNK_SIZE`].
    #[error("unsupported chunk size")]
    BadChunkSize,
    /// The key does not match the file's key commitment.
    #[error("wrong key for this attachment")]
    WrongKey,
    /// The file ends early (at a chunk boundary or inside the header).
    #[error("attachment is truncated")]
    Truncated,
    /// A chunk failed authentication: tampered, reordered or cut mid-chunk.
    #[error("attachment chunk {chunk} failed authentication")]
    Corrupt {
        /// Index of the first chunk that failed.
        chunk: u64,
    },
    /// More than 2^32 chunks.
    #[error("attachment too large for its chunk size")]
    TooLarge,
}

/// A 256-bit per-file key. Zeroed on drop; never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct AttachmentKey([u8; 32]);

impl AttachmentKey {
    /// A fresh random key (the OS's CSPRNG through `rand`).
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// A key received in a message.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key bytes, to put inside an end-to-end-encrypted message.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn derive(&self, label: &[u8], bound: &[u8]) -> [u8; 32] {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.0) else {
            return [0; 32];
        };
        mac.update(label);
        mac.update(bound);
        mac.finalize().into_bytes().into()
    }
}

impl Drop for AttachmentKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for AttachmentKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AttachmentKey(<redacted>)")
    }
}

/// The ciphertext length of a `plaintext_len`-byte file (what the upload
/// slot must declare).
pub fn ciphertext_len(plaintext_len: u64, chunk_size: u32) -> u64 {
    let chunk = u64::from(chunk_size.max(1));
    let chunks = plaintext_len.div_ceil(chunk).max(1);
    HEADER_LEN as u64 + chunks * TAG_LEN as u64 + plaintext_len
}

fn cipher_for(key: &AttachmentKey, bound: &[u8; BOUND_LEN]) -> (Aes256Gcm, [u8; 32]) {
    let mut enc = key.derive(b"samtale-attachment-v1 enc", bound);
    let commit = key.derive(b"samtale-attachment-v1 commit", bound);
    let cipher = Aes256Gcm::new(&enc.into());
    enc.zeroize();
    (cipher, commit)
}

fn nonce(bound: &[u8; BOUND_LEN], counter: u32) -> [u8; 12] {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&bound[9..17]);
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n
}

fn aad(bound: &[u8; BOUND_LEN], last: bool) -> [u8; BOUND_LEN + 1] {
    let mut a = [0u8; BOUND_LEN + 1];
    a[..BOUND_LEN].copy_from_slice(bound);
    a[BOUND_LEN] = u8::from(last);
    a
}

/// Streaming encryptor: feed plaintext with [`update`](Self::update), end
/// with [`finish`](Self::finish); output is appended to `out`.
pub struct Encryptor {
    cipher: Aes256Gcm,
    bound: [u8; BOUND_LEN],
    commit: [u8; 32],
    chunk_size: usize,
    counter: u32,
    header_written: bool,
    buf: Vec<u8>,
}

impl fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Encryptor")
            .field("chunk_size", &self.chunk_size)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Encryptor {
    /// An encryptor with [`DEFAULT_CHUNK_SIZE`] and a random nonce prefix.
    pub fn new(key: &AttachmentKey) -> Self {
        let mut bound = [0u8; BOUND_LEN];
        bound[..4].copy_from_slice(MAGIC);
        bound[4] = VERSION;
        bound[5..9].copy_from_slice(&DEFAULT_CHUNK_SIZE.to_be_bytes());
        bound[9..].copy_from_slice(&rand::random::<[u8; 8]>());
        let (cipher, commit) = cipher_for(key, &bound);
        Self {
            cipher,
            bound,
            commit,
            chunk_size: DEFAULT_CHUNK_SIZE as usize,
            counter: 0,
            header_written: false,
            buf: Vec::new(),
        }
    }

    /// An encryptor with another chunk size.
    pub fn with_chunk_size(key: &AttachmentKey, chunk_size: u32) -> Result<Self, AttachmentError> {
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(AttachmentError::BadChunkSize);
        }
        let mut e = Self::new(key);
        e.bound[5..9].copy_from_slice(&chunk_size.to_be_bytes());
        (e.cipher, e.commit) = cipher_for(key, &e.bound);
        e.chunk_size = chunk_size as usize;
        Ok(e)
    }

    fn write_header(&mut self, out: &mut Vec<u8>) {
        if !self.header_written {
            out.extend_from_slice(&self.bound);
            out.extend_from_slice(&self.commit);
            self.header_written = true;
        }
    }

    fn seal(&mut self, plain: &[u8], last: bool, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        let n = nonce(&self.bound, self.counter);
        let start = out.len();
        out.extend_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_in_place_detached(
                Nonce::from_slice(&n),
                &aad(&self.bound, last),
                &mut out[start..],
            )
            .map_err(|_| AttachmentError::TooLarge)?;
        out.extend_from_slice(&tag);
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(AttachmentError::TooLarge)?;
        Ok(())
    }

    /// Encrypts what it can of `input` (a chunk is sealed once more input
    /// follows it, since the last chunk is flagged).
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        self.write_header(out);
        self.buf.extend_from_slice(input);
        let mut start = 0;
        while self.buf.len() - start > self.chunk_size {
            let chunk = self.buf[start..start + self.chunk_size].to_vec();
            self.seal(&chunk, false, out)?;
            start += self.chunk_size;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Seals the last chunk.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        self.write_header(out);
        let rest = std::mem::take(&mut self.buf);
        self.seal(&rest, true, out)
    }
}

struct Ready {
    cipher: Aes256Gcm,
    bound: [u8; BOUND_LEN],
    chunk_size: usize,
}

/// Streaming decryptor: feed ciphertext with [`update`](Self::update) and
/// end with [`finish`](Self::finish). Plaintext is only appended to `out`
/// after its chunk authenticated; a caller must still discard everything if
/// `finish` fails (the file as a whole is only valid then).
pub struct Decryptor {
    key: AttachmentKey,
    ready: Option<Ready>,
    counter: u32,
    buf: Vec<u8>,
}

impl fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decryptor")
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl Decryptor {
    /// A decryptor for `key`.
    pub fn new(key: &AttachmentKey) -> Self {
        Self {
            key: key.clone(),
            ready: None,
            counter: 0,
            buf: Vec::new(),
        }
    }

    fn parse_header(&mut self) -> Result<(), AttachmentError> {
        if self.ready.is_some() || self.buf.len() < HEADER_LEN {
            return Ok(());
        }
        let mut bound = [0u8; BOUND_LEN];
        bound.copy_from_slice(&self.buf[..BOUND_LEN]);
        if &bound[..4] != MAGIC || bound[4] != VERSION {
            return Err(AttachmentError::BadHeader);
        }
        let chunk_size = u32::from_be_bytes([bound[5], bound[6], bound[7], bound[8]]);
        if !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
            return Err(AttachmentError::BadChunkSize);
        }
        let (cipher, commit) = cipher_for(&self.key, &bound);
        if !bool::from(commit.ct_eq(&self.buf[BOUND_LEN..HEADER_LEN])) {
            return Err(AttachmentError::WrongKey);
        }
        self.buf.drain(..HEADER_LEN);
        self.ready = Some(Ready {
            cipher,
            bound,
            chunk_size: chunk_size as usize,
        });
        Ok(())
    }

    fn open(&self, sealed: &[u8], last: bool) -> Option<Vec<u8>> {
        let ready = self.ready.as_ref()?;
        let split = sealed.len().checked_sub(TAG_LEN)?;
        let (ct, tag) = sealed.split_at(split);
        let mut plain = ct.to_vec();
        let n = nonce(&ready.bound, self.counter);
        ready
            .cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&n),
                &aad(&ready.bound, last),
                &mut plain,
                Tag::from_slice(tag),
            )
            .ok()?;
        Some(plain)
    }

    /// Decrypts every complete chunk that is known not to be the last.
    pub fn update(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        self.buf.extend_from_slice(input);
        self.parse_header()?;
        let Some(sealed_len) = self.ready.as_ref().map(|r| r.chunk_size + TAG_LEN) else {
            return Ok(());
        };
        let mut start = 0;
        while self.buf.len() - start > sealed_len {
            let plain = self
                .open(&self.buf[start..start + sealed_len], false)
                .ok_or(AttachmentError::Corrupt {
                    chunk: u64::from(self.counter),
                })?;
            out.extend_from_slice(&plain);
            self.counter = self
                .counter
                .checked_add(1)
                .ok_or(AttachmentError::TooLarge)?;
            start += sealed_len;
        }
        self.buf.drain(..start);
        Ok(())
    }

    /// Decrypts the last chunk and checks that it is flagged as last.
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<(), AttachmentError> {
        self.parse_header()?;
        if self.ready.is_none() {
            return Err(AttachmentError::Truncated);
        }
        let rest = std::mem::take(&mut self.buf);
        if rest.len() < TAG_LEN {
            return Err(AttachmentError::Truncated);
        }
        if let Some(plain) = self.open(&rest, true) {
            out.extend_from_slice(&plain);
            return Ok(());
        }
        if self.open(&rest, false).is_some() {
            // A valid middle chunk presented as the end: chunks were cut off.
            return Err(AttachmentError::Truncated);
        }
        Err(AttachmentError::Corrupt {
            chunk: u64::from(self.counter),
        })
    }
}

/// Encrypts a whole file in memory with a fresh nonce prefix.
pub fn encrypt(key: &AttachmentKey, plaintext: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    let mut out = Vec::with_capacity(
        usize::try_from(ciphertext_len(plaintext.len() as u64, DEFAULT_CHUNK_SIZE)).unwrap_or(0),
    );
    let mut enc = Encryptor::new(key);
    enc.update(plaintext, &mut out)?;
    enc.finish(&mut out)?;
    Ok(out)
}

/// Decrypts a whole file in memory.
pub fn decrypt(key: &AttachmentKey, ciphertext: &[u8]) -> Result<Vec<u8>, AttachmentError> {
    let mut out = Vec::with_capacity(ciphertext.len());
    let mut dec = Decryptor::new(key);
    dec.update(ciphertext, &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 % 251) as u8).collect()
    }

    #[test]
    fn round_trips_at_every_boundary() {
        let key = AttachmentKey::generate();
        for n in [0, 1, 1023, 1024, 1025, 2048, 5000] {
            let plain = data(n);
            let mut ct = Vec::new();
            let mut e = Encryptor::with_chunk_size(&key, 1024).unwrap();
            // Feed in odd pieces to exercise buffering.
            for piece in plain.chunks(333) {
                e.update(piece, &mut ct).unwrap();
            }
            e.finish(&mut ct).unwrap();
            assert_eq!(ct.len() as u64, ciphertext_len(n as u64, 1024), "n={n}");
            let mut d = Decryptor::new(&key);
            let mut out = Vec::new();
            for piece in ct.chunks(700) {
                d.update(piece, &mut out).unwrap();
            }
            d.finish(&mut out).unwrap();
            assert_eq!(out, plain, "n={n}");
        }
    }

    #[test]
    fn same_file_twice_gives_different_ciphertexts() {
        let key = AttachmentKey::generate();
        let p = data(100);
        assert_ne!(encrypt(&key, &p).unwrap(), encrypt(&key, &p).unwrap());
    }

    #[test]
    fn key_is_not_printed() {
        let key = AttachmentKey::from_bytes([0x5a; 32]);
        assert_eq!(format!("{key:?}"), "AttachmentKey(<redacted>)");
    }
}
