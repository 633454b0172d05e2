//! `rivulet localcluster`: the embedded Kubernetes API server plus its node agent, scheduler and
//! built-in controllers (rivulet-localcluster-agent); no controllers of ours.

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
    /// The local cluster's name, then simulated Liqo peers (virtual nodes `liqo-<name>`).
    #[arg(long, value_delimiter = ',', default_value = "local")]
    pub clusters: Vec<String>,
    /// Mark pods Running/Ready with an address and run nothing (like kwok), for scale tests.
    #[arg(long)]
    pub simulate_pods: bool,
    /// Serve Liqo's NamespaceOffloading as offloading.liqo.io/v1alpha1 (Liqo < 1.0) instead of v1beta1.
    #[arg(long)]
    pub liqo_v1alpha1: bool,
    /// Pods the local node accepts (kubelet's default 110; raise it for scale tests).
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    super::common::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let mut agent_config =
        rivulet_localcluster_agent::AgentConfig::new(args.data_dir.join("agent"));
    agent_config.clusters.clone_from(&args.clusters);
    agent_config.simulate_pods = args.simulate_pods;
    agent_config.liqo_v1alpha1 = args.liqo_v1alpha1;
    agent_config.max_pods = args.max_pods;
    let extensions = rivulet_localcluster_agent::server_extensions(&agent_config);
    let mut config = rivulet_localcluster::Config::new(&args.data_dir);
    config.api_port = args.api_port;
    config.create_hooks = extensions.create_hooks;
    config.pod_logs = Some(extensions.pod_logs);
    let cluster = rivulet_localcluster::LocalCluster::start(config)
        .await
        .with_context(|| {
            format!(
                "cannot start the local cluster in {}",
                args.data_dir.display()
            )
        })?;
    eprintln!("localcluster API server listening on {}", cluster.url());
    let client =
        rivulet_localcluster_agent::client_from_kubeconfig(cluster.kubeconfig_path()).await?;
    let image_table = agent_config
        .data_dir
        .join(rivulet_localcluster_agent::images::TABLE_FILE);
    let agent = rivulet_localcluster_agent::Agent::start(
        client,
        agent_config.with_kubeconfig(cluster.kubeconfig_path()),
    )
    .await
    .context("cannot start the node agent")?;
    eprintln!(
        "node agent running nodes: {}",
        args.clusters
            .iter()
            .enumerate()
            .map(|(i, c)| if i == 0 {
                c.clone()
            } else {
                format!("liqo-{c}")
            })
            .collect::<Vec<_>>()
            .join(", ")
    );
    eprintln!(
        "container images map to local commands through {} (image local/exec runs command + args)",
        image_table.display()
    );
    println!("export KUBECONFIG={}", cluster.kubeconfig_path().display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("cannot wait for SIGINT")?,
        _ = term.recv() => {}
    }
    eprintln!("shutting down");
    agent.shutdown().await;
    cluster.shutdown().await;
    Ok(())
}
