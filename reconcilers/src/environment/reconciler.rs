//! The environment reconciler: keeps each Environment's warm pool at its desired per-cluster
//! counts. Pipeline: read pods, nodes and offloading state → validate → place and plan (pure) →
//! delete warm pods, apply the fetcher token Secret, create warm pods → status (server-side apply
//! on `/status`, only when it changed).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, reflector, watcher};

use kube::{Api, Client, ResourceExt};
use rivulet_api::environment::placement_split;
use rivulet_api::keys::{executor_types, fission_labels};
use rivulet_api::validation::validate_environment;
use rivulet_api::{Environment, EnvironmentStatus};
use tracing::info;

use super::fetcher_token::token_secret;
use super::offloaded::{is_ready, offloaded_condition};
use super::plan::{PoolPlan, WarmPod, cluster_counts, plan_pool};
use super::pool_pod::{
    PoolPodConfig, PoolPodError, build_pool_pod, pool_spec_hash, warm_pod_selector,
};
use super::refill::Refills;
use super::status::{Observed, build_status};
use crate::offloading::decision::Current;
use crate::offloading::desired::known_clusters;
use crate::placement::{LOCAL_CLUSTER, discover_clusters, select_clusters, split};
use crate::support::common::{self, apply_status};
use crate::support::shared::{Caches, Change, objects};

/// Field manager of every write this reconciler makes.
pub const FIELD_MANAGER: &str = "rivulet-environment";

/// Everything a reconcile needs besides the Environment.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Operator settings of pool pods.
    pub pool: PoolPodConfig,
    /// Cache of Nodes (clusters are derived from them).
    pub nodes: reflector::Store<Node>,
    /// The served `NamespaceOffloading` version, if Liqo is installed.
    pub offloading: Option<ApiResource>,
    /// Event recorder.
    pub recorder: Recorder,
    /// Shortages waiting for their refill.
    pub refills: Refills,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("pool", &self.pool)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Environment was not read from the API server (no namespace or uid).
    #[error("Environment {0} has no namespace or uid")]
    Metadata(String),
    /// Listing the warm pods failed.
    #[error("listing warm pods of {env}: {source}")]
    ListPods {
        /// namespace/name.
        env: String,
        /// Cause.
        source: kube::Error,
    },
    /// Reading the namespace's NamespaceOffloading failed.
    #[error("reading NamespaceOffloading of namespace {namespace}: {source}")]
    Offloading {
        /// Namespace.
        namespace: String,
        /// Cause.
        source: kube::Error,
    },
    /// A pool pod could not be built from the spec.
    #[error(transparent)]
    Build(#[from] PoolPodError),
    /// Applying the fetcher token Secret failed.
    #[error("applying the fetcher token Secret of {env}: {source}")]
    TokenSecret {
        /// namespace/name.
        env: String,
        /// Cause.
        source: kube::Error,
    },
    /// Creating a pool pod failed.
    #[error("creating a warm pod of {env} in cluster {cluster}: {source}")]
    CreatePod {
        /// namespace/name.
        env: String,
        /// Target cluster.
        cluster: String,
        /// Cause.
        source: kube::Error,
    },
    /// Deleting a warm pod failed.
    #[error("deleting warm pod {pod}: {source}")]
    DeletePod {
        /// Pod name.
        pod: String,
        /// Cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("writing status of {env}: {source}")]
    Status {
        /// namespace/name.
        env: String,
        /// Cause.
        source: kube::Error,
    },
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Metadata(_) => "metadata",
            Self::ListPods { .. } => "list_pods",
            Self::Offloading { .. } => "offloading",
            Self::Build(_) => "build",
            Self::TokenSecret { .. } => "token_secret",
            Self::CreatePod { .. } => "create_pod",
            Self::DeletePod { .. } => "delete_pod",
            Self::Status { .. } => "status",
        }
    }
}

/// Reconciles one Environment.
/// The Environment's warm pods, and why they are all stuck if they are
/// (`rivulet_api::pod_status::pool_stuck`).
async fn read_pool(
    pods: &Api<Pod>,
    uid: &str,
    key: &str,
) -> Result<(Vec<WarmPod>, Option<String>), Error> {
    let listed = pods
        .list(&ListParams::default().labels(&warm_pod_selector(uid)))
        .await
        .map_err(|source| Error::ListPods {
            env: key.to_owned(),
            source,
        })?
        .items;
    let stuck = rivulet_api::pod_status::pool_stuck(
        listed
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none()),
    );
    Ok((listed.iter().map(WarmPod::from_pod).collect(), stuck))
}

pub async fn reconcile(env: Arc<Environment>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = format!("{}/{}", env.namespace().unwrap_or_default(), env.name_any());
    let (Some(namespace), Some(uid)) = (env.namespace(), env.uid()) else {
        return Err(Error::Metadata(key));
    };
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
    let (warm, stuck) = read_pool(&pods, &uid, &key).await?;

    let errors = validate_environment(&env);
    if !errors.is_empty() {
        let observed = Observed {
            errors: &errors,
            selection: None,
            counts: &BTreeMap::new(),
            plan: &PoolPlan::default(),
            offloaded: None,
            stuck: None,
        };
        let status = build_status(&env, &observed, &now());
        if write_status(&env, &ctx, status).await? {
            publish(
                &ctx,
                &env,
                EventType::Warning,
                "InvalidSpec",
                &errors.to_string(),
            )
            .await;
        }
        // Nothing is deleted: an invalid edit must not cost the pool. Await the fix.
        return Ok(Action::await_change());
    }

    crate::support::cache::wait_ready(&ctx.nodes).await;
    let nodes: Vec<Node> = ctx
        .nodes
        .state()
        .iter()
        .map(|n| n.as_ref().clone())
        .collect();
    let ready_clusters = discover_clusters(&nodes);
    let selection = select_clusters(&ready_clusters, env.spec.placement.as_ref());
    let split_kind = env
        .spec
        .placement
        .as_ref()
        .and_then(|p| p.split.as_deref())
        .filter(|s| *s == placement_split::WEIGHTED);
    let desired = split(env.spec.pool_size(), &selection.clusters, split_kind);
    let hash = pool_spec_hash(&env.spec, &ctx.pool);
    let wants_remote = desired
        .iter()
        .any(|(cluster, n)| cluster != LOCAL_CLUSTER && *n > 0);
    let offloading = if wants_remote {
        read_offloading(&ctx, &namespace).await?
    } else {
        None
    };
    let offloaded = offloading.as_ref().is_some_and(is_ready);
    let plan = plan_pool(&desired, &hash, &warm, |_| offloaded);
    let (now_plan, refill_wait) = ctx.refills.now(&uid, &plan, Instant::now());
    converge(&env, &ctx, &pods, &now_plan, &hash, &key).await?;

    let counts = cluster_counts(&desired, &hash, &warm);
    let observed = Observed {
        errors: &errors,
        selection: Some(&selection),
        counts: &counts,
        plan: &plan,
        stuck,
        offloaded: if wants_remote {
            offloaded_condition(
                &env,
                offloading.as_ref(),
                &ready_clusters,
                &known_clusters(&nodes),
            )
        } else {
            None
        },
    };
    let status = build_status(&env, &observed, &now());
    if write_status(&env, &ctx, status).await? && selection.clusters.is_empty() {
        publish(
            &ctx,
            &env,
            EventType::Warning,
            selection.reason,
            &selection.message,
        )
        .await;
    }
    let next = refill_wait.unwrap_or_else(crate::support::resync::period);
    Ok(Action::requeue(next))
}

/// Carries out a pool plan: deletes, then creates.
async fn converge(
    env: &Environment,
    ctx: &Context,
    pods: &Api<Pod>,
    plan: &PoolPlan,
    hash: &str,
    key: &str,
) -> Result<(), Error> {
    for pod in &plan.delete {
        match pods.delete(pod, &DeleteParams::default()).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(source) => {
                return Err(Error::DeletePod {
                    pod: pod.clone(),
                    source,
                });
            }
        }
    }
    if !plan.create.is_empty()
        && let Some(fetcher_key) = &ctx.pool.fetcher_key
    {
        // Before the pods that mount it; applied on every refill so a deleted Secret comes back.
        let secret = token_secret(env, fetcher_key)?;
        let secrets: Api<Secret> =
            Api::namespaced(ctx.client.clone(), &env.namespace().unwrap_or_default());
        secrets
            .patch(
                &secret.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&secret),
            )
            .await
            .map_err(|source| Error::TokenSecret {
                env: key.to_owned(),
                source,
            })?;
    }
    for (cluster, count) in &plan.create {
        let pod = build_pool_pod(env, cluster, hash, &ctx.pool)?;
        for _ in 0..*count {
            pods.create(&PostParams::default(), &pod)
                .await
                .map_err(|source| Error::CreatePod {
                    env: key.to_owned(),
                    cluster: cluster.clone(),
                    source,
                })?;
        }
    }
    if !plan.is_empty() {
        let created: i32 = plan.create.values().sum();
        info!(env = %key, created, deleted = plan.delete.len(), "converging warm pool");
        let note = format!(
            "created {created} and deleted {} warm pods",
            plan.delete.len()
        );
        publish(ctx, env, EventType::Normal, "PoolScaled", &note).await;
    }

    Ok(())
}

/// The namespace's `NamespaceOffloading`, if Liqo is installed and it exists.
async fn read_offloading(ctx: &Context, namespace: &str) -> Result<Option<Current>, Error> {
    let Some(resource) = &ctx.offloading else {
        return Ok(None);
    };
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), namespace, resource);
    let object = api
        .get_opt(rivulet_api::keys::liqo::NAMESPACE_OFFLOADING_NAME)
        .await
        .map_err(|source| Error::Offloading {
            namespace: namespace.to_owned(),
            source,
        })?;
    Ok(object.as_ref().map(Current::from_object))
}

/// Applies the status when it differs from the stored one; returns whether it wrote.
async fn write_status(
    env: &Environment,
    ctx: &Context,
    status: EnvironmentStatus,
) -> Result<bool, Error> {
    if env.status.as_ref() == Some(&status) {
        return Ok(false);
    }
    apply_status(&ctx.client, env, FIELD_MANAGER, &status)
        .await
        .map_err(|source| Error::Status {
            env: env.name_any(),
            source,
        })?;
    Ok(true)
}

async fn publish(ctx: &Context, env: &Environment, type_: EventType, reason: &str, note: &str) {
    common::publish(&ctx.recorder, env, type_, "Reconcile", reason, note).await;
}

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::now())
}

/// Hash of the node fields placement depends on, so heartbeats do not trigger reconciles.
fn placement_shape(node: &Node) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node.metadata.labels.hash(&mut hasher);
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .hash(&mut hasher);
    if let Some(status) = &node.status {
        status
            .allocatable
            .as_ref()
            .and_then(|a| a.get("cpu"))
            .map(|q| q.0.clone())
            .hash(&mut hasher);
        let ready = status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == "Ready")
            .map(|c| c.status.clone());
        ready.hash(&mut hasher);
    }
    hasher.finish()
}

/// Turns node watch events into "placement may have changed" triggers: a node added, removed, or
/// changed in a field placement reads; not heartbeats.
fn placement_changes(
    events: impl futures::Stream<Item = Change<Node>>,
) -> impl futures::Stream<Item = ()> {
    let mut shapes: std::collections::HashMap<String, u64> = std::collections::HashMap::new();
    events.filter_map(move |event| {
        let trigger = match event {
            watcher::Event::Apply(node) | watcher::Event::InitApply(node) => {
                let shape = placement_shape(&node);
                let initial = shapes.is_empty();
                shapes.insert(node.name_any(), shape) != Some(shape) && !initial
            }
            watcher::Event::Delete(node) => {
                shapes.remove(&node.name_any());
                true
            }
            watcher::Event::InitDone => true,
            watcher::Event::Init => false,
        };
        std::future::ready(trigger.then_some(()))
    })
}

/// Runs the environment reconciler until `shutdown` resolves. Environments and Nodes come from
/// the shared `caches`; warm pods are watched here (no other reconciler reads them).
pub fn run<S>(
    client: Client,
    caches: &Caches,
    pool: PoolPodConfig,
    offloading: Option<ApiResource>,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let nodes = caches.nodes.store();
    let node_changes = placement_changes(caches.nodes.subscribe());
    let recorder = common::recorder(client.clone(), FIELD_MANAGER);
    let ctx = Arc::new(Context {
        client: client.clone(),
        pool,
        nodes,
        offloading: offloading.clone(),
        recorder,
        refills: Refills::default(),
    });
    let pool_pods = watcher::Config::default().labels(&format!(
        "{}={},{}=true",
        fission_labels::EXECUTOR_TYPE,
        executor_types::POOLMGR,
        fission_labels::MANAGED
    ));
    let environments = caches.environments.store();
    let controller = Controller::for_shared_stream(
        objects(caches.environments.subscribe()),
        environments.clone(),
    )
    .owns(Api::<Pod>::all(client.clone()), pool_pods);
    // Remote pods wait for a Ready offloading: when one changes (it turns Ready, or stops being
    // Ready), the Environments of its namespace look again at once.
    let controller = match offloading {
        Some(resource) => controller.watches_with(
            Api::<DynamicObject>::all_with(client, &resource),
            resource,
            watcher::Config::default().any_semantic(),
            move |offloading| {
                let namespace = offloading.namespace();
                environments
                    .state()
                    .iter()
                    .filter(|env| env.namespace() == namespace)
                    .map(|env| ObjectRef::from_obj(env.as_ref()))
                    .collect::<Vec<_>>()
            },
        ),
        None => controller,
    };
    common::drive(
        controller.reconcile_all_on(node_changes),
        "environment",
        reconcile,
        Error::metric_label,
        ctx,
        metrics,
        shutdown,
    )
}
