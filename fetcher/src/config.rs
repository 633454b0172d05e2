//! Everything the fetcher is told at startup.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::archive::ExtractLimits;
use crate::http::DownloadLimits;
use crate::paths::resolve_in_pod;
use crate::runtime::{RetryPolicy, RuntimeTarget};
use rivulet_api::specialize::FunctionSpecializeRequest;

/// Fission's fetcher port.
pub const DEFAULT_PORT: u16 = rivulet_api::defaults::FETCHER_PORT;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Address of the HTTP API (Fission: `:8000`).
    pub listen: SocketAddr,
    /// In-pod directory receiving the code (Fission's positional `<shared volume path>`).
    pub code_dir: PathBuf,
    /// In-pod directory receiving `<ns>/<name>/<key>` secret files.
    pub secret_dir: PathBuf,
    /// In-pod directory receiving `<ns>/<name>/<key>` configmap files.
    pub config_dir: PathBuf,
    /// Local mode: the directory that stands for the pod's `/` (`RIVULET_ROOT`).
    pub root: Option<PathBuf>,
    pub runtime: RuntimeTarget,
    /// Waiting for the runtime to listen.
    pub runtime_retry: RetryPolicy,
    /// Reading the Package (Fission: 5 attempts, to ride out a just-created object).
    pub package_retry: RetryPolicy,
    pub limits: ExtractLimits,
    /// Size and stall bounds of archive downloads.
    pub download: DownloadLimits,
    /// Newdeploy: specialize once at startup and be ready only afterwards.
    pub specialize_on_startup: Option<FunctionSpecializeRequest>,
    /// Secret the caller of `/specialize` and `/upload` must send as `Authorization: Bearer`.
    /// `None` accepts any caller (Fission's behaviour), logged as a warning at startup.
    pub token: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
            code_dir: "/userfunc".into(),
            secret_dir: "/secrets".into(),
            config_dir: "/configs".into(),
            root: None,
            runtime: RuntimeTarget::default(),
            runtime_retry: RetryPolicy::default(),
            package_retry: RetryPolicy {
                attempts: 5,
                min_delay: Duration::from_millis(50),
                max_delay: Duration::from_millis(500),
            },
            limits: ExtractLimits::default(),
            download: DownloadLimits::default(),
            specialize_on_startup: None,
            token: None,
        }
    }
}

impl Config {
    /// Where the code directory is on this machine (under `root` in local mode).
    pub fn code_dir_on_host(&self) -> PathBuf {
        resolve_in_pod(self.root.as_deref(), &self.code_dir)
    }

    pub fn secret_dir_on_host(&self) -> PathBuf {
        resolve_in_pod(self.root.as_deref(), &self.secret_dir)
    }

    pub fn config_dir_on_host(&self) -> PathBuf {
        resolve_in_pod(self.root.as_deref(), &self.config_dir)
    }
}
