//! Attribute type numbers (IANA "STUN Attributes" registry) and the set of
//! comprehension-required types this codec understands.

/// MAPPED-ADDRESS (RFC 8489).
pub const MAPPED_ADDRESS: u16 = 0x0001;
/// USERNAME (RFC 8489).
pub const USERNAME: u16 = 0x0006;
/// MESSAGE-INTEGRITY (RFC 8489), HMAC-SHA1.
pub const MESSAGE_INTEGRITY: u16 = 0x0008;
/// ERROR-CODE (RFC 8489).
pub const ERROR_CODE: u16 = 0x0009;
/// UNKNOWN-ATTRIBUTES (RFC 8489).
pub const UNKNOWN_ATTRIBUTES: u16 = 0x000A;
/// CHANNEL-NUMBER (RFC 8656).
pub const CHANNEL_NUMBER: u16 = 0x000C;
/// LIFETIME (RFC 8656).
pub const LIFETIME: u16 = 0x000D;
/// XOR-PEER-ADDRESS (RFC 8656).
pub const XOR_PEER_ADDRESS: u16 = 0x0012;
/// DATA (RFC 8656).
pub const DATA: u16 = 0x0013;
/// REALM (RFC 8489).
pub const REALM: u16 = 0x0014;
/// NONCE (RFC 8489).
pub const NONCE: u16 = 0x0015;
/// XOR-RELAYED-ADDRESS (RFC 8656).
pub const XOR_RELAYED_ADDRESS: u16 = 0x0016;
/// REQUESTED-ADDRESS-FAMILY (RFC 8656 / RFC 6156).
pub const REQUESTED_ADDRESS_FAMILY: u16 = 0x0017;
/// EVEN-PORT (RFC 8656). Understood: the driver hands out even relay ports
/// only, so the request is always satisfied; the R bit (reserve the next
/// port) is not honoured and no RESERVATION-TOKEN is returned.
pub const EVEN_PORT: u16 = 0x0018;
/// REQUESTED-TRANSPORT (RFC 8656).
pub const REQUESTED_TRANSPORT: u16 = 0x0019;
/// DONT-FRAGMENT (RFC 8656).
pub const DONT_FRAGMENT: u16 = 0x001A;
/// MESSAGE-INTEGRITY-SHA256 (RFC 8489).
pub const MESSAGE_INTEGRITY_SHA256: u16 = 0x001C;
/// XOR-MAPPED-ADDRESS (RFC 8489).
pub const XOR_MAPPED_ADDRESS: u16 = 0x0020;
/// RESERVATION-TOKEN (RFC 8656); not supported, so a request carrying it gets 420.
pub const RESERVATION_TOKEN: u16 = 0x0022;
/// CONNECTION-ID (RFC 6062 §6.2.1): names a peer TCP connection.
pub const CONNECTION_ID: u16 = 0x002A;
/// PRIORITY (RFC 8445, ICE); understood so ICE checks are not refused.
pub const PRIORITY: u16 = 0x0024;
/// USE-CANDIDATE (RFC 8445, ICE); understood so ICE checks are not refused.
pub const USE_CANDIDATE: u16 = 0x0025;
/// SOFTWARE (RFC 8489).
pub const SOFTWARE: u16 = 0x8022;
/// ALTERNATE-SERVER (RFC 8489 §14.15): where a 300 (Try Alternate) sends
/// the client.
pub const ALTERNATE_SERVER: u16 = 0x8023;
/// FINGERPRINT (RFC 8489).
pub const FINGERPRINT: u16 = 0x8028;
/// ICE-CONTROLLED (RFC 8445).
pub const ICE_CONTROLLED: u16 = 0x8029;
/// ICE-CONTROLLING (RFC 8445).
pub const ICE_CONTROLLING: u16 = 0x802A;

/// Whether a type is comprehension-required (0x0000–0x7FFF).
pub const fn is_comprehension_required(attr_type: u16) -> bool {
    attr_type < 0x8000
}

/// Whether this codec understands a comprehension-required type. Types not
/// listed here make a request fail with 420 (Unknown Attribute).
pub const fn is_understood(attr_type: u16) -> bool {
    matches!(
        attr_type,
        MAPPED_ADDRESS
            | USERNAME
            | MESSAGE_INTEGRITY
            | ERROR_CODE
            | UNKNOWN_ATTRIBUTES
            | CHANNEL_NUMBER
            | LIFETIME
            | XOR_PEER_ADDRESS
            | DATA
            | REALM
            | NONCE
            | XOR_RELAYED_ADDRESS
            | REQUESTED_ADDRESS_FAMILY
            | REQUESTED_TRANSPORT
            | EVEN_PORT
            | DONT_FRAGMENT
            | MESSAGE_INTEGRITY_SHA256
            | XOR_MAPPED_ADDRESS
            | CONNECTION_ID
            | PRIORITY
            | USE_CANDIDATE
    )
}
