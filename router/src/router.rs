//! The running router: Kubernetes caches, the route table kept current, poolmgr specialization,
//! newdeploy/container endpoints, activity publishing, and the HTTP listeners.
//!
//! [`Router::start`] is the library entry `rivulet router` and `rivulet up` use.

use std::collections::HashSet;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use rivulet_api::keys::fission_labels;
use rivulet_api::specialize::FetcherKey;
use rivulet_api::{Environment, ExecutorType, Function, HTTPTrigger, Package};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::admission::Overload;
use crate::proxy::ProxyConfig;
use rivulet_routing::rng::{SplitMix64, WeightRng};
use rivulet_routing::routes::{RouteTable, RouteTableOptions};

use crate::metrics::Metrics;
use crate::{activity, admissions, deploy, fetcher, poolmgr, report, server, workers};

/// How the router runs. [`RouterConfig::default`] is what `rivulet router` uses without flags.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// Public listener: triggers, `GET /`, `/router-healthz`, `/_version` (default `0.0.0.0:8888`).
    pub public_addr: SocketAddr,
    /// Internal listener: `/fission-function/...` for timers, watchers and `fission fn test`,
    /// `/router-healthz`, and `/metrics` when `metrics_addr` is `None` (default `127.0.0.1:8889`).
    pub internal_addr: SocketAddr,
    /// A separate `/metrics` listener; `None` serves metrics on the internal listener.
    pub metrics_addr: Option<SocketAddr>,
    /// Also serve `/fission-function/...` on the public listener, as Fission does.
    pub internal_routes_on_public: bool,
    /// How long shutdown waits for in-flight requests.
    pub drain_timeout: Duration,
    /// How long a cold request waits for a ready warm pod before 503.
    pub pool_wait: Duration,
    /// Per-function bounds of overload: specializations in flight, queued requests, patience
    /// (docs/router.md, "Overload").
    pub overload: Overload,
    /// Minimum time between two `rivulet.dev/last-activity` writes on a pod (the contract says
    /// 10 s; tests shorten it).
    pub activity_interval: Duration,
    /// Trigger/function changes are batched for this long before the table is rebuilt
    /// (Fission: 20 ms).
    pub debounce: Duration,
    /// How long start waits for the caches' initial lists.
    pub sync_timeout: Duration,
    /// `executorInstanceId` written on claimed pods (default: 8 random hex digits).
    pub instance_id: Option<String>,
    /// The client to function pods (one pool per worker).
    pub proxy: ProxyConfig,
    /// Data-plane worker threads (default: one per core). See [`workers`].
    pub workers: usize,
    /// Installation key of fetcher tokens; `None` for fetchers without `--token-file`.
    pub fetcher_key: Option<FetcherKey>,
    /// Bearer token the internal listener requires for function calls (health and metrics stay
    /// open): [`FetcherKey::router_internal_token`], which trigger deliveries present. `None`
    /// leaves the listener open to whoever reaches it.
    pub internal_token: Option<String>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            public_addr: SocketAddr::from(([0, 0, 0, 0], 8888)),
            internal_addr: SocketAddr::from(([127, 0, 0, 1], 8889)),
            metrics_addr: None,
            internal_routes_on_public: false,
            drain_timeout: Duration::from_secs(30),
            pool_wait: Duration::from_secs(30),
            overload: Overload::default(),
            activity_interval: Duration::from_secs(
                rivulet_api::keys::rivulet::LAST_ACTIVITY_REFRESH_SECONDS,
            ),
            debounce: Duration::from_millis(20),
            sync_timeout: Duration::from_mins(1),
            instance_id: None,
            proxy: ProxyConfig::default(),
            workers: std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            fetcher_key: None,
            internal_token: None,
        }
    }
}

/// Why the router did not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The worker threads could not start.
    #[error("cannot start the router's worker threads: {0}")]
    Workers(std::io::Error),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// A cache did not finish its initial list in time.
    #[error(
        "the {0} cache did not sync within {1:?} (are the fission.io CRDs installed, and may the router list them?)"
    )]
    Sync(&'static str, Duration),
}

/// The router; see [`Router::start`].
#[derive(Debug)]
pub struct Router;

/// A running router.
#[derive(Debug)]
pub struct RouterHandle {
    /// Bound public address.
    pub public_addr: SocketAddr,
    /// Bound internal address.
    pub internal_addr: SocketAddr,
    /// Bound metrics address, if separate.
    pub metrics_addr: Option<SocketAddr>,
    /// Metrics (also served at `/metrics`).
    pub metrics: Metrics,
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
    workers: workers::Workers,
    pending: Arc<poolmgr::PendingWrites>,
    background: Vec<JoinHandle<()>>,
    drain_timeout: Duration,
}

impl RouterHandle {
    /// Stops accepting connections, waits up to the drain timeout for in-flight requests and the
    /// writes they left pending, then stops the caches. Returns `false` when the drain timed out
    /// (remaining requests are cut).
    pub async fn shutdown(mut self) -> bool {
        let _ = self.shutdown.send(true);
        let servers = self.servers;
        let aborts: Vec<_> = servers.iter().map(JoinHandle::abort_handle).collect();
        let workers = &mut self.workers;
        let pending = self.pending;
        let drain = async {
            // The accept loops end first; that drops the dispatchers, so the workers drain.
            futures::future::join_all(servers).await;
            workers.drained().await;
            pending.idle().await;
        };
        let drained = tokio::time::timeout(self.drain_timeout, drain)
            .await
            .is_ok();
        if !drained {
            for abort in aborts {
                abort.abort();
            }
            self.workers.abort();
        }
        for task in self.background {
            task.abort();
        }
        drained
    }
}

fn cache<K>(
    api: Api<K>,
    config: watcher::Config,
) -> (
    Store<K>,
    impl Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
)
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone + Send + Sync,
{
    let (store, writer) = reflector::store();
    let stream = reflector::reflector(writer, watcher(api, config).default_backoff());
    (store, stream)
}

async fn synced<K>(
    store: &Store<K>,
    what: &'static str,
    timeout: Duration,
) -> Result<(), RouterError>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    match tokio::time::timeout(timeout, store.wait_until_ready()).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(RouterError::Sync(what, timeout)),
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, RouterError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| RouterError::Bind { addr, source })
}

fn local_addr(listener: &TcpListener, fallback: SocketAddr) -> SocketAddr {
    listener.local_addr().unwrap_or(fallback)
}

/// Rebuilds the route table from the caches and forgets admissions of stale versions.
fn rebuild(
    state: &server::State,
    triggers: &Store<HTTPTrigger>,
    functions: &Store<Function>,
    options: RouteTableOptions,
) {
    let triggers: Vec<HTTPTrigger> = triggers.state().iter().map(|t| (**t).clone()).collect();
    let functions: Vec<Function> = functions.state().iter().map(|f| (**f).clone()).collect();
    let table = RouteTable::build(&triggers, &functions, options);
    for issue in table.issues() {
        tracing::debug!(trigger = %issue.trigger(), %issue, "trigger not routed");
    }
    state.set_table(table);
    let current: HashSet<_> = functions
        .iter()
        .filter(|f| {
            !matches!(
                f.spec.executor_type(),
                Some(ExecutorType::Newdeploy | ExecutorType::Container)
            )
        })
        .map(admissions::version_key)
        .collect();
    state.admissions.retain(&current);
}

/// Keeps the admissions, the newdeploy index and the warm-pod waiters in step with pod events.
fn follow_pods(
    state: Arc<server::State>,
    store: Store<Pod>,
    events: impl Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Send + 'static,
    pod_changes: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(events.for_each(move |event| {
        match event {
            Ok(watcher::Event::Apply(pod)) => {
                state.admissions.pod_changed(&pod, false);
                state.deploy.pod_changed(&pod, &store);
            }
            Ok(watcher::Event::Delete(pod)) => {
                state.admissions.pod_changed(&pod, true);
                state.deploy.pod_changed(&pod, &store);
            }
            Ok(watcher::Event::InitDone) => {
                state.deploy.rebuild(&store);
                state.admissions.prune(&store);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "pod watch error"),
        }
        pod_changes.notify_waiters();
        futures::future::ready(())
    }))
}

/// Rebuilds the table once changes settled for `debounce` after each mark.
fn rebuild_on_change(
    state: Arc<server::State>,
    (triggers, functions): (Store<HTTPTrigger>, Store<Function>),
    options: RouteTableOptions,
    debounce: Duration,
    dirty: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            dirty.notified().await;
            tokio::time::sleep(debounce).await;
            rebuild(&state, &triggers, &functions, options);
        }
    })
}

/// Eight random hex digits: this router among its replicas.
fn random_instance_id() -> String {
    format!("{:08x}", SplitMix64::from_entropy().below(u32::MAX))
}

/// Caches only looked up, never reacted to: Environments, and Packages' metadata (the revision
/// of a package's code and the target of its Events; the archives themselves can be large and
/// are the fetcher's business).
fn lookup_caches(
    client: &Client,
) -> (
    Store<Environment>,
    Store<PartialObjectMeta<Package>>,
    [JoinHandle<()>; 2],
) {
    let all = watcher::Config::default;
    let (environments, environment_events) = cache(Api::<Environment>::all(client.clone()), all());
    let (packages, package_events) = cache(
        Api::<PartialObjectMeta<Package>>::all(client.clone()),
        all(),
    );
    let tasks = [
        tokio::spawn(environment_events.for_each(|_| futures::future::ready(()))),
        tokio::spawn(package_events.for_each(|_| futures::future::ready(()))),
    ];
    (environments, packages, tasks)
}

/// Marks the table dirty on every trigger or function event.
fn mark_dirty(
    events: impl Stream<Item = bool> + Send + 'static,
    dirty: Arc<Notify>,
) -> JoinHandle<()> {
    tokio::spawn(events.for_each(move |changed| {
        if changed {
            dirty.notify_one();
        }
        futures::future::ready(())
    }))
}

struct Listeners {
    public_addr: SocketAddr,
    internal_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    servers: Vec<JoinHandle<()>>,
}

/// The worker threads and the listeners handing them connections.
async fn serve(
    config: &RouterConfig,
    state: &Arc<server::State>,
    stop: &watch::Receiver<bool>,
) -> Result<(Listeners, workers::Workers), RouterError> {
    let (dispatch, workers) = workers::Workers::start(config.workers, state, config.proxy, stop)
        .map_err(RouterError::Workers)?;
    Ok((listen(config, dispatch, stop).await?, workers))
}

async fn listen(
    config: &RouterConfig,
    workers: workers::Dispatch,
    stop: &watch::Receiver<bool>,
) -> Result<Listeners, RouterError> {
    let public = bind(config.public_addr).await?;
    let internal = bind(config.internal_addr).await?;
    let metrics = match config.metrics_addr {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let mut listeners = Listeners {
        public_addr: local_addr(&public, config.public_addr),
        internal_addr: local_addr(&internal, config.internal_addr),
        metrics_addr: None,
        servers: Vec::new(),
    };
    let workers = Arc::new(workers);
    let mut spawn = |listener, port| {
        let task = workers::accept(listener, workers.clone(), port, stop.clone());
        listeners.servers.push(tokio::spawn(task));
    };
    if let Some(listener) = metrics {
        let addr = config.metrics_addr.unwrap_or(config.internal_addr);
        let bound = local_addr(&listener, addr);
        spawn(listener, server::Port::Metrics);
        listeners.metrics_addr = Some(bound);
    }
    spawn(public, server::Port::Public);
    spawn(internal, server::Port::Internal);
    Ok(listeners)
}

impl Router {
    /// Starts the caches, waits for their initial lists, binds the listeners and serves until
    /// [`RouterHandle::shutdown`]. Watches every namespace.
    pub async fn start(client: Client, config: RouterConfig) -> Result<RouterHandle, RouterError> {
        let all = watcher::Config::default;
        let (triggers, trigger_events) = cache(Api::<HTTPTrigger>::all(client.clone()), all());
        let (functions, function_events) = cache(Api::<Function>::all(client.clone()), all());
        let (environments, packages, lookups) = lookup_caches(&client);
        let function_pods = all().labels(fission_labels::EXECUTOR_TYPE);
        let (pods, pod_events) = cache(Api::<Pod>::all(client.clone()), function_pods);

        let table_dirty = Arc::new(Notify::new());
        let mut background = vec![
            mark_dirty(trigger_events.map(|e| e.is_ok()), table_dirty.clone()),
            mark_dirty(function_events.map(|e| e.is_ok()), table_dirty.clone()),
        ];
        background.extend(lookups);

        let metrics = Metrics::new();
        let pending = Arc::new(poolmgr::PendingWrites::default());
        let pod_changes = Arc::new(Notify::new());
        let instance_id = config
            .instance_id
            .clone()
            .unwrap_or_else(random_instance_id);
        let ctx = Arc::new(poolmgr::PoolContext {
            client: client.clone(),
            pods: pods.clone(),
            environments: environments.clone(),
            functions: functions.clone(),
            packages: packages.clone(),
            reporter: report::StatusReporter::new(client.clone(), &instance_id),
            pod_changes: pod_changes.clone(),
            instance_id,
            pool_wait: config.pool_wait,
            overload: config.overload,
            fetcher: fetcher::FetcherClient::with_key(config.fetcher_key.clone()),
            metrics: metrics.clone(),
            runtime: tokio::runtime::Handle::current(),
            pending: pending.clone(),
        });
        let state = Arc::new(server::State {
            table: RwLock::new(Arc::new(RouteTable::default())),
            admissions: admissions::Admissions::new(ctx),
            deploy: deploy::DeployIndex::default(),
            activity: activity::start(client.clone(), config.activity_interval),
            metrics: metrics.clone(),
            metrics_on_internal: config.metrics_addr.is_none(),
            internal_token: config.internal_token.clone(),
        });
        background.push(follow_pods(
            state.clone(),
            pods.clone(),
            pod_events,
            pod_changes,
        ));

        let options = RouteTableOptions {
            internal_routes_on_public: config.internal_routes_on_public,
        };
        let sync = config.sync_timeout;
        synced(&triggers, "HTTPTrigger", sync).await?;
        synced(&functions, "Function", sync).await?;
        synced(&environments, "Environment", sync).await?;
        synced(&pods, "Pod", sync).await?;
        synced(&packages, "Package", sync).await?;
        rebuild(&state, &triggers, &functions, options);
        background.push(rebuild_on_change(
            state.clone(),
            (triggers, functions),
            options,
            config.debounce,
            table_dirty,
        ));

        let (shutdown, stop) = watch::channel(false);
        let (listeners, workers) = match serve(&config, &state, &stop).await {
            Ok(started) => started,
            Err(error) => {
                for task in background {
                    task.abort();
                }
                return Err(error);
            }
        };
        tracing::info!(public = %listeners.public_addr, internal = %listeners.internal_addr,
            "router listening");
        Ok(RouterHandle {
            public_addr: listeners.public_addr,
            internal_addr: listeners.internal_addr,
            metrics_addr: listeners.metrics_addr,
            metrics,
            shutdown,
            servers: listeners.servers,
            workers,
            pending,
            background,
            drain_timeout: config.drain_timeout,
        })
    }
}
