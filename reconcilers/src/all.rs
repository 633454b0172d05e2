//! Every reconciler, started together: `rivulet controller` runs this set while it leads,
//! `rivulet up` runs it for the whole session. One place decides what "the operator" is.

use std::future::Future;

use kube::Client;
use tokio::task::JoinSet;

use crate::environment::pool_pod::PoolPodConfig;
use crate::fetcher_access::objects::{DEFAULT_CLUSTER_ROLE, FetcherAccessConfig};
use crate::httptrigger::ingress::RouterService;
use crate::offloading::OffloadingConfig;
use crate::support::Metrics;
use crate::support::leader::Stop;
use crate::support::shared::Caches;
use crate::triggers::delivery::{DeliveryConfig, bearer};
use crate::triggers::mqtrigger::objects::ConnectorConfig;
use crate::triggers::tasks::TriggerCalls;
use crate::triggers::{kubewatcher, mqtrigger, timetrigger};
use crate::{environment, fetcher_access, function, httptrigger, offloading, package};

/// What the reconcilers need besides a client.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Shape of pool and function pods (fetcher image and command).
    pub pods: PoolPodConfig,
    /// The router Service that trigger Ingresses point at; its namespace is also where the
    /// only pods allowed to reach fetchers run.
    pub router: RouterService,
    /// ClusterRole bound to each function namespace's fetcher ServiceAccount
    /// (`pods.service_account`).
    pub fetcher_cluster_role: String,
    /// Whether each function namespace gets the NetworkPolicy that lets only the router's pods
    /// reach the fetcher port.
    pub fetcher_network_policy: bool,
    /// The served `NamespaceOffloading` API (from [`offloading::discover`]) and how offloadings
    /// are created.
    pub offloading: OffloadingConfig,
    /// Base URL of the router's internal listener, where triggers call functions
    /// (`/fission-function/...`); default `http://127.0.0.1:8889`.
    pub router_url: String,
    /// How trigger deliveries are retried.
    pub delivery: DeliveryConfig,
    /// Images of the KEDA connectors of MessageQueueTriggers.
    pub connectors: ConnectorConfig,
}

/// The router internal listener's URL when the router runs next to the controller.
pub const DEFAULT_ROUTER_URL: &str = "http://127.0.0.1:8889";

impl Default for Settings {
    fn default() -> Self {
        Self {
            pods: PoolPodConfig::default(),
            router: RouterService::default(),
            fetcher_cluster_role: DEFAULT_CLUSTER_ROLE.to_owned(),
            fetcher_network_policy: true,
            offloading: OffloadingConfig::default(),
            router_url: DEFAULT_ROUTER_URL.to_owned(),
            delivery: DeliveryConfig::default(),
            connectors: ConnectorConfig::default(),
        }
    }
}

impl Settings {
    /// The fetcher-access objects that go with these pods and this router.
    pub fn fetcher_access(&self) -> FetcherAccessConfig {
        FetcherAccessConfig {
            service_account: self.pods.service_account.clone(),
            cluster_role: self.fetcher_cluster_role.clone(),
            router_namespace: self
                .fetcher_network_policy
                .then(|| self.router.namespace.clone()),
        }
    }

    /// How the triggers call functions: with the router internal token whenever there is a key,
    /// since the router then requires it (`rivulet router`).
    pub fn trigger_calls(&self, metrics: &Metrics) -> TriggerCalls {
        TriggerCalls {
            router_url: self.router_url.clone(),
            delivery: self.delivery.clone(),
            authorization: self
                .pods
                .fetcher_key
                .as_ref()
                .and_then(|key| bearer(&key.router_internal_token())),
            metrics: metrics.clone(),
        }
    }
}

/// Starts every reconciler on its own task; the future resolves when all have stopped after
/// `stop` fired (each finishes the reconciles in flight first). Dropping the future cancels them
/// (they live in a `JoinSet`), which is how a supervisor bounds the grace:
/// [`crate::support::leader::while_leader`].
pub fn start(
    client: &Client,
    settings: &Settings,
    metrics: &Metrics,
    stop: &Stop,
) -> impl Future<Output = ()> + use<> {
    // Each kind is watched once for the whole set; the reconcilers take their stores and
    // subscriptions here, before the watches start.
    let caches = Caches::new(client);
    let mut set = JoinSet::new();
    spawn_named(
        &mut set,
        "environment",
        environment::reconciler::run(
            client.clone(),
            &caches,
            settings.pods.clone(),
            settings.offloading.resource.clone(),
            metrics.clone(),
            stop.clone(),
        ),
    );
    spawn_named(
        &mut set,
        "function",
        function::reconciler::run(
            client.clone(),
            &caches,
            settings.pods.clone(),
            metrics.clone(),
            stop.clone(),
        ),
    );
    spawn_named(
        &mut set,
        "fetcher-access",
        fetcher_access::reconciler::run(
            client.clone(),
            &caches,
            settings.fetcher_access(),
            metrics.clone(),
            stop.clone(),
        ),
    );
    spawn_named(
        &mut set,
        "package",
        package::reconciler::run(client.clone(), &caches, metrics.clone(), stop.clone()),
    );
    spawn_named(
        &mut set,
        "httptrigger",
        httptrigger::reconciler::run(
            client.clone(),
            &caches,
            settings.router.clone(),
            metrics.clone(),
            stop.clone(),
        ),
    );
    spawn_named(
        &mut set,
        "offloading",
        offloading::reconciler::run(
            client.clone(),
            &caches,
            settings.offloading.clone(),
            metrics.clone(),
            stop.clone(),
        ),
    );
    let calls = settings.trigger_calls(metrics);
    spawn_named(
        &mut set,
        "kubewatcher",
        kubewatcher::run(client.clone(), &calls, stop.clone()),
    );
    spawn_named(
        &mut set,
        "timetrigger",
        timetrigger::run(client.clone(), &calls, stop.clone()),
    );
    spawn_named(
        &mut set,
        "mqtrigger",
        mqtrigger::reconciler::run(
            client.clone(),
            &caches,
            calls,
            settings.connectors.clone(),
            metrics.clone(),
            stop.clone(),
        ),
    );
    caches.serve(async move {
        while let Some(stopped) = set.join_next().await {
            match stopped {
                Ok(name) => tracing::info!("the {name} reconciler stopped"),
                Err(e) => tracing::error!("a reconciler failed: {e}"),
            }
        }
    })
}

fn spawn_named(
    set: &mut JoinSet<&'static str>,
    name: &'static str,
    reconciler: impl Future<Output = ()> + Send + 'static,
) {
    set.spawn(async move {
        reconciler.await;
        name
    });
}
