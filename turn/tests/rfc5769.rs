//! RFC 5769 "Test Vectors for STUN", all four messages, verbatim: the
//! integrity and fingerprint attributes verify, the attributes decode to
//! the values the RFC states, and our builder reproduces every byte.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code

use std::net::SocketAddr;

use samtale_turn::auth::long_term_key;
use samtale_turn::codec::{
    Attribute, Class, Message, MessageBuilder, MessageType, Method, TransactionId, attr_type,
};
use samtale_turn::saslprep::saslprep;

/// Parses the RFC's hex dump layout (comments after the bytes ignored).
fn hex(dump: &str) -> Vec<u8> {
    dump.lines()
        .flat_map(|line| {
            line.split_whitespace()
                .take_while(|w| w.len() == 2 && w.chars().all(|c| c.is_ascii_hexdigit()))
                .map(|w| u8::from_str_radix(w, 16).unwrap())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// RFC 5769 §2.1: sample request (short-term credentials).
const SAMPLE_REQUEST: &str = "
     00 01 00 58     Request type and message length
     21 12 a4 42     Magic cookie
     b7 e7 a7 01  }
     bc 34 d6 86  }  Transaction ID
     fa 87 df ae  }
     80 22 00 10     SOFTWARE attribute header
     53 54 55 4e  }
     20 74 65 73  }  User-agent...
     74 20 63 6c  }  ...name
     69 65 6e 74  }
     00 24 00 04     PRIORITY attribute header
     6e 00 01 ff     ICE priority value
     80 29 00 08     ICE-CONTROLLED attribute header
     93 2f f9 b1  }  Pseudo-random tie breaker...
     51 26 3b 36  }   ...for ICE control
     00 06 00 09     USERNAME attribute header
     65 76 74 6a  }
     3a 68 36 76  }  Username (9 bytes) and padding (3 bytes)
     59 20 20 20  }
     00 08 00 14     MESSAGE-INTEGRITY attribute header
     9a ea a7 0c  }
     bf d8 cb 56  }
     78 1e f2 b5  }  HMAC-SHA1 fingerprint
     b2 d3 f2 49  }
     c1 b5 71 a2  }
     80 28 00 04     FINGERPRINT attribute header
     e5 7a 3b cf     CRC32 fingerprint
";

/// RFC 5769 §2.2: sample IPv4 response.
const IPV4_RESPONSE: &str = "
     01 01 00 3c     Response type and message length
     21 12 a4 42     Magic cookie
     b7 e7 a7 01  }
     bc 34 d6 86  }  Transaction ID
     fa 87 df ae  }
     80 22 00 0b     SOFTWARE attribute header
     74 65 73 74  }
     20 76 65 63  }  UTF-8 server name
     74 6f 72 20  }
     00 20 00 08     XOR-MAPPED-ADDRESS attribute header
     00 01 a1 47     Address family (IPv4) and xor'd mapped port number
     e1 12 a6 43     Xor'd mapped IPv4 address
     00 08 00 14     MESSAGE-INTEGRITY attribute header
     2b 91 f5 99  }
     fd 9e 90 c3  }
     8c 74 89 f9  }  HMAC-SHA1 fingerprint
     2a f9 ba 53  }
     f0 6b e7 d7  }
     80 28 00 04     FINGERPRINT attribute header
     c0 7d 4c 96     CRC32 fingerprint
";

/// RFC 5769 §2.3: sample IPv6 response.
const IPV6_RESPONSE: &str = "
     01 01 00 48     Response type and message length
     21 12 a4 42     Magic cookie
     b7 e7 a7 01  }
     bc 34 d6 86  }  Transaction ID
     fa 87 df ae  }
     80 22 00 0b     SOFTWARE attribute header
     74 65 73 74  }
     20 76 65 63  }  UTF-8 server name
     74 6f 72 20  }
     00 20 00 14     XOR-MAPPED-ADDRESS attribute header
     00 02 a1 47     Address family (IPv6) and xor'd mapped port number
     01 13 a9 fa  }
     a5 d3 f1 79  }  Xor'd mapped IPv6 address
     bc 25 f4 b5  }
     be d2 b9 d9  }
     00 08 00 14     MESSAGE-INTEGRITY attribute header
     a3 82 95 4e  }
     4b e6 7b f1  }
     17 84 c9 7c  }  HMAC-SHA1 fingerprint
     82 92 c2 75  }
     bf e3 ed 41  }
     80 28 00 04     FINGERPRINT attribute header
     c8 fb 0b 4c     CRC32 fingerprint
";

/// RFC 5769 §2.4: sample request with long-term authentication.
const LONG_TERM_REQUEST: &str = "
     00 01 00 60     Request type and message length
     21 12 a4 42     Magic cookie
     78 ad 34 33  }
     c6 ad 72 c0  }  Transaction ID
     29 da 41 2e  }
     00 06 00 12     USERNAME attribute header
     e3 83 9e e3  }
     83 88 e3 83  }
     aa e3 83 83  }  Username value (18 bytes) and padding (2 bytes)
     e3 82 af e3  }
     82 b9 00 00  }
     00 15 00 1c     NONCE attribute header
     66 2f 2f 34  }
     39 39 6b 39  }
     35 34 64 36  }
     4f 4c 33 34  }  Nonce value
     6f 4c 39 46  }
     53 54 76 79  }
     36 34 73 41  }
     00 14 00 0b     REALM attribute header
     65 78 61 6d  }
     70 6c 65 2e  }  Realm value (11 bytes) and padding (1 byte)
     6f 72 67 00  }
     00 08 00 14     MESSAGE-INTEGRITY attribute header
     f6 70 24 65  }
     6d d6 4a 3e  }
     02 b8 e0 71  }  HMAC-SHA1 fingerprint
     2e 85 c9 a2  }
     8c a8 96 66  }
";

/// The short-term password of §2.1–2.3 ("VOkJxbRl1RmTxUk/WvJxBt").
const SHORT_TERM_PASSWORD: &str = "VOkJxbRl1RmTxUk/WvJxBt";
const TID: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

fn response_for(addr: SocketAddr) -> Vec<u8> {
    let mut b = MessageBuilder::new(
        MessageType::new(Method::BINDING, Class::Success),
        TransactionId(TID),
    );
    b.padding_byte(0x20);
    b.add(&Attribute::Software("test vector"));
    b.add(&Attribute::XorMappedAddress(addr));
    b.add_message_integrity(SHORT_TERM_PASSWORD.as_bytes());
    b.add_fingerprint();
    b.finish()
}

#[test]
fn sample_request_verifies_and_is_reproduced() {
    let bytes = hex(SAMPLE_REQUEST);
    assert_eq!(bytes.len(), 108);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.method(), Method::BINDING);
    assert_eq!(msg.class(), Class::Request);
    assert_eq!(msg.verify_fingerprint(), Some(true));
    assert!(msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes()));
    assert!(!msg.verify_integrity(b"wrong"));
    assert!(msg.check_comprehension().is_ok());
    assert_eq!(
        msg.decode(attr_type::USERNAME).unwrap(),
        Some(Attribute::Username("evtj:h6vY"))
    );
    assert_eq!(
        msg.decode(attr_type::SOFTWARE).unwrap(),
        Some(Attribute::Software("STUN test client"))
    );

    let mut b = MessageBuilder::new(
        MessageType::new(Method::BINDING, Class::Request),
        TransactionId(TID),
    );
    b.padding_byte(0x20);
    b.add(&Attribute::Software("STUN test client"));
    b.add_raw(attr_type::PRIORITY, &[0x6e, 0x00, 0x01, 0xff]);
    b.add_raw(
        attr_type::ICE_CONTROLLED,
        &[0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36],
    );
    b.add(&Attribute::Username("evtj:h6vY"));
    b.add_message_integrity(SHORT_TERM_PASSWORD.as_bytes());
    b.add_fingerprint();
    assert_eq!(b.finish(), bytes);
}

#[test]
fn ipv4_response_verifies_and_is_reproduced() {
    let bytes = hex(IPV4_RESPONSE);
    assert_eq!(bytes.len(), 80);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.verify_fingerprint(), Some(true));
    assert!(msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes()));
    let addr: SocketAddr = "192.0.2.1:32853".parse().unwrap();
    assert_eq!(
        msg.decode(attr_type::XOR_MAPPED_ADDRESS).unwrap(),
        Some(Attribute::XorMappedAddress(addr))
    );
    assert_eq!(response_for(addr), bytes);
}

#[test]
fn ipv6_response_verifies_and_is_reproduced() {
    let bytes = hex(IPV6_RESPONSE);
    assert_eq!(bytes.len(), 92);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.verify_fingerprint(), Some(true));
    assert!(msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes()));
    let addr: SocketAddr = "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
        .parse()
        .unwrap();
    assert_eq!(
        msg.decode(attr_type::XOR_MAPPED_ADDRESS).unwrap(),
        Some(Attribute::XorMappedAddress(addr))
    );
    assert_eq!(response_for(addr), bytes);
}

#[test]
fn long_term_request_verifies_with_saslprep_and_is_reproduced() {
    let bytes = hex(LONG_TERM_REQUEST);
    assert_eq!(bytes.len(), 116);
    let msg = Message::parse(&bytes).unwrap();
    assert_eq!(msg.verify_fingerprint(), None);
    let username = "\u{30DE}\u{30C8}\u{30EA}\u{30C3}\u{30AF}\u{30B9}";
    assert_eq!(username, "マトリックス");
    assert_eq!(
        msg.decode(attr_type::USERNAME).unwrap(),
        Some(Attribute::Username(username))
    );
    assert_eq!(
        msg.decode(attr_type::NONCE).unwrap(),
        Some(Attribute::Nonce("f//499k954d6OL34oL9FSTvy64sA"))
    );
    assert_eq!(
        msg.decode(attr_type::REALM).unwrap(),
        Some(Attribute::Realm("example.org"))
    );
    // The password as the RFC gives it before SASLprep: "The<U+00AD>M<U+00AA>tr<U+2168>".
    let password = saslprep("The\u{00AD}M\u{00AA}tr\u{2168}").unwrap();
    assert_eq!(password, "TheMatrIX");
    let key = long_term_key(username, "example.org", &password);
    assert!(msg.verify_integrity(&key));
    assert!(!msg.verify_integrity(&long_term_key(username, "example.org", "TheMatrix")));

    let mut b = MessageBuilder::new(
        MessageType::new(Method::BINDING, Class::Request),
        TransactionId([
            0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0, 0x29, 0xda, 0x41, 0x2e,
        ]),
    );
    b.add(&Attribute::Username(username));
    b.add(&Attribute::Nonce("f//499k954d6OL34oL9FSTvy64sA"));
    b.add(&Attribute::Realm("example.org"));
    b.add_message_integrity(&key);
    assert_eq!(b.finish(), bytes);
}

#[test]
fn every_bit_flip_breaks_integrity_or_parsing() {
    let bytes = hex(IPV4_RESPONSE);
    // Flip one bit in each byte before MESSAGE-INTEGRITY's value: the message
    // either fails to parse or fails integrity. Never a panic.
    for i in 0..56 {
        let mut copy = bytes.clone();
        copy[i] ^= 0x01;
        if let Ok(msg) = Message::parse(&copy) {
            assert!(
                !msg.verify_integrity(SHORT_TERM_PASSWORD.as_bytes()),
                "flip at {i}"
            );
        }
    }
}
