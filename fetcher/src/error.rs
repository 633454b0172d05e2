//! The fetcher's error type. Every variant carries its cause, and maps to the HTTP status the
//! fetcher answers with, so the router can show the user *why* a specialization failed.

use std::path::PathBuf;

use hyper::StatusCode;

use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum FetcherError {
    #[error("invalid request: {0}")]
    BadRequest(String),

    #[error("fetch request has an empty filename")]
    EmptyFilename,

    #[error("filename {0:?} must be a single path component (no '/', '.' or '..')")]
    InvalidFilename(String),

    #[error("fetch request names no package (package.namespace and package.name are required)")]
    MissingPackageRef,

    #[error("package {namespace}/{name} not found")]
    PackageNotFound { namespace: String, name: String },

    #[error("{kind} {namespace}/{name} not found")]
    ObjectNotFound {
        kind: &'static str,
        namespace: String,
        name: String,
    },

    #[error("cannot read {kind} {namespace}/{name} from the Kubernetes API: {reason}")]
    ObjectRead {
        kind: &'static str,
        namespace: String,
        name: String,
        reason: String,
    },

    #[error("package {namespace}/{name} is malformed: {reason}")]
    PackageMalformed {
        namespace: String,
        name: String,
        reason: String,
    },

    #[error(
        "cannot fetch deployment: package build status was not \"succeeded\": package {namespace}/{name} has status {status:?}"
    )]
    BuildNotDeployable {
        namespace: String,
        name: String,
        status: String,
    },

    #[error("package {namespace}/{name} has an empty {which} archive (neither literal nor url)")]
    EmptyArchive {
        namespace: String,
        name: String,
        which: &'static str,
    },

    #[error("invalid download url {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    #[error("failed to download {url}: {reason}")]
    Download { url: String, reason: String },

    #[error("failed to download {url}: server answered {status}")]
    DownloadStatus { url: String, status: StatusCode },

    #[error("failed to download {url}: archive exceeds the limit of {limit} bytes")]
    DownloadTooLarge { url: String, limit: u64 },

    #[error("unsupported checksum type {0:?} (only \"sha256\" is supported)")]
    UnsupportedChecksumType(String),

    #[error("checksum validation failed for {url}: expected sha256 {expected}, got {actual}")]
    ChecksumMismatch {
        url: String,
        expected: String,
        actual: String,
    },

    #[error("refusing archive: {0}")]
    Archive(#[from] ArchiveError),

    #[error("{kind} {namespace}/{name} has an unsafe key {key:?}")]
    UnsafeKey {
        kind: &'static str,
        namespace: String,
        name: String,
        key: String,
    },

    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("runtime at {url} did not accept connections after {attempts} attempts: {reason}")]
    RuntimeUnreachable {
        url: String,
        attempts: u32,
        reason: String,
    },

    #[error("runtime at {url} failed to specialize: HTTP {status}: {body}")]
    RuntimeFailed {
        url: String,
        status: StatusCode,
        body: String,
    },

    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    #[error("cannot build the Kubernetes client (set KUBECONFIG or run in a cluster): {0}")]
    KubeClient(String),

    #[error("cannot build the HTTP client: {0}")]
    HttpClient(String),

    #[error(
        "unauthorized: this fetcher accepts /specialize, /fetch and /upload only with its pod's token \
         (Authorization: Bearer <token>); {0}"
    )]
    Unauthorized(&'static str),

    #[error(
        "this pod is already specialized with a different request (a pod is specialized once; \
         only the same claim may retry)"
    )]
    AlreadySpecialized,

    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("specialization at startup failed: {0}")]
    StartupSpecialization(Box<FetcherError>),
}

impl FetcherError {
    /// The status the fetcher answers with. Follows Fission where it is specific (400 for download
    /// and checksum problems, 404 for missing objects, 500 for a package that is not built);
    /// 422 for a refused archive, 502/503 for a runtime that failed or never came up.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_)
            | Self::EmptyFilename
            | Self::InvalidFilename(_)
            | Self::MissingPackageRef
            | Self::InvalidUrl { .. }
            | Self::Download { .. }
            | Self::DownloadStatus { .. }
            | Self::DownloadTooLarge { .. }
            | Self::UnsupportedChecksumType(_)
            | Self::ChecksumMismatch { .. } => StatusCode::BAD_REQUEST,
            Self::PackageNotFound { .. } | Self::ObjectNotFound { .. } => StatusCode::NOT_FOUND,
            Self::Archive(_) | Self::UnsafeKey { .. } | Self::EmptyArchive { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::RuntimeFailed { .. } => StatusCode::BAD_GATEWAY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::AlreadySpecialized => StatusCode::CONFLICT,
            Self::RuntimeUnreachable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::StartupSpecialization(inner) => inner.status(),
            Self::ObjectRead { .. }
            | Self::PackageMalformed { .. }
            | Self::BuildNotDeployable { .. }
            | Self::Io { .. }
            | Self::InvalidConfig(_)
            | Self::KubeClient(_)
            | Self::HttpClient(_)
            | Self::Bind { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_mismatch_names_both_sums() {
        let err = FetcherError::ChecksumMismatch {
            url: "http://s/a.zip".into(),
            expected: "aa".into(),
            actual: "bb".into(),
        };
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let msg = err.to_string();
        assert!(
            msg.contains("expected sha256 aa") && msg.contains("got bb"),
            "{msg}"
        );
    }

    #[test]
    fn runtime_failure_carries_the_runtime_body() {
        let err = FetcherError::RuntimeFailed {
            url: "http://127.0.0.1:8888/v2/specialize".into(),
            status: StatusCode::INTERNAL_SERVER_ERROR,
            body: "ModuleNotFoundError: No module named 'hello'".into(),
        };
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert!(err.to_string().contains("No module named 'hello'"));
    }

    #[test]
    fn startup_failure_keeps_the_inner_status() {
        let err = FetcherError::StartupSpecialization(Box::new(FetcherError::PackageNotFound {
            namespace: "ns".into(),
            name: "p".into(),
        }));
        assert_eq!(err.status(), StatusCode::NOT_FOUND);
        assert!(err.to_string().contains("package ns/p not found"));
    }
}
