//! The long-term credential key (RFC 8489 §9.2.2):
//! `MD5(username ":" realm ":" password)`.

use md5::{Digest, Md5};

/// The 16-byte key MESSAGE-INTEGRITY is computed with.
pub type LongTermKey = [u8; 16];

/// `MD5(username:realm:password)`. Strings are used as given: prepare a
/// typed password with [`crate::saslprep::saslprep`] first (REST API
/// passwords are base64 and need nothing).
pub fn long_term_key(username: &str, realm: &str, password: &str) -> LongTermKey {
    let mut md5 = Md5::new();
    md5.update(username.as_bytes());
    md5.update(b":");
    md5.update(realm.as_bytes());
    md5.update(b":");
    md5.update(password.as_bytes());
    md5.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_of_joined_fields() {
        // echo -n 'user:realm:pass' | md5sum
        assert_eq!(
            long_term_key("user", "realm", "pass"),
            [
                0x84, 0x93, 0xfb, 0xc5, 0x3b, 0xa5, 0x82, 0xfb, 0x4c, 0x04, 0x4c, 0x45, 0x6b, 0xdc,
                0x40, 0xeb
            ]
        );
    }
}
