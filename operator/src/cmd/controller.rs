//! `rivulet controller`: the reconcilers against any cluster (in-cluster config or `KUBECONFIG`),
//! with leader election on a Lease, Prometheus metrics and health endpoints
//! (`rivulet_reconcilers::support`).
//!
//! Shutdown (SIGINT or SIGTERM): the reconcilers stop taking new work and finish the reconciles in
//! flight, then the Lease is released (so a standby takes over at once), then the HTTP endpoints
//! close. A second signal exits immediately.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use kube::Client;
use rivulet_reconcilers::all::{self, Settings};
use rivulet_reconcilers::environment::pool_pod::PoolPodConfig;
use rivulet_reconcilers::fetcher_access::objects::DEFAULT_CLUSTER_ROLE;
use rivulet_reconcilers::httptrigger::ingress::{
    DEFAULT_ROUTER_NAMESPACE, DEFAULT_ROUTER_SERVICE, RouterService,
};
use rivulet_reconcilers::offloading::{MappingStrategy, OffloadingConfig};
use rivulet_reconcilers::support::health::ReadinessCheck;
use rivulet_reconcilers::support::leader::{self, DEFAULT_LEASE_NAME, LeaseConfig, Stop};
use rivulet_reconcilers::support::{Health, HealthServer, Metrics};
use rivulet_reconcilers::triggers::delivery::DeliveryConfig;
use rivulet_reconcilers::triggers::mqtrigger::objects::ConnectorConfig;
use tokio::sync::{oneshot, watch};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address of the HTTP endpoints `/metrics`, `/healthz` and `/readyz`.
    #[arg(long, env = "RIVULET_METRICS_ADDR", default_value = "0.0.0.0:8080")]
    pub metrics_addr: SocketAddr,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// Namespace of the leader-election Lease [default: $POD_NAMESPACE, else the client's
    /// default namespace (in-cluster: the pod's own; else the kubeconfig context's)].
    #[arg(long, env = "POD_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// Reconcile without leader election (only safe with a single replica).
    #[arg(long)]
    pub no_leader_elect: bool,
    /// `namespaceMappingStrategy` of the Liqo NamespaceOffloadings Rivulet creates:
    /// `EnforceSameName` (remote namespace = local name) or `DefaultName`.
    #[arg(
        long,
        env = "RIVULET_NAMESPACE_MAPPING",
        default_value = "EnforceSameName"
    )]
    pub namespace_mapping: MappingStrategy,
    /// Image of the fetcher sidecar in pool and function pods [default:
    /// ghcr.io/rivulet-dev/rivulet:latest].
    #[arg(long, env = "RIVULET_FETCHER_IMAGE")]
    pub fetcher_image: Option<String>,
    /// Pods for `rivulet up --no-controller`'s node agent (the fetcher image maps to the rivulet
    /// binary, no service account) instead of a cluster's.
    #[arg(long, conflicts_with_all = ["fetcher_image", "fetcher_image_from"])]
    pub local_pods: bool,
    /// The fetcher sidecar runs the image of this container of the controller's own Pod
    /// (`$POD_NAME` in `$POD_NAMESPACE`), so an upgrade of the controller upgrades the fetchers.
    #[arg(
        long,
        env = "RIVULET_FETCHER_IMAGE_FROM",
        conflicts_with = "fetcher_image"
    )]
    pub fetcher_image_from: Option<String>,
    /// `$POD_NAME`, for `--fetcher-image-from`.
    #[arg(long, env = "POD_NAME")]
    pub pod_name: Option<String>,
    /// Read the fetcher installation key from this Secret in the controller's namespace (data
    /// `key`), creating it with a random key when it does not exist; the router mounts the same
    /// Secret as its `--fetcher-key-file` (deploy/ does both).
    #[arg(
        long,
        env = "RIVULET_FETCHER_KEY_SECRET",
        conflicts_with = "fetcher_key_file"
    )]
    pub fetcher_key_secret: Option<String>,
    /// Base URL of the router's internal listener, where watch and time triggers call
    /// functions (`/fission-function/...`).
    #[arg(long, env = "RIVULET_ROUTER_URL", default_value = all::DEFAULT_ROUTER_URL)]
    pub router_url: String,
    /// Attempts per trigger delivery, the first included (transport errors, 5xx, 408 and 429
    /// are retried).
    #[arg(long, default_value_t = DeliveryConfig::default().max_attempts)]
    pub delivery_attempts: usize,
    /// Delay before a delivery's first retry, in milliseconds (doubled before each next one).
    #[arg(long, default_value_t = 500)]
    pub delivery_backoff_ms: u64,
    /// Namespace of the router Service, where HTTPTrigger Ingresses are created and from
    /// whose router pods (`app.kubernetes.io/name=rivulet-router`) alone fetchers accept
    /// connections (deploy/ sets it to the controller's own namespace).
    #[arg(long, env = "RIVULET_ROUTER_NAMESPACE", default_value = DEFAULT_ROUTER_NAMESPACE)]
    pub router_namespace: String,
    /// Name of the router Service (port 80) that HTTPTrigger Ingresses point at.
    #[arg(long, env = "RIVULET_ROUTER_SERVICE", default_value = DEFAULT_ROUTER_SERVICE)]
    pub router_service: String,
    /// ClusterRole bound to the `rivulet-fetcher` ServiceAccount of every function namespace.
    #[arg(long, env = "RIVULET_FETCHER_CLUSTER_ROLE", default_value = DEFAULT_CLUSTER_ROLE)]
    pub fetcher_cluster_role: String,
    /// Give every function namespace the NetworkPolicy `rivulet-fetcher`: only the router's
    /// pods reach the fetcher port 8000.
    #[arg(long, env = "RIVULET_FETCHER_NETWORK_POLICY", default_value_t = true, action = clap::ArgAction::Set)]
    pub fetcher_network_policy: bool,
    #[command(flatten)]
    pub fetcher_key: super::common::FetcherKeyArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::common::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let metrics = Metrics::new();
    let config = kube::Config::infer()
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    // Every API request is counted (rivulet_api_requests_total): what the controller costs the
    // API server.
    let client = kube::client::ClientBuilder::try_from(config)
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?
        .with_layer(&metrics.api_request_layer())
        .build();
    let version = client
        .apiserver_version()
        .await
        .context("cannot reach the Kubernetes API server")?;
    tracing::info!(
        "API server {}.{} ({})",
        version.major,
        version.minor,
        version.git_version
    );
    let shutdown = super::common::shutdown_signal()?;

    let mut pods = if args.local_pods {
        crate::local::local_pods()
    } else {
        PoolPodConfig::default()
    };
    let own_namespace = args
        .lease_namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    if let Some(image) = args.fetcher_image {
        pods.fetcher_image = image;
    }
    if let Some(container) = &args.fetcher_image_from {
        let pod = args
            .pod_name
            .as_deref()
            .context("--fetcher-image-from needs the controller's Pod name in $POD_NAME")?;
        pods.fetcher_image =
            super::in_cluster::own_image(&client, &own_namespace, pod, container).await?;
        tracing::info!("fetcher sidecars run {}", pods.fetcher_image);
    }
    pods.fetcher_key = match &args.fetcher_key_secret {
        Some(name) => {
            Some(super::in_cluster::fetcher_key_secret(&client, &own_namespace, name).await?)
        }
        None => args.fetcher_key.load()?,
    };
    // Discovered once at start-up: installing Liqo later needs a controller restart.
    let offloading = rivulet_reconcilers::offloading::discover(&client).await;
    if let Some(resource) = &offloading {
        tracing::info!(
            "Liqo NamespaceOffloading served as {}",
            resource.api_version
        );
    }
    let settings = Settings {
        pods,
        router: RouterService {
            namespace: args.router_namespace,
            name: args.router_service,
        },
        fetcher_cluster_role: args.fetcher_cluster_role,
        fetcher_network_policy: args.fetcher_network_policy,
        offloading: OffloadingConfig {
            resource: offloading,
            namespace_mapping: args.namespace_mapping,
        },
        router_url: args.router_url,
        delivery: DeliveryConfig {
            max_attempts: args.delivery_attempts.max(1),
            initial_backoff: Duration::from_millis(args.delivery_backoff_ms),
            ..DeliveryConfig::default()
        },
        connectors: ConnectorConfig::from_env(),
    };
    let reconcilers = Reconcilers {
        client: client.clone(),
        settings,
        metrics: metrics.clone(),
    };

    let server = HealthServer::bind(args.metrics_addr)
        .await
        .with_context(|| format!("cannot listen on {}", args.metrics_addr))?;
    tracing::info!(
        "serving /metrics, /healthz and /readyz on {}",
        server.local_addr()?
    );

    if args.no_leader_elect {
        single(reconcilers, server, &shutdown).await;
    } else {
        let config = LeaseConfig::new(args.lease_name, own_namespace, leader::default_identity());
        elected(client, config, reconcilers, server, &shutdown).await;
    }
    Ok(())
}

/// Without leader election: the reconcilers run from start to shutdown.
async fn single(reconcilers: Reconcilers, server: HealthServer, shutdown: &watch::Receiver<bool>) {
    tracing::warn!("leader election is off: run a single replica");
    reconcilers.metrics.set_leader(true);
    let http = Http::serve(server, reconcilers.metrics.clone(), Arc::new(|| Ok(())));
    let (_leading, is_leader) = watch::channel(true);
    leader::while_leader(
        is_leader,
        |stop| reconcilers.start(&stop),
        wait(shutdown),
        leader::DEFAULT_STOP_GRACE,
    )
    .await;
    http.stop().await;
}

/// With leader election: the reconcilers run while this replica holds the Lease.
async fn elected(
    client: Client,
    config: LeaseConfig,
    reconcilers: Reconcilers,
    server: HealthServer,
    shutdown: &watch::Receiver<bool>,
) {
    tracing::info!(
        lease = %format!("{}/{}", config.namespace, config.name),
        identity = %config.identity,
        "leader election"
    );
    let lease_duration = config.lease_duration;
    let (release, released) = oneshot::channel::<()>();
    let (election, elector) = leader::run(client, config, async move {
        let _ = released.await;
    });
    let elector = tokio::spawn(elector);
    tokio::spawn(mirror_leadership(
        election.is_leader(),
        reconcilers.metrics.clone(),
    ));
    let live = election.clone();
    let http = Http::serve(
        server,
        reconcilers.metrics.clone(),
        Arc::new(move || {
            if live.is_live() {
                Ok(())
            } else {
                Err(format!(
                    "the leader election loop has not reached the Lease API in the last {}s",
                    lease_duration.as_secs()
                ))
            }
        }),
    );
    leader::while_leader(
        election.is_leader(),
        |stop| reconcilers.start(&stop),
        wait(shutdown),
        leader::DEFAULT_STOP_GRACE,
    )
    .await;
    // The reconcilers have stopped: only now may another replica lead.
    let _ = release.send(());
    let _ = elector.await;
    http.stop().await;
}

/// The running health server.
struct Http {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Http {
    fn serve(server: HealthServer, metrics: Metrics, ready: ReadinessCheck) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(Health { metrics, ready }, async move {
            let _ = stopped.await;
        }));
        Self { stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// What every term of leadership starts: the shared reconciler set (`all::start`), the same one
/// `rivulet up` runs.
struct Reconcilers {
    client: Client,
    settings: Settings,
    metrics: Metrics,
}

impl Reconcilers {
    /// Starts every reconciler on its own task, and waits until all have stopped after `stop`.
    /// Dropping the returned future cancels them.
    fn start(&self, stop: &Stop) -> impl Future<Output = ()> + use<> {
        all::start(&self.client, &self.settings, &self.metrics, stop)
    }
}

/// Keeps the `rivulet_leader` gauge equal to the election's state.
async fn mirror_leadership(mut is_leader: watch::Receiver<bool>, metrics: Metrics) {
    loop {
        metrics.set_leader(*is_leader.borrow_and_update());
        if is_leader.changed().await.is_err() {
            metrics.set_leader(false);
            return;
        }
    }
}

fn wait(shutdown: &watch::Receiver<bool>) -> impl Future<Output = ()> + use<> {
    let mut shutdown = shutdown.clone();
    async move {
        let _ = shutdown.wait_for(|s| *s).await;
    }
}
