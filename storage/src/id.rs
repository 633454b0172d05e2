//! Archive ids: random (UUID v4 form) when created, checked before they become object paths.

use std::fmt;

use crate::error::StorageError;

/// A checked archive id: safe as one path segment in every backend.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArchiveId(String);

impl ArchiveId {
    /// A new random id, formatted as a UUID v4 like Fission's.
    pub fn generate() -> Result<Self, StorageError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| StorageError::Random(e.to_string()))?;
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        let hex = crate::hex(&bytes);
        Ok(Self(format!(
            "{}-{}-{}-{}-{}",
            &hex[0..8],
            &hex[8..12],
            &hex[12..16],
            &hex[16..20],
            &hex[20..32]
        )))
    }

    /// Checks an id from a request or a listing: one path segment, so no `..`, `/` or `%` can
    /// reach the store (Fission confines ids with `os.Root` for the same reason).
    pub fn parse(id: &str) -> Result<Self, StorageError> {
        let ok = !id.is_empty()
            && id.len() <= 128
            && !id.starts_with('.')
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
        if ok {
            Ok(Self(id.to_owned()))
        } else {
            Err(StorageError::InvalidId { id: id.to_owned() })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArchiveId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_uuid_v4_and_parse() {
        let a = ArchiveId::generate().unwrap();
        let b = ArchiveId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 36);
        assert_eq!(a.as_str().as_bytes()[14], b'4');
        assert_eq!(ArchiveId::parse(a.as_str()).unwrap(), a);
    }

    #[test]
    fn ids_that_could_leave_the_store_are_refused() {
        for bad in [
            "",
            "..",
            ".hidden",
            "a/b",
            "../etc/passwd",
            "/abs",
            "a%2Fb",
            "a b",
            "é",
        ] {
            let err = ArchiveId::parse(bad).unwrap_err();
            assert!(err.to_string().contains("[A-Za-z0-9._-]"), "{bad}: {err}");
        }
        assert!(ArchiveId::parse(&"x".repeat(129)).is_err());
        assert!(ArchiveId::parse("fission-functions_1.zip").is_ok());
    }
}
