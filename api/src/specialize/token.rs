//! Who may specialize a warm pod: the fetcher token of an Environment's pool pods.
//!
//! A warm pod's fetcher accepts `/specialize` and `/fetch` only with `Authorization: Bearer
//! <token>`. The token is derived from one installation key, `HMAC-SHA256(key,
//! "fetcher-token/" + environment uid)`, so the operator (which writes it into a Secret that only
//! the fetcher container mounts) and the router (which sends it) compute the same value without
//! the router reading any Secret. A recreated Environment has a new uid, hence a new token, and
//! pods of one Environment cannot be specialized with another's token.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Fewest bytes an installation key may have (the HMAC-SHA256 block needs no more than 64, and
/// 32 random bytes are the hash's own strength).
pub const MIN_KEY_BYTES: usize = 32;

/// Key of the token Secret's only entry.
pub const TOKEN_SECRET_KEY: &str = "token";

/// Where the fetcher container mounts the token Secret.
pub const TOKEN_MOUNT_DIR: &str = "/etc/rivulet/fetcher";

/// Name of the token Secret of Environment `env` (in the Environment's namespace). The suffix
/// keeps it apart from users' Secrets; Secret names allow 253 characters, Environment names 63.
pub fn token_secret_name(env: &str) -> String {
    format!("{env}.rivulet-fetcher-token")
}

/// In-pod path of the token file the fetcher is given (`--token-file`).
pub fn token_file() -> String {
    format!("{TOKEN_MOUNT_DIR}/{TOKEN_SECRET_KEY}")
}

/// Why a key cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetcherKeyError {
    /// Too short to be a secret.
    #[error(
        "the fetcher key has {0} bytes after trimming whitespace; at least {MIN_KEY_BYTES} are \
         required (for example 64 hex digits from `openssl rand -hex 32`)"
    )]
    TooShort(usize),
}

/// The installation key from which every Environment's fetcher token is derived.
#[derive(Clone, PartialEq, Eq)]
pub struct FetcherKey(Vec<u8>);

impl FetcherKey {
    /// The key held in a key file's bytes (surrounding whitespace, such as a final newline, is
    /// not part of it).
    pub fn from_file_bytes(bytes: &[u8]) -> Result<Self, FetcherKeyError> {
        let key = bytes.trim_ascii();
        if key.len() < MIN_KEY_BYTES {
            return Err(FetcherKeyError::TooShort(key.len()));
        }
        Ok(Self(key.to_vec()))
    }

    /// The text of a new key file made from `random` bytes (hex, newline-terminated).
    pub fn file_text(random: &[u8; 32]) -> String {
        let mut text = hex(random);
        text.push('\n');
        text
    }

    /// The fetcher token of the Environment with uid `env_uid` (64 hex digits).
    pub fn token_for(&self, env_uid: &str) -> String {
        hex(&self.mac(&["fetcher-token/", env_uid]))
    }

    /// The token trigger deliveries present on the router's internal listener, which calls any
    /// function by name: only the controller (which holds the key) may use it. A different
    /// message from every fetcher token, so neither can stand in for the other.
    pub fn router_internal_token(&self) -> String {
        hex(&self.mac(&["router-internal"]))
    }

    /// A short public name of this key: shows which key is in use (logs, pod hash) without
    /// revealing it or any token.
    pub fn fingerprint(&self) -> String {
        hex(&self.mac(&["fingerprint"])[..8])
    }

    fn mac(&self, parts: &[&str]) -> Vec<u8> {
        // HMAC takes keys of any length, so this cannot fail.
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else {
            return Vec::new();
        };
        for part in parts {
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().to_vec()
    }
}

impl std::fmt::Debug for FetcherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FetcherKey({})", self.fingerprint())
    }
}

/// Serialized as its fingerprint: hashing a pool pod's settings rolls the pool when the key
/// changes, and the key itself is never written anywhere.
impl serde::Serialize for FetcherKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.fingerprint())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FetcherKey {
        FetcherKey::from_file_bytes(&FetcherKey::file_text(&[7; 32]).into_bytes()).unwrap()
    }

    #[test]
    fn the_router_internal_token_is_its_own_derivation() {
        // Vector from Python's hmac module: hmac.new(b"k" * 32, b"router-internal", sha256).
        let key = FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
        assert_eq!(
            key.router_internal_token(),
            "7dbcbac1762e7791e1d7155441a1ffeed3eaa2fe37001e15211ebed18c9e9b57"
        );
        assert_ne!(key.router_internal_token(), key.token_for(""));
    }

    #[test]
    fn a_token_is_hmac_sha256_of_the_environment_uid() {
        // Vector from Python's hmac module: hmac.new(b"k" * 32, b"fetcher-token/uid-1", sha256).
        let key = FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
        assert_eq!(
            key.token_for("uid-1"),
            "b9d681b69a2c6049058d18c9fa7cc449f6c03a0fe0873cdb104e2f4971cb69b5",
            "token derivation changed: routers and operators of one install would disagree"
        );
    }

    #[test]
    fn tokens_differ_per_environment_and_per_key() {
        let a = key();
        let b = FetcherKey::from_file_bytes(&[b'x'; 40]).unwrap();
        assert_ne!(a.token_for("uid-1"), a.token_for("uid-2"));
        assert_ne!(a.token_for("uid-1"), b.token_for("uid-1"));
        assert_eq!(a.token_for("uid-1"), key().token_for("uid-1"));
        assert_ne!(a.fingerprint(), b.fingerprint());
    }

    #[test]
    fn key_files_are_trimmed_and_short_keys_refused() {
        let text = FetcherKey::file_text(&[0xab; 32]);
        assert_eq!(text.len(), 65);
        assert!(text.ends_with('\n'));
        let with_space = format!("  {text}\n");
        assert_eq!(
            FetcherKey::from_file_bytes(text.as_bytes()).unwrap(),
            FetcherKey::from_file_bytes(with_space.as_bytes()).unwrap()
        );
        let err = FetcherKey::from_file_bytes(b"short\n").unwrap_err();
        assert_eq!(err, FetcherKeyError::TooShort(5));
        assert!(err.to_string().contains("at least 32"), "{err}");
    }

    #[test]
    fn the_key_never_shows_in_debug_or_serialized_form() {
        let key = FetcherKey::from_file_bytes(b"0123456789abcdef0123456789abcdef").unwrap();
        let debug = format!("{key:?}");
        let json = serde_json::to_string(&key).unwrap();
        for shown in [&debug, &json] {
            assert!(!shown.contains("0123456789abcdef"), "{shown}");
            assert!(shown.contains(&key.fingerprint()), "{shown}");
        }
    }

    #[test]
    fn secret_name_and_mount_path() {
        assert_eq!(token_secret_name("python"), "python.rivulet-fetcher-token");
        assert_eq!(token_file(), "/etc/rivulet/fetcher/token");
    }
}
