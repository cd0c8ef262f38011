//! Pair codes and QR payloads for binding a new device to an account.
//!
//! The new device registers a [`PairingOffer`] (its public keys) with the
//! server and shows the returned [`PairCode`] (8 characters, Crockford
//! base32, ~40 bits, short-lived) or a [`QrPayload`] that also carries its
//! Ed25519 key. An existing device fetches the offer by code, checks the
//! key against the QR payload (or compares [`PairingOffer::fingerprint`] on
//! both screens), then approves by signing a new device list that contains
//! the new device.

use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CryptoError;
use super::keys::DeviceKeys;
use crate::ids::DeviceId;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a pair code.
pub const PAIR_CODE_LEN: usize = 8;
const QR_PREFIX: &str = "samtale-pair:1:";

/// A short code the new device shows, e.g. `7KQ2-M9XA`.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PairCode(String);

impl PairCode {
    /// A random code.
    pub fn generate<R: Rng + ?Sized>(rng: &mut R) -> Self {
        let s = (0..PAIR_CODE_LEN)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect();
        Self(s)
    }

    /// The canonical form (8 characters, no dash).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PairCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b) = self.0.split_at(PAIR_CODE_LEN / 2);
        write!(f, "{a}-{b}")
    }
}

impl fmt::Debug for PairCode {
    // The code is a short-lived secret: keep it out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairCode(..)")
    }
}

impl FromStr for PairCode {
    type Err = CryptoError;
    /// Accepts lower case, dashes and spaces; reads `O` as `0` and `I`/`L`
    /// as `1` (Crockford).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = String::with_capacity(PAIR_CODE_LEN);
        for c in s.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) || out.len() >= PAIR_CODE_LEN {
                return Err(CryptoError::InvalidPairCode);
            }
            out.push(c);
        }
        if out.len() != PAIR_CODE_LEN {
            return Err(CryptoError::InvalidPairCode);
        }
        Ok(Self(out))
    }
}

impl TryFrom<String> for PairCode {
    type Error = CryptoError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<PairCode> for String {
    fn from(c: PairCode) -> String {
        c.0
    }
}

/// What a new device tells the server when it asks to be paired.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairingOffer {
    /// The new device's id.
    pub device_id: DeviceId,
    /// Its Curve25519 key (base64).
    pub curve25519: String,
    /// Its Ed25519 key (base64).
    pub ed25519: String,
    /// A name for the device list ("Alice's laptop").
    pub device_name: String,
}

impl PairingOffer {
    /// The offer for a device's keys.
    pub fn new(keys: &DeviceKeys, device_name: &str) -> Self {
        Self {
            device_id: keys.device_id,
            curve25519: keys.curve25519.clone(),
            ed25519: keys.ed25519.clone(),
            device_name: device_name.to_owned(),
        }
    }

    /// A short fingerprint of the Ed25519 key to compare on both screens:
    /// four groups of five digits.
    pub fn fingerprint(&self) -> String {
        let d = Sha256::digest(self.ed25519.as_bytes());
        d.chunks(4)
            .take(4)
            .map(|c| {
                let n = u32::from_be_bytes([c[0], c[1], c[2], c[3]]) % 100_000;
                format!("{n:05}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the new device's QR code encodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QrPayload {
    /// The pair code.
    pub code: PairCode,
    /// The new device.
    pub device_id: DeviceId,
    /// Its Ed25519 key, which the approving device checks against the offer
    /// the server hands it.
    pub ed25519: String,
}

impl QrPayload {
    /// The payload for an offer and its code.
    pub fn new(code: PairCode, offer: &PairingOffer) -> Self {
        Self {
            code,
            device_id: offer.device_id,
            ed25519: offer.ed25519.clone(),
        }
    }

    /// `samtale-pair:1:<base64url(json)>`.
    pub fn to_uri(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{QR_PREFIX}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Parse a scanned URI.
    pub fn parse(uri: &str) -> Result<Self, CryptoError> {
        let rest = uri
            .strip_prefix(QR_PREFIX)
            .ok_or(CryptoError::InvalidPairCode)?;
        if rest.len() > 1024 {
            return Err(CryptoError::InvalidPairCode);
        }
        let json = URL_SAFE_NO_PAD
            .decode(rest)
            .map_err(|_| CryptoError::InvalidPairCode)?;
        serde_json::from_slice(&json).map_err(|_| CryptoError::InvalidPairCode)
    }

    /// Does the offer the server returned match what the QR code showed?
    pub fn matches(&self, offer: &PairingOffer) -> bool {
        self.device_id == offer.device_id && self.ed25519 == offer.ed25519
    }
}

impl PairingOffer {
    /// Check both keys decode.
    pub fn validate(&self) -> Result<(), CryptoError> {
        DeviceKeys {
            account_id: crate::ids::AccountId::new(),
            device_id: self.device_id,
            curve25519: self.curve25519.clone(),
            ed25519: self.ed25519.clone(),
        }
        .validate()
    }
}
