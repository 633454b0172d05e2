//! The offloading reconciler: one reconcile per Namespace. Pipeline: read the namespace's
//! Environments and `NamespaceOffloading`, and the Nodes (cache) → desired offloading and decision (pure) →
//! server-side apply or delete (ours only) → Events on the Environments.
//!
//! Keyed by Namespace (a Controller over `Namespace`, with Environments and offloadings mapped to
//! their namespace): there is one `NamespaceOffloading` per namespace, and it must be deleted
//! when the last Environment that needed it goes away, when there is no Environment left to
//! reconcile. Namespaces are never written.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use rivulet_api::Environment;
use rivulet_api::keys::liqo;
use rivulet_api::liqo::v1alpha1::NamespaceOffloading as NamespaceOffloadingV1alpha1;
use rivulet_api::liqo::v1beta1::NamespaceOffloading as NamespaceOffloadingV1beta1;
use tracing::{info, warn};

use super::decision::{Conflict, Current, Decision, decide, reasons, remote_pods};
use super::desired::{DesiredOffloading, OffloadingConfig, desired_offloading, known_clusters};
use crate::placement::discover_clusters;
use crate::support::common;
use crate::support::shared::{Caches, objects};

/// Field manager of every write this reconciler makes.
pub const FIELD_MANAGER: &str = "rivulet-offloading";
/// Retry delay after a failed reconcile.
/// Re-check delay while remote pods keep an unneeded offloading alive.
const REMOTE_PODS_RECHECK: Duration = Duration::from_secs(15);

/// Everything a reconcile needs besides the Namespace.
pub struct Context {
    /// API client.
    pub client: Client,
    /// The served `NamespaceOffloading` API.
    pub resource: ApiResource,
    /// Reconciler settings.
    pub config: OffloadingConfig,
    /// Cache of Nodes (clusters are derived from them).
    pub nodes: Store<Node>,
    /// Event recorder.
    pub recorder: Recorder,
    /// Last report (adoption or immutable-field conflict) published per namespace, so an
    /// unchanged situation is reported once, not on every resync.
    pub reported: Mutex<HashMap<String, String>>,
}

impl Context {
    /// A context for `client`, reading clusters from `nodes` (a reflector store of all Nodes).
    pub fn new(
        client: Client,
        resource: ApiResource,
        config: OffloadingConfig,
        nodes: Store<Node>,
    ) -> Self {
        let recorder = common::recorder(client.clone(), FIELD_MANAGER);
        Self {
            client,
            resource,
            config,
            nodes,
            recorder,
            reported: Mutex::new(HashMap::new()),
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("resource", &self.resource)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Listing the namespace's Environments failed.
    #[error("listing Environments of namespace {namespace}: {source}")]
    ListEnvironments {
        /// Namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// Reading the namespace's NamespaceOffloading failed.
    #[error("reading NamespaceOffloading {namespace}/offloading: {source}")]
    Read {
        /// Namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// Applying Rivulet's NamespaceOffloading failed.
    #[error("applying NamespaceOffloading {namespace}/offloading: {source}")]
    Apply {
        /// Namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// Deleting Rivulet's NamespaceOffloading failed.
    #[error("deleting NamespaceOffloading {namespace}/offloading: {source}")]
    Delete {
        /// Namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// Listing the namespace's pods (before a deletion) failed.
    #[error("listing pods of namespace {namespace}: {source}")]
    ListPods {
        /// Namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::ListEnvironments { .. } => "list_environments",
            Self::Read { .. } => "read",
            Self::Apply { .. } => "apply",
            Self::Delete { .. } => "delete",
            Self::ListPods { .. } => "list_pods",
        }
    }
}

/// Which `NamespaceOffloading` API the cluster serves: `offloading.liqo.io/v1beta1` (Liqo ≥ 1.0)
/// preferred, else `v1alpha1` (Liqo ≤ 0.10); `None` when Liqo is not installed. Discovery
/// errors are returned, so the caller may retry.
pub async fn try_discover(client: &Client) -> Result<Option<ApiResource>, kube::Error> {
    let candidates = [
        ApiResource::erase::<NamespaceOffloadingV1beta1>(&()),
        ApiResource::erase::<NamespaceOffloadingV1alpha1>(&()),
    ];
    let groups = client.list_api_groups().await?;
    let Some(group) = groups
        .groups
        .iter()
        .find(|g| g.name == rivulet_api::liqo::GROUP)
    else {
        return Ok(None);
    };
    for candidate in candidates {
        if !group
            .versions
            .iter()
            .any(|v| v.version == candidate.version)
        {
            continue;
        }
        let resources = client
            .list_api_group_resources(&candidate.api_version)
            .await?;
        if resources
            .resources
            .iter()
            .any(|r| r.name == candidate.plural && r.kind == candidate.kind)
        {
            return Ok(Some(candidate));
        }
    }
    Ok(None)
}

/// [`try_discover`], with an error logged and read as "not served" (no remote placement, which
/// is the safe side: pools stay local).
pub async fn discover(client: &Client) -> Option<ApiResource> {
    match try_discover(client).await {
        Ok(found) => found,
        Err(e) => {
            warn!("cannot discover the NamespaceOffloading API (offloading.liqo.io): {e}");
            None
        }
    }
}

/// Reconciles the `NamespaceOffloading` of one namespace.
pub async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let ns = namespace.name_any();
    if namespace.metadata.deletion_timestamp.is_some() {
        // Namespace deletion removes the offloading; writes into it would be refused.
        return Ok(Action::await_change());
    }
    crate::support::cache::wait_ready(&ctx.nodes).await;
    let nodes: Vec<Node> = ctx.nodes.state().iter().map(|n| (**n).clone()).collect();
    let ready = discover_clusters(&nodes);
    let known = known_clusters(&nodes);
    // Read from the API server, not a cache: a cache may lag the watch event that triggered
    // this reconcile, and a missed Environment would leave its remote pods unplaced.
    let environments: Vec<Environment> = Api::<Environment>::namespaced(ctx.client.clone(), &ns)
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::ListEnvironments {
            namespace: ns.clone(),
            source,
        })?
        .items;
    let env_refs: Vec<&Environment> = environments.iter().collect();
    let desired = desired_offloading(&env_refs, &ready, &known, ctx.config.namespace_mapping);
    let current = Api::<DynamicObject>::namespaced_with(ctx.client.clone(), &ns, &ctx.resource)
        .get_opt(liqo::NAMESPACE_OFFLOADING_NAME)
        .await
        .map_err(|source| Error::Read {
            namespace: ns.clone(),
            source,
        })?
        .map(|o| Current::from_object(&o));

    match decide(desired.as_ref(), current.as_ref(), &known) {
        Decision::Nothing | Decision::Terminating => forget(&ctx, &ns),
        Decision::Create(desired) => {
            apply(&ctx, &ns, &desired).await?;
            forget(&ctx, &ns);
            let note = format!(
                "created NamespaceOffloading {ns}/offloading ({}): podOffloadingStrategy \
                 LocalAndRemote, namespaceMappingStrategy {}, clusters {}; remote warm pods are \
                 created once Liqo reports it Ready",
                ctx.resource.api_version,
                ctx.config.namespace_mapping.as_str(),
                desired.clusters
            );
            info!(namespace = %ns, clusters = %desired.clusters, "created NamespaceOffloading");
            notify(
                &ctx,
                &environments,
                &desired.environments,
                EventType::Normal,
                reasons::CREATED,
                &note,
            )
            .await;
        }
        Decision::Update { desired, conflicts } => {
            apply(&ctx, &ns, &desired).await?;
            let note = format!(
                "updated NamespaceOffloading {ns}/offloading: clusters {}",
                desired.clusters
            );
            info!(namespace = %ns, clusters = %desired.clusters, "updated NamespaceOffloading");
            notify(
                &ctx,
                &environments,
                &desired.environments,
                EventType::Normal,
                reasons::UPDATED,
                &note,
            )
            .await;
            report_conflicts(&ctx, &ns, &environments, &desired.environments, &conflicts).await;
        }
        Decision::UpToDate {
            environments: needing,
            conflicts,
        } => report_conflicts(&ctx, &ns, &environments, &needing, &conflicts).await,
        Decision::Adopt(effect) => {
            let message = effect.message(&ns);
            let type_ = if effect.covers() {
                EventType::Normal
            } else {
                EventType::Warning
            };
            if remember(&ctx, &ns, &message) {
                info!(namespace = %ns, "{message}");
                notify(
                    &ctx,
                    &environments,
                    &effect.environments,
                    type_,
                    effect.reason(),
                    &message,
                )
                .await;
            }
        }
        Decision::Delete => {
            forget(&ctx, &ns);
            return delete_when_unused(&ctx, &ns, &nodes).await;
        }
    }
    Ok(Action::requeue(crate::support::resync::period()))
}

/// Deletes Rivulet's offloading, unless pods still run remotely (their remote copies would be
/// deleted with the remote namespace).
async fn delete_when_unused(ctx: &Context, ns: &str, nodes: &[Node]) -> Result<Action, Error> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let list = pods
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::ListPods {
            namespace: ns.to_owned(),
            source,
        })?;
    let remote = remote_pods(&list.items, nodes);
    if !remote.is_empty() {
        info!(
            namespace = %ns,
            pods = %remote.join(", "),
            "NamespaceOffloading no longer needed; deleting it once these remote pods are gone"
        );
        return Ok(Action::requeue(REMOTE_PODS_RECHECK));
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ctx.resource);
    match api
        .delete(liqo::NAMESPACE_OFFLOADING_NAME, &DeleteParams::default())
        .await
    {
        Ok(_) => {
            info!(namespace = %ns, "deleted NamespaceOffloading: no Environment places pods remotely");
        }
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(source) => {
            return Err(Error::Delete {
                namespace: ns.to_owned(),
                source,
            });
        }
    }
    Ok(Action::requeue(crate::support::resync::period()))
}

async fn apply(ctx: &Context, ns: &str, desired: &DesiredOffloading) -> Result<(), Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), ns, &ctx.resource);
    api.patch(
        liqo::NAMESPACE_OFFLOADING_NAME,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&desired.to_object(ns, &ctx.resource)),
    )
    .await
    .map_err(|source| Error::Apply {
        namespace: ns.to_owned(),
        source,
    })?;
    Ok(())
}

async fn report_conflicts(
    ctx: &Context,
    ns: &str,
    environments: &[Environment],
    needing: &[String],
    conflicts: &[Conflict],
) {
    if conflicts.is_empty() {
        forget(ctx, ns);
        return;
    }
    let message = format!(
        "NamespaceOffloading {ns}/offloading: {}",
        conflicts
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    );
    if remember(ctx, ns, &message) {
        warn!(namespace = %ns, "{message}");
        notify(
            ctx,
            environments,
            needing,
            EventType::Warning,
            reasons::IMMUTABLE_FIELD,
            &message,
        )
        .await;
    }
}

/// Records `report` as the namespace's current report; returns whether it is new.
fn remember(ctx: &Context, ns: &str, report: &str) -> bool {
    let mut reported = ctx
        .reported
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if reported.get(ns).map(String::as_str) == Some(report) {
        return false;
    }
    reported.insert(ns.to_owned(), report.to_owned());
    true
}

fn forget(ctx: &Context, ns: &str) {
    ctx.reported
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .remove(ns);
}

/// Publishes an Event on each named Environment.
async fn notify(
    ctx: &Context,
    environments: &[Environment],
    names: &[String],
    type_: EventType,
    reason: &str,
    note: &str,
) {
    for env in environments
        .iter()
        .filter(|e| names.contains(&e.name_any()))
    {
        common::publish(&ctx.recorder, env, type_, "Offload", reason, note).await;
    }
}

/// Runs the offloading reconciler until `shutdown` resolves. Without a served
/// `NamespaceOffloading` API (`config.resource` is `None`) it logs once and idles, and takes
/// nothing from the shared `caches` (an unread subscription would hold their watches back).
pub fn run<S>(
    client: Client,
    caches: &Caches,
    config: OffloadingConfig,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let Some(resource) = config.resource.clone() else {
        info!(
            "offloading.liqo.io NamespaceOffloading is not served (Liqo not installed): the \
             offloading reconciler idles and pools stay in the local cluster"
        );
        return shutdown.left_future();
    };
    controller(client, caches, &resource, config, metrics, shutdown).right_future()
}

fn controller<S>(
    client: Client,
    caches: &Caches,
    resource: &ApiResource,
    config: OffloadingConfig,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    // Every node event triggers a pass over all namespaces (a pass writes nothing when
    // converged). The environment reconciler's heartbeat filter is private to it.
    let node_changes = caches
        .nodes
        .subscribe()
        .filter_map(|_| std::future::ready(Some(())));
    let ctx = Arc::new(Context::new(
        client.clone(),
        resource.clone(),
        config,
        caches.nodes.store(),
    ));
    let controller = Controller::new(
        Api::<Namespace>::all(client.clone()),
        watcher::Config::default(),
    )
    .watches_shared_stream(objects(caches.environments.subscribe()), |env| {
        namespace_of(env.as_ref())
    })
    .watches_with(
        Api::<DynamicObject>::all_with(client, resource),
        resource.clone(),
        watcher::Config::default().any_semantic(),
        |offloading| namespace_of(&offloading),
    )
    .reconcile_all_on(node_changes);
    common::drive(
        controller,
        "offloading",
        reconcile,
        Error::metric_label,
        ctx,
        metrics,
        shutdown,
    )
}

fn namespace_of<K: Resource>(object: &K) -> Option<ObjectRef<Namespace>> {
    object.meta().namespace.as_deref().map(ObjectRef::new)
}
