//! Devices, keys and end-to-end encryption on vodozemac 0.11.
//!
//! - [`keys`]: the public key material a server may hold (identity keys,
//!   signed one-time keys, the flagged fallback key).
//! - [`device`]: a device's secret state (a vodozemac `Account`, its Olm
//!   sessions and Megolm group sessions), never printed.
//! - [`device_list`]: device lists signed by an existing device, so a client
//!   notices a device the server added on its own.
//! - [`pairing`]: pair codes and QR payloads for binding a new device.
//! - [`olm`] / [`megolm`]: 1:1 and group encryption, replay and tampering
//!   rejected with [`CryptoError`].

pub mod device;
pub mod device_list;
pub mod keys;
pub mod megolm;
pub mod olm;
pub mod pairing;
pub mod pickle;

pub use device::Device;
pub use device_list::{DeviceList, DeviceListEntry, DeviceListVerifier, SignedDeviceList};
pub use keys::{DeviceKeys, KeyUpload, SignedOneTimeKey};
pub use megolm::{GroupMessage, GroupSend, MAX_GROUP_MEMBERS, RotationPolicy};
pub use olm::{OlmEnvelope, Received};
pub use pairing::{PairCode, PairingOffer, QrPayload};
pub use pickle::DevicePickle;

use crate::ids::DeviceId;

/// Errors from key handling and encryption. None carries key material or
/// plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A key or signature that does not decode.
    #[error("malformed key or signature")]
    InvalidKey,
    /// A signature that does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A device list signed by a device that is not in the trusted list.
    #[error("device list signed by an unknown device {0}")]
    UnknownSigner(DeviceId),
    /// A device list whose version does not move forward.
    #[error("device list version {got} does not follow {current}")]
    StaleDeviceList {
        /// Version already trusted.
        current: u64,
        /// Version offered.
        got: u64,
    },
    /// A device list for another account.
    #[error("device list belongs to another account")]
    WrongAccount,
    /// A device the server serves that no signed device list contains.
    #[error("device {0} is not in the signed device list")]
    UntrustedDevice(DeviceId),
    /// No Olm session with that device and no one-time key to start one.
    #[error("no session with device {0}; claim a one-time key first")]
    NoSession(DeviceId),
    /// A ciphertext that does not parse.
    #[error("malformed ciphertext")]
    Malformed,
    /// A ciphertext whose MAC or signature fails, or whose sealed routing
    /// data does not match the envelope.
    #[error("ciphertext was tampered with")]
    Tampered,
    /// A message decrypted before (same session and index).
    #[error("replayed message")]
    Replay,
    /// A pre-key message for a one-time key this device does not have.
    #[error("unknown or used one-time key")]
    UnknownOneTimeKey,
    /// A message for another device.
    #[error("message addressed to another device")]
    WrongRecipient,
    /// A group message for a group session this device never received (for
    /// instance after it left and the group rotated).
    #[error("unknown group session")]
    UnknownGroupSession,
    /// A group message older than the first index this device can decrypt.
    #[error("group message index {0} is before the first known index")]
    UnknownMessageIndex(u32),
    /// More members than [`MAX_GROUP_MEMBERS`].
    #[error("too many group members (at most {MAX_GROUP_MEMBERS})")]
    TooManyMembers,
    /// A pair code that does not parse.
    #[error("invalid pair code")]
    InvalidPairCode,
    /// Encrypted state that does not decrypt with the given key.
    #[error("cannot restore encrypted state")]
    Pickle,
}

/// Unpadded standard base64, as vodozemac writes keys.
pub(crate) fn b64(bytes: &[u8]) -> String {
    vodozemac::base64_encode(bytes)
}

/// Decode unpadded standard base64.
pub(crate) fn unb64(s: &str) -> Result<Vec<u8>, CryptoError> {
    vodozemac::base64_decode(s).map_err(|_| CryptoError::Malformed)
}
