//! The httptrigger reconciler's I/O: status from the router's view of the trigger, and the
//! Ingress (with a finalizer, since an Ingress in the router's namespace cannot be owned by a
//! trigger in another namespace).

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Client, ResourceExt};
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::validation::validate_http_trigger;
use rivulet_api::{ConditionedStatus, Function, HTTPTrigger};
use rivulet_routing::routes::{ObjectKey, RouteIssue, RouteTable, RouteTableOptions};
use serde_json::json;

use super::ingress::{RouterService, build_ingress};
use crate::support::common::{self, apply_status};
use crate::support::shared::{Caches, objects};
use rivulet_api::conditions::{Wanted, set};

/// Field manager of this reconciler's writes.
pub const FIELD_MANAGER: &str = "rivulet-httptrigger";
/// Finalizer held while a trigger has an Ingress to clean up.
pub const INGRESS_FINALIZER: &str = "rivulet.dev/ingress-cleanup";

/// Reasons of an HTTPTrigger's `Ready` condition.
pub mod reasons {
    /// The router serves the trigger.
    pub const ROUTED: &str = "Routed";
    /// An older trigger owns the same host, path and method.
    pub const ROUTE_CONFLICT: &str = "RouteConflict";
    /// A referenced function does not exist.
    pub const FUNCTION_NOT_FOUND: &str = "FunctionNotFound";
    /// The route cannot be built (path template, methods, reference).
    pub const INVALID_ROUTE: &str = "InvalidRoute";
}

/// Everything a reconcile needs besides the trigger.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Every HTTPTrigger (conflicts are decided among all of them).
    pub triggers: Store<HTTPTrigger>,
    /// Every Function (shared cache): the route table resolves references against them.
    pub functions: Store<Function>,
    /// The router Service Ingresses point at.
    pub router: RouterService,
    /// Event recorder.
    pub recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("router", &self.router)
            .finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Creating, updating or deleting the Ingress failed.
    #[error("ingress of {trigger}: {source}")]
    Ingress {
        /// namespace/name.
        trigger: String,
        /// Cause.
        source: kube::Error,
    },
    /// Adding or removing the finalizer failed.
    #[error("finalizer of {trigger}: {source}")]
    Finalizer {
        /// namespace/name.
        trigger: String,
        /// Cause.
        source: kube::Error,
    },
    /// Writing the status failed.
    #[error("writing status of {trigger}: {source}")]
    Status {
        /// namespace/name.
        trigger: String,
        /// Cause.
        source: kube::Error,
    },
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Ingress { .. } => "ingress",
            Self::Finalizer { .. } => "finalizer",
            Self::Status { .. } => "status",
        }
    }
}

/// The router's view of one trigger: its problem, if any, as a `Ready` condition.
pub fn route_condition(trigger: &HTTPTrigger, issues: &[RouteIssue]) -> Wanted<'static> {
    let key = ObjectKey {
        namespace: trigger
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        name: trigger.metadata.name.clone().unwrap_or_default(),
    };
    match issues.iter().find(|i| *i.trigger() == key) {
        Some(issue @ RouteIssue::Conflict(_)) => Wanted {
            type_: READY,
            status: false,
            reason: reasons::ROUTE_CONFLICT,
            message: format!("{issue}; this trigger is not routed until the conflict is resolved"),
        },
        Some(issue @ RouteIssue::MissingFunction { .. }) => Wanted {
            type_: READY,
            status: false,
            reason: reasons::FUNCTION_NOT_FOUND,
            message: format!("spec.functionref: {issue}"),
        },
        Some(issue) => Wanted {
            type_: READY,
            status: false,
            reason: reasons::INVALID_ROUTE,
            message: issue.to_string(),
        },
        None => {
            let spec = &trigger.spec;
            let methods = spec.effective_methods();
            let methods = if methods.is_empty() {
                "*".to_owned()
            } else {
                methods.join(",")
            };
            let path = match spec.effective_prefix() {
                Some(prefix) => format!("{prefix}/*"),
                None => spec.relativeurl.clone().unwrap_or_default(),
            };
            let target = match (&spec.functionref.name, &spec.functionref.functionweights) {
                (_, Some(weights)) if spec.functionref.reference_type == "function-weights" => {
                    weights
                        .iter()
                        .map(|(f, w)| format!("{f}={w}%"))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
                (Some(name), _) => name.clone(),
                _ => String::new(),
            };
            Wanted {
                type_: READY,
                status: true,
                reason: reasons::ROUTED,
                message: format!("[{methods}] {path} -> {target}"),
            }
        }
    }
}

/// Reconciles one HTTPTrigger.
pub async fn reconcile(trigger: Arc<HTTPTrigger>, ctx: Arc<Context>) -> Result<Action, Error> {
    let key = format!(
        "{}/{}",
        trigger.namespace().unwrap_or_default(),
        trigger.name_any()
    );
    let has_finalizer = trigger.finalizers().iter().any(|f| f == INGRESS_FINALIZER);
    if trigger.metadata.deletion_timestamp.is_some() {
        if has_finalizer {
            delete_ingress(&trigger, &ctx, &key).await?;
            set_finalizer(&trigger, &ctx, false, &key).await?;
        }
        return Ok(Action::await_change());
    }
    let errors = validate_http_trigger(&trigger);
    let wanted = if errors.is_empty() {
        crate::support::cache::wait_ready(&ctx.triggers).await;
        let triggers: Vec<HTTPTrigger> = ctx
            .triggers
            .state()
            .iter()
            .map(|t| t.as_ref().clone())
            .collect();
        // Triggers only reach functions of their own namespace. The cache holds every Function
        // event that triggered this reconcile: it is updated before the event is handed on.
        crate::support::cache::wait_ready(&ctx.functions).await;
        let namespace = trigger.namespace();
        let functions: Vec<Function> = ctx
            .functions
            .state()
            .iter()
            .filter(|f| f.namespace() == namespace)
            .map(|f| f.as_ref().clone())
            .collect();
        let table = RouteTable::build(&triggers, &functions, RouteTableOptions::default());
        route_condition(&trigger, table.issues())
    } else {
        Wanted {
            type_: READY,
            status: false,
            reason: REASON_INVALID_SPEC,
            message: errors.to_string(),
        }
    };
    if trigger.spec.createingress == Some(true) && errors.is_empty() {
        if !has_finalizer {
            set_finalizer(&trigger, &ctx, true, &key).await?;
        }
        let ingress = build_ingress(&trigger, &ctx.router);
        Api::<Ingress>::namespaced(ctx.client.clone(), &ctx.router.namespace)
            .patch(
                &trigger.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&ingress),
            )
            .await
            .map_err(|source| Error::Ingress {
                trigger: key.clone(),
                source,
            })?;
    } else if has_finalizer && trigger.spec.createingress != Some(true) {
        delete_ingress(&trigger, &ctx, &key).await?;
        set_finalizer(&trigger, &ctx, false, &key).await?;
    }
    write_status(&trigger, &ctx, wanted).await?;
    Ok(Action::await_change())
}

async fn delete_ingress(trigger: &HTTPTrigger, ctx: &Context, key: &str) -> Result<(), Error> {
    let api: Api<Ingress> = Api::namespaced(ctx.client.clone(), &ctx.router.namespace);
    match api
        .delete(&trigger.name_any(), &DeleteParams::default())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(Error::Ingress {
            trigger: key.to_owned(),
            source,
        }),
    }
}

/// Adds or removes our finalizer with the object's resourceVersion as a precondition, so other
/// finalizers written meanwhile are never lost.
async fn set_finalizer(
    trigger: &HTTPTrigger,
    ctx: &Context,
    present: bool,
    key: &str,
) -> Result<(), Error> {
    let mut finalizers: Vec<String> = trigger
        .finalizers()
        .iter()
        .filter(|f| *f != INGRESS_FINALIZER)
        .cloned()
        .collect();
    if present {
        finalizers.push(INGRESS_FINALIZER.to_owned());
    }
    let api: Api<HTTPTrigger> =
        Api::namespaced(ctx.client.clone(), &trigger.namespace().unwrap_or_default());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": trigger.resource_version()}});
    api.patch(
        &trigger.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map_err(|source| Error::Finalizer {
        trigger: key.to_owned(),
        source,
    })?;
    Ok(())
}

async fn write_status(
    trigger: &HTTPTrigger,
    ctx: &Context,
    wanted: Wanted<'_>,
) -> Result<(), Error> {
    let mut status: ConditionedStatus = trigger.status.clone().unwrap_or_default();
    let (reason, message, ok) = (
        wanted.reason.to_owned(),
        wanted.message.clone(),
        wanted.status,
    );
    set(
        &mut status.conditions,
        wanted,
        trigger.metadata.generation,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    status.observed_generation = trigger.metadata.generation;
    if trigger.status.as_ref() == Some(&status) {
        return Ok(());
    }
    apply_status(&ctx.client, trigger, FIELD_MANAGER, &status)
        .await
        .map_err(|source| Error::Status {
            trigger: trigger.name_any(),
            source,
        })?;
    let previous = trigger
        .status
        .as_ref()
        .and_then(|s| s.condition(READY))
        .map(|c| c.reason.clone());
    if !ok && previous.as_deref() != Some(reason.as_str()) {
        common::publish(
            &ctx.recorder,
            trigger,
            EventType::Warning,
            "Reconcile",
            &reason,
            &message,
        )
        .await;
    }
    Ok(())
}

/// The route a trigger claims, for finding triggers whose conflict state another one affects.
fn route_of(trigger: &HTTPTrigger) -> (Option<String>, Option<String>) {
    let path = trigger
        .spec
        .effective_prefix()
        .map(str::to_owned)
        .or_else(|| trigger.spec.relativeurl.clone());
    (trigger.spec.host.clone().filter(|h| !h.is_empty()), path)
}

/// Runs the httptrigger reconciler until `shutdown` resolves. Triggers and Functions come from
/// the shared `caches`.
pub fn run<S>(
    client: Client,
    caches: &Caches,
    router: RouterService,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let triggers = caches.http_triggers.store();
    let controller =
        Controller::for_shared_stream(objects(caches.http_triggers.subscribe()), triggers.clone());
    let ctx = Arc::new(Context {
        client: client.clone(),
        triggers: triggers.clone(),
        functions: caches.functions.store(),
        router,
        recorder: common::recorder(client, FIELD_MANAGER),
    });
    let (by_function, by_route) = (triggers.clone(), triggers);
    let controller = controller
        .watches_shared_stream(
            objects(caches.functions.subscribe()),
            move |function: Arc<Function>| {
                let (ns, name) = (
                    function.namespace().unwrap_or_default(),
                    function.name_any(),
                );
                by_function
                    .state()
                    .iter()
                    .filter(|t| t.namespace().unwrap_or_default() == ns)
                    .filter(|t| {
                        t.spec.functionref.name.as_deref() == Some(&name)
                            || t.spec
                                .functionref
                                .functionweights
                                .as_ref()
                                .is_some_and(|w| w.contains_key(&name))
                    })
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
        .watches_shared_stream(
            objects(caches.http_triggers.subscribe()),
            move |changed: Arc<HTTPTrigger>| {
                let route = route_of(&changed);
                by_route
                    .state()
                    .iter()
                    .filter(|t| route_of(t) == route && t.uid() != changed.uid())
                    .map(|t| ObjectRef::from_obj(t.as_ref()))
                    .collect::<Vec<_>>()
            },
        );
    common::drive(
        controller,
        "httptrigger",
        reconcile,
        Error::metric_label,
        ctx,
        metrics,
        shutdown,
    )
}
