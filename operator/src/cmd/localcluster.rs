//! `rivulet localcluster`: only the embedded Kubernetes API server (no controllers of ours).

use std::path::PathBuf;

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// State directory: storage, TLS material, bearer token and the kubeconfig.
    #[arg(long, env = "RIVULET_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Port of the API server on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let mut config = rivulet_localcluster::Config::new(&args.data_dir);
    config.api_port = args.api_port;
    let cluster = rivulet_localcluster::LocalCluster::start(config)
        .await
        .with_context(|| format!("cannot start the local cluster in {}", args.data_dir.display()))?;
    eprintln!("localcluster API server listening on {}", cluster.url());
    println!("export KUBECONFIG={}", cluster.kubeconfig_path().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot wait for SIGINT")?,
        _ = term.recv() => {}
    }
    eprintln!("shutting down");
    cluster.shutdown().await;
    Ok(())
}
