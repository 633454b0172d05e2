//! Specialization failures where users look (issue 15.6): the Function's `Specialized`
//! condition and Warning Events on the Function and its Package, next to the 502 the client
//! gets.
//!
//! The router owns the `Specialized` condition (server-side apply as [`FIELD_MANAGER`]; the
//! function reconciler owns `Ready`, and conditions merge by type). A failure is written each
//! time a specialization fails, which the admission's hold (`admission/hold.rs`) bounds to one
//! per hold period; success is written only when it ends a recorded failure, so the warm path and
//! an ordinary cold start write nothing.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Api, Client, Resource, ResourceExt};
use rivulet_api::Function;
use rivulet_api::conditions::{Wanted, set};
use rivulet_api::keys::conditions::{
    REASON_SPECIALIZATION_FAILED, REASON_SPECIALIZATION_TIMED_OUT, REASON_SPECIALIZED, SPECIALIZED,
};
use serde_json::json;

use crate::admission::SpecializeError;

/// Field manager of the router's status writes.
pub const FIELD_MANAGER: &str = "rivulet-router";

/// Longest Event note (the API server's limit is 1 KiB).
const NOTE_LIMIT: usize = 1024;

/// What to report about one function version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A pod was specialized.
    Specialized {
        /// Its name.
        pod: String,
    },
    /// The code could not be loaded; every held request gets this error.
    Failed(SpecializeError),
}

fn reason(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Specialized { .. } => REASON_SPECIALIZED,
        Outcome::Failed(SpecializeError::Timeout(_)) => REASON_SPECIALIZATION_TIMED_OUT,
        Outcome::Failed(_) => REASON_SPECIALIZATION_FAILED,
    }
}

/// The `Specialized` condition `outcome` sets on `function`, or `None` when nothing is to be
/// written (a success that ends no failure, or a condition already saying the same). Pure.
pub fn condition(function: &Function, outcome: &Outcome, now: &Time) -> Option<Condition> {
    let existing = function
        .status
        .as_ref()
        .and_then(|s| s.condition(SPECIALIZED));
    let (status, message) = match outcome {
        Outcome::Specialized { pod } => {
            if existing.is_none_or(|c| c.status == "True") {
                return None;
            }
            (true, format!("pod {pod} specialized"))
        }
        Outcome::Failed(error) => (
            false,
            format!(
                "{error}; requests get this answer without a new pod until the Function or its Package changes or the hold expires (docs/router.md, \"Failed specializations\")"
            ),
        ),
    };
    let mut conditions = function
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    set(
        &mut conditions,
        Wanted {
            type_: SPECIALIZED,
            status,
            reason: reason(outcome),
            message,
        },
        function.metadata.generation,
        now,
    );
    let wanted = conditions.into_iter().find(|c| c.type_ == SPECIALIZED)?;
    if existing.is_some_and(|c| c.status == wanted.status && c.message == wanted.message) {
        return None;
    }
    Some(wanted)
}

/// Writes outcomes to the API server.
#[derive(Clone)]
pub struct StatusReporter {
    client: Client,
    recorder: Recorder,
}

impl std::fmt::Debug for StatusReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusReporter").finish_non_exhaustive()
    }
}

impl StatusReporter {
    /// A reporter whose Events name this router instance.
    pub fn new(client: Client, instance_id: &str) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: Some(instance_id.to_owned()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
        }
    }

    /// Applies the condition and, for a failure, publishes Warning Events on the Function and
    /// on `package`. Errors are logged: a report never fails a request.
    pub async fn report(
        &self,
        function: &Function,
        package: Option<ObjectReference>,
        outcome: Outcome,
    ) {
        let name = function.name_any();
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        if let Some(condition) = condition(function, &outcome, &now) {
            let api: Api<Function> = Api::namespaced(
                self.client.clone(),
                &function.namespace().unwrap_or_default(),
            );
            let patch = json!({"apiVersion": rivulet_api::API_VERSION, "kind": "Function",
                "status": {"conditions": [condition]}});
            if let Err(error) = api
                .patch_status(
                    &name,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
            {
                tracing::warn!(function = %name, %error, "cannot write the Specialized condition");
            }
        }
        let Outcome::Failed(error) = &outcome else {
            return;
        };
        let event = Event {
            type_: EventType::Warning,
            reason: reason(&outcome).to_owned(),
            note: Some(error.to_string().chars().take(NOTE_LIMIT).collect()),
            action: "Specialize".to_owned(),
            secondary: None,
        };
        let targets = std::iter::once(function.object_ref(&())).chain(package);
        for target in targets {
            if let Err(error) = self.recorder.publish(&event, &target).await {
                tracing::warn!(function = %name, %error, "cannot publish a specialization Event");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn function(conditions: &serde_json::Value) -> Function {
        serde_json::from_value(json!({
            "apiVersion": "fission.io/v1", "kind": "Function",
            "metadata": {"name": "broken", "namespace": "default", "generation": 2},
            "spec": {"environment": {"name": "python"}, "package": {"packageref": {"name": "p"}},
                "InvokeStrategy": {"StrategyType": "execution",
                    "ExecutionStrategy": {"ExecutorType": "poolmgr"}}},
            "status": {"conditions": conditions.clone()}
        }))
        .unwrap()
    }

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::now())
    }

    #[test]
    fn a_failure_sets_specialized_false_with_the_cause() {
        let f = function(&json!([]));
        let failed = Outcome::Failed(SpecializeError::Failed("pod p: SyntaxError".into()));
        let c = condition(&f, &failed, &now()).unwrap();
        assert_eq!(
            (c.type_.as_str(), c.status.as_str()),
            ("Specialized", "False")
        );
        assert_eq!(c.reason, "SpecializationFailed");
        assert!(c.message.contains("SyntaxError"), "{}", c.message);
        assert_eq!(c.observed_generation, Some(2));
        let timeout = Outcome::Failed(SpecializeError::Timeout(std::time::Duration::from_mins(2)));
        assert_eq!(
            condition(&f, &timeout, &now()).unwrap().reason,
            "SpecializationTimedOut"
        );
    }

    #[test]
    fn success_is_written_only_when_it_ends_a_failure() {
        let ok = Outcome::Specialized { pod: "p-1".into() };
        assert_eq!(condition(&function(&json!([])), &ok, &now()), None);
        let failed = function(&json!([{"type": "Specialized", "status": "False",
            "reason": "SpecializationFailed", "message": "x",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}]));
        let c = condition(&failed, &ok, &now()).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", "Specialized")
        );
        let healed = function(&json!([c]));
        assert_eq!(condition(&healed, &ok, &now()), None);
    }

    #[test]
    fn the_same_failure_again_writes_nothing() {
        let failed = Outcome::Failed(SpecializeError::Failed("bad checksum".into()));
        let c = condition(&function(&json!([])), &failed, &now()).unwrap();
        assert_eq!(condition(&function(&json!([c])), &failed, &now()), None);
    }
}
