//! localcluster's in-process cluster components, as API clients of the embedded API server
//! (kube-rs, like a real kubelet, kube-scheduler and kube-controller-manager):
//!
//! - a **node agent** that registers Nodes and runs the pods bound to them as local processes
//!   (one per container, each pod on its own loopback address), or only simulates them;
//! - a **scheduler** (nodeSelector, node affinity, taints/tolerations, pod count and requests);
//! - **controllers**: Deployment → ReplicaSet → Pod, EndpointSlices/Endpoints for Services;
//! - **simulated Liqo peers**: virtual nodes, the NamespaceOffloading CRD and a stand-in for
//!   Liqo's controller and webhooks.
//!
//! Generic: nothing here knows Rivulet's own kinds. See `docs/localcluster-agent.md`.
//!
//! ```no_run
//! # async fn demo(data_dir: std::path::PathBuf) -> Result<(), Box<dyn std::error::Error>> {
//! use rivulet_localcluster_agent::{Agent, AgentConfig};
//! let agent_config = AgentConfig::new(data_dir.join("agent"));
//! let mut server = rivulet_localcluster::Config::new(&data_dir);
//! let ext = rivulet_localcluster_agent::server_extensions(&agent_config);
//! server.create_hooks = ext.create_hooks;
//! server.pod_logs = Some(ext.pod_logs);
//! let cluster = rivulet_localcluster::LocalCluster::start(server).await?;
//! let client = rivulet_localcluster_agent::client_from_kubeconfig(cluster.kubeconfig_path()).await?;
//! let agent = Agent::start(client, agent_config.with_kubeconfig(cluster.kubeconfig_path())).await?;
//! agent.shutdown().await;
//! # Ok(()) }
//! ```

pub mod controllers;
pub mod events;
pub mod images;
pub mod informer;
pub mod kubelet;
pub mod liqo;
pub mod logs;
pub mod node;
pub mod quantity;
pub mod scheduler;
pub mod time;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::runtime::watcher;
use rivulet_localcluster::hooks::{CreateHook, PodLogs};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use images::{ImageEntry, ImageTable};

/// Resolves once `rx` is true (or its sender is gone).
pub(crate) async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// Why the agent could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("registering nodes: {0}")]
    Register(#[source] kube::Error),
    #[error("installing the NamespaceOffloading CRD: {0}")]
    Crd(#[source] kube::Error),
    #[error("--clusters needs at least one name (the local cluster)")]
    NoCluster,
    #[error("cannot build a client from the kubeconfig {path}: {message}")]
    Kubeconfig { path: PathBuf, message: String },
    #[error("claiming a block of pod addresses: {0}")]
    AddressBlock(#[source] std::io::Error),
    #[error("--pod-sandbox bwrap: {0}")]
    Sandbox(String),
    #[error("--pod-network bridge: {0}")]
    Network(String),
}

/// The pods' network, per `config.pod_network`: with `auto`, the host's network when this agent
/// cannot make namespaces (or pods are not sandboxed), said in one line.
fn pod_network(
    config: &AgentConfig,
    sandboxed: bool,
    block: u8,
) -> Result<Option<kubelet::network::Bridge>, AgentError> {
    use kubelet::network::{Bridge, NetworkMode};
    if config.simulate_pods || config.pod_network == NetworkMode::Host {
        return Ok(None);
    }
    let bridge = if sandboxed {
        Bridge::setup(block)
    } else {
        Err("pods are not sandboxed (--pod-sandbox)".to_owned())
    };
    let bridge = or_fallback(
        bridge,
        config.pod_network == NetworkMode::Auto,
        |why| {
            format!(
                "pods share the host's network, each on a 127.{block}.x.y address ({why}); --pod-network host silences this"
            )
        },
        AgentError::Network,
    )?;
    if let Some(bridge) = &bridge {
        tracing::info!(bridge = %bridge.name(), gateway = %bridge.gateway(), "pods get their own network");
    }
    Ok(bridge)
}

/// An optional way of running pods: `Some` when it works here; when it does not, with `auto`
/// one warning line and `None` (the plainer way), else the agent's error.
fn or_fallback<T>(
    found: Result<T, String>,
    auto: bool,
    warning: impl FnOnce(&str) -> String,
    error: impl FnOnce(String) -> AgentError,
) -> Result<Option<T>, AgentError> {
    match found {
        Ok(it) => Ok(Some(it)),
        Err(why) if auto => {
            eprintln!("warning: {}", warning(&why));
            Ok(None)
        }
        Err(why) => Err(error(why)),
    }
}

/// The sandbox pods run in, per `config.pod_sandbox`: with `auto`, plain processes when
/// bubblewrap cannot work here, said in one line.
fn pod_sandbox(config: &AgentConfig) -> Result<Option<kubelet::sandbox::Sandbox>, AgentError> {
    use kubelet::sandbox::{Sandbox, SandboxMode};
    if config.simulate_pods || config.pod_sandbox == SandboxMode::None {
        return Ok(None);
    }
    let absolute = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let mut hidden = vec![absolute(&config.data_dir)];
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from)
        && home.is_absolute()
        && home != Path::new("/")
    {
        hidden.push(absolute(&home));
    }
    let sandbox = or_fallback(
        Sandbox::detect(hidden, Vec::new()),
        config.pod_sandbox == SandboxMode::Auto,
        |why| {
            format!(
                "pods run as plain processes, not sandboxed ({why}); --pod-sandbox none silences this"
            )
        },
        AgentError::Sandbox,
    )?;
    if let Some(sandbox) = &sandbox {
        tracing::info!(bwrap = %sandbox.bwrap.display(), "pods run sandboxed");
    }
    Ok(sandbox)
}

/// The first `bytes` bytes of `text`'s SHA-256, in hex (short stable names).
pub(crate) fn sha256_hex(text: &str, bytes: usize) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().take(bytes).fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// How pods reach the API server: what `config.kubeconfig` names.
fn api_access(
    config: &AgentConfig,
) -> Result<Option<kubelet::service_account::ApiAccess>, AgentError> {
    let Some(path) = config.kubeconfig.as_deref() else {
        return Ok(None);
    };
    kubelet::service_account::ApiAccess::from_kubeconfig(path)
        .map(Some)
        .map_err(|message| AgentError::Kubeconfig {
            path: path.to_path_buf(),
            message,
        })
}

/// How this agent's pods run: their addresses, sandbox and network, per `config`.
fn pod_runtime(
    config: &AgentConfig,
) -> Result<
    (
        kubelet::ipam::Ipam,
        Option<kubelet::sandbox::Sandbox>,
        Option<kubelet::network::Bridge>,
    ),
    AgentError,
> {
    let block = claim_address_block(&config.data_dir)?;
    let sandbox = pod_sandbox(config)?;
    let network = pod_network(config, sandbox.is_some(), block.octet())?;
    let ipam = match &network {
        Some(bridge) => {
            let (first, last) = bridge.pod_range();
            kubelet::ipam::Ipam::with_range(block, first, last)
        }
        None => kubelet::ipam::Ipam::new(block),
    };
    Ok((ipam, sandbox, network))
}

/// Where every agent on this machine claims its block of pod addresses.
fn address_registry() -> PathBuf {
    std::env::temp_dir().join("rivulet-pod-addresses")
}

/// Claims a block of pod addresses, the one this data dir had before first (its pods keep their
/// addresses across a restart), and records it.
fn claim_address_block(data_dir: &Path) -> Result<kubelet::ipam::Block, AgentError> {
    let record = data_dir.join("pod-address-block");
    let previous = std::fs::read_to_string(&record)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let block = kubelet::ipam::Block::claim(&address_registry(), previous)
        .map_err(AgentError::AddressBlock)?;
    std::fs::write(&record, block.octet().to_string()).map_err(AgentError::AddressBlock)?;
    tracing::debug!(
        block = block.octet(),
        "pod addresses 127.{}.0.0/16",
        block.octet()
    );
    Ok(block)
}

/// A kube client for the cluster a kubeconfig file describes (the local cluster's own).
pub async fn client_from_kubeconfig(path: &Path) -> Result<kube::Client, AgentError> {
    let fail = |message: String| AgentError::Kubeconfig {
        path: path.to_path_buf(),
        message,
    };
    let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| fail(e.to_string()))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .map_err(|e| fail(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| fail(e.to_string()))
}

/// How to run the agent.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// Pod directories, logs, pid files and `images.yaml` live here.
    pub data_dir: PathBuf,
    /// The local cluster's name first, then the simulated Liqo peers (`local,naples,florence`).
    pub clusters: Vec<String>,
    /// `topology.liqo.io/region` of each cluster (default: [`liqo::default_region`]).
    pub regions: BTreeMap<String, String>,
    /// Mark pods Running/Ready with an address and run nothing (like kwok).
    pub simulate_pods: bool,
    /// Built-in image → command entries (the file in `data_dir` extends them).
    pub image_table: ImageTable,
    /// The local cluster's kubeconfig: where pods find the API server and its CA (their
    /// credentials are their ServiceAccount's token, never this file's).
    pub kubeconfig: Option<PathBuf>,
    /// First CrashLoopBackOff delay (kubelet: 10 s) and its cap (kubelet: 5 min).
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Node status and Lease renewal interval.
    pub heartbeat: Duration,
    /// `pods` capacity of the local node.
    pub max_pods: u32,
    /// Capacity of each virtual node (Liqo's default slice: cpu 4, memory 8Gi, pods 110).
    pub virtual_node_capacity: BTreeMap<String, String>,
    /// Serve `offloading.liqo.io/v1alpha1` instead of `v1beta1`.
    pub liqo_v1alpha1: bool,
    /// The NamespaceOffloading CRD to install instead of the built-in one (for example
    /// `rivulet_api::crds::namespace_offloading_crd(v1alpha1)`).
    pub offloading_crd: Option<CustomResourceDefinition>,
    /// Run the scheduler, the controllers and the Liqo stand-in (off: only the node agent).
    pub control_plane: bool,
    /// Whether containers run under bubblewrap (default here: plain processes; `rivulet up`
    /// defaults to `auto`).
    pub pod_sandbox: kubelet::sandbox::SandboxMode,
    /// Whether sandboxed pods get network namespaces of their own (default here: the host's
    /// network; `rivulet up` defaults to `auto`).
    pub pod_network: kubelet::network::NetworkMode,
}

impl AgentConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            clusters: vec!["local".into()],
            regions: BTreeMap::new(),
            simulate_pods: false,
            image_table: ImageTable::default(),
            kubeconfig: None,
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_mins(5),
            heartbeat: Duration::from_secs(10),
            max_pods: 110,
            virtual_node_capacity: BTreeMap::from([
                ("cpu".into(), "4".into()),
                ("memory".into(), "8Gi".into()),
                ("pods".into(), "110".into()),
                ("ephemeral-storage".into(), "20Gi".into()),
            ]),
            liqo_v1alpha1: false,
            offloading_crd: None,
            control_plane: true,
            pod_sandbox: kubelet::sandbox::SandboxMode::None,
            pod_network: kubelet::network::NetworkMode::Host,
        }
    }

    #[must_use]
    pub fn with_kubeconfig(mut self, path: &Path) -> Self {
        self.kubeconfig = Some(path.to_path_buf());
        self
    }

    /// The local cluster's name.
    pub fn local_cluster(&self) -> &str {
        self.clusters.first().map_or("local", String::as_str)
    }

    /// The Nodes the agent registers: the local node (named after the local cluster), then one
    /// virtual node per remote cluster.
    pub fn nodes(&self) -> Vec<node::NodeSpec> {
        let local = self.local_cluster().to_string();
        let mut out = vec![node::NodeSpec {
            name: local.clone(),
            labels: BTreeMap::from([
                ("kubernetes.io/hostname".to_string(), local.clone()),
                ("kubernetes.io/os".into(), "linux".into()),
                (
                    "kubernetes.io/arch".into(),
                    std::env::consts::ARCH
                        .replace("x86_64", "amd64")
                        .replace("aarch64", "arm64"),
                ),
            ]),
            taints: Vec::new(),
            capacity: node::host_capacity(self.max_pods),
        }];
        for remote in self.clusters.iter().skip(1) {
            let region = self
                .regions
                .get(remote)
                .cloned()
                .unwrap_or_else(|| liqo::default_region(remote));
            out.push(liqo::virtual_node(
                remote,
                &region,
                self.virtual_node_capacity.clone(),
            ));
        }
        out
    }

    fn has_peers(&self) -> bool {
        self.clusters.len() > 1
    }
}

/// What to put into `rivulet_localcluster::Config` before starting the server.
#[derive(Debug)]
pub struct ServerExtensions {
    /// Liqo's webhooks (only when peers are simulated).
    pub create_hooks: Vec<Arc<dyn CreateHook>>,
    /// `pods/log` from the agent's log files.
    pub pod_logs: Arc<dyn PodLogs>,
}

/// The create hooks and the `pods/log` source for the server that this agent will serve.
pub fn server_extensions(config: &AgentConfig) -> ServerExtensions {
    let mut create_hooks: Vec<Arc<dyn CreateHook>> = Vec::new();
    if config.has_peers() {
        create_hooks.push(Arc::new(liqo::webhook::PodWebhook));
        create_hooks.push(Arc::new(liqo::webhook::OffloadingWebhook));
    }
    ServerExtensions {
        create_hooks,
        pod_logs: Arc::new(logs::FileLogs::new(&config.data_dir)),
    }
}

/// The running agent.
#[derive(Debug)]
pub struct Agent {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    informers: Vec<JoinHandle<()>>,
    groups: Arc<kubelet::ProcessGroups>,
    /// The pods' bridge, removed when the agent stops.
    network: Option<kubelet::network::Bridge>,
}

impl Agent {
    /// Registers the nodes (and the Liqo CRD when peers are simulated), then runs everything in
    /// the background until [`Agent::shutdown`].
    pub async fn start(client: kube::Client, config: AgentConfig) -> Result<Agent, AgentError> {
        if config.clusters.is_empty() {
            return Err(AgentError::NoCluster);
        }
        // Owner-only: pod volumes hold Secrets' contents and service account tokens.
        rivulet_localcluster::private::ensure_dir(&config.data_dir).map_err(|source| {
            AgentError::DataDir {
                path: config.data_dir.clone(),
                source,
            }
        })?;
        let nodes = config.nodes();
        node::register(&client, &nodes)
            .await
            .map_err(AgentError::Register)?;
        let settings = liqo::controller::Settings {
            local_cluster: config.local_cluster().to_string(),
            v1alpha1: config.liqo_v1alpha1,
        };
        if config.has_peers() && config.control_plane {
            let crd = match &config.offloading_crd {
                Some(crd) => serde_json::to_value(crd)
                    .map_err(|e| AgentError::Crd(kube::Error::SerdeError(e)))?,
                None => liqo::crd::namespace_offloading_crd(config.liqo_v1alpha1),
            };
            liqo::controller::install_crd(&client, &crd, &settings)
                .await
                .map_err(AgentError::Crd)?;
        }
        let (stop, stop_rx) = watch::channel(false);
        let (pods, pods_task) =
            informer::Informer::spawn(Api::<Pod>::all(client.clone()), watcher::Config::default());
        let (node_inf, nodes_task) =
            informer::Informer::spawn(Api::<Node>::all(client.clone()), watcher::Config::default());
        let mut informers = vec![pods_task, nodes_task];
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(node::heartbeat(
            client.clone(),
            nodes.clone(),
            config.heartbeat,
            stop_rx.clone(),
        )));
        let groups = Arc::new(kubelet::ProcessGroups::default());
        let (ipam, sandbox, network) = pod_runtime(&config)?;
        let ctx = Arc::new(kubelet::Ctx {
            client: client.clone(),
            images: images::LiveTable::new(config.image_table.clone(), &config.data_dir),
            data_dir: config.data_dir.clone(),
            ipam,
            simulate: config.simulate_pods,
            backoff_base: config.backoff_base,
            backoff_max: config.backoff_max,
            api: api_access(&config)?,
            sandbox,
            network: network.clone(),
            events: events::Events::new(
                client.clone(),
                "kubelet",
                Some(config.local_cluster().to_string()),
            ),
            shutdown: stop_rx.clone(),
            groups: groups.clone(),
        });
        let names: BTreeSet<String> = nodes.iter().map(|n| n.name.clone()).collect();
        tasks.push(tokio::spawn(kubelet::run(ctx, pods.clone(), names)));
        if config.control_plane {
            tasks.push(tokio::spawn(scheduler::run(
                client.clone(),
                pods.clone(),
                node_inf.clone(),
                stop_rx.clone(),
            )));
            let (ctl_tasks, ctl_informers) = controllers::spawn(&client, &pods, &stop_rx);
            tasks.extend(ctl_tasks);
            informers.extend(ctl_informers);
            if config.has_peers() {
                tasks.push(tokio::spawn(liqo::controller::run(
                    client.clone(),
                    settings,
                    node_inf.clone(),
                    stop_rx.clone(),
                )));
            }
        }
        Ok(Agent {
            stop,
            tasks,
            informers,
            groups,
            network,
        })
    }

    /// The host's address on the pods' bridge, when pods have their own network: the one host
    /// address a pod reaches (a host service meant for pods listens there).
    pub fn pod_gateway(&self) -> Option<std::net::Ipv4Addr> {
        self.network.as_ref().map(kubelet::network::Bridge::gateway)
    }

    /// Stops every loop; every container process is terminated before this returns.
    pub async fn shutdown(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        for t in self.informers.drain(..) {
            t.abort();
        }
        if let Some(bridge) = self.network.take() {
            tokio::task::spawn_blocking(move || bridge.teardown())
                .await
                .ok();
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Without a shutdown: every process group goes at once (their leaders are also
        // kill_on_drop, but a group's other processes would survive that).
        self.groups.kill_all();
        let _ = self.stop.send(true);
        for t in self.tasks.iter().chain(self.informers.iter()) {
            t.abort();
        }
        if let Some(bridge) = self.network.take() {
            bridge.teardown();
        }
    }
}
