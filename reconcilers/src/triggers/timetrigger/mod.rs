//! The timer: calls a function on each TimeTrigger's cron schedule, through the router's
//! internal listener, as Fission's timer does (method `spec.method`, default POST; path
//! `/fission-function/[<ns>/]<fn>` + `spec.subpath`; empty body; `X-Fission-Timer-Name`).
//!
//! Fires missed while no controller ran (or while this one was suspended) are skipped, never
//! replayed in a burst: after a restart the next fire is the first scheduled time after now.

pub mod schedule;
pub mod timer;

use std::future::Future;

use kube::Client;
use rivulet_api::TimeTrigger;

use crate::triggers::tasks::{TriggerCalls, run_triggers};

/// Reasons of the `Ready` condition and of Events.
pub mod reasons {
    /// The trigger is scheduled.
    pub const SCHEDULED: &str = "Scheduled";
    /// The schedule has no fire time within five years (for example February 30th).
    pub const NEVER_FIRES: &str = "NeverFires";
    /// `spec.functionref.type` is not `name`.
    pub const UNSUPPORTED_FUNCTION_REFERENCE: &str = "UnsupportedFunctionReference";
    /// An invocation failed (Event only).
    pub const INVOCATION_FAILED: &str = "InvocationFailed";
}

/// Runs the timer until `shutdown` resolves; invocations go to the router's internal listener
/// (`calls.router_url`).
pub fn run(
    client: Client,
    calls: &TriggerCalls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static {
    run_triggers::<TimeTrigger, _, _>(
        client,
        calls,
        (timer::FIELD_MANAGER, "timer"),
        timer::run,
        shutdown,
    )
}
