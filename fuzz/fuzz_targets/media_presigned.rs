//! Untrusted requests to the local media backend's presigned URLs (what
//! anyone can send to `/media/o/<key>?…`) into the verifier: never panics,
//! and a request it accepts names a valid key, the method it came with,
//! and for uploads exactly the content type and length it carries.
//!
//! Input: `METHOD\nKEY\nQUERY\nCONTENT-TYPE\nCONTENT-LENGTH`, any part
//! missing or garbage.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use samtale_media::storage::{LocalRequest, LocalSigner, ObjectKey, PresignedMethod};

/// The secret the seed corpus was signed with.
const SECRET: [u8; 32] = [0x5a; 32];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut fields = text.splitn(5, '\n');
    let method = fields.next().unwrap_or_default();
    let key = fields.next().unwrap_or_default();
    let query = fields.next().unwrap_or_default();
    let content_type = fields.next().filter(|c| !c.is_empty());
    let content_length = fields.next().and_then(|l| l.trim().parse().ok());
    let request = LocalRequest {
        method,
        key,
        query,
        content_type,
        content_length,
    };
    let _ = ObjectKey::new(key);
    let signer = LocalSigner::new(SECRET);
    // Seeds expire at 2 000 000 000 (2033): verify just before.
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_999_999_000);
    let Ok(verified) = signer.verify(&request, now) else {
        return;
    };
    assert_eq!(verified.key.as_str(), key);
    match verified.method {
        PresignedMethod::Get => assert!(method == "GET" || method == "HEAD"),
        PresignedMethod::Put => {
            assert_eq!(method, "PUT");
            assert_eq!(verified.content_length, content_length);
            if verified.part.is_none() {
                assert_eq!(verified.content_type.as_deref(), content_type);
            }
        }
    }
});
