//! The package reconciler's I/O: read, compute the status (pure), merge it when it changed.

use std::future::Future;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Patch, PatchParams};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::{Api, Client, ResourceExt};
use rivulet_api::Package;
use rivulet_api::keys::conditions::READY;
use rivulet_api::validation::validate_package;
use serde_json::json;

use super::status::desired_status;
use crate::support::common;
use crate::support::shared::{Caches, objects};

/// Field manager of this reconciler's writes.
pub const FIELD_MANAGER: &str = "rivulet-package";

/// Everything a reconcile needs besides the Package.
pub struct Context {
    /// API client.
    pub client: Client,
    /// Event recorder.
    pub recorder: Recorder,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context").finish_non_exhaustive()
    }
}

/// Why a reconcile failed (it is retried).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing the status failed.
    #[error("writing status of package {package}: {source}")]
    Status {
        /// namespace/name.
        package: String,
        /// Cause.
        source: kube::Error,
    },
}

impl Error {
    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Status { .. } => "status",
        }
    }
}

/// Reconciles one Package.
pub async fn reconcile(package: Arc<Package>, ctx: Arc<Context>) -> Result<Action, Error> {
    let errors = validate_package(&package);
    let status = desired_status(
        &package,
        &errors,
        &Time(k8s_openapi::jiff::Timestamp::now()),
    );
    if package.status.as_ref() == Some(&status) {
        return Ok(Action::await_change());
    }
    let api: Api<Package> =
        Api::namespaced(ctx.client.clone(), &package.namespace().unwrap_or_default());
    // No status subresource: a merge patch of `.status` on the object (nothing else is touched).
    api.patch(
        &package.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .map_err(|source| Error::Status {
        package: package.name_any(),
        source,
    })?;
    let ready = status.conditions.iter().find(|c| c.type_ == READY);
    let previous = package
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == READY))
        .map(|c| c.reason.clone());
    if let Some(ready) =
        ready.filter(|r| r.status == "False" && previous.as_deref() != Some(r.reason.as_str()))
    {
        common::publish(
            &ctx.recorder,
            package.as_ref(),
            EventType::Warning,
            "Reconcile",
            &ready.reason,
            &ready.message,
        )
        .await;
    }
    Ok(Action::await_change())
}

/// Runs the package reconciler until `shutdown` resolves.
pub fn run<S>(
    client: Client,
    caches: &Caches,
    metrics: crate::support::Metrics,
    shutdown: S,
) -> impl Future<Output = ()> + use<S>
where
    S: Future<Output = ()> + Send + Sync + 'static,
{
    let ctx = Arc::new(Context {
        recorder: common::recorder(client.clone(), FIELD_MANAGER),
        client,
    });
    let controller = Controller::for_shared_stream(
        objects(caches.packages.subscribe()),
        caches.packages.store(),
    );
    common::drive(
        controller,
        "package",
        reconcile,
        Error::metric_label,
        ctx,
        metrics,
        shutdown,
    )
}
