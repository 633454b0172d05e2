//! Archive storage for Rivulet, speaking Fission's `storagesvc` protocol (docs/storage.md):
//!
//! - [`Server`]: `POST/GET/DELETE/HEAD /v1/archive` and `GET /healthz` over an [`Store`]
//!   (Apache Arrow's `object_store`: local filesystem, S3/GCS/Azure behind cargo features);
//! - [`Client`]: what the `fission` CLI calls (`upload` returns the id, the archive URL and its
//!   sha256, as Fission's CLI records them in a Package);
//! - [`pruner`]: deletes archives that no Package references, as Fission's archive pruner;
//! - [`discovery`]: where the CLI finds the service (`FISSION_STORAGESVC_URL`, else the
//!   `application=fission-storage` Service).

pub mod client;
pub mod discovery;
pub mod error;
pub mod id;
pub mod local;
pub mod pruner;
pub mod server;
pub mod store;

pub use client::{Client, Uploaded};
pub use error::StorageError;
pub use id::ArchiveId;
pub use local::{LocalConfig, LocalStorage};
pub use pruner::{Pruner, PrunerConfig};
pub use server::{Server, ServerConfig, ServerHandle};
pub use store::{StorageKind, Store, StoredArchive};

/// Fission's storagesvc port.
pub const DEFAULT_PORT: u16 = 8000;

/// Fission's default cap on one archive (256 MiB, `STORAGE_MAX_ARCHIVE_SIZE_MIB`).
pub const DEFAULT_MAX_ARCHIVE_BYTES: u64 = 256 << 20;

/// The archive URL form Fission's client builds: `<base>/v1/archive?id=<escaped id>`.
pub fn archive_url(base_url: &str, id: &str) -> String {
    let escaped: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
    format!("{}/v1/archive?id={escaped}", base_url.trim_end_matches('/'))
}

/// The archive id a URL of this service names (its `id` query parameter), if any.
pub fn id_from_url(url: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    form_urlencoded::parse(query.as_bytes())
        .find(|(key, _)| key == "id")
        .map(|(_, value)| value.into_owned())
        .filter(|id| !id.is_empty())
}

/// Lowercase hex of `bytes` (sha256 sums, random ids).
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_urls_round_trip_their_id() {
        let url = archive_url("http://storagesvc.fission/", "a b/c");
        assert_eq!(url, "http://storagesvc.fission/v1/archive?id=a+b%2Fc");
        assert_eq!(id_from_url(&url).as_deref(), Some("a b/c"));
    }

    #[test]
    fn urls_without_an_id_name_none() {
        assert_eq!(id_from_url("http://example.com/code.zip"), None);
        assert_eq!(id_from_url("http://x/v1/archive?id="), None);
        assert_eq!(
            id_from_url("http://x/v1/archive?a=1&id=z#frag").as_deref(),
            Some("z")
        );
    }
}
