//! The kubewatcher: delivers watch events of pods, services, replication controllers and jobs
//! to functions, one ordered watch per KubernetesWatchTrigger.
//!
//! Unlike Fission's, it honours `spec.labelselector`, follows trigger updates without a restart,
//! retries 5xx answers as well as transport errors, and resumes after a controller restart from
//! the checkpoint kept in `status.delivery` instead of re-delivering every existing object.

pub mod subscription;
pub mod watch;

use std::future::Future;

use kube::Client;
use rivulet_api::KubernetesWatchTrigger;

use crate::triggers::tasks::{TriggerCalls, run_triggers};

/// Reasons of the `Ready` condition and of Events.
pub mod reasons {
    /// The watch is established and events are being delivered.
    pub const WATCHING: &str = "Watching";
    /// The watch cannot be established (retried with back-off).
    pub const WATCH_FAILED: &str = "WatchFailed";
    /// `spec.functionref.type` is not `name`.
    pub const UNSUPPORTED_FUNCTION_REFERENCE: &str = "UnsupportedFunctionReference";
    /// An event could not be delivered (Event only).
    pub const DELIVERY_FAILED: &str = "DeliveryFailed";
    /// The API server's event history no longer reached the checkpoint (Event only).
    pub const WATCH_HISTORY_EXPIRED: &str = "WatchHistoryExpired";
}

/// Runs the kubewatcher until `shutdown` resolves; deliveries go to the router's internal
/// listener (`calls.router_url`).
pub fn run(
    client: Client,
    calls: &TriggerCalls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    run_triggers::<KubernetesWatchTrigger, _, _>(
        client,
        calls,
        (watch::FIELD_MANAGER, "kubewatcher"),
        watch::run,
        shutdown,
    )
}
