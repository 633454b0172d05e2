//! The function reconciler: checks a Function's references, keeps the Deployment, Service and HPA
//! of `newdeploy`/`container` functions applied, reports `Ready` with a precise reason, and reaps
//! idle specialized `poolmgr` pods (see [`super::reaper`] for the activity contract).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, ListParams, PartialObjectMeta, Patch, PatchParams, PostParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, Resource, ResourceExt};
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::keys::executor_types;
use rivulet_api::validation::validate_function;
use rivulet_api::{ConditionedStatus, Environment, ExecutorType, Function, Package};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::{info, warn};

use super::deploy::{DeployObjects, build_container, build_newdeploy, object_name};
use super::reaper::{Policy, SpecializedPod, pods_to_reap};
use super::refs::{NotReady, Resolved, check, ref_namespace};
use crate::environment::pool_pod::PoolPodConfig;
use crate::support::shared::{Caches, changed_by, objects};
use rivulet_api::conditions::{Wanted, set};

/// Field manager of every write this reconciler makes.
pub const FIELD_MANAGER: &str = "rivulet-function";
/// Field manager of the creation of a Deployment (owns the initial replica count).
pub const CREATE_FIELD_MANAGER: &str = "rivulet-function-create";
/// Missing secrets/configmaps are not watched; look again this often.
const MISSING_REFERENCE_RECHECK: Duration = Duration::from_secs(5);
const RETRY: Duration = Duration::from_secs(5);
/// Reaper tick (Fission's default).
pub const REAPER_INTERVAL: Duration = Duration::from_secs(5);

/// Reasons of `Ready` specific to Deployment-backed functions.
pub mod reasons {
    /// The function is usable.
    pub const READY: &str = "Ready";
    /// The Deployment has no available replica yet.
    pub const DEPLOYMENT_NOT_AVAILABLE: &str = "DeploymentNotAvailable";
    /// The objects cannot be built (for example a container pod spec with two ports).
    pub const INVALID_POD_SPEC: &str = "InvalidPodSpec";
}

/// Everything a reconcile needs besides the Function.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Settings of function pods (fetcher image and command).
    pub pods: PoolPodConfig,
    /// Event recorder.
    pub recorder: Recorder,
    /// Every Environment (shared cache).
    pub environments: Store<Environment>,
    /// Every Package (shared cache).
    pub packages: Store<Package>,
    /// Metadata of every Secret (shared cache).
    pub secrets: Store<PartialObjectMeta<Secret>>,
    /// Metadata of every ConfigMap (shared cache).
    pub configmaps: Store<PartialObjectMeta<ConfigMap>>,
    /// The Deployments of newdeploy and container functions (shared cache).
    pub deployments: Store<Deployment>,
}

impl Context {
    /// A context reading references from `caches` (which must be served for reconciles to
    /// proceed: they wait for the initial lists).
    pub fn new(client: Client, caches: &Caches, pods: PoolPodConfig, recorder: Recorder) -> Self {
        Self {
            client,
            pods,
            recorder,
            environments: caches.environments.store(),
            packages: caches.packages.store(),
            secrets: caches.secrets.store(),
            configmaps: caches.configmaps.store(),
            deployments: caches.function_deployments.store(),
        }
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("pods", &self.pods)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Function was not read from the API server.
    #[error("Function {0} has no namespace")]
    Metadata(String),
    /// Reading a referenced object failed (other than not found).
    #[error("reading {what}: {source}")]
    Read {
        /// What was read.
        what: String,
        /// Cause.
        source: kube::Error,
    },
    /// Applying a Deployment, Service or HPA failed.
    #[error("applying {what}: {source}")]
    Apply {
        /// What was applied.
        what: String,
        /// Cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("writing status of {function}: {source}")]
    Status {
        /// namespace/name.
        function: String,
        /// Cause.
        source: kube::Error,
    },
    /// A shared cache stopped before its initial list (the controller is stopping).
    #[error("a shared cache stopped before listing")]
    CacheClosed,
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Metadata(_) => "metadata",
            Self::Read { .. } => "read",
            Self::Apply { .. } => "apply",
            Self::Status { .. } => "status",
            Self::CacheClosed => "cache_closed",
        }
    }
}

/// Reconciles one Function.
// One pipeline (validate → resolve → build → apply → status), clearest read top to bottom.
#[allow(clippy::too_many_lines)]
pub async fn reconcile(function: Arc<Function>, ctx: Arc<Context>) -> Result<Action, Error> {
    let Some(namespace) = function.namespace() else {
        return Err(Error::Metadata(function.name_any()));
    };
    let errors = validate_function(&function);
    if !errors.is_empty() {
        let wanted = Wanted {
            type_: READY,
            status: false,
            reason: REASON_INVALID_SPEC,
            message: errors.to_string(),
        };
        report(&function, &ctx, wanted, EventType::Warning).await?;
        return Ok(Action::await_change());
    }

    let spec = &function.spec;
    // References come from the shared caches, which every change of them re-triggers.
    for ready in [
        crate::support::cache::wait_ready(&ctx.environments).await,
        crate::support::cache::wait_ready(&ctx.packages).await,
        crate::support::cache::wait_ready(&ctx.secrets).await,
        crate::support::cache::wait_ready(&ctx.configmaps).await,
        crate::support::cache::wait_ready(&ctx.deployments).await,
    ] {
        if !ready {
            return Err(Error::CacheClosed);
        }
    }
    let environment = lookup(
        &ctx.environments,
        ref_namespace(&spec.environment.namespace, &function),
        &spec.environment.name,
    );
    let package = lookup(
        &ctx.packages,
        ref_namespace(&spec.package.packageref.namespace, &function),
        &spec.package.packageref.name,
    );
    let mut resolved = Resolved {
        environment: environment.as_deref(),
        package: package.as_deref(),
        ..Resolved::default()
    };
    let mut rv_count: u64 = 0;
    for r in spec.secrets.iter().flatten() {
        match lookup(&ctx.secrets, &namespace, &r.name) {
            Some(s) => rv_count += resource_version(s.as_ref()),
            None => resolved.missing_secrets.push(r.name.clone()),
        }
    }
    for r in spec.configmaps.iter().flatten() {
        match lookup(&ctx.configmaps, &namespace, &r.name) {
            Some(c) => rv_count += resource_version(c.as_ref()),
            None => resolved.missing_configmaps.push(r.name.clone()),
        }
    }
    if let Err(NotReady { reason, message }) = check(&function, &resolved) {
        report(
            &function,
            &ctx,
            Wanted {
                type_: READY,
                status: false,
                reason,
                message,
            },
            EventType::Warning,
        )
        .await?;
        let missing =
            !resolved.missing_secrets.is_empty() || !resolved.missing_configmaps.is_empty();
        return Ok(if missing {
            Action::requeue(MISSING_REFERENCE_RECHECK)
        } else {
            Action::await_change()
        });
    }

    let executor = spec.executor_type();
    remove_other_executors(&function, &ctx, executor).await?;
    let built = match executor {
        Some(ExecutorType::Newdeploy) => {
            let Some(env) = environment.as_ref() else {
                unreachable_environment()
            };
            let request =
                rivulet_api::specialize::FunctionSpecializeRequest::for_function(&function, env);
            let request = serde_json::to_string(&request).unwrap_or_default();
            Some(build_newdeploy(
                &function, env, &request, rv_count, &ctx.pods,
            ))
        }
        Some(ExecutorType::Container) => Some(build_container(&function, rv_count)),
        Some(ExecutorType::Poolmgr) | None => None,
    };
    let wanted = match built {
        None => Wanted {
            type_: READY,
            status: true,
            reason: reasons::READY,
            message: "references resolve; a warm pod is specialized on the first request".into(),
        },
        Some(Err(e)) => {
            let wanted = Wanted {
                type_: READY,
                status: false,
                reason: reasons::INVALID_POD_SPEC,
                message: e.to_string(),
            };
            report(&function, &ctx, wanted, EventType::Warning).await?;
            return Ok(Action::await_change());
        }
        Some(Ok(objects)) => apply_objects(&ctx, &namespace, objects).await?,
    };
    let event = if wanted.status {
        EventType::Normal
    } else {
        EventType::Warning
    };
    report(&function, &ctx, wanted, event).await?;
    Ok(Action::requeue(crate::support::resync::period()))
}

/// The environment is checked by [`check`] before any newdeploy build.
fn unreachable_environment() -> ! {
    unreachable!("check() guarantees the environment exists for newdeploy functions")
}

async fn apply_objects(
    ctx: &Context,
    namespace: &str,
    objects: DeployObjects,
) -> Result<Wanted<'static>, Error> {
    let DeployObjects {
        mut deployment,
        service,
        hpa,
    } = objects;
    let name = deployment.metadata.name.clone().unwrap_or_default();
    let deployments: Api<Deployment> = Api::namespaced(ctx.client.clone(), namespace);
    let existing = deployments
        .get_opt(&name)
        .await
        .map_err(|source| Error::Read {
            what: format!("Deployment {name}"),
            source,
        })?;
    if existing.is_none() {
        // Replicas are set once, at creation, under a separate manager; the applied
        // configuration never includes them, so server-side apply neither fights the HPA nor
        // removes the field.
        let params = PostParams {
            field_manager: Some(CREATE_FIELD_MANAGER.into()),
            ..PostParams::default()
        };
        deployments
            .create(&params, &deployment)
            .await
            .map_err(|source| Error::Apply {
                what: format!("create Deployment {name}"),
                source,
            })?;
    }
    deployment.spec.replicas = None;
    let applied = apply(&deployments, &name, &deployment).await?;
    apply(
        &Api::<Service>::namespaced(ctx.client.clone(), namespace),
        &name,
        &service,
    )
    .await?;
    apply(
        &Api::<HorizontalPodAutoscaler>::namespaced(ctx.client.clone(), namespace),
        &name,
        &hpa,
    )
    .await?;
    let available = applied
        .status
        .and_then(|s| s.available_replicas)
        .unwrap_or(0);
    Ok(if available >= 1 {
        Wanted {
            type_: READY,
            status: true,
            reason: reasons::READY,
            message: format!(
                "Deployment {name} has {available} available replica(s); address {name}.{namespace}"
            ),
        }
    } else {
        Wanted {
            type_: READY,
            status: false,
            reason: reasons::DEPLOYMENT_NOT_AVAILABLE,
            message: format!(
                "Deployment {name} has no available replica yet (its pods specialize at start; see `kubectl describe deployment {name}`)"
            ),
        }
    })
}

async fn apply<K>(api: &Api<K>, name: &str, object: &K) -> Result<K, Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| Error::Apply {
        what: format!("{} {name}", K::kind(&K::DynamicType::default())),
        source,
    })
}

/// When the executor type changes, the objects of the previous one go (only on spec changes,
/// so a converged function costs no extra calls).
async fn remove_other_executors(
    function: &Function,
    ctx: &Context,
    current: Option<ExecutorType>,
) -> Result<(), Error> {
    let observed = function.status.as_ref().and_then(|s| s.observed_generation);
    if observed.is_some() && observed == function.metadata.generation {
        return Ok(());
    }
    let (Some(namespace), Some(uid)) = (function.namespace(), function.uid()) else {
        return Ok(());
    };
    for (executor, kind) in [
        (executor_types::NEWDEPLOY, ExecutorType::Newdeploy),
        (executor_types::CONTAINER, ExecutorType::Container),
    ] {
        if current == Some(kind) {
            continue;
        }
        let name = object_name(executor, &function.name_any(), &namespace, &uid);
        // The three are created together, Deployment first: without it there is nothing to
        // delete (this saves 6 requests per new poolmgr Function).
        if lookup(&ctx.deployments, &namespace, &name).is_none() {
            continue;
        }
        delete_if_present::<Deployment>(&ctx.client, &namespace, &name).await?;
        delete_if_present::<Service>(&ctx.client, &namespace, &name).await?;
        delete_if_present::<HorizontalPodAutoscaler>(&ctx.client, &namespace, &name).await?;
    }
    Ok(())
}

async fn delete_if_present<K>(client: &Client, namespace: &str, name: &str) -> Result<(), Error>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(source) => Err(Error::Apply {
            what: format!("delete {name}"),
            source,
        }),
    }
}

/// `namespace/name` in a cache (`None` for an empty name: an unset reference).
fn lookup<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<Arc<K>>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    if name.is_empty() {
        return None;
    }
    store.get(&ObjectRef::new(name).within(namespace))
}

fn resource_version(object: &impl Resource) -> u64 {
    object
        .meta()
        .resource_version
        .as_deref()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

/// Sets the `Ready` condition; writes (and publishes an Event) only when the status changed.
async fn report(
    function: &Function,
    ctx: &Context,
    wanted: Wanted<'_>,
    event: EventType,
) -> Result<(), Error> {
    let mut status: ConditionedStatus = function.status.clone().unwrap_or_default();
    let reason = wanted.reason.to_owned();
    let message = wanted.message.clone();
    set(
        &mut status.conditions,
        wanted,
        function.metadata.generation,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    status.observed_generation = function.metadata.generation;
    if function.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let api: Api<Function> = Api::namespaced(
        ctx.client.clone(),
        &function.namespace().unwrap_or_default(),
    );
    // Only the fields this reconciler owns: the router owns `Specialized` (field manager
    // `rivulet-router`), and server-side apply keeps it because conditions are a map by type.
    let ready = status.condition(READY).cloned();
    let patch = json!({"apiVersion": rivulet_api::API_VERSION, "kind": "Function", "status": {
        "observedGeneration": status.observed_generation,
        "conditions": ready.into_iter().collect::<Vec<_>>(),
    }});
    api.patch_status(
        &function.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|source| Error::Status {
        function: function.name_any(),
        source,
    })?;
    let previous = function
        .status
        .as_ref()
        .and_then(|s| s.condition(READY))
        .map(|c| c.reason.clone());
    if previous.as_deref() != Some(reason.as_str()) {
        let ev = Event {
            type_: event,
            reason,
            note: Some(message.chars().take(1024).collect()),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &function.object_ref(&())).await {
            warn!(function = %function.name_any(), "cannot publish event: {e}");
        }
    }
    Ok(())
}

/// Failed reconciles are retried after a short delay.
// The signature is kube-runtime's `error_policy` contract.
#[allow(clippy::needless_pass_by_value)]
pub fn error_policy(function: Arc<Function>, error: &Error, _ctx: Arc<Context>) -> Action {
    warn!(function = %function.name_any(), reason = error.metric_label(), "reconcile failed: {error}");
    Action::requeue(RETRY)
}

/// Functions whose references point at `namespace`/`name` of the given kind.
fn referrers(
    store: &Store<Function>,
    namespace: &str,
    name: &str,
    environment: bool,
) -> Vec<ObjectRef<Function>> {
    store
        .state()
        .iter()
        .filter(|f| {
            let (ns, n) = if environment {
                (&f.spec.environment.namespace, &f.spec.environment.name)
            } else {
                (
                    &f.spec.package.packageref.namespace,
                    &f.spec.package.packageref.name,
                )
            };
            n == name && ref_namespace(ns, f) == namespace
        })
        .map(|f| ObjectRef::from_obj(f.as_ref()))
        .collect()
}

/// What the function reconciler reads of an Environment: its spec and labels (newdeploy pods
/// carry them), not its status, which changes all the time while its pool fills.
fn environment_inputs(env: &Environment) -> (Option<i64>, Option<BTreeMap<String, String>>) {
    (env.metadata.generation, env.metadata.labels.clone())
}

/// Runs the function reconciler and the idle reaper until `shutdown` resolves. Functions and
/// their references come from the shared `caches`.
pub fn run<S>(
    client: Client,
    caches: &Caches,
    pods: PoolPodConfig,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let ctx = Arc::new(Context::new(client.clone(), caches, pods, recorder));
    let store = caches.functions.store();
    let controller =
        Controller::for_shared_stream(objects(caches.functions.subscribe()), store.clone());
    let (by_env, by_pkg) = (store.clone(), store.clone());
    let (stop_reaper, reaper_stopped) = tokio::sync::watch::channel(false);
    let reaper = tokio::spawn(reap_loop(client, store, reaper_stopped));
    let shutdown = async move {
        shutdown.await;
        let _ = stop_reaper.send(true);
    };
    let controller = controller
        .owns_shared_stream(objects(caches.function_deployments.subscribe()))
        .watches_shared_stream(
            changed_by(caches.environments.subscribe(), environment_inputs),
            move |env| {
                referrers(
                    &by_env,
                    &env.namespace().unwrap_or_default(),
                    &env.name_any(),
                    true,
                )
            },
        )
        .watches_shared_stream(objects(caches.packages.subscribe()), move |pkg| {
            referrers(
                &by_pkg,
                &pkg.namespace().unwrap_or_default(),
                &pkg.name_any(),
                false,
            )
        })
        .graceful_shutdown_on(shutdown)
        .run(
            metrics.instrument("function", reconcile, Error::metric_label),
            error_policy,
            ctx,
        )
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!("function controller: {e}");
            }
            std::future::ready(())
        });
    async move {
        controller.await;
        let _ = reaper.await;
    }
}

/// Every [`REAPER_INTERVAL`], deletes specialized pods idle past their function's `idletimeout`.
async fn reap_loop(
    client: Client,
    functions: Store<Function>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let pods: Api<Pod> = Api::all(client.clone());
    let selector = format!(
        "{}={},managed=false",
        rivulet_api::keys::fission_labels::EXECUTOR_TYPE,
        executor_types::POOLMGR
    );
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(REAPER_INTERVAL) => {}
        }
        if !crate::support::cache::wait_ready(&functions).await {
            continue;
        }
        let list = match pods.list(&ListParams::default().labels(&selector)).await {
            Ok(list) => list,
            Err(e) => {
                warn!("reaper: listing specialized pods: {e}");
                continue;
            }
        };
        let specialized: Vec<SpecializedPod> = list
            .items
            .iter()
            .filter_map(SpecializedPod::from_pod)
            .collect();
        let policies: BTreeMap<String, Policy> = functions
            .state()
            .iter()
            .filter_map(|f| {
                let executor = f
                    .spec
                    .invoke_strategy
                    .execution_strategy
                    .executor_type
                    .as_str();
                Some((
                    f.uid()?,
                    Policy {
                        idle_timeout: rivulet_api::defaults::idle_timeout(
                            f.spec.idle_timeout,
                            executor,
                        ),
                        retain: usize::try_from(f.spec.retain_pods.unwrap_or(0).max(0))
                            .unwrap_or(0),
                        generation: f.metadata.generation,
                    },
                ))
            })
            .collect();
        for (namespace, name) in
            pods_to_reap(&specialized, &policies, k8s_openapi::jiff::Timestamp::now())
        {
            let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => info!(pod = %name, %namespace, "reaped idle specialized pod"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => warn!(pod = %name, "reaper: deleting: {e}"),
            }
        }
    }
}
