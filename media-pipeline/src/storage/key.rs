//! Object keys: a deliberately small alphabet, so a key is safe as a file
//! path under the local root, in a URL path without escaping, and in S3.

use std::fmt;

/// Longest key accepted, in bytes (S3 allows 1024).
pub const MAX_KEY_LEN: usize = 512;

/// A validated object key: `/`-separated segments of `[A-Za-z0-9._-]`, no
/// empty, `.` or `..` segment, no leading or trailing `/`, at most
/// [`MAX_KEY_LEN`] bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

/// Why a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Empty or longer than [`MAX_KEY_LEN`].
    #[error("object key must be 1..={MAX_KEY_LEN} bytes")]
    Length,
    /// A character outside `[A-Za-z0-9._-/]`.
    #[error("object key has a character outside [A-Za-z0-9._-/]")]
    Character,
    /// An empty, `.` or `..` segment.
    #[error("object key has an empty, '.' or '..' segment")]
    Segment,
}

impl ObjectKey {
    /// Validates `key`.
    pub fn new(key: impl Into<String>) -> Result<Self, KeyError> {
        let key = key.into();
        if key.is_empty() || key.len() > MAX_KEY_LEN {
            return Err(KeyError::Length);
        }
        if !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        {
            return Err(KeyError::Character);
        }
        if key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(KeyError::Segment);
        }
        Ok(Self(key))
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh random key under `prefix` (which must itself be valid):
    /// `prefix/` + 32 hex characters (128 random bits).
    pub fn random(prefix: &str) -> Result<Self, KeyError> {
        let bytes: [u8; 16] = rand::random();
        let mut name = String::with_capacity(prefix.len() + 33);
        name.push_str(prefix);
        name.push('/');
        for b in bytes {
            name.push_str(&format!("{b:02x}"));
        }
        Self::new(name)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

impl AsRef<str> for ObjectKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_keys() {
        for k in ["a", "media/0f/abc.jpg", "x-y_z.1/2"] {
            assert!(ObjectKey::new(k).is_ok(), "{k}");
        }
        let r = ObjectKey::random("media").unwrap();
        assert_eq!(r.as_str().len(), "media/".len() + 32);
    }

    #[test]
    fn refuses_traversal_and_odd_characters() {
        assert_eq!(ObjectKey::new(""), Err(KeyError::Length));
        assert_eq!(ObjectKey::new("a".repeat(513)), Err(KeyError::Length));
        for k in ["../etc/passwd", "a/../b", "/abs", "a//b", "a/", "./a"] {
            assert_eq!(ObjectKey::new(k), Err(KeyError::Segment), "{k}");
        }
        for k in ["a b", "a\\b", "a?b", "é", "a\nb", "a%2e"] {
            assert_eq!(ObjectKey::new(k), Err(KeyError::Character), "{k}");
        }
    }
}
