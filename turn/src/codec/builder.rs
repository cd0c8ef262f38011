//! Building STUN messages attribute by attribute, computing
//! MESSAGE-INTEGRITY and FINGERPRINT over what came before.

use super::attr_type as t;
use super::attribute::Attribute;
use super::header::{HEADER_LEN, MAGIC_COOKIE, MessageType, TransactionId};
use super::integrity;

/// Largest attribute section a STUN header can describe.
pub const MAX_BODY_LEN: usize = u16::MAX as usize & !3;

/// Writes one STUN message into a buffer it owns (reusable with
/// [`MessageBuilder::with_buffer`]).
///
/// The header's length field is kept current after every attribute, so the
/// integrity attributes are computed over exactly the bytes before them.
/// Callers keep messages under 64 KiB ([`MAX_BODY_LEN`]); beyond that the
/// length field saturates and the message is invalid (never a panic).
#[derive(Debug)]
pub struct MessageBuilder {
    buf: Vec<u8>,
    tid: TransactionId,
    padding: u8,
}

impl MessageBuilder {
    /// A builder with a fresh buffer.
    pub fn new(message_type: MessageType, tid: TransactionId) -> Self {
        Self::with_buffer(Vec::with_capacity(128), message_type, tid)
    }

    /// A builder writing into `buf`, which is cleared first.
    pub fn with_buffer(mut buf: Vec<u8>, message_type: MessageType, tid: TransactionId) -> Self {
        buf.clear();
        buf.extend_from_slice(&message_type.to_u16().to_be_bytes());
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(&MAGIC_COOKIE.to_be_bytes());
        buf.extend_from_slice(&tid.0);
        Self {
            buf,
            tid,
            padding: 0,
        }
    }

    /// The byte used to pad values to 4 bytes (0 by default; RFC 5769's
    /// samples use 0x20). Receivers must ignore it.
    pub fn padding_byte(&mut self, byte: u8) -> &mut Self {
        self.padding = byte;
        self
    }

    /// Appends a typed attribute.
    pub fn add(&mut self, attr: &Attribute<'_>) -> &mut Self {
        let start = self.begin(attr.attr_type(), attr.value_len());
        attr.encode_value(&self.tid, &mut self.buf);
        self.end(start)
    }

    /// Appends an attribute from its type and raw value.
    pub fn add_raw(&mut self, attr_type: u16, value: &[u8]) -> &mut Self {
        let start = self.begin(attr_type, value.len());
        self.buf.extend_from_slice(value);
        self.end(start)
    }

    /// Appends MESSAGE-INTEGRITY (HMAC-SHA1 with `key`).
    pub fn add_message_integrity(&mut self, key: &[u8]) -> &mut Self {
        let mac = integrity::message_integrity(&self.buf, key)
            .unwrap_or([0; integrity::MESSAGE_INTEGRITY_LEN]);
        self.add_raw(t::MESSAGE_INTEGRITY, &mac)
    }

    /// Appends a full-length (32-byte) MESSAGE-INTEGRITY-SHA256.
    pub fn add_message_integrity_sha256(&mut self, key: &[u8]) -> &mut Self {
        let mac = integrity::message_integrity_sha256(&self.buf, key, 32).unwrap_or_default();
        self.add_raw(t::MESSAGE_INTEGRITY_SHA256, &mac)
    }

    /// Appends FINGERPRINT; it must be the last attribute.
    pub fn add_fingerprint(&mut self) -> &mut Self {
        let crc = integrity::fingerprint(&self.buf).unwrap_or(0);
        self.add_raw(t::FINGERPRINT, &crc.to_be_bytes())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing but the header has been written.
    pub fn is_empty(&self) -> bool {
        self.buf.len() == HEADER_LEN
    }

    /// The finished message.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    fn begin(&mut self, attr_type: u16, value_len: usize) -> usize {
        self.buf.extend_from_slice(&attr_type.to_be_bytes());
        let len = u16::try_from(value_len).unwrap_or(u16::MAX);
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.len()
    }

    fn end(&mut self, value_start: usize) -> &mut Self {
        let value_len = self.buf.len() - value_start;
        let padded = value_len.next_multiple_of(4);
        self.buf.resize(value_start + padded, self.padding);
        let body = u16::try_from(self.buf.len() - HEADER_LEN).unwrap_or(u16::MAX);
        self.buf[2..4].copy_from_slice(&body.to_be_bytes());
        self
    }
}
