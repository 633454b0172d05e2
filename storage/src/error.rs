//! Errors of the store, the server, the client and the pruner.

use http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error(
        "invalid archive id {id:?}: ids are 1-128 characters of [A-Za-z0-9._-], not starting with '.'"
    )]
    InvalidId { id: String },
    #[error("archive {id} not found")]
    NotFound { id: String },
    #[error("unsupported storage URL {url:?}: {reason}")]
    UnsupportedUrl { url: String, reason: String },
    #[error("cannot prepare the local storage directory {path}: {source}")]
    LocalDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("no randomness for a new archive id: {0}")]
    Random(String),
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("invalid storage service URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("cannot reach the storage service at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The service answered with an error status; `message` is its body.
    #[error("storage service answered {status} for {url}: {message}")]
    Status {
        url: String,
        status: StatusCode,
        message: String,
    },
    #[error("unexpected answer from the storage service at {url}: {reason}")]
    BadAnswer { url: String, reason: String },
    #[error("cannot read {path}: {source}")]
    ReadFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    WriteFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path} changed while it was uploaded ({expected} bytes announced, {actual} sent)")]
    FileChanged {
        path: std::path::PathBuf,
        expected: u64,
        actual: u64,
    },
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error(
        "no storage service found: set FISSION_STORAGESVC_URL, or install one (a Service labelled application=fission-storage)"
    )]
    NoService,
    #[error("more than one Service labelled application=fission-storage: {0}")]
    ManyServices(String),
}
