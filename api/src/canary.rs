//! `CanaryConfig`: shifts an HTTPTrigger's traffic from an old to a new function step by step.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Desired state of a canary rollout between two functions behind one trigger.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "CanaryConfig",
    namespaced,
    status = "CanaryConfigStatus",
    doc = "A Fission CanaryConfig: moves an HTTPTrigger's traffic from oldfunction to newfunction in steps, rolling back above a failure threshold.",
    printcolumn(name = "Trigger", type_ = "string", json_path = ".spec.trigger"),
    printcolumn(name = "New", type_ = "string", json_path = ".spec.newfunction"),
    printcolumn(name = "Old", type_ = "string", json_path = ".spec.oldfunction"),
    printcolumn(name = "Status", type_ = "string", json_path = ".status.status"),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct CanaryConfigSpec {
    /// Name of the HTTPTrigger whose weights are stepped.
    pub trigger: String,
    /// Function receiving more traffic at every step.
    pub newfunction: String,
    /// Function losing traffic.
    pub oldfunction: String,
    /// Percentage moved at each step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weightincrement: Option<i32>,
    /// Time between steps (a Go duration such as `2m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Failure percentage that aborts the rollout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failurethreshold: Option<i32>,
    /// How failures are counted; only `status-code`.
    #[serde(
        rename = "failureType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub failure_type: Option<String>,
}

/// Progress of a canary rollout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct CanaryConfigStatus {
    /// `pending`, `succeeded`, `failed` or `aborted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}
