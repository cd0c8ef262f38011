//! Device lists signed by an existing device of the same account.
//!
//! Every change (pairing a device, unbinding one) is a new version of the
//! list, signed with the Ed25519 key of a device that was in the previous
//! version. The first version is signed by the account's first device,
//! which must be in it. A client keeps a [`DeviceListVerifier`] and checks
//! every list the server serves; a device the server added on its own has
//! no valid signature chain and is reported as untrusted.

use serde::{Deserialize, Serialize};

use super::CryptoError;
use super::device::Device;
use super::keys::DeviceKeys;
use crate::ids::{AccountId, DeviceId};

/// One device in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceListEntry {
    /// The device.
    pub device_id: DeviceId,
    /// Its Curve25519 key (base64).
    pub curve25519: String,
    /// Its Ed25519 key (base64).
    pub ed25519: String,
}

impl DeviceListEntry {
    /// The entry for a device's keys.
    pub fn from_keys(k: &DeviceKeys) -> Self {
        Self {
            device_id: k.device_id,
            curve25519: k.curve25519.clone(),
            ed25519: k.ed25519.clone(),
        }
    }

    /// As full device keys of `account_id`.
    pub fn keys(&self, account_id: AccountId) -> DeviceKeys {
        DeviceKeys {
            account_id,
            device_id: self.device_id,
            curve25519: self.curve25519.clone(),
            ed25519: self.ed25519.clone(),
        }
    }
}

/// An account's devices at one version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    /// The account.
    pub account_id: AccountId,
    /// Strictly increasing version.
    pub version: u64,
    /// The devices.
    pub devices: Vec<DeviceListEntry>,
}

impl DeviceList {
    /// The bytes that are signed.
    pub fn signing_bytes(&self) -> Vec<u8> {
        let mut out = b"samtale-devlist-v1|".to_vec();
        // Serialising a plain struct of strings and integers cannot fail.
        out.extend(serde_json::to_vec(self).unwrap_or_default());
        out
    }

    /// The entry for `device`.
    pub fn get(&self, device: DeviceId) -> Option<&DeviceListEntry> {
        self.devices.iter().find(|d| d.device_id == device)
    }

    /// The next version with `device` added.
    pub fn with_device(&self, device: &DeviceKeys) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.devices.retain(|d| d.device_id != device.device_id);
        next.devices.push(DeviceListEntry::from_keys(device));
        next
    }

    /// The next version without `device`.
    pub fn without_device(&self, device: DeviceId) -> Self {
        let mut next = self.clone();
        next.version += 1;
        next.devices.retain(|d| d.device_id != device);
        next
    }
}

/// A device list with the signature of one of the devices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedDeviceList {
    /// The list.
    pub list: DeviceList,
    /// The device that signed.
    pub signer: DeviceId,
    /// Ed25519 signature over [`DeviceList::signing_bytes`].
    pub signature: String,
}

impl SignedDeviceList {
    /// Sign `list` with `device`.
    pub fn sign(device: &Device, list: DeviceList) -> Self {
        let signature = device.sign(&list.signing_bytes());
        Self {
            list,
            signer: device.device_id(),
            signature,
        }
    }

    /// The first list of an account: its first device alone, self-signed.
    pub fn genesis(device: &Device) -> Self {
        Self::sign(
            device,
            DeviceList {
                account_id: device.account_id(),
                version: 1,
                devices: vec![DeviceListEntry::from_keys(&device.keys())],
            },
        )
    }

    /// Check this list may follow `previous` (`None`: it is the first): same
    /// account, higher version, signed by a device of `previous` (or, for
    /// the first, by a device it contains).
    pub fn verify_successor(&self, previous: Option<&DeviceList>) -> Result<(), CryptoError> {
        let signer = match previous {
            Some(prev) => {
                if prev.account_id != self.list.account_id {
                    return Err(CryptoError::WrongAccount);
                }
                if self.list.version <= prev.version {
                    return Err(CryptoError::StaleDeviceList {
                        current: prev.version,
                        got: self.list.version,
                    });
                }
                prev.get(self.signer)
            }
            None => self.list.get(self.signer),
        }
        .ok_or(CryptoError::UnknownSigner(self.signer))?;
        signer
            .keys(self.list.account_id)
            .verify(&self.list.signing_bytes(), &self.signature)
    }
}

/// A client's view of an account's trusted device list.
#[derive(Debug, Clone)]
pub struct DeviceListVerifier {
    account_id: AccountId,
    trusted: Option<DeviceList>,
}

impl DeviceListVerifier {
    /// Nothing trusted yet for `account_id` (trust on first use).
    pub fn new(account_id: AccountId) -> Self {
        Self {
            account_id,
            trusted: None,
        }
    }

    /// A verifier that already trusts `list` (restored from storage).
    pub fn trusting(list: DeviceList) -> Self {
        Self {
            account_id: list.account_id,
            trusted: Some(list),
        }
    }

    /// The trusted list.
    pub fn trusted(&self) -> Option<&DeviceList> {
        self.trusted.as_ref()
    }

    /// Accept a signed update if it follows the trusted list.
    pub fn accept(&mut self, update: &SignedDeviceList) -> Result<(), CryptoError> {
        if update.list.account_id != self.account_id {
            return Err(CryptoError::WrongAccount);
        }
        update.verify_successor(self.trusted.as_ref())?;
        self.trusted = Some(update.list.clone());
        Ok(())
    }

    /// Check the devices a server serves for the account: each must be in
    /// the trusted list with the same keys.
    pub fn check_served(&self, served: &[DeviceKeys]) -> Result<(), CryptoError> {
        for d in served {
            let ok = self
                .trusted
                .as_ref()
                .and_then(|t| t.get(d.device_id))
                .is_some_and(|e| {
                    e.curve25519 == d.curve25519
                        && e.ed25519 == d.ed25519
                        && d.account_id == self.account_id
                });
            if !ok {
                return Err(CryptoError::UntrustedDevice(d.device_id));
            }
        }
        Ok(())
    }
}
