//! The poolmgr [`Specializer`]: claim a warm pod of the function's environment with one
//! conditional update, specialize it through its fetcher, serve from `<podIP>:8888`.
//!
//! A claimed pod is deleted if anything after the claim fails, or if the specialization is
//! abandoned (the future is dropped at the specialization timeout): the environment reconciler
//! refills the pool. `allowedFunctionsPerContainer: infinite` environments share their one pod:
//! it is never relabelled and never deleted by the router.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::reflector::Store;
use kube::{Api, Client, ResourceExt};
use rivulet_api::defaults::{FETCHER_PORT, RUNTIME_PORT};
use rivulet_api::keys::conditions::SPECIALIZED;
use rivulet_api::keys::fission_annotations;
use rivulet_api::specialize::FunctionSpecializeRequest;
use rivulet_api::{Environment, Function, Package};
use serde_json::json;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::admission::{Overload, SpecializeError, Specializer, hold};
use crate::fetcher::FetcherClient;
use crate::metrics::Metrics;
use crate::pods::{self, Claim, PodRef};
use crate::report::{Outcome, StatusReporter};
use rivulet_routing::rng::{ThreadRng, WeightRng};

/// What every poolmgr specializer of a router shares.
pub struct PoolContext {
    /// API client (claims, annotations, deletions).
    pub client: Client,
    /// Function pods (warm, specialized, newdeploy/container).
    pub pods: Store<Pod>,
    /// Environments.
    pub environments: Store<Environment>,
    /// Functions (their current status, for the `Specialized` condition).
    pub functions: Store<Function>,
    /// Packages' metadata (generation and UID: the code's revision, the Events' target).
    pub packages: Store<PartialObjectMeta<Package>>,
    /// Writes specialization failures to the Function and Package.
    pub reporter: StatusReporter,
    /// Notified on every pod event: a warm pod may have appeared.
    pub pod_changes: Arc<Notify>,
    /// `executorInstanceId` written on claimed pods.
    pub instance_id: String,
    /// How long a cold request waits for a ready warm pod.
    pub pool_wait: Duration,
    /// Overload bounds of every function's admission.
    pub overload: Overload,
    /// Fetcher calls.
    pub fetcher: FetcherClient,
    /// Specialization counts and durations.
    pub metrics: Metrics,
    /// The runtime that started the router: API work that must outlive a request (and a data
    /// plane worker) runs there.
    pub runtime: tokio::runtime::Handle,
    /// Writes finished after the answer; shutdown waits for them.
    pub pending: Arc<PendingWrites>,
}

/// API writes the router finishes after answering (the `svcHost` annotation). Shutdown waits
/// for them, so a restarted router re-discovers every pod this one specialized.
#[derive(Debug, Default)]
pub struct PendingWrites {
    count: AtomicUsize,
    done: Notify,
}

/// Counts one pending write until dropped (finished or cancelled).
struct PendingWrite(Arc<PendingWrites>);

impl Drop for PendingWrite {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

impl PendingWrites {
    /// Runs `write` on `runtime`, counted until it ends.
    pub fn spawn(
        self: &Arc<Self>,
        runtime: &tokio::runtime::Handle,
        write: impl Future<Output = ()> + Send + 'static,
    ) {
        self.count.fetch_add(1, Ordering::SeqCst);
        let pending = PendingWrite(self.clone());
        runtime.spawn(async move {
            write.await;
            drop(pending);
        });
    }

    /// Resolves once no write is pending.
    pub async fn idle(&self) {
        loop {
            let done = self.done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.count.load(Ordering::SeqCst) == 0 {
                return;
            }
            done.await;
        }
    }
}

impl std::fmt::Debug for PoolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolContext")
            .field("instance_id", &self.instance_id)
            .field("pool_wait", &self.pool_wait)
            .finish_non_exhaustive()
    }
}

/// Longest wait for a specialized pod to be Ready again before a warm pod is claimed instead.
/// A Python pod restarted with `rivulet up` is Ready again within about 2 s on the reference
/// machine.
const RECOVERY_WAIT: Duration = Duration::from_secs(10);

/// Specializes pods for one function version.
#[derive(Debug, Clone)]
pub struct PoolSpecializer {
    ctx: Arc<PoolContext>,
    function: Arc<Function>,
    /// Pods this specializer handed to the admission (they are in its set until
    /// [`PoolSpecializer::forget`]): never recovered a second time.
    handed_out: Arc<Mutex<HashSet<String>>>,
}

impl PoolSpecializer {
    /// A specializer for `function` (its current version).
    pub fn new(ctx: Arc<PoolContext>, function: Arc<Function>) -> Self {
        Self {
            ctx,
            function,
            handed_out: Arc::default(),
        }
    }

    fn handed_out(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.handed_out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The pod left the admission's set (not ready, deleted): it may be recovered again.
    pub fn forget(&self, pod: &str) {
        self.handed_out().remove(pod);
    }

    fn function_namespace(&self) -> &str {
        self.function
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("default")
    }

    fn function_name(&self) -> &str {
        self.function.metadata.name.as_deref().unwrap_or_default()
    }

    fn environment(&self) -> Result<Arc<Environment>, SpecializeError> {
        let reference = &self.function.spec.environment;
        let namespace = if reference.namespace.is_empty() {
            self.function_namespace()
        } else {
            &reference.namespace
        };
        self.ctx
            .environments
            .get(&ObjectRef::new(&reference.name).within(namespace))
            .ok_or_else(|| {
                SpecializeError::Unavailable(format!(
                    "environment {namespace}/{} of function {}/{} not found",
                    reference.name,
                    self.function_namespace(),
                    self.function_name()
                ))
            })
    }

    /// The Function as the cache has it now, if it is still this version.
    fn current_function(&self) -> Option<Arc<Function>> {
        let current = self
            .ctx
            .functions
            .get(&ObjectRef::new(self.function_name()).within(self.function_namespace()))?;
        let same = current.metadata.uid == self.function.metadata.uid
            && current.metadata.generation == self.function.metadata.generation;
        same.then_some(current)
    }

    fn package(&self) -> Option<Arc<PartialObjectMeta<Package>>> {
        let reference = &self.function.spec.package.packageref;
        let namespace = if reference.namespace.is_empty() {
            self.function_namespace()
        } else {
            &reference.namespace
        };
        self.ctx
            .packages
            .get(&ObjectRef::new(&reference.name).within(namespace))
    }

    fn package_reference(&self) -> Option<ObjectReference> {
        let package = self.package()?;
        Some(ObjectReference {
            api_version: Some(rivulet_api::API_VERSION.to_owned()),
            kind: Some("Package".to_owned()),
            name: package.metadata.name.clone(),
            namespace: package.metadata.namespace.clone(),
            uid: package.metadata.uid.clone(),
            ..ObjectReference::default()
        })
    }

    /// Reports an outcome off the request's path (shutdown waits for it).
    fn report(&self, outcome: Outcome) {
        let Some(function) = self.current_function() else {
            return; // a newer version reports for itself
        };
        if let Outcome::Specialized { .. } = outcome {
            let failed = function
                .status
                .as_ref()
                .and_then(|s| s.condition(SPECIALIZED))
                .is_some_and(|c| c.status == "False");
            if !failed {
                return;
            }
        }
        let package = self.package_reference();
        let reporter = self.ctx.reporter.clone();
        self.ctx.pending.spawn(&self.ctx.runtime, async move {
            reporter.report(&function, package, outcome).await;
        });
    }

    async fn run(&self) -> Result<PodRef, SpecializeError> {
        let environment = self.environment()?;
        let env_name = format!(
            "{}/{}",
            environment.namespace().unwrap_or_default(),
            environment.name_any()
        );
        if environment.spec.pool_size() == 0 {
            return Err(SpecializeError::Unavailable(format!(
                "environment {env_name} has no warm pool (poolsize 0)"
            )));
        }
        let env_uid = environment.uid().unwrap_or_default();
        let request = FunctionSpecializeRequest::for_function(&self.function, &environment);
        let infinite = environment.spec.is_infinite();
        if !infinite && let Some(pod) = self.recover(&env_uid, &request).await {
            return Ok(pod);
        }
        let pod = self.claim(&env_uid, &env_name, infinite).await?;
        let mut claimed = ClaimedPod {
            ctx: self.ctx.clone(),
            pod: Some((pod.namespace.clone(), pod.name.clone())),
        };
        if infinite {
            // The shared pod is never ours to delete.
            claimed.disarm();
        }
        let fetcher = std::net::SocketAddr::new(pod.address.ip(), FETCHER_PORT);
        self.ctx
            .fetcher
            .specialize(fetcher, &env_uid, &request)
            .await
            .map_err(|e| SpecializeError::Failed(format!("pod {}: {e}", pod.name)))?;
        claimed.disarm();
        self.handed_out().insert(pod.name.clone());
        if !infinite {
            // Off the request's path: only a restarted router reads it (re-discovery), and
            // shutdown waits for it.
            let annotate = annotate_svc_host(
                self.ctx.client.clone(),
                pod.namespace.clone(),
                pod.name.clone(),
                pod.address,
            );
            self.ctx.pending.spawn(&self.ctx.runtime, annotate);
        }
        Ok(pod)
    }

    /// Issue 15.4: a pod already specialized for this version that the admission does not hold
    /// (found after a restart of the router or of `rivulet up`, whose pods restart with their
    /// runtimes empty) is waited for until Ready, bounded by [`RECOVERY_WAIT`], and specialized
    /// again with the same claim, instead of claiming another warm pod. `None` when there is no
    /// such pod or it does not come back; a pod that refuses is deleted.
    async fn recover(&self, env_uid: &str, request: &FunctionSpecializeRequest) -> Option<PodRef> {
        let uid = self.function.metadata.uid.as_deref().unwrap_or_default();
        let generation = self.function.metadata.generation.unwrap_or(0);
        let (namespace, name) = {
            let mut handed_out = self.handed_out();
            let pod = self.ctx.pods.state().into_iter().find(|p| {
                pods::specialized_for(p) == Some((uid, generation))
                    && pods::is_specialized(p)
                    && p.metadata.deletion_timestamp.is_none()
                    && !handed_out.contains(&p.name_any())
            })?;
            handed_out.insert(pod.name_any());
            (pod.namespace()?, pod.name_any())
        };
        let Some(pod) = self.ready(&namespace, &name).await else {
            self.forget(&name);
            return None;
        };
        let mut claimed = ClaimedPod {
            ctx: self.ctx.clone(),
            pod: Some((namespace, name.clone())),
        };
        let fetcher = std::net::SocketAddr::new(pod.address.ip(), FETCHER_PORT);
        match self.ctx.fetcher.specialize(fetcher, env_uid, request).await {
            Ok(()) => {
                claimed.disarm();
                tracing::info!(pod = %name, "recovered a specialized pod");
                Some(pod)
            }
            Err(error) => {
                tracing::warn!(pod = %name, %error, "a specialized pod could not be recovered");
                self.forget(&name);
                None
            }
        }
    }

    /// Waits until the pod is Ready (its address), up to [`RECOVERY_WAIT`]; `None` when it is
    /// deleted or does not get there.
    async fn ready(&self, namespace: &str, name: &str) -> Option<PodRef> {
        let deadline = Instant::now() + RECOVERY_WAIT.min(self.ctx.pool_wait);
        let key = ObjectRef::new(name).within(namespace);
        loop {
            let changed = self.ctx.pod_changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let pod = self.ctx.pods.get(&key)?;
            if pod.metadata.deletion_timestamp.is_some() {
                return None;
            }
            if pods::is_ready(&pod) {
                return pods::pod_ref(&pod, RUNTIME_PORT);
            }
            tokio::time::timeout_at(deadline, changed).await.ok()?;
        }
    }

    /// Claims a warm pod (or, for `infinite` environments, picks the shared one), waiting up to
    /// `pool_wait` for one to be ready.
    async fn claim(
        &self,
        env_uid: &str,
        env_name: &str,
        infinite: bool,
    ) -> Result<PodRef, SpecializeError> {
        let deadline = Instant::now() + self.ctx.pool_wait;
        loop {
            // Registered before looking, so a pod event between the scan and the wait is not lost.
            let changed = self.ctx.pod_changes.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let state = self.ctx.pods.state();
            let mut candidates: Vec<Arc<Pod>> = state
                .iter()
                .filter(|p| pods::is_warm(p, env_uid))
                .cloned()
                .collect();
            if !candidates.is_empty() {
                // Start at a random pod so router replicas rarely race for the same one.
                let len = u32::try_from(candidates.len()).unwrap_or(u32::MAX);
                let start = ThreadRng.below(len) as usize;
                candidates.rotate_left(start);
            }
            for pod in candidates {
                let Some(address) = pods::pod_ref(&pod, RUNTIME_PORT) else {
                    continue;
                };
                if infinite || self.try_claim(&pod).await? {
                    return Ok(address);
                }
            }
            // A runtime that cannot start (unmapped image, crash loop) is said at once, with
            // its reason, instead of after the whole wait.
            let members = state
                .iter()
                .map(AsRef::as_ref)
                .filter(|p| pods::in_pool(p, env_uid));
            if let Some(why) = rivulet_api::pod_status::pool_stuck(members) {
                return Err(SpecializeError::Unavailable(format!(
                    "the runtime of environment {env_name} is not starting: {why}"
                )));
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Err(SpecializeError::Unavailable(format!(
                    "no ready warm pod of environment {env_name} within {}s",
                    self.ctx.pool_wait.as_secs_f64()
                )));
            }
        }
    }

    /// One conditional update; `Ok(false)` when another claimant won (409) or the pod is gone.
    async fn try_claim(&self, pod: &Pod) -> Result<bool, SpecializeError> {
        let (Some(namespace), Some(resource_version)) = (pod.namespace(), pod.resource_version())
        else {
            return Ok(false);
        };
        let uid = self.function.metadata.uid.as_deref().unwrap_or_default();
        let patch = pods::claim_patch(
            &resource_version,
            &Claim {
                function_name: self.function_name(),
                function_namespace: self.function_namespace(),
                function_uid: uid,
                generation: self.function.metadata.generation.unwrap_or(0),
                function_resource_version: self
                    .function
                    .metadata
                    .resource_version
                    .as_deref()
                    .unwrap_or_default(),
                instance_id: &self.ctx.instance_id,
            },
        );
        let api: Api<Pod> = Api::namespaced(self.ctx.client.clone(), &namespace);
        match api
            .patch(
                &pod.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_conflict() || status.is_not_found() => {
                Ok(false)
            }
            Err(error) => Err(SpecializeError::Unavailable(format!(
                "cannot claim warm pod {namespace}/{}: {error}",
                pod.name_any()
            ))),
        }
    }
}

/// Marks a claimed pod specialized: `svcHost` is its address (Fission's annotation).
async fn annotate_svc_host(
    client: Client,
    namespace: String,
    name: String,
    address: std::net::SocketAddr,
) {
    let api: Api<Pod> = Api::namespaced(client, &namespace);
    let patch = json!({"metadata": {"annotations": {
        fission_annotations::SVC_HOST: address.to_string()
    }}});
    if let Err(error) = api
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(pod = %name, %error, "cannot annotate svcHost");
    }
}

impl Specializer for PoolSpecializer {
    /// Shared, so the warm path clones a pointer, not two strings.
    type Pod = Arc<PodRef>;

    async fn specialize(&self) -> Result<Arc<PodRef>, SpecializeError> {
        let started = Instant::now();
        let outcome = self.run().await.map(Arc::new);
        let result = match &outcome {
            Ok(_) => "success",
            Err(SpecializeError::Unavailable(_)) => "unavailable",
            Err(SpecializeError::Failed(_)) => "failed",
            Err(SpecializeError::Timeout(_)) => "timeout",
        };
        self.ctx.metrics.specialization(
            self.function_namespace(),
            self.function_name(),
            result,
            started.elapsed(),
        );
        match &outcome {
            Ok(pod) => self.report(Outcome::Specialized {
                pod: pod.name.clone(),
            }),
            Err(error) if hold::holds(error) => self.report(Outcome::Failed(error.clone())),
            Err(_) => {}
        }
        outcome
    }

    fn revision(&self) -> String {
        let package = self.package().map_or_else(String::new, |p| {
            format!(
                "{}/{}",
                p.metadata.uid.as_deref().unwrap_or_default(),
                p.metadata.generation.unwrap_or(0)
            )
        });
        let environment = self.environment().map_or_else(
            |_| String::new(),
            |e| {
                format!(
                    "{}/{}",
                    e.metadata.uid.as_deref().unwrap_or_default(),
                    e.metadata.generation.unwrap_or(0)
                )
            },
        );
        format!("package {package}; environment {environment}")
    }

    fn retire(&self, pod: Arc<PodRef>) {
        // An `infinite` environment's shared pod stays in the pool (`managed=true`).
        let shared = self
            .ctx
            .pods
            .get(&kube::runtime::reflector::ObjectRef::new(&pod.name).within(&pod.namespace))
            .is_some_and(|p| {
                pods::is_warm(
                    &p,
                    p.labels().get("environmentUid").map_or("", String::as_str),
                )
            });
        if !shared {
            delete_pod(self.ctx.clone(), pod.namespace.clone(), pod.name.clone());
        }
    }
}

/// Deletes a claimed pod unless disarmed (specialization succeeded), including when the
/// specialization future is dropped at its timeout.
struct ClaimedPod {
    ctx: Arc<PoolContext>,
    pod: Option<(String, String)>,
}

impl ClaimedPod {
    fn disarm(&mut self) {
        self.pod = None;
    }
}

impl Drop for ClaimedPod {
    fn drop(&mut self) {
        if let Some((namespace, name)) = self.pod.take() {
            delete_pod(self.ctx.clone(), namespace, name);
        }
    }
}

/// Deletes a pod in the background (never blocks the caller), on the router's runtime so a
/// worker's shutdown does not cancel it.
fn delete_pod(ctx: Arc<PoolContext>, namespace: String, name: String) {
    let runtime = ctx.runtime.clone();
    runtime.spawn(async move {
        let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => tracing::info!(pod = %name, "deleted a pod that failed or was retired"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {}
            Err(error) => tracing::warn!(pod = %name, %error, "cannot delete pod"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_pending_write() {
        let pending = Arc::new(PendingWrites::default());
        pending.idle().await;
        let runtime = tokio::runtime::Handle::current();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        pending.spawn(&runtime, async move {
            let _ = released.await;
        });
        pending.spawn(&runtime, async {});
        let idle = pending.idle();
        tokio::pin!(idle);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), idle.as_mut())
                .await
                .is_err(),
            "idle while a write is pending"
        );
        release.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), idle)
            .await
            .expect("idle once the writes end");
    }
}
