//! Public key material: what a device uploads and what the server stores.
//! Every one-time and fallback key is signed by the device's Ed25519
//! identity key, so a claimer can check the server did not swap it.

use serde::{Deserialize, Serialize};
use vodozemac::{Curve25519PublicKey, Ed25519PublicKey, Ed25519Signature};

use super::CryptoError;
use crate::ids::{AccountId, DeviceId};

/// A device's public identity keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceKeys {
    /// Account the device belongs to.
    pub account_id: AccountId,
    /// The device.
    pub device_id: DeviceId,
    /// Curve25519 identity key (unpadded base64).
    pub curve25519: String,
    /// Ed25519 signing key (unpadded base64).
    pub ed25519: String,
}

impl DeviceKeys {
    /// The Curve25519 key, parsed.
    pub fn curve25519(&self) -> Result<Curve25519PublicKey, CryptoError> {
        Curve25519PublicKey::from_base64(&self.curve25519).map_err(|_| CryptoError::InvalidKey)
    }

    /// The Ed25519 key, parsed.
    pub fn ed25519(&self) -> Result<Ed25519PublicKey, CryptoError> {
        Ed25519PublicKey::from_base64(&self.ed25519).map_err(|_| CryptoError::InvalidKey)
    }

    /// Check that both keys decode.
    pub fn validate(&self) -> Result<(), CryptoError> {
        self.curve25519()?;
        self.ed25519()?;
        Ok(())
    }

    /// Verify `signature` over `message` with this device's Ed25519 key.
    pub fn verify(&self, message: &[u8], signature: &str) -> Result<(), CryptoError> {
        let sig = Ed25519Signature::from_base64(signature).map_err(|_| CryptoError::InvalidKey)?;
        self.ed25519()?
            .verify(message, &sig)
            .map_err(|_| CryptoError::BadSignature)
    }
}

/// A one-time (or fallback) Curve25519 key signed by its device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedOneTimeKey {
    /// vodozemac's key id (base64).
    pub key_id: String,
    /// The public key (unpadded base64).
    pub key: String,
    /// True for the fallback key, handed out only when one-time keys ran out.
    pub fallback: bool,
    /// Ed25519 signature over [`SignedOneTimeKey::signing_bytes`].
    pub signature: String,
}

impl SignedOneTimeKey {
    /// The bytes that are signed: domain, device, key id, key and flag.
    pub fn signing_bytes(device_id: DeviceId, key_id: &str, key: &str, fallback: bool) -> Vec<u8> {
        format!("samtale-otk-v1|{device_id}|{key_id}|{key}|{fallback}").into_bytes()
    }

    /// Verify the signature with the owner's keys and return the key.
    pub fn verify(&self, owner: &DeviceKeys) -> Result<Curve25519PublicKey, CryptoError> {
        let bytes = Self::signing_bytes(owner.device_id, &self.key_id, &self.key, self.fallback);
        owner.verify(&bytes, &self.signature)?;
        Curve25519PublicKey::from_base64(&self.key).map_err(|_| CryptoError::InvalidKey)
    }
}

/// What a device uploads: fresh one-time keys and possibly a new fallback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyUpload {
    /// New one-time keys.
    pub one_time_keys: Vec<SignedOneTimeKey>,
    /// A new fallback key (replaces the stored one).
    pub fallback: Option<SignedOneTimeKey>,
}
