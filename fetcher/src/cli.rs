//! Command line of `rivulet fetcher`. Accepts Fission's own fetcher command line unchanged
//! (`-secret-dir /secrets -cfgmap-dir /configs [-specialize-on-startup -specialize-request <json>]
//! /userfunc`, Go's single-dash flags), so pod specs written for Fission's fetcher image work.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::{ArgAction, CommandFactory, Parser};

use crate::archive::ExtractLimits;
use crate::config::{Config, DEFAULT_PORT};

/// Fission's runtime port.
const DEFAULT_RUNTIME_PORT: u16 = rivulet_api::defaults::RUNTIME_PORT;
use crate::error::FetcherError;
use crate::http::DownloadLimits;
use crate::runtime::{RetryPolicy, RuntimeTarget};
use rivulet_api::specialize::FunctionSpecializeRequest;

/// Fission's fetcher protocol on port 8000: fetches function code, secrets and configmaps, then
/// specializes the runtime container.
#[derive(Debug, Clone, Parser)]
#[command(name = "rivulet fetcher", version)]
pub struct Args {
    /// In-pod directory receiving the function code (Fission's `<shared volume path>`).
    #[arg(default_value = "/userfunc")]
    pub shared_volume_path: PathBuf,

    /// In-pod directory receiving secrets as `<ns>/<name>/<key>`.
    #[arg(long, default_value = "/secrets")]
    pub secret_dir: PathBuf,

    /// In-pod directory receiving configmaps as `<ns>/<name>/<key>`.
    #[arg(long = "cfgmap-dir", default_value = "/configs")]
    pub cfgmap_dir: PathBuf,

    /// Specialize once at startup with --specialize-request (newdeploy); ready only afterwards.
    #[arg(
        long,
        action = ArgAction::Set,
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        default_value_t = false
    )]
    pub specialize_on_startup: bool,

    /// JSON `{"FetchReq":…,"LoadReq":…}` used by --specialize-on-startup.
    #[arg(long, env = "RIVULET_SPECIALIZE_REQUEST")]
    pub specialize_request: Option<String>,

    /// Port of the HTTP API.
    #[arg(long, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    /// Address to listen on; in local mode, the pod's own loopback address. Default 0.0.0.0
    /// (an empty value counts as unset, as in the runtimes).
    #[arg(long, env = "RIVULET_BIND_ADDRESS")]
    pub bind_address: Option<String>,

    /// Host of the runtime container. Default: the bind address when set, else 127.0.0.1.
    #[arg(long)]
    pub runtime_host: Option<String>,

    /// Port of the runtime container; the runtimes read the same variable. Default 8888.
    #[arg(long, env = "RIVULET_RUNTIME_PORT")]
    pub runtime_port: Option<String>,

    /// Attempts to reach a runtime that is not listening yet (Fission: 30).
    #[arg(long, default_value_t = 30)]
    pub runtime_attempts: u32,

    /// Local mode: directory standing for the pod's `/`; in-pod paths are resolved below it.
    #[arg(long, env = "RIVULET_ROOT")]
    pub root: Option<PathBuf>,

    /// Largest total uncompressed size of a zip archive, in bytes.
    #[arg(long, default_value_t = ExtractLimits::default().max_total_bytes)]
    pub max_unzipped_bytes: u64,

    /// Largest number of entries in a zip archive.
    #[arg(long, default_value_t = ExtractLimits::default().max_entries)]
    pub max_zip_entries: usize,

    /// Largest uncompressed size of one file in a zip archive, in bytes.
    #[arg(long, default_value_t = ExtractLimits::default().max_file_bytes)]
    pub max_file_bytes: u64,

    /// Largest archive downloaded from a URL, in bytes.
    #[arg(long, default_value_t = DownloadLimits::default().max_bytes)]
    pub max_download_bytes: u64,

    /// Longest stall of an archive download (no headers or no data), in seconds.
    #[arg(long, default_value_t = DownloadLimits::default().idle_timeout.as_secs())]
    pub download_idle_timeout: u64,

    /// File holding the token callers of /specialize, /fetch and /upload must send as
    /// `Authorization: Bearer <token>` (in-pod path; under --root in local mode).
    #[arg(long, env = "RIVULET_FETCHER_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Accepted for compatibility with Fission's command line; tracing export is not wired.
    #[arg(long, hide = true)]
    pub jaeger_collector_endpoint: Option<String>,
}

impl Args {
    /// Parses `rivulet fetcher` arguments (without the program name), Go-style or GNU-style.
    pub fn parse_from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let normalized = normalize_go_flags(args.into_iter().map(Into::into));
        Self::try_parse_from(std::iter::once("rivulet fetcher".to_owned()).chain(normalized))
    }

    pub fn into_config(self) -> Result<Config, FetcherError> {
        let specialize_on_startup = if self.specialize_on_startup {
            let json = self.specialize_request.as_deref().unwrap_or_default();
            if json.trim().is_empty() {
                return Err(FetcherError::InvalidConfig(
                    "--specialize-on-startup needs --specialize-request <json>".into(),
                ));
            }
            let request: FunctionSpecializeRequest = serde_json::from_str(json).map_err(|e| {
                FetcherError::InvalidConfig(format!(
                    "--specialize-request is not a specialize request: {e}"
                ))
            })?;
            Some(request)
        } else {
            None
        };
        let bind: Option<IpAddr> = parse_optional(self.bind_address.as_deref(), "--bind-address")?;
        let runtime_port: u16 = parse_optional(self.runtime_port.as_deref(), "--runtime-port")?
            .unwrap_or(DEFAULT_RUNTIME_PORT);
        if runtime_port == 0 {
            return Err(FetcherError::InvalidConfig(
                "the runtime port must be a real port, not 0".into(),
            ));
        }
        let runtime_host = self
            .runtime_host
            .or_else(|| bind.map(|ip| ip.to_string()))
            .unwrap_or_else(|| RuntimeTarget::default().host);
        let root = self.root.filter(|r| !r.as_os_str().is_empty());
        let token = match self.token_file.filter(|f| !f.as_os_str().is_empty()) {
            Some(file) => {
                let on_host = crate::paths::resolve_in_pod(root.as_deref(), &file);
                let raw = std::fs::read(&on_host).map_err(|e| {
                    FetcherError::InvalidConfig(format!(
                        "cannot read --token-file {}: {e}",
                        on_host.display()
                    ))
                })?;
                let token = raw.trim_ascii().to_vec();
                if token.is_empty() {
                    return Err(FetcherError::InvalidConfig(format!(
                        "--token-file {} is empty",
                        on_host.display()
                    )));
                }
                Some(token)
            }
            None => None,
        };
        Ok(Config {
            listen: SocketAddr::new(bind.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), self.port),
            code_dir: self.shared_volume_path,
            secret_dir: self.secret_dir,
            config_dir: self.cfgmap_dir,
            root,
            runtime: RuntimeTarget {
                host: runtime_host,
                port: runtime_port,
            },
            runtime_retry: RetryPolicy {
                attempts: self.runtime_attempts.max(1),
                ..RetryPolicy::default()
            },
            limits: ExtractLimits {
                max_total_bytes: self.max_unzipped_bytes,
                max_entries: self.max_zip_entries,
                max_file_bytes: self.max_file_bytes,
            },
            download: DownloadLimits {
                max_bytes: self.max_download_bytes,
                idle_timeout: Duration::from_secs(self.download_idle_timeout.max(1)),
            },
            specialize_on_startup,
            token,
            ..Config::default()
        })
    }
}

/// Parses a flag or environment value, treating an empty one as unset.
fn parse_optional<T>(value: Option<&str>, flag: &str) -> Result<Option<T>, FetcherError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|e| FetcherError::InvalidConfig(format!("{flag} {text:?}: {e}"))),
    }
}

/// Rewrites Go-style `-flag` / `-flag=value` into `--flag` for the flags we know, leaving values
/// (`-1`, JSON) and everything after `--` untouched.
pub fn normalize_go_flags(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let command = Args::command();
    let long_names: Vec<String> = command
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_owned))
        .chain(["help".to_owned(), "version".to_owned()])
        .collect();
    let mut out = Vec::new();
    let mut passthrough = false;
    for arg in args {
        if passthrough || arg == "--" {
            passthrough = true;
            out.push(arg);
            continue;
        }
        let go_name = arg
            .strip_prefix('-')
            .filter(|rest| !rest.starts_with('-'))
            .map(|rest| rest.split_once('=').map_or(rest, |(name, _)| name));
        match go_name {
            Some(name) if long_names.iter().any(|long| long == name) => out.push(format!("-{arg}")),
            _ => out.push(arg),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Args::parse_from_args(args.iter().copied())
            .unwrap()
            .into_config()
            .unwrap()
    }

    #[test]
    fn fissions_pool_command_line() {
        let config = parse(&[
            "-secret-dir",
            "/secrets",
            "-cfgmap-dir",
            "/configs",
            "/userfunc",
        ]);
        assert_eq!(config.code_dir, PathBuf::from("/userfunc"));
        assert_eq!(config.secret_dir, PathBuf::from("/secrets"));
        assert_eq!(config.config_dir, PathBuf::from("/configs"));
        assert_eq!(config.listen.port(), 8000);
        assert!(config.specialize_on_startup.is_none());
    }

    #[test]
    fn fissions_newdeploy_command_line() {
        let request = r#"{"FetchReq":{"fetchType":1,"package":{"name":"p","namespace":"ns"},"filename":"deployarchive","secretList":null,"configMapList":null,"keeparchive":false,"url":"","storagesvcurl":""},"LoadReq":{"filepath":"/userfunc/deployarchive","functionName":"hello.main","url":"","FunctionMetadata":null,"envVersion":2}}"#;
        let config = parse(&[
            "-secret-dir",
            "/secrets",
            "-cfgmap-dir",
            "/configs",
            "-specialize-on-startup",
            "-specialize-request",
            request,
            "/userfunc",
        ]);
        let startup = config.specialize_on_startup.unwrap();
        assert_eq!(startup.load_req.function_name, "hello.main");
        assert_eq!(config.code_dir, PathBuf::from("/userfunc"));
    }

    #[test]
    fn go_style_equals_and_bool_values() {
        let args = Args::parse_from_args(["-specialize-on-startup=false", "-port=9000"]).unwrap();
        assert!(!args.specialize_on_startup);
        assert_eq!(args.port, 9000);
    }

    #[test]
    fn startup_mode_needs_a_request() {
        let err = Args::parse_from_args(["--specialize-on-startup"])
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("--specialize-request"), "{err}");
        let err =
            Args::parse_from_args(["--specialize-on-startup", "--specialize-request", "{nope"])
                .unwrap()
                .into_config()
                .unwrap_err();
        assert!(
            err.to_string().contains("not a specialize request"),
            "{err}"
        );
    }

    #[test]
    fn bind_address_also_locates_the_runtime() {
        let config = parse(&["--bind-address", "127.0.0.9"]);
        assert_eq!(config.listen, "127.0.0.9:8000".parse().unwrap());
        assert_eq!(config.runtime.host, "127.0.0.9");
        let config = parse(&[
            "--bind-address",
            "127.0.0.9",
            "--runtime-host",
            "127.0.0.10",
        ]);
        assert_eq!(config.runtime.host, "127.0.0.10");
        let config = parse(&[]);
        assert_eq!(config.runtime.host, "127.0.0.1");
        assert!(config.listen.ip().is_unspecified());
    }

    #[test]
    fn values_and_positionals_are_not_rewritten() {
        let out = normalize_go_flags(
            [
                "-port",
                "-1",
                "-unknown",
                "--secret-dir",
                "/s",
                "--",
                "-port",
            ]
            .map(String::from),
        );
        assert_eq!(
            out,
            [
                "--port",
                "-1",
                "-unknown",
                "--secret-dir",
                "/s",
                "--",
                "-port"
            ]
        );
    }

    #[test]
    fn empty_values_count_as_unset_and_bad_ones_are_named() {
        let config = parse(&["--bind-address=", "--runtime-port="]);
        assert!(config.listen.ip().is_unspecified());
        assert_eq!(config.runtime.port, 8888);
        let err = Args::parse_from_args(["--bind-address", "pod-1"])
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(
            err.to_string().contains("--bind-address \"pod-1\""),
            "{err}"
        );
        let err = Args::parse_from_args(["--runtime-port", "0"])
            .unwrap()
            .into_config()
            .unwrap_err();
        assert!(err.to_string().contains("not 0"), "{err}");
    }

    #[test]
    fn limits_are_configurable() {
        let config = parse(&["--max-zip-entries", "10", "--max-file-bytes", "100"]);
        assert_eq!(config.limits.max_entries, 10);
        assert_eq!(config.limits.max_file_bytes, 100);
    }

    #[test]
    fn the_token_file_is_read_under_the_pod_root_and_must_not_be_empty() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("etc/rivulet/fetcher");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "abc123\n").unwrap();
        let root_arg = root.path().to_str().unwrap();
        let config = parse(&[
            "--root",
            root_arg,
            "--token-file",
            "/etc/rivulet/fetcher/token",
        ]);
        assert_eq!(config.token.as_deref(), Some(&b"abc123"[..]));
        assert!(parse(&[]).token.is_none());

        std::fs::write(dir.join("token"), " \n").unwrap();
        for (file, rule) in [
            ("/etc/rivulet/fetcher/token", "is empty"),
            ("/etc/rivulet/fetcher/missing", "cannot read"),
        ] {
            let err = Args::parse_from_args(["--root", root_arg, "--token-file", file])
                .unwrap()
                .into_config()
                .unwrap_err();
            assert!(
                err.to_string().contains("--token-file") && err.to_string().contains(rule),
                "{err}"
            );
        }
    }
}
