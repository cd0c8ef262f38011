//! Writing responses: unauthenticated ones (bounded in size, no
//! MESSAGE-INTEGRITY) and authenticated ones (MESSAGE-INTEGRITY with the
//! request's key). FINGERPRINT is added when the request carried one.

use crate::codec::{
    Attribute, Class, Header, Message, MessageBuilder, MessageType, Method, TransactionId,
    attr_type,
};
use crate::config::UnauthenticatedReplies;

use super::types::Transport;

/// The STUN/TURN error codes the server sends.
pub(crate) mod code {
    pub const TRY_ALTERNATE: u16 = 300;
    pub const BAD_REQUEST: u16 = 400;
    pub const UNAUTHORIZED: u16 = 401;
    pub const FORBIDDEN: u16 = 403;
    pub const UNKNOWN_ATTRIBUTE: u16 = 420;
    pub const ALLOCATION_MISMATCH: u16 = 437;
    pub const STALE_NONCE: u16 = 438;
    pub const ADDRESS_FAMILY_NOT_SUPPORTED: u16 = 440;
    pub const WRONG_CREDENTIALS: u16 = 441;
    pub const UNSUPPORTED_TRANSPORT: u16 = 442;
    pub const PEER_ADDRESS_FAMILY_MISMATCH: u16 = 443;
    pub const CONNECTION_ALREADY_EXISTS: u16 = 446;
    pub const CONNECTION_FAILED: u16 = 447;
    pub const ALLOCATION_QUOTA_REACHED: u16 = 486;
    pub const INSUFFICIENT_CAPACITY: u16 = 508;
}

/// The reason phrase RFC 8489/8656 give each code.
pub(crate) fn reason_phrase(code: u16) -> &'static str {
    match code {
        300 => "Try Alternate",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        420 => "Unknown Attribute",
        437 => "Allocation Mismatch",
        438 => "Stale Nonce",
        440 => "Address Family not Supported",
        441 => "Wrong Credentials",
        442 => "Unsupported Transport Protocol",
        443 => "Peer Address Family Mismatch",
        446 => "Connection Already Exists",
        447 => "Connection Timeout or Failure",
        486 => "Allocation Quota Reached",
        508 => "Insufficient Capacity",
        _ => "",
    }
}

/// What a reply needs to know about its request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestInfo {
    pub method: Method,
    pub tid: TransactionId,
    pub len: usize,
    pub fingerprint: bool,
    pub transport: Transport,
}

impl RequestInfo {
    pub fn of(msg: &Message<'_>, transport: Transport) -> Self {
        Self {
            method: msg.method(),
            tid: *msg.transaction_id(),
            len: msg.raw().len(),
            fingerprint: msg.contains(attr_type::FINGERPRINT),
            transport,
        }
    }

    /// For a request whose attributes could not be parsed.
    pub fn of_header(header: &Header, len: usize, transport: Transport) -> Self {
        Self {
            method: header.message_type.method,
            tid: header.transaction_id,
            len,
            fingerprint: false,
            transport,
        }
    }
}

/// Writes an answer to an unauthenticated request into `buf`: an error
/// response (`code`) or, with `code == None`, a success response. The
/// reason phrase is included only when it costs nothing (streams, or the
/// answer still fits in the request's size). Returns `false` when the
/// policy says to stay silent.
pub(crate) fn write_unauthenticated(
    buf: &mut Vec<u8>,
    request: &RequestInfo,
    code: Option<u16>,
    attrs: &[Attribute<'_>],
    policy: UnauthenticatedReplies,
) -> bool {
    let class = if code.is_some() {
        Class::Error
    } else {
        Class::Success
    };
    let build = |buf: Vec<u8>, with_reason: bool| {
        let mut b =
            MessageBuilder::with_buffer(buf, MessageType::new(request.method, class), request.tid);
        if let Some(code) = code {
            let reason = if with_reason { reason_phrase(code) } else { "" };
            b.add(&Attribute::ErrorCode { code, reason });
        }
        for attr in attrs {
            b.add(attr);
        }
        if request.fingerprint {
            b.add_fingerprint();
        }
        b.finish()
    };
    let full = build(std::mem::take(buf), true);
    if request.transport.is_stream() || full.len() <= request.len {
        *buf = full;
        return true;
    }
    *buf = build(full, false);
    match policy {
        UnauthenticatedReplies::Minimal => true,
        UnauthenticatedReplies::NoLargerThanRequest => buf.len() <= request.len,
    }
}

/// Writes an authenticated response: ERROR-CODE when `code` is set, then
/// `attrs`, SOFTWARE, MESSAGE-INTEGRITY with `key`, and FINGERPRINT.
pub(crate) fn write_authenticated(
    buf: &mut Vec<u8>,
    request: &RequestInfo,
    code: Option<u16>,
    attrs: &[Attribute<'_>],
    key: &[u8],
    software: Option<&str>,
) {
    let class = if code.is_some() {
        Class::Error
    } else {
        Class::Success
    };
    let mut b = MessageBuilder::with_buffer(
        std::mem::take(buf),
        MessageType::new(request.method, class),
        request.tid,
    );
    if let Some(code) = code {
        b.add(&Attribute::ErrorCode {
            code,
            reason: reason_phrase(code),
        });
    }
    for attr in attrs {
        b.add(attr);
    }
    if let Some(software) = software {
        b.add(&Attribute::Software(software));
    }
    b.add_message_integrity(key);
    if request.fingerprint {
        b.add_fingerprint();
    }
    *buf = b.finish();
}
