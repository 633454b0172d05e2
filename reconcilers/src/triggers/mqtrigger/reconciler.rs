//! The mqtrigger reconciler's I/O: discovery of KEDA, the referenced Secret's keys, server-side
//! apply of the connector objects, and the `Ready` condition.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PartialObjectMeta, Patch,
    PatchParams,
};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use rivulet_api::MessageQueueTrigger;
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::validation::validate_message_queue_trigger;

use super::objects::{AUTH_SUFFIX, ConnectorConfig, Desired, KEDA_API_VERSION, build};
use super::reasons;
use crate::merge::MergeError;
use crate::support::Metrics;
use crate::support::common;
use crate::support::shared::{self, Caches};
use crate::triggers::status::StatusWriter;
use crate::triggers::tasks::TriggerCalls;
use rivulet_api::conditions::Wanted;

/// Field manager of this reconciler's writes.
pub const FIELD_MANAGER: &str = "rivulet-mqtrigger";
/// How soon a trigger waiting for KEDA or its Secret looks again.
const RECHECK: Duration = Duration::from_secs(30);
/// Resync of a deployed trigger (repairs drift of the KEDA objects, which are not watched).
const RESYNC: Duration = Duration::from_mins(5);

/// Everything a reconcile needs besides the trigger.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Router URL (and recorder, reporting as this reconciler).
    pub calls: TriggerCalls,
    /// Connector images.
    pub connectors: ConnectorConfig,
    /// Event recorder.
    pub recorder: kube::runtime::events::Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("connectors", &self.connectors)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Discovering KEDA's API failed.
    #[error("discovering {KEDA_API_VERSION}: {0}")]
    Discovery(kube::Error),
    /// Reading the referenced Secret failed.
    #[error("reading secret {name}: {source}")]
    Secret {
        /// Secret name.
        name: String,
        /// Cause.
        source: kube::Error,
    },
    /// `spec.podspec` does not merge into the connector's pod.
    #[error(transparent)]
    Merge(#[from] MergeError),
    /// Applying or deleting an object failed.
    #[error("applying {what}: {source}")]
    Apply {
        /// Kind and name.
        what: String,
        /// Cause.
        source: kube::Error,
    },
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Discovery(_) => "discovery",
            Self::Secret { .. } => "secret",
            Self::Merge(_) => "merge",
            Self::Apply { .. } => "apply",
        }
    }
}

/// The spec's problem, if any, that keeps it from being deployed (pure).
pub fn spec_problem(trigger: &MessageQueueTrigger) -> Option<Wanted<'static>> {
    let kind = trigger.spec.mqtkind.as_deref().unwrap_or("fission");
    if kind != "keda" {
        return Some(Wanted::not_ready(
            reasons::UNSUPPORTED_MQT_KIND,
            format!(
                "spec.mqtkind: {kind:?} is not supported: Rivulet runs message queue triggers through KEDA connectors only (set mqtkind: keda); Fission's own Kafka consumer is not provided"
            ),
        ));
    }
    let errors = validate_message_queue_trigger(trigger);
    if !errors.is_empty() {
        return Some(Wanted::not_ready(REASON_INVALID_SPEC, errors.to_string()));
    }
    if trigger.spec.functionref.reference_type != "name" {
        return Some(Wanted::not_ready(
            REASON_INVALID_SPEC,
            format!(
                "spec.functionref.type: {:?} is not supported by message queue triggers; use \"name\"",
                trigger.spec.functionref.reference_type
            ),
        ));
    }
    None
}

fn keda_resource(kind: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", kind);
    ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()))
}

/// Whether KEDA's ScaledObject and TriggerAuthentication are served.
async fn keda_served(client: &Client) -> Result<bool, Error> {
    match client.list_api_group_resources(KEDA_API_VERSION).await {
        Ok(list) => Ok(["ScaledObject", "TriggerAuthentication"]
            .iter()
            .all(|kind| list.resources.iter().any(|r| r.kind == *kind))),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(e) => Err(Error::Discovery(e)),
    }
}

/// Reconciles one MessageQueueTrigger.
pub async fn reconcile(
    trigger: Arc<MessageQueueTrigger>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    if trigger.metadata.deletion_timestamp.is_some() {
        // Owned objects go with the trigger (garbage collection).
        return Ok(Action::await_change());
    }
    let mut status = StatusWriter::new(
        ctx.client.clone(),
        ctx.recorder.clone(),
        FIELD_MANAGER,
        trigger.as_ref(),
        trigger.status.as_ref(),
    );
    let uid = trigger.uid().unwrap_or_default();
    let targets = Target::all_of(
        &ctx.client,
        &trigger.namespace().unwrap_or_default(),
        &trigger.name_any(),
    );
    if let Some(problem) = spec_problem(&trigger) {
        // A trigger switched away from keda (or broken) stops its connector.
        for target in &targets {
            target.remove_if_ours(&uid).await?;
        }
        status.ready(problem).await;
        return Ok(Action::await_change());
    }
    if !keda_served(&ctx.client).await? {
        status
            .ready(Wanted::not_ready(
                reasons::KEDA_NOT_INSTALLED,
                format!(
                    "KEDA's {KEDA_API_VERSION} ScaledObject and TriggerAuthentication are not served: install KEDA (https://keda.sh); the connector is deployed as soon as its CRDs are"
                )))
            .await;
        return Ok(Action::requeue(RECHECK));
    }
    let namespace = trigger.namespace().unwrap_or_default();
    let secret_keys = match referenced_secret_keys(&ctx.client, &trigger).await? {
        Ok(keys) => keys,
        Err(missing) => {
            status.ready(missing).await;
            return Ok(Action::requeue(RECHECK));
        }
    };
    let desired = match build(
        &trigger,
        &secret_keys,
        &ctx.calls.router_url,
        &ctx.connectors,
    ) {
        Ok(desired) => desired,
        Err(e) => {
            status
                .ready(Wanted::not_ready(REASON_INVALID_SPEC, e.to_string()))
                .await;
            return Ok(Action::await_change());
        }
    };
    if let Some(object) = taken(&targets, &uid).await? {
        status
            .ready(Wanted::not_ready(
                reasons::NAME_CONFLICT,
                format!(
                    "{object} already exists in {namespace} and does not belong to this trigger; Rivulet does not take it over: rename the trigger or remove that object"
                ),
            ))
            .await;
        return Ok(Action::requeue(RECHECK));
    }
    apply(&targets, &desired, &uid).await?;
    let spec = &trigger.spec;
    status
        .ready(Wanted {
            type_: READY,
            status: true,
            reason: reasons::CONNECTOR_DEPLOYED,
            message: format!(
                "connector {} for {} topic {:?} scaled by KEDA between {} and {} replicas",
                ctx.connectors
                    .image(spec.message_queue_type.as_deref().unwrap_or_default()),
                spec.message_queue_type.as_deref().unwrap_or_default(),
                spec.topic,
                spec.min_replica_count.unwrap_or(0),
                spec.max_replica_count
                    .map_or_else(|| "KEDA's default".to_owned(), |n| n.to_string())
            ),
        })
        .await;
    Ok(Action::requeue(RESYNC))
}

/// The keys of the Secret `spec.secret` names (none without one), or why it cannot be used.
async fn referenced_secret_keys(
    client: &Client,
    trigger: &MessageQueueTrigger,
) -> Result<Result<Vec<String>, Wanted<'static>>, Error> {
    let Some(name) = &trigger.spec.secret else {
        return Ok(Ok(Vec::new()));
    };
    let namespace = trigger.namespace().unwrap_or_default();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &namespace);
    match secrets.get_opt(name).await {
        Err(source) => Err(Error::Secret {
            name: name.clone(),
            source,
        }),
        Ok(None) => Ok(Err(Wanted::not_ready(
            reasons::SECRET_NOT_FOUND,
            format!("spec.secret: Secret {namespace}/{name} does not exist"),
        ))),
        Ok(Some(secret)) => Ok(Ok(secret_keys(&secret))),
    }
}

fn secret_keys(secret: &Secret) -> Vec<String> {
    let data = secret.data.iter().flat_map(|d| d.keys());
    let string_data = secret.string_data.iter().flat_map(|d| d.keys());
    let mut keys: Vec<String> = data.chain(string_data).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

/// One of the objects a trigger owns, by kind and name.
struct Target {
    api: Api<DynamicObject>,
    kind: &'static str,
    name: String,
}

/// Who holds a target's name.
enum Holder {
    Nobody,
    ThisTrigger,
    SomeoneElse,
}

impl Target {
    /// The trigger's Deployment, ScaledObject and TriggerAuthentication.
    fn all_of(client: &Client, namespace: &str, trigger: &str) -> [Self; 3] {
        let target = |resource: &ApiResource, kind, name: String| Self {
            api: Api::namespaced_with(client.clone(), namespace, resource),
            kind,
            name,
        };
        [
            target(
                &ApiResource::erase::<Deployment>(&()),
                "Deployment",
                trigger.to_owned(),
            ),
            target(
                &keda_resource("ScaledObject"),
                "ScaledObject",
                trigger.to_owned(),
            ),
            target(
                &keda_resource("TriggerAuthentication"),
                "TriggerAuthentication",
                format!("{trigger}{AUTH_SUFFIX}"),
            ),
        ]
    }

    fn describe(&self) -> String {
        format!("{} {}", self.kind, self.name)
    }

    /// A type that is not served counts as nobody's (KEDA's kinds before KEDA is installed).
    async fn holder(&self, trigger_uid: &str) -> Result<Holder, Error> {
        let existing = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|source| Error::Apply {
                what: self.describe(),
                source,
            })?;
        Ok(match existing {
            None => Holder::Nobody,
            Some(o) if o.owner_references().iter().any(|r| r.uid == trigger_uid) => {
                Holder::ThisTrigger
            }
            Some(_) => Holder::SomeoneElse,
        })
    }

    async fn apply(&self, object: &(impl serde::Serialize + std::fmt::Debug)) -> Result<(), Error> {
        self.api
            .patch(
                &self.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map(|_| ())
            .map_err(|source| Error::Apply {
                what: self.describe(),
                source,
            })
    }

    /// Deletes the object if this trigger owns it; never someone else's.
    async fn remove_if_ours(&self, trigger_uid: &str) -> Result<(), Error> {
        if !matches!(self.holder(trigger_uid).await?, Holder::ThisTrigger) {
            return Ok(());
        }
        match self.api.delete(&self.name, &DeleteParams::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(source) => Err(Error::Apply {
                what: self.describe(),
                source,
            }),
        }
    }
}

/// The first object whose name the trigger needs but someone else holds.
async fn taken(targets: &[Target], trigger_uid: &str) -> Result<Option<String>, Error> {
    for target in targets {
        if matches!(target.holder(trigger_uid).await?, Holder::SomeoneElse) {
            return Ok(Some(target.describe()));
        }
    }
    Ok(None)
}

async fn apply(targets: &[Target; 3], desired: &Desired, trigger_uid: &str) -> Result<(), Error> {
    let [deployment, scaled, auth] = targets;
    deployment.apply(&desired.deployment).await?;
    scaled.apply(&desired.scaled_object).await?;
    match &desired.authentication {
        Some(object) => auth.apply(object).await,
        // The secret was removed from the spec.
        None => auth.remove_if_ours(trigger_uid).await,
    }
}

/// Runs the mqtrigger reconciler until `shutdown` resolves.
pub fn run<S>(
    client: Client,
    caches: &Caches,
    calls: TriggerCalls,
    connectors: ConnectorConfig,
    metrics: Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let ctx = Arc::new(Context {
        client: client.clone(),
        calls,
        connectors,
        recorder: common::recorder(client.clone(), FIELD_MANAGER),
    });
    let controller = Controller::new(
        Api::<MessageQueueTrigger>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    let (by_crd, by_secret) = (controller.store(), controller.store());
    let controller = controller
        .owns(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default(),
        )
        // KEDA being installed (or removed) re-checks every trigger at once.
        .watches(
            Api::<CustomResourceDefinition>::all(client),
            watcher::Config::default(),
            move |crd: CustomResourceDefinition| {
                let keda = crd.spec.group == "keda.sh";
                by_crd
                    .state()
                    .iter()
                    .filter(|_| keda)
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        // So does the referenced Secret appearing or changing its keys (the shared cache of
        // Secret metadata: any change moves the resourceVersion).
        .watches_shared_stream(
            shared::objects(caches.secrets.subscribe()),
            move |secret: Arc<PartialObjectMeta<Secret>>| {
                let (namespace, name) = (secret.namespace(), secret.name_any());
                by_secret
                    .state()
                    .iter()
                    .filter(|t| t.namespace() == namespace && t.spec.secret.as_ref() == Some(&name))
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        );
    common::drive(
        controller,
        "mqtrigger",
        reconcile,
        Error::metric_label,
        ctx,
        metrics,
        shutdown,
    )
}
