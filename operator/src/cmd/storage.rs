//! `rivulet storage`: archive storage speaking Fission's storagesvc protocol (port 8000), with the
//! archive pruner (docs/storage.md). Fission's environment variables work as its Deployment sets them.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use rivulet_storage::{Pruner, PrunerConfig, Server, ServerConfig, Store};

use super::common::{init_tracing, multi_thread_runtime, shutdown_signal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on (all interfaces in a cluster; a NetworkPolicy decides who may call).
    #[arg(long, env = "STORAGE_ADDRESS", default_value = "0.0.0.0")]
    pub address: IpAddr,
    /// Port (Fission's storagesvc port).
    #[arg(long, env = "STORAGE_PORT", default_value_t = rivulet_storage::DEFAULT_PORT)]
    pub port: u16,
    /// Keep archives as files in this directory (Fission's `/fission` volume).
    #[arg(long, conflicts_with = "store_url")]
    pub local_path: Option<PathBuf>,
    /// Keep archives in an object store: `file:///dir`, or with the matching build features
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (credentials from the
    /// SDK's environment variables).
    #[arg(long, env = "STORAGE_URL")]
    pub store_url: Option<String>,
    /// Largest archive accepted, in MiB.
    #[arg(long, env = "STORAGE_MAX_ARCHIVE_SIZE_MIB", default_value_t = rivulet_storage::DEFAULT_MAX_ARCHIVE_BYTES >> 20)]
    pub max_archive_size_mib: u64,
    /// Minutes between archive pruner rounds (Fission's PRUNE_INTERVAL).
    #[arg(long, env = "PRUNE_INTERVAL", default_value_t = 60)]
    pub prune_interval: u64,
    /// Archives younger than this many seconds are never pruned (the CLI uploads before it
    /// creates the Package).
    #[arg(long, default_value_t = 600)]
    pub prune_grace: u64,
    /// Run the archive pruner (Fission's PRUNE_ENABLED); it lists Packages in every namespace.
    #[arg(long, env = "PRUNE_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub prune: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    init_tracing();
    multi_thread_runtime()?.block_on(serve(args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let store = match (&args.local_path, &args.store_url) {
        (Some(path), _) => Store::local(path)?,
        (None, Some(url)) => Store::from_url(url)?,
        (None, None) => anyhow::bail!("say where archives go: --local-path DIR or --store-url URL"),
    };
    let mut shutdown = shutdown_signal()?;
    let max_archive_bytes = args
        .max_archive_size_mib
        .checked_mul(1 << 20)
        .context("--max-archive-size-mib is too large")?;
    let listen = SocketAddr::new(args.address, args.port);
    let server = Server::start(
        ServerConfig {
            listen: vec![listen],
            max_archive_bytes,
        },
        store.clone(),
    )
    .await
    .with_context(|| format!("cannot start the storage service on {listen}"))?;
    eprintln!("storage service: {}", server.url());

    let (stop_pruner, stopped) = tokio::sync::watch::channel(false);
    let pruner = if args.prune {
        let client = kube::Client::try_default()
            .await
            .context("the archive pruner needs the Kubernetes API (in-cluster config or KUBECONFIG); --prune false runs without it")?;
        let config = PrunerConfig {
            interval: Duration::from_secs(args.prune_interval.max(1) * 60),
            grace: Duration::from_secs(args.prune_grace),
        };
        Some(tokio::spawn(
            Pruner::new(client, store, config).run(stopped),
        ))
    } else {
        None
    };

    let _ = shutdown.wait_for(|stop| *stop).await;
    let _ = stop_pruner.send(true);
    if let Some(pruner) = pruner {
        let _ = pruner.await;
    }
    server.shutdown().await;
    Ok(())
}
