//! Start-up pieces every long-running subcommand shares: logging, the async runtime, and the
//! shutdown signal.

use anyhow::Context as _;
use tokio::sync::watch;

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
