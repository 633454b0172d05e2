//! The fetcher-access reconciler, one reconcile per namespace. Pipeline: read the namespace's
//! Environments and Functions from the shared caches → owners (pure) → desired objects (pure)
//! → server-side apply of each that differs from its cached copy. A deleted or edited object
//! triggers its namespace again, so it is restored at once.

use std::future::Future;
use std::sync::Arc;

use futures::FutureExt as _;
use k8s_openapi::Resource as _;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::objects::{COMPONENT_LABEL, FetcherAccessConfig, desired, owners};
use crate::support::common;
use crate::support::shared::{Caches, Shared, changed_by, objects};
use rivulet_api::{Environment, Function};

/// Field manager of every write this reconciler makes.
pub const FIELD_MANAGER: &str = "rivulet-fetcher-access";

/// Everything a reconcile needs besides the Namespace.
pub struct Context {
    /// API client.
    pub client: Client,
    /// What to make.
    pub config: FetcherAccessConfig,
    /// Every Environment (shared cache).
    pub environments: Store<Environment>,
    /// Every Function (shared cache).
    pub functions: Store<Function>,
    /// The ServiceAccounts this reconciler made.
    pub service_accounts: Store<ServiceAccount>,
    /// The RoleBindings this reconciler made.
    pub role_bindings: Store<RoleBinding>,
    /// The NetworkPolicies this reconciler made.
    pub network_policies: Store<NetworkPolicy>,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An object could not be applied.
    #[error("applying {kind} {namespace}/{name}: {source}")]
    Apply {
        /// Kind.
        kind: &'static str,
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Apply { kind, .. } => match *kind {
                ServiceAccount::KIND => "apply_service_account",
                RoleBinding::KIND => "apply_role_binding",
                _ => "apply_network_policy",
            },
        }
    }
}

/// Reconciles the fetcher-access objects of one namespace.
pub async fn reconcile(namespace: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let name = namespace.name_any();
    // Nothing can be created in a terminating namespace; its objects go with it.
    if namespace.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    crate::support::cache::wait_ready(&ctx.environments).await;
    crate::support::cache::wait_ready(&ctx.functions).await;
    let environments = ctx.environments.state();
    let functions = ctx.functions.state();
    let owners = owners(
        &name,
        environments.iter().map(AsRef::as_ref),
        functions.iter().map(AsRef::as_ref),
    );
    let desired = desired(&name, &owners, &ctx.config);
    if let Some(account) = &desired.service_account {
        apply(&ctx.client, &ctx.service_accounts, account).await?;
    }
    if let Some(binding) = &desired.role_binding {
        apply(&ctx.client, &ctx.role_bindings, binding).await?;
    }
    if let Some(policy) = &desired.network_policy {
        apply(&ctx.client, &ctx.network_policies, policy).await?;
    }
    Ok(Action::requeue(crate::support::resync::period()))
}

/// Server-side applies `object` unless its cached copy already holds every field of it.
async fn apply<K>(client: &Client, cache: &Store<K>, object: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + k8s_openapi::Resource
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
{
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let cached = cache.get(&ObjectRef::new(&name).within(&namespace));
    if cached.is_some_and(|c| up_to_date(c.as_ref(), object)) {
        return Ok(());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    // k8s-openapi objects serialize their apiVersion and kind, as apply needs.
    api.patch(
        &name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(object),
    )
    .await
    .map_err(|source| Error::Apply {
        kind: <K as k8s_openapi::Resource>::KIND,
        namespace,
        name,
        source,
    })?;
    Ok(())
}

/// Whether `current` holds every field of `desired` with the same value (lists element by
/// element): what server-side apply would leave unchanged.
fn up_to_date<K: Serialize>(current: &K, desired: &K) -> bool {
    match (serde_json::to_value(current), serde_json::to_value(desired)) {
        (Ok(current), Ok(desired)) => covers(&current, &desired),
        _ => false,
    }
}

fn covers(current: &serde_json::Value, desired: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (current, desired) {
        (Value::Object(c), Value::Object(d)) => d
            .iter()
            .all(|(k, v)| c.get(k).is_some_and(|cv| covers(cv, v))),
        (Value::Array(c), Value::Array(d)) => {
            c.len() == d.len() && c.iter().zip(d).all(|(cv, dv)| covers(cv, dv))
        }
        (c, d) => c == d,
    }
}

fn namespace_of<K: Resource>(object: &K) -> Option<ObjectRef<Namespace>> {
    object.meta().namespace.as_deref().map(ObjectRef::new)
}

/// Runs the fetcher-access reconciler until `shutdown` resolves. Environments and Functions
/// come from the shared `caches`; the objects it makes are watched here by their label (no
/// other reconciler reads them).
pub fn run<S>(
    client: Client,
    caches: &Caches,
    config: FetcherAccessConfig,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let ours = || {
        watcher::Config::default()
            .labels(&format!("{}={}", COMPONENT_LABEL.0, COMPONENT_LABEL.1))
            .any_semantic()
    };
    let accounts: Shared<ServiceAccount> = Shared::watch(Api::all(client.clone()), ours());
    let bindings: Shared<RoleBinding> = Shared::watch(Api::all(client.clone()), ours());
    let policies: Shared<NetworkPolicy> = Shared::watch(Api::all(client.clone()), ours());
    let ctx = Arc::new(Context {
        client: client.clone(),
        config,
        environments: caches.environments.store(),
        functions: caches.functions.store(),
        service_accounts: accounts.store(),
        role_bindings: bindings.store(),
        network_policies: policies.store(),
    });
    // Only what changes the owners: a new or deleted object, a deletion started, an executor
    // changed (status writes trigger nothing).
    let controller = Controller::new(Api::<Namespace>::all(client), watcher::Config::default())
        .watches_shared_stream(
            changed_by(caches.environments.subscribe(), |e: &Environment| {
                e.metadata.deletion_timestamp.is_some()
            }),
            |env| namespace_of(env.as_ref()),
        )
        .watches_shared_stream(
            changed_by(caches.functions.subscribe(), |f: &Function| {
                (
                    f.metadata.deletion_timestamp.is_some(),
                    f.spec.executor_type(),
                )
            }),
            |function| namespace_of(function.as_ref()),
        )
        .watches_shared_stream(objects(accounts.subscribe()), |o| namespace_of(o.as_ref()))
        .watches_shared_stream(objects(bindings.subscribe()), |o| namespace_of(o.as_ref()))
        .watches_shared_stream(objects(policies.subscribe()), |o| namespace_of(o.as_ref()));
    let watches = futures::future::join3(accounts.run(), bindings.run(), policies.run());
    let reconciler = common::drive(
        controller,
        "fetcher-access",
        reconcile,
        Error::metric_label,
        ctx,
        metrics,
        shutdown,
    );
    // The watches run forever; the reconciler ends at shutdown.
    async move {
        futures::pin_mut!(watches);
        futures::future::select(reconciler.boxed(), watches).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn covers_means_every_desired_field_is_there() {
        let current = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"},
            "resourceVersion": "7"}, "spec": {"ports": [{"port": 1, "protocol": "TCP"}]}});
        assert!(covers(
            &current,
            &json!({"metadata": {"labels": {"x": "1"}}, "spec": {"ports": [{"port": 1}]}})
        ));
        assert!(!covers(
            &current,
            &json!({"metadata": {"labels": {"x": "2"}}})
        ));
        assert!(!covers(
            &current,
            &json!({"spec": {"ports": [{"port": 1}, {"port": 2}]}})
        ));
        assert!(!covers(&current, &json!({"spec": {"podSelector": {}}})));
    }
}
