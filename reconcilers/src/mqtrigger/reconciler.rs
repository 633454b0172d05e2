//! The mqtrigger reconciler's I/O: discovery of KEDA, the referenced Secret's keys, server-side
//! apply of the connector objects, and the `Ready` condition.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use rivulet_api::MessageQueueTrigger;
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::validation::validate_message_queue_trigger;
use serde_json::Value;
use tracing::warn;

use super::objects::{AUTH_SUFFIX, ConnectorConfig, Desired, KEDA_API_VERSION, build};
use super::reasons;
use crate::conditions::Wanted;
use crate::merge::MergeError;
use crate::runtime::Metrics;
use crate::trigger_status::StatusWriter;
use crate::trigger_tasks::TriggerCalls;

/// Field manager of this reconciler's writes.
pub const FIELD_MANAGER: &str = "rivulet-mqtrigger";
const RETRY: Duration = Duration::from_secs(5);
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

fn not_ready(reason: &'static str, message: String) -> Wanted<'static> {
    Wanted {
        type_: READY,
        status: false,
        reason,
        message,
    }
}

/// The spec's problem, if any, that keeps it from being deployed (pure).
pub fn spec_problem(trigger: &MessageQueueTrigger) -> Option<Wanted<'static>> {
    let kind = trigger.spec.mqtkind.as_deref().unwrap_or("fission");
    if kind != "keda" {
        return Some(not_ready(
            reasons::UNSUPPORTED_MQT_KIND,
            format!(
                "spec.mqtkind: {kind:?} is not supported: Rivulet runs message queue triggers through KEDA connectors only (set mqtkind: keda); Fission's own Kafka consumer is not provided"
            ),
        ));
    }
    let errors = validate_message_queue_trigger(trigger);
    if !errors.is_empty() {
        return Some(not_ready(REASON_INVALID_SPEC, errors.to_string()));
    }
    if trigger.spec.functionref.reference_type != "name" {
        return Some(not_ready(
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
        trigger
            .status
            .as_ref()
            .map(|s| s.conditions.clone())
            .unwrap_or_default(),
    );
    if let Some(problem) = spec_problem(&trigger) {
        status.ready(problem).await;
        return Ok(Action::await_change());
    }
    if !keda_served(&ctx.client).await? {
        status
            .ready(not_ready(
                reasons::KEDA_NOT_INSTALLED,
                format!(
                    "KEDA's {KEDA_API_VERSION} ScaledObject and TriggerAuthentication are not served: install KEDA (https://keda.sh); the connector is deployed as soon as its CRDs are"
                )))
            .await;
        return Ok(Action::requeue(RECHECK));
    }
    let namespace = trigger.namespace().unwrap_or_default();
    let secret_keys = match &trigger.spec.secret {
        None => Vec::new(),
        Some(name) => {
            let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &namespace);
            match secrets.get_opt(name).await {
                Err(source) => {
                    return Err(Error::Secret {
                        name: name.clone(),
                        source,
                    });
                }
                Ok(None) => {
                    status
                        .ready(not_ready(
                            reasons::SECRET_NOT_FOUND,
                            format!("spec.secret: Secret {namespace}/{name} does not exist"),
                        ))
                        .await;
                    return Ok(Action::requeue(RECHECK));
                }
                Ok(Some(secret)) => secret_keys(&secret),
            }
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
                .ready(not_ready(REASON_INVALID_SPEC, e.to_string()))
                .await;
            return Ok(Action::await_change());
        }
    };
    apply(&ctx.client, &namespace, &trigger.name_any(), &desired).await?;
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

fn secret_keys(secret: &Secret) -> Vec<String> {
    let data = secret.data.iter().flat_map(|d| d.keys());
    let string_data = secret.string_data.iter().flat_map(|d| d.keys());
    let mut keys: Vec<String> = data.chain(string_data).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

async fn apply(
    client: &Client,
    namespace: &str,
    name: &str,
    desired: &Desired,
) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let failed = |what: String| move |source| Error::Apply { what, source };
    Api::<Deployment>::namespaced(client.clone(), namespace)
        .patch(name, &params, &Patch::Apply(&desired.deployment))
        .await
        .map_err(failed(format!("Deployment {name}")))?;
    let scaled: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &keda_resource("ScaledObject"));
    scaled
        .patch(name, &params, &Patch::Apply(&desired.scaled_object))
        .await
        .map_err(failed(format!("ScaledObject {name}")))?;
    let auths: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &keda_resource("TriggerAuthentication"),
    );
    let auth_name = format!("{name}{AUTH_SUFFIX}");
    match &desired.authentication {
        Some(auth) => {
            auths
                .patch(&auth_name, &params, &Patch::Apply(auth))
                .await
                .map_err(failed(format!("TriggerAuthentication {auth_name}")))?;
        }
        // The secret was removed from the spec: only ours (owned by the trigger) is deleted.
        None => match auths.get_opt(&auth_name).await {
            Ok(Some(existing)) if owned_by_us(&existing, &desired.scaled_object) => {
                auths
                    .delete(&auth_name, &DeleteParams::default())
                    .await
                    .map_err(failed(format!("TriggerAuthentication {auth_name}")))?;
            }
            Ok(_) => {}
            Err(source) => {
                return Err(Error::Apply {
                    what: format!("TriggerAuthentication {auth_name}"),
                    source,
                });
            }
        },
    }
    Ok(())
}

/// Whether `object` is owned by the same trigger as `ours` (same owner uid).
fn owned_by_us(object: &DynamicObject, ours: &Value) -> bool {
    let uid = ours["metadata"]["ownerReferences"][0]["uid"].as_str();
    object
        .owner_references()
        .iter()
        .any(|o| Some(o.uid.as_str()) == uid)
}

/// Failed reconciles are retried after a short delay.
// The signature is kube-runtime's `error_policy` contract.
#[allow(clippy::needless_pass_by_value)]
pub fn error_policy(
    trigger: Arc<MessageQueueTrigger>,
    error: &Error,
    _ctx: Arc<Context>,
) -> Action {
    warn!(trigger = %trigger.name_any(), reason = error.metric_label(), "reconcile failed: {error}");
    Action::requeue(RETRY)
}

/// Runs the mqtrigger reconciler until `shutdown` resolves.
pub fn run(
    client: Client,
    calls: TriggerCalls,
    connectors: ConnectorConfig,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) -> impl Future<Output = ()> {
    let reporter = kube::runtime::events::Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        calls,
        connectors,
        recorder: kube::runtime::events::Recorder::new(client.clone(), reporter),
    });
    let controller = Controller::new(
        Api::<MessageQueueTrigger>::all(client.clone()),
        watcher::Config::default().any_semantic(),
    );
    let (by_crd, by_secret) = (controller.store(), controller.store());
    controller
        .owns(
            Api::<Deployment>::all(client.clone()),
            watcher::Config::default(),
        )
        // KEDA being installed (or removed) re-checks every trigger at once.
        .watches(
            Api::<CustomResourceDefinition>::all(client.clone()),
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
        // So does the referenced Secret appearing or changing its keys.
        .watches(
            Api::<Secret>::all(client),
            watcher::Config::default(),
            move |secret: Secret| {
                let (namespace, name) = (secret.namespace(), secret.name_any());
                by_secret
                    .state()
                    .iter()
                    .filter(|t| t.namespace() == namespace && t.spec.secret.as_ref() == Some(&name))
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(
            metrics.instrument("mqtrigger", reconcile, Error::metric_label),
            error_policy,
            ctx,
        )
        .for_each(|result| {
            if let Err(e) = result {
                tracing::debug!("mqtrigger controller: {e}");
            }
            std::future::ready(())
        })
}
