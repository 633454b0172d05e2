//! Start-up pieces every long-running subcommand shares: logging, the async runtime, the
//! shutdown signal, and the fetcher key.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rivulet_api::specialize::FetcherKey;
use tokio::sync::watch;

/// `--fetcher-key-file` of the controller and the router: both must be given the same file.
#[derive(Debug, Clone, clap::Args)]
pub struct FetcherKeyArgs {
    /// File holding the installation key from which every Environment's fetcher token is
    /// derived (at least 32 bytes, e.g. `openssl rand -hex 32`). Give the controller and the
    /// router the same file. Without it, warm pods accept specialization from anyone who
    /// reaches them (docs/fetcher.md "Who may call the fetcher").
    #[arg(long, env = "RIVULET_FETCHER_KEY_FILE")]
    pub fetcher_key_file: Option<PathBuf>,
}

impl FetcherKeyArgs {
    /// The key, read and checked at start-up, or `None` (with a warning) when no file is given.
    pub fn load(&self) -> anyhow::Result<Option<FetcherKey>> {
        let Some(path) = self
            .fetcher_key_file
            .as_deref()
            .filter(|p| !p.as_os_str().is_empty())
        else {
            tracing::warn!(
                "no --fetcher-key-file: warm pods' fetchers accept specialization from any caller"
            );
            return Ok(None);
        };
        read_fetcher_key(path).map(Some)
    }
}

/// Reads a fetcher key file.
pub fn read_fetcher_key(path: &Path) -> anyhow::Result<FetcherKey> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read the fetcher key file {}", path.display()))?;
    FetcherKey::from_file_bytes(&bytes)
        .with_context(|| format!("fetcher key file {}", path.display()))
}

/// A new random installation key, as the text of a key file.
pub fn new_fetcher_key_text() -> anyhow::Result<String> {
    let mut random = [0u8; 32];
    getrandom::fill(&mut random)
        .map_err(|e| anyhow::anyhow!("cannot draw random bytes for the fetcher key: {e}"))?;
    Ok(FetcherKey::file_text(&random))
}

/// The fetcher key of a local data dir, `<data>/fetcher.key`, created owner-only on first use.
pub fn local_fetcher_key(data_dir: &Path) -> anyhow::Result<(PathBuf, FetcherKey)> {
    let path = data_dir.join("fetcher.key");
    if !path.exists() {
        rivulet_localcluster::private::write_file(&path, &new_fetcher_key_text()?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let key = read_fetcher_key(&path)?;
    Ok((path, key))
}

/// Logs to stderr (like any container's), level from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
}

/// The multi-threaded tokio runtime the subcommand runs on.
pub fn multi_thread_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// `true` once SIGINT or SIGTERM arrived; a second signal exits the process at once.
pub fn shutdown_signal() -> anyhow::Result<watch::Receiver<bool>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        for round in 0..2 {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if round == 0 {
                tracing::info!("shutting down (a second signal exits at once)");
                let _ = tx.send(true);
            } else {
                std::process::exit(130);
            }
        }
    });
    Ok(rx)
}
