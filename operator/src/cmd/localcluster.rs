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
    /// How pods run, as for `rivulet up`: `auto` (bubblewrap when it works here, else plain
    /// processes), `bwrap`, `none` (docs/localcluster-agent.md, "Sandbox").
    #[arg(long, env = "RIVULET_POD_SANDBOX", default_value = "auto")]
    pub pod_sandbox: rivulet_localcluster_agent::kubelet::sandbox::SandboxMode,
    /// Pods' network, as for `rivulet up`: `auto` (a namespace per sandboxed pod when root with
    /// iproute2, else the host's), `bridge`, `host` (docs/localcluster-agent.md, "Pod network").
    #[arg(long, env = "RIVULET_POD_NETWORK", default_value = "auto")]
    pub pod_network: rivulet_localcluster_agent::kubelet::network::NetworkMode,
    /// Map Fission's Python and Node.js environment images and the fetcher image to this
    /// repository's runtimes and this binary, as `rivulet up` does (prepared once per data dir).
    #[arg(long)]
    pub local_runtimes: bool,
    /// ServiceAccounts get only what stored RBAC grants, as on kube-apiserver, without the
    /// bootstrap role that lets them read everything (docs/localcluster.md, "Authorization").
    #[arg(long)]
    pub no_service_account_reader: bool,
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
    agent_config.pod_sandbox = args.pod_sandbox;
    agent_config.pod_network = args.pod_network;
    if args.local_runtimes {
        let rivulet = std::env::current_exe().context("cannot locate the rivulet binary")?;
        agent_config.image_table =
            crate::local::runtimes::prepare(&args.data_dir)?.image_table(&rivulet);
    }
    let extensions = rivulet_localcluster_agent::server_extensions(&agent_config);
    let mut config = rivulet_localcluster::Config::new(&args.data_dir);
    config.api_port = args.api_port;
    config.bootstrap_service_account_reader = !args.no_service_account_reader;
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
