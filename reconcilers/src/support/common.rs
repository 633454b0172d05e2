//! What every reconciler does around its own pipeline, written once: the Event recorder, Events
//! on transitions, server-side apply of `/status`, the retry of a failed reconcile, and driving
//! a kube `Controller` (instrumented, with graceful shutdown) to its end.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use super::Metrics;

/// Delay before a failed reconcile is retried.
pub const RETRY: Duration = Duration::from_secs(5);
/// Events carry at most this many characters of note (the API server's limit is 1 KiB).
const NOTE_CHARS: usize = 1024;

/// The Event recorder of a reconciler, reporting as `controller` (its field manager) from this
/// pod (`POD_NAME`).
pub fn recorder(client: Client, controller: &str) -> Recorder {
    let reporter = Reporter {
        controller: controller.into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    Recorder::new(client, reporter)
}

/// Publishes an Event about `object`. Events are best effort: a failure is logged, not returned.
pub async fn publish<K>(
    recorder: &Recorder,
    object: &K,
    type_: EventType,
    action: &str,
    reason: &str,
    note: &str,
) where
    K: Resource<DynamicType = ()>,
{
    let event = Event {
        type_,
        reason: reason.to_owned(),
        note: Some(note.chars().take(NOTE_CHARS).collect()),
        action: action.into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &object.object_ref(&())).await {
        tracing::warn!(
            kind = K::kind(&()).as_ref(),
            object = %object.name_any(),
            "cannot publish event {reason}: {e}"
        );
    }
}

/// Server-side applies `status` (the fields this manager owns) on `object`'s `/status`.
pub async fn apply_status<K>(
    client: &Client,
    object: &K,
    field_manager: &str,
    status: impl Serialize,
) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    api.patch_status(
        &object.name_any(),
        &PatchParams::apply(field_manager).force(),
        &Patch::Apply(&patch),
    )
    .await
}

/// Logs a failed reconcile with its object and stable reason, and retries it after [`RETRY`].
pub fn retry<K, E>(object: &K, error: &E, label: &'static str) -> Action
where
    K: Resource<DynamicType = ()>,
    E: std::fmt::Display,
{
    tracing::warn!(
        kind = K::kind(&()).as_ref(),
        object = %object.name_any(),
        reason = label,
        "reconcile failed: {error}"
    );
    Action::requeue(RETRY)
}

/// Runs `controller` until `shutdown` resolves and its reconciles in flight end: every
/// reconcile counted under `name` (the error's `label` as failure reason), failures retried by
/// [`retry`].
pub fn drive<K, Ctx, E, Fut, F, S>(
    controller: Controller<K>,
    name: &'static str,
    reconcile: F,
    label: fn(&E) -> &'static str,
    ctx: Arc<Ctx>,
    metrics: Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + Send + use<K, Ctx, E, Fut, F, S>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    K::DynamicType: Debug + Unpin + Hash + Eq + Clone,
    Ctx: Send + Sync + 'static,
    E: std::error::Error + Send + 'static,
    Fut: Future<Output = Result<Action, E>> + Send + 'static,
    F: FnMut(Arc<K>, Arc<Ctx>) -> Fut + Send + 'static,
    S: Future<Output = ()> + Send + Sync + 'static,
{
    controller
        .graceful_shutdown_on(shutdown)
        .run(
            metrics.instrument(name, reconcile, label),
            move |object, error, _ctx| retry(object.as_ref(), error, label(error)),
            ctx,
        )
        .for_each(move |result| {
            if let Err(e) = result {
                tracing::debug!("{name} controller: {e}");
            }
            std::future::ready(())
        })
}
