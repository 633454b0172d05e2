//! The CLI's errors: each one line that names what to fix (issue 20.6).

use std::path::PathBuf;

/// Why a `fission` command failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable kubeconfig.
    #[error(
        "cannot load the kubeconfig: {0}; set KUBECONFIG or pass --kubeconfig (rivulet up prints the line to export)"
    )]
    Kubeconfig(String),
    /// The API server did not answer.
    #[error(
        "cannot reach the Kubernetes API server at {server}: {reason}; is the cluster running (for example `rivulet up`) and is KUBECONFIG right?"
    )]
    Unreachable {
        /// Server URL from the kubeconfig.
        server: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The API server refused a request; its message names the field.
    #[error("{action}: {message}")]
    Api {
        /// What the CLI was doing, e.g. `error creating function`.
        action: String,
        /// The API server's message.
        message: String,
        /// HTTP status the API server answered.
        code: u16,
    },
    /// A referenced object does not exist.
    #[error("{kind} '{name}' not found in namespace '{namespace}'{hint}")]
    NotFound {
        /// Kind, as Fission names it (`environment`, `function`, ...).
        kind: &'static str,
        /// Object name.
        name: String,
        /// Namespace looked in.
        namespace: String,
        /// What to do about it (empty or starting with `; `).
        hint: String,
    },
    /// Wrong or missing flags.
    #[error("{0}")]
    Usage(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Nothing matched a `--code`/`--deploy`/`--src` path or glob.
    #[error("{0}: no such file or directory (check the --code/--deploy/--src path)")]
    NoFiles(String),
    /// Packing a directory or several files into a zip failed.
    #[error("cannot build the zip archive: {0}")]
    Zip(String),
    /// An archive over the literal limit, and no archive storage to upload it to.
    #[error(
        "archive {path} is {size} bytes; Package literals are limited to {limit} bytes (256 KiB) and this rivulet has no archive storage to upload larger ones to; pass a URL with --deploy/--src instead"
    )]
    TooLarge {
        /// The local path(s).
        path: String,
        /// Archive size in bytes.
        size: usize,
        /// The literal limit.
        limit: usize,
    },
    /// Archive storage could not take an archive over the literal limit.
    #[error(
        "archive {path} is {size} bytes, over the 256 KiB Package literal limit, and archive storage failed: {reason}"
    )]
    Storage {
        /// The local path(s).
        path: String,
        /// Archive size in bytes.
        size: usize,
        /// What failed (not found, unreachable, refused).
        reason: String,
    },
    /// An `archive` command's call to archive storage failed.
    #[error("archive storage: {0}")]
    ArchiveStorage(String),
    /// The router could not be called.
    #[error(
        "error calling the router at {url}: {reason}; set FISSION_ROUTER_URL to the router's address (rivulet up prints it)"
    )]
    Router {
        /// URL called.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The function answered an HTTP error status (`fn test`).
    #[error("error getting function response")]
    FunctionFailed,
    /// Writing to stdout failed.
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

/// Result of CLI operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is the API server's 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Api { code: 404, .. })
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::Usage(message.into())
    }
}
