//! Encrypted storage of the client's state at rest.
//!
//! The file is `SMTV1 || nonce(12) || AES-256-GCM(key, state JSON)` with
//! the magic as associated data. The caller provides the 32-byte key (from
//! the OS keychain, or derived from a passphrase with
//! [`VaultKey::from_passphrase`]). Writes go to a temporary file that is
//! synced and renamed over the old one, so a crash leaves either the old or
//! the new state, never a torn one.

use std::fmt;
use std::io::Write;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use zeroize::{Zeroize, Zeroizing};

const MAGIC: &[u8] = b"SMTV1";

/// Why the vault could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// Reading or writing the file failed.
    #[error("vault file: {0}")]
    Io(#[from] std::io::Error),
    /// Not a vault file, a wrong key, or a modified file.
    #[error("vault cannot be opened: wrong key or corrupted file")]
    Unreadable,
}

/// The key that encrypts the client's state. Never printed.
#[derive(Clone)]
pub struct VaultKey([u8; 32]);

impl fmt::Debug for VaultKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("VaultKey(<redacted>)")
    }
}

impl Drop for VaultKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl VaultKey {
    /// A key from raw bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A key from a passphrase and a per-vault salt, with PBKDF2-HMAC-SHA256
    /// (600 000 rounds, OWASP's 2023 figure).
    pub fn from_passphrase(passphrase: &str, salt: &[u8]) -> Self {
        const ROUNDS: std::num::NonZeroU32 = match std::num::NonZeroU32::new(600_000) {
            Some(n) => n,
            None => std::num::NonZeroU32::MIN,
        };
        let mut out = [0u8; 32];
        aws_lc_rs::pbkdf2::derive(
            aws_lc_rs::pbkdf2::PBKDF2_HMAC_SHA256,
            ROUNDS,
            salt,
            passphrase.as_bytes(),
            &mut out,
        );
        Self(out)
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&self.0).into())
    }
}

/// Encrypt `plaintext` into the vault format.
pub fn seal(key: &VaultKey, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
    let nonce: [u8; 12] = rand::random();
    let ct = key
        .cipher()
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: MAGIC,
            },
        )
        .map_err(|_| VaultError::Unreadable)?;
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + ct.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Decrypt the vault format.
pub fn open(key: &VaultKey, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    let rest = sealed.strip_prefix(MAGIC).ok_or(VaultError::Unreadable)?;
    if rest.len() < 12 + 16 {
        return Err(VaultError::Unreadable);
    }
    let (nonce, ct) = rest.split_at(12);
    key.cipher()
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: MAGIC,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| VaultError::Unreadable)
}

/// Write `plaintext` encrypted to `path`, atomically (mode 0600 on Unix).
pub fn write(path: &Path, key: &VaultKey, plaintext: &[u8]) -> Result<(), VaultError> {
    let sealed = seal(key, plaintext)?;
    let tmp = path.with_extension("tmp");
    {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp)?;
        f.write_all(&sealed)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Read and decrypt `path`.
pub fn read(path: &Path, key: &VaultKey) -> Result<Zeroizing<Vec<u8>>, VaultError> {
    open(key, &std::fs::read(path)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_wrong_key_and_tamper() {
        let key = VaultKey::new([1; 32]);
        let sealed = seal(&key, b"secret state").unwrap();
        assert_eq!(open(&key, &sealed).unwrap().as_slice(), b"secret state");
        assert!(matches!(
            open(&VaultKey::new([2; 32]), &sealed),
            Err(VaultError::Unreadable)
        ));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(matches!(open(&key, &bad), Err(VaultError::Unreadable)));
        assert!(matches!(open(&key, b"SMTV1"), Err(VaultError::Unreadable)));
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }
}
