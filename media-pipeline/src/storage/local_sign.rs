//! samtale's own "presigned" URLs for the local backend.
//!
//! A URL is `<base>/<key>?expires=<unix s>&sig=<mac>` for downloads and
//! `<base>/<key>?expires=<unix s>&ct=<content type>&len=<bytes>&sig=<mac>` for
//! uploads, where `mac` is base64url(HMAC-SHA256(secret, message)) and the
//! message is, newline-separated: a version tag, the method, the key, the
//! content type (empty for GET), the length (empty for GET) and the expiry.
//! None of the fields can contain a newline (keys and content types are
//! validated), so the encoding is unambiguous.
//!
//! A multipart part upload is
//! `<base>/<key>?expires=…&uploadId=…&partNumber=…&len=…&sig=…`, its message
//! tagged with a different version tag and made of the method, key, upload
//! id, part number, length and expiry (upload ids are 32 hex characters).
//! The part's content type is not signed: the object's type was fixed when
//! the upload was created.
//!
//! The HTTP layer calls [`LocalSigner::verify`] with the request's method,
//! path key, query string and `Content-Type`/`Content-Length` headers.

use std::fmt;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{ObjectKey, PresignedMethod};
use crate::clock::unix_seconds;

const VERSION_TAG: &str = "samtale-local-presign-v1";
const PART_VERSION_TAG: &str = "samtale-local-presign-part-v1";

/// Whether `id` has the shape of a local multipart upload id (32 lowercase
/// hex characters), so it is safe as a directory name.
pub(crate) fn is_local_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Signs and verifies local presigned URLs. The secret never appears in
/// `Debug` output.
#[derive(Clone)]
pub struct LocalSigner {
    secret: [u8; 32],
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LocalSigner { secret: <redacted> }")
    }
}

/// Why a local presigned request was refused. The HTTP layer maps
/// `Expired`/`BadSignature`/`Malformed` to 403 and the mismatches to 403 or
/// 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The query lacks a field, repeats one, or a field is not parsable.
    #[error("malformed presigned URL")]
    Malformed,
    /// Only GET, HEAD and PUT are presigned.
    #[error("method not allowed for a presigned URL")]
    MethodNotAllowed,
    /// The signature does not match (tampered URL, other key or method).
    #[error("bad signature")]
    BadSignature,
    /// The URL has expired.
    #[error("presigned URL expired")]
    Expired,
    /// The upload's `Content-Type` is not the signed one.
    #[error("content type differs from the signed one")]
    ContentTypeMismatch,
    /// The upload's `Content-Length` is missing or not the signed one.
    #[error("content length differs from the signed one")]
    LengthMismatch,
}

/// The parts of an incoming HTTP request the verifier needs.
#[derive(Debug, Clone, Copy)]
pub struct LocalRequest<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// The object key: the URL path after the base path, without the `/`.
    pub key: &'a str,
    /// The raw query string (without `?`).
    pub query: &'a str,
    /// The `Content-Type` header, if any.
    pub content_type: Option<&'a str>,
    /// The `Content-Length` header, if any.
    pub content_length: Option<u64>,
}

/// A request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedRequest {
    /// Upload or download (HEAD counts as download).
    pub method: PresignedMethod,
    /// The object.
    pub key: ObjectKey,
    /// For uploads: the signed content type.
    pub content_type: Option<String>,
    /// For uploads: the signed exact length.
    pub content_length: Option<u64>,
    /// For multipart part uploads: which upload and part.
    pub part: Option<VerifiedPart>,
}

/// The multipart part a verified upload is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPart {
    /// The upload id (32 hex characters).
    pub upload_id: String,
    /// The part number, 1..=10000.
    pub part_number: u16,
}

impl LocalSigner {
    /// A signer with the given 32-byte secret (keep it in the data
    /// directory so URLs survive a restart).
    pub fn new(secret: [u8; 32]) -> Self {
        Self { secret }
    }

    /// A signer with a fresh random secret.
    pub fn generate() -> Self {
        Self::new(rand::random())
    }

    fn mac(
        &self,
        method: PresignedMethod,
        key: &str,
        content_type: &str,
        length: Option<u64>,
        expires: u64,
    ) -> [u8; 32] {
        // HMAC accepts keys of any length, so this cannot fail.
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return [0; 32];
        };
        let length = length.map(|l| l.to_string()).unwrap_or_default();
        let message = format!(
            "{VERSION_TAG}\n{}\n{key}\n{content_type}\n{length}\n{expires}",
            method.as_str()
        );
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn part_mac(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u16,
        length: u64,
        expires: u64,
    ) -> [u8; 32] {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.secret) else {
            return [0; 32];
        };
        let message = format!(
            "{PART_VERSION_TAG}\nPUT\n{key}\n{upload_id}\n{part_number}\n{length}\n{expires}"
        );
        mac.update(message.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The query string (without `?`) of a presigned part upload.
    pub(crate) fn part_query(
        &self,
        key: &ObjectKey,
        upload_id: &str,
        part_number: u16,
        length: u64,
        expires_at: SystemTime,
    ) -> String {
        let expires = unix_seconds(expires_at);
        let sig = URL_SAFE_NO_PAD.encode(self.part_mac(
            key.as_str(),
            upload_id,
            part_number,
            length,
            expires,
        ));
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("expires", &expires.to_string());
        q.append_pair("uploadId", upload_id);
        q.append_pair("partNumber", &part_number.to_string());
        q.append_pair("len", &length.to_string());
        q.append_pair("sig", &sig);
        q.finish()
    }

    /// The query string (without `?`) of a presigned request.
    pub(crate) fn query(
        &self,
        method: PresignedMethod,
        key: &ObjectKey,
        upload: Option<(&str, u64)>,
        expires_at: SystemTime,
    ) -> String {
        let expires = unix_seconds(expires_at);
        let (ct, len) = match upload {
            Some((ct, len)) => (ct, Some(len)),
            None => ("", None),
        };
        let sig = URL_SAFE_NO_PAD.encode(self.mac(method, key.as_str(), ct, len, expires));
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        q.append_pair("expires", &expires.to_string());
        if let Some(len) = len {
            q.append_pair("ct", ct);
            q.append_pair("len", &len.to_string());
        }
        q.append_pair("sig", &sig);
        q.finish()
    }

    /// Verifies an incoming request at time `now`: signature first
    /// (constant-time), then expiry, then for uploads the declared content
    /// type and exact length.
    pub fn verify(
        &self,
        req: &LocalRequest<'_>,
        now: SystemTime,
    ) -> Result<VerifiedRequest, VerifyError> {
        let method = match req.method {
            "GET" | "HEAD" => PresignedMethod::Get,
            "PUT" => PresignedMethod::Put,
            _ => return Err(VerifyError::MethodNotAllowed),
        };
        let key = ObjectKey::new(req.key).map_err(|_| VerifyError::Malformed)?;
        let q = Query::parse(req.query)?;
        let expires: u64 = q.expires.parse().map_err(|_| VerifyError::Malformed)?;
        let sig = URL_SAFE_NO_PAD
            .decode(q.sig.as_bytes())
            .map_err(|_| VerifyError::BadSignature)?;
        if q.upload_id.is_some() || q.part_number.is_some() {
            return self.verify_part(req, method, key, &q, expires, &sig, now);
        }
        let (ct, len) = match method {
            PresignedMethod::Put => {
                let ct = q.ct.ok_or(VerifyError::Malformed)?;
                let len: u64 = q
                    .len
                    .ok_or(VerifyError::Malformed)?
                    .parse()
                    .map_err(|_| VerifyError::Malformed)?;
                (ct, Some(len))
            }
            PresignedMethod::Get => (String::new(), None),
        };
        let expected = self.mac(method, key.as_str(), &ct, len, expires);
        if sig.len() != expected.len() || !bool::from(expected.ct_eq(&sig)) {
            return Err(VerifyError::BadSignature);
        }
        if unix_seconds(now) >= expires {
            return Err(VerifyError::Expired);
        }
        if method == PresignedMethod::Put {
            if req.content_type != Some(ct.as_str()) {
                return Err(VerifyError::ContentTypeMismatch);
            }
            if req.content_length != len {
                return Err(VerifyError::LengthMismatch);
            }
        }
        Ok(VerifiedRequest {
            method,
            key,
            content_type: (method == PresignedMethod::Put).then_some(ct),
            content_length: len,
            part: None,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn verify_part(
        &self,
        req: &LocalRequest<'_>,
        method: PresignedMethod,
        key: ObjectKey,
        q: &Query,
        expires: u64,
        sig: &[u8],
        now: SystemTime,
    ) -> Result<VerifiedRequest, VerifyError> {
        if method != PresignedMethod::Put {
            return Err(VerifyError::MethodNotAllowed);
        }
        let (Some(upload_id), Some(part), Some(len)) = (&q.upload_id, &q.part_number, &q.len)
        else {
            return Err(VerifyError::Malformed);
        };
        let part_number: u16 = part.parse().map_err(|_| VerifyError::Malformed)?;
        let len: u64 = len.parse().map_err(|_| VerifyError::Malformed)?;
        if !is_local_upload_id(upload_id) || !(1..=super::MAX_PARTS).contains(&part_number) {
            return Err(VerifyError::Malformed);
        }
        let expected = self.part_mac(key.as_str(), upload_id, part_number, len, expires);
        if sig.len() != expected.len() || !bool::from(expected.ct_eq(sig)) {
            return Err(VerifyError::BadSignature);
        }
        if unix_seconds(now) >= expires {
            return Err(VerifyError::Expired);
        }
        if req.content_length != Some(len) {
            return Err(VerifyError::LengthMismatch);
        }
        Ok(VerifiedRequest {
            method,
            key,
            content_type: None,
            content_length: Some(len),
            part: Some(VerifiedPart {
                upload_id: upload_id.clone(),
                part_number,
            }),
        })
    }
}

#[derive(Default)]
struct Query {
    expires: String,
    sig: String,
    ct: Option<String>,
    len: Option<String>,
    upload_id: Option<String>,
    part_number: Option<String>,
}

impl Query {
    fn parse(query: &str) -> Result<Self, VerifyError> {
        let mut expires = None;
        let mut sig = None;
        let mut ct = None;
        let mut len = None;
        let mut upload_id = None;
        let mut part_number = None;
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "expires" => &mut expires,
                "sig" => &mut sig,
                "ct" => &mut ct,
                "len" => &mut len,
                "uploadId" => &mut upload_id,
                "partNumber" => &mut part_number,
                _ => continue,
            };
            if slot.replace(value.into_owned()).is_some() {
                return Err(VerifyError::Malformed);
            }
        }
        Ok(Self {
            expires: expires.ok_or(VerifyError::Malformed)?,
            sig: sig.ok_or(VerifyError::Malformed)?,
            ct,
            len,
            upload_id,
            part_number,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn t(s: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(s)
    }

    #[test]
    fn put_round_trip_and_refusals() {
        let s = LocalSigner::new([7; 32]);
        let key = ObjectKey::new("m/a.bin").unwrap();
        let q = s.query(
            PresignedMethod::Put,
            &key,
            Some(("image/jpeg; q=1+2", 10)),
            t(1000),
        );
        let req = LocalRequest {
            method: "PUT",
            key: "m/a.bin",
            query: &q,
            content_type: Some("image/jpeg; q=1+2"),
            content_length: Some(10),
        };
        let ok = s.verify(&req, t(999)).unwrap();
        assert_eq!(ok.content_length, Some(10));
        assert_eq!(s.verify(&req, t(1000)), Err(VerifyError::Expired));
        let other = LocalRequest {
            key: "m/b.bin",
            ..req
        };
        assert_eq!(s.verify(&other, t(0)), Err(VerifyError::BadSignature));
        let get = LocalRequest {
            method: "GET",
            ..req
        };
        assert_eq!(s.verify(&get, t(0)), Err(VerifyError::BadSignature));
        let del = LocalRequest {
            method: "DELETE",
            ..req
        };
        assert_eq!(s.verify(&del, t(0)), Err(VerifyError::MethodNotAllowed));
        let dup = format!("{q}&expires=5");
        let dup = LocalRequest { query: &dup, ..req };
        assert_eq!(s.verify(&dup, t(0)), Err(VerifyError::Malformed));
        let other_signer = LocalSigner::new([8; 32]);
        assert_eq!(
            other_signer.verify(&req, t(0)),
            Err(VerifyError::BadSignature)
        );
    }

    #[test]
    fn part_round_trip_and_refusals() {
        let s = LocalSigner::new([7; 32]);
        let key = ObjectKey::new("m/big.bin").unwrap();
        let id = "0123456789abcdef0123456789abcdef";
        let q = s.part_query(&key, id, 2, 5000, t(1000));
        let req = LocalRequest {
            method: "PUT",
            key: "m/big.bin",
            query: &q,
            content_type: None,
            content_length: Some(5000),
        };
        let ok = s.verify(&req, t(999)).unwrap();
        assert_eq!(
            ok.part,
            Some(VerifiedPart {
                upload_id: id.to_owned(),
                part_number: 2
            })
        );
        assert_eq!(s.verify(&req, t(1000)), Err(VerifyError::Expired));
        let short = LocalRequest {
            content_length: Some(4999),
            ..req
        };
        assert_eq!(s.verify(&short, t(0)), Err(VerifyError::LengthMismatch));
        // Another part number, upload id or key under the same signature.
        for (from, to) in [
            ("partNumber=2", "partNumber=3"),
            ("uploadId=0123", "uploadId=1123"),
        ] {
            let moved = q.replacen(from, to, 1);
            assert_ne!(moved, q);
            let moved = LocalRequest {
                query: &moved,
                ..req
            };
            assert_eq!(s.verify(&moved, t(0)), Err(VerifyError::BadSignature));
        }
        let other = LocalRequest {
            key: "m/other.bin",
            ..req
        };
        assert_eq!(s.verify(&other, t(0)), Err(VerifyError::BadSignature));
        let get = LocalRequest {
            method: "GET",
            ..req
        };
        assert_eq!(s.verify(&get, t(0)), Err(VerifyError::MethodNotAllowed));
        // A path-like upload id never verifies.
        let evil = q.replacen(id, "..%2F..%2Fobjects", 1);
        let evil = LocalRequest {
            query: &evil,
            ..req
        };
        assert_eq!(s.verify(&evil, t(0)), Err(VerifyError::Malformed));
    }

    #[test]
    fn secret_is_not_in_debug() {
        let s = LocalSigner::new([0xab; 32]);
        let d = format!("{s:?}");
        assert!(!d.contains("171") && !d.contains("ab"), "{d}");
    }
}
