//! Package checksums (Fission's `Archive.checksum`: `{type: "sha256", sum: <hex>}`).

use sha2::{Digest, Sha256};

use crate::error::FetcherError;

/// The only checksum type Fission defines.
pub const SHA256: &str = "sha256";

/// `Archive.checksum` as stored in a Package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checksum {
    /// `type`: only `sha256` is defined.
    pub kind: String,
    /// Hex digest; empty means "not verified".
    pub sum: String,
}

/// Incremental SHA-256, fed while the archive streams to disk.
#[derive(Debug, Default)]
pub struct Sha256Hasher(Sha256);

impl Sha256Hasher {
    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    /// Lower-case hex digest.
    pub fn finish(self) -> String {
        to_hex(&self.0.finalize())
    }
}

/// Lower-case hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// Checks a downloaded archive against its declared checksum. As in Fission, an empty `sum` means
/// "not verified" and only `sha256` is accepted otherwise. Hex case is ignored.
pub fn verify(expected: &Checksum, actual_hex: &str, url: &str) -> Result<(), FetcherError> {
    if expected.sum.is_empty() {
        return Ok(());
    }
    if expected.kind != SHA256 {
        return Err(FetcherError::UnsupportedChecksumType(expected.kind.clone()));
    }
    if expected.sum.trim().eq_ignore_ascii_case(actual_hex) {
        Ok(())
    } else {
        Err(FetcherError::ChecksumMismatch {
            url: url.to_owned(),
            expected: expected.sum.clone(),
            actual: actual_hex.to_owned(),
        })
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn sha(sum: &str) -> Checksum {
        Checksum {
            kind: SHA256.into(),
            sum: sum.into(),
        }
    }

    #[test]
    fn known_digest() {
        assert_eq!(sha256_hex(b"hello"), HELLO_SHA256);
        let mut hasher = Sha256Hasher::default();
        hasher.update(b"he");
        hasher.update(b"llo");
        assert_eq!(hasher.finish(), HELLO_SHA256);
    }

    #[test]
    fn matching_sum_passes_in_any_case() {
        verify(&sha(HELLO_SHA256), HELLO_SHA256, "u").unwrap();
        verify(&sha(&HELLO_SHA256.to_uppercase()), HELLO_SHA256, "u").unwrap();
    }

    #[test]
    fn mismatch_names_expected_and_actual() {
        let err = verify(&sha("00ff"), HELLO_SHA256, "http://s/a").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("expected sha256 00ff"), "{msg}");
        assert!(msg.contains(HELLO_SHA256), "{msg}");
    }

    #[test]
    fn empty_sum_is_not_verified() {
        verify(&Checksum::default(), HELLO_SHA256, "u").unwrap();
    }

    #[test]
    fn other_types_are_refused() {
        let checksum = Checksum {
            kind: "md5".into(),
            sum: "abc".into(),
        };
        assert!(matches!(
            verify(&checksum, HELLO_SHA256, "u"),
            Err(FetcherError::UnsupportedChecksumType(t)) if t == "md5"
        ));
    }
}
