//! A stable content hash for "was this built from the same spec?" labels.
//!
//! `std`'s hashers are not stable across Rust releases, and a hash that changed with the operator's
//! build would roll every warm pod on upgrade; FNV-1a over canonical JSON is stable forever.

use serde::Serialize;

/// FNV-1a (64-bit) of the value's JSON serialization, as 16 hex digits. `serde_json` writes map
/// keys in sorted order (no `preserve_order` feature), so equal values hash equally.
pub fn stable_hash(value: &impl Serialize) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let bytes = serde_json::to_vec(value).unwrap_or_default();
    let hash = bytes
        .iter()
        .fold(OFFSET, |h, b| (h ^ u64::from(*b)).wrapping_mul(PRIME));
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::stable_hash;

    #[test]
    fn stable_and_content_sensitive() {
        let a = serde_json::json!({"image": "fission/python-env", "poolsize": 3});
        let b = serde_json::json!({"poolsize": 3, "image": "fission/python-env"});
        assert_eq!(
            stable_hash(&a),
            stable_hash(&b),
            "key order does not matter"
        );
        assert_ne!(
            stable_hash(&a),
            stable_hash(&serde_json::json!({"image": "x", "poolsize": 3}))
        );
        // Pinned: this value must never change across releases.
        assert_eq!(
            stable_hash(&serde_json::json!({"a": 1})),
            "9c3e82dd6fcae8b1"
        );
    }
}
