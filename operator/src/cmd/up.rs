//! `rivulet up`: local mode in one process — the embedded Kubernetes (API server, node agent
//! running pods as local processes, scheduler, controllers, optional simulated Liqo peers) with
//! Rivulet's CRDs installed, every reconciler, and the router.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client};
use rivulet_localcluster_agent::{Agent, AgentConfig};
use rivulet_reconcilers::all::{self, Settings};
use rivulet_reconcilers::httptrigger::ingress::RouterService;
use rivulet_reconcilers::offloading::OffloadingConfig;
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::support::leader;
use rivulet_reconcilers::triggers::delivery::DeliveryConfig;
use rivulet_reconcilers::triggers::mqtrigger::objects::ConnectorConfig;
use rivulet_router::{Router, RouterConfig};
use tokio::sync::{oneshot, watch};

use super::common::{init_tracing, multi_thread_runtime, shutdown_signal};
use crate::local::{local_pods, runtimes};

/// Field manager of the CRDs `rivulet up` installs.
const FIELD_MANAGER: &str = "rivulet-up";

#[derive(Debug, clap::Args)]
pub struct Args {
    /// State of the local cluster (objects, kubeconfig, pod directories and logs, prepared
    /// runtimes); reused on the next start.
    #[arg(long, env = "RIVULET_DATA_DIR", default_value = ".rivulet")]
    pub data_dir: PathBuf,
    /// Port of the Kubernetes API server on 127.0.0.1 (0 picks a free port).
    #[arg(long, default_value_t = 6443)]
    pub api_port: u16,
    /// Port of the router on 127.0.0.1: where functions answer (0 picks a free port).
    #[arg(long, default_value_t = 8888)]
    pub router_port: u16,
    /// Clusters: the local cluster's name first, then simulated Liqo peers
    /// (for example `venice,naples,florence`).
    #[arg(long, value_delimiter = ',', default_value = "local")]
    pub clusters: Vec<String>,
    /// Mark pods Running/Ready without running anything (scale tests; functions do not answer).
    #[arg(long)]
    pub simulate_pods: bool,
    /// Serve Liqo's `offloading.liqo.io/v1alpha1` (Liqo ≤ 0.10) instead of `v1beta1`.
    #[arg(long)]
    pub liqo_v1alpha1: bool,
    /// Run no reconcilers: start `rivulet controller --local-pods` against this cluster instead
    /// (to stop and restart the controller on its own, as in a cluster).
    #[arg(long)]
    pub no_controller: bool,
    /// How pods run: `auto` (sandboxed under bubblewrap when it works here, else plain
    /// processes, said at start), `bwrap` (sandboxed or fail), `none` (plain processes of your
    /// user; docs/localcluster-agent.md, "Sandbox").
    #[arg(long, env = "RIVULET_POD_SANDBOX", default_value = "auto")]
    pub pod_sandbox: rivulet_localcluster_agent::kubelet::sandbox::SandboxMode,
    /// Pods' network: `auto` (a network namespace per sandboxed pod on a bridge when running as
    /// root with iproute2, else the host's network, said at start), `bridge` (namespaces or
    /// fail), `host` (the host's network, one 127.B.x.y address per pod;
    /// docs/localcluster-agent.md, "Pod network").
    #[arg(long, env = "RIVULET_POD_NETWORK", default_value = "auto")]
    pub pod_network: rivulet_localcluster_agent::kubelet::network::NetworkMode,
    /// Port of the archive storage (Fission's storagesvc) for packages over 256 KiB. It listens
    /// where pods reach the host (the bridge's gateway, else 127.0.0.1); 0 picks a free port.
    /// The `fission` CLI finds it through the Service `fission/storagesvc` (docs/storage.md).
    #[arg(long, default_value_t = 0)]
    pub storage_port: u16,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    init_tracing();
    multi_thread_runtime()?.block_on(serve(args))
}

async fn serve(args: &Args) -> anyhow::Result<()> {
    let data_dir = std::path::absolute(&args.data_dir).context("cannot resolve --data-dir")?;
    // Owner-only: the data dir holds the store (every Secret), the admin token and pod volumes.
    rivulet_localcluster::private::ensure_dir(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    // Only this process's reconcilers and router know it: other local processes cannot
    // specialize warm pods (docs/fetcher.md "Who may call the fetcher").
    let (fetcher_key_file, fetcher_key) = super::common::local_fetcher_key(&data_dir)?;
    let mut shutdown = shutdown_signal()?;

    let mut agent_config = AgentConfig::new(data_dir.join("agent"));
    agent_config.clusters.clone_from(&args.clusters);
    agent_config.simulate_pods = args.simulate_pods;
    agent_config.pod_sandbox = args.pod_sandbox;
    agent_config.pod_network = args.pod_network;
    agent_config.liqo_v1alpha1 = args.liqo_v1alpha1;
    agent_config.offloading_crd = Some(rivulet_api::crds::namespace_offloading_crd(
        args.liqo_v1alpha1,
    ));
    if !args.simulate_pods {
        let rivulet = std::env::current_exe().context("cannot locate the rivulet binary")?;
        agent_config.image_table = runtimes::prepare(&data_dir)?.image_table(&rivulet);
    }

    let mut server = rivulet_localcluster::Config::new(data_dir.join("cluster"));
    server.api_port = args.api_port;
    let extensions = rivulet_localcluster_agent::server_extensions(&agent_config);
    server.create_hooks = extensions.create_hooks;
    server.pod_logs = Some(extensions.pod_logs);
    let cluster = rivulet_localcluster::LocalCluster::start(server)
        .await
        .with_context(|| format!("cannot start the local cluster in {}", data_dir.display()))?;
    let kubeconfig = cluster.kubeconfig_path().to_path_buf();
    let client = rivulet_localcluster_agent::client_from_kubeconfig(&kubeconfig).await?;
    install_crds(&client).await?;
    ensure_router_namespace(&client).await?;
    let agent = Agent::start(client.clone(), agent_config.with_kubeconfig(&kubeconfig))
        .await
        .context("cannot start the node agent")?;
    let storage_ip = agent
        .pod_gateway()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), Into::into);
    let storage_addr = SocketAddr::new(storage_ip, args.storage_port);
    let storage = rivulet_storage::LocalStorage::start(
        &client,
        rivulet_storage::LocalConfig::new(&data_dir, vec![storage_addr]),
    )
    .await
    .with_context(|| format!("cannot start the archive storage on {storage_addr}"))?;

    // The router starts first: the triggers' reconcilers call functions through its internal
    // listener, whose port is picked at start.
    let router_config = RouterConfig {
        public_addr: SocketAddr::from(([127, 0, 0, 1], args.router_port)),
        internal_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        // Trigger deliveries present it (the reconcilers derive it from the same key).
        internal_token: Some(fetcher_key.router_internal_token()),
        fetcher_key: Some(fetcher_key.clone()),
        ..RouterConfig::default()
    };
    let router = Router::start(client.clone(), router_config)
        .await
        .with_context(|| format!("cannot start the router on 127.0.0.1:{}", args.router_port))?;

    let reconcilers = if args.no_controller {
        eprintln!(
            "no controller: run KUBECONFIG={} rivulet controller --local-pods --router-url http://{} --fetcher-key-file {}",
            kubeconfig.display(),
            router.internal_addr,
            fetcher_key_file.display()
        );
        None
    } else {
        Some(start_reconcilers(&client, router.internal_addr, fetcher_key).await)
    };

    announce(&kubeconfig, router.public_addr, &args.clusters);
    eprintln!("archive storage: {}", storage.url());
    let _ = shutdown.wait_for(|stop| *stop).await;

    eprintln!("stopping: reconcilers and triggers, router, pods, API server");
    if let Some((stop_reconcilers, reconcilers)) = reconcilers {
        let _ = stop_reconcilers.send(());
        let _ = reconcilers.await;
    }
    router.shutdown().await;
    storage.shutdown().await;
    agent.shutdown().await;
    cluster.shutdown().await;
    Ok(())
}

/// The reconcilers, always "leading": the same supervisor as `rivulet controller`, so a reconciler
/// that cannot stop (an unsynced cache) is cancelled after the grace instead of hanging shutdown.
/// Returns the stop signal and the task.
async fn start_reconcilers(
    client: &Client,
    router_internal: SocketAddr,
    fetcher_key: rivulet_api::specialize::FetcherKey,
) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let settings = Settings {
        pods: rivulet_reconcilers::environment::pool_pod::PoolPodConfig {
            fetcher_key: Some(fetcher_key),
            ..local_pods()
        },
        // Ingresses go where deploy/ puts the router (`up` creates the namespace).
        router: RouterService::default(),
        // No router pod runs in it, so the fetchers' NetworkPolicy would admit nothing there
        // (and localcluster does not enforce policies); the fetcher token guards port 8000.
        fetcher_network_policy: false,
        offloading: OffloadingConfig {
            resource: rivulet_reconcilers::offloading::discover(client).await,
            ..OffloadingConfig::default()
        },
        router_url: format!("http://{router_internal}"),
        delivery: DeliveryConfig::default(),
        connectors: ConnectorConfig::from_env(),
        ..Settings::default()
    };
    let (leading, is_leader) = watch::channel(true);
    let (stop_reconcilers, stopped) = oneshot::channel::<()>();
    let metrics = Metrics::new();
    let reconciler_client = client.clone();
    let reconcilers = tokio::spawn(async move {
        // Held for as long as the reconcilers run: dropping it would read as a lost lease.
        let _leading = leading;
        leader::while_leader(
            is_leader,
            |stop| all::start(&reconciler_client, &settings, &metrics, &stop),
            async move {
                let _ = stopped.await;
            },
            leader::DEFAULT_STOP_GRACE,
        )
        .await;
    });
    (stop_reconcilers, reconcilers)
}

/// The namespace deploy/ installs the router in, where HTTPTrigger Ingresses are created.
async fn ensure_router_namespace(client: &Client) -> anyhow::Result<()> {
    let name = RouterService::default().namespace;
    let namespace = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(name.clone()),
            ..kube::api::ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&namespace),
        )
        .await
        .with_context(|| format!("cannot create the namespace {name}"))?;
    Ok(())
}

/// Applies Rivulet's CRDs (server-side, so re-running `up` updates them) and waits until served.
async fn install_crds(client: &Client) -> anyhow::Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in rivulet_api::crds::fission_crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("cannot install the CRD {name}"))?;
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .with_context(|| format!("the CRD {name} was not established within 30 s"))?
        .with_context(|| format!("cannot wait for the CRD {name}"))?;
    }
    Ok(())
}

fn announce(kubeconfig: &Path, router: SocketAddr, clusters: &[String]) {
    println!("export KUBECONFIG={}", kubeconfig.display());
    println!("router: http://{router}");
    if clusters.len() > 1 {
        eprintln!(
            "clusters: {} (local) + simulated Liqo peers {}",
            clusters[0],
            clusters[1..].join(", ")
        );
    }
    eprintln!("ready: kubectl apply -f examples/hello-python/ && curl http://{router}/hello");
}
