//! What clients put inside envelopes. The server stores [`Wire`] bytes
//! without parsing them; [`Content`] exists only inside the encryption.

use serde::{Deserialize, Serialize};

use crate::crypto::{GroupMessage, OlmEnvelope};

/// One envelope's bytes, as the server stores them (ciphertext inside).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Wire {
    /// Olm, device to device (direct conversations, note-to-self).
    Olm {
        /// The Olm message.
        env: OlmEnvelope,
    },
    /// Megolm for a group, with the session key for this device when it
    /// does not have it yet.
    Group {
        /// Olm-encrypted session key for the recipient device.
        key_share: Option<OlmEnvelope>,
        /// The Megolm message.
        message: GroupMessage,
    },
}

/// Receipt kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptKind {
    /// A device of the recipient stored the message.
    Delivered,
    /// The recipient saw it.
    Read,
}

/// What a message says, end-to-end encrypted. Receipts are messages too,
/// so the server learns nothing about who read what.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Content {
    /// Text.
    Text {
        /// The text.
        body: String,
    },
    /// A receipt for messages of the conversation.
    Receipt {
        /// Delivered or read.
        kind: ReceiptKind,
        /// Their sequence numbers.
        seqs: Vec<u64>,
    },
    /// Structured data for other features (attachment keys, SFrame call
    /// keys), identified by `kind`.
    Data {
        /// What it is, e.g. `attachment` or `call-key`.
        kind: String,
        /// Its fields.
        body: serde_json::Value,
    },
}

impl std::fmt::Debug for Content {
    // Content never goes to logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Text { body } => write!(f, "Text({} bytes)", body.len()),
            Self::Receipt { kind, seqs } => write!(f, "Receipt({kind:?}, {} seqs)", seqs.len()),
            Self::Data { kind, .. } => write!(f, "Data({kind})"),
        }
    }
}
