//! `TimeTrigger`: invokes a function on a cron schedule.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConditionedStatus, FunctionReference};

/// Desired state of a TimeTrigger: a cron schedule and the function it invokes.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "TimeTrigger",
    namespaced,
    status = "ConditionedStatus",
    doc = "A Fission TimeTrigger: invokes a function on a cron schedule (5 or 6 fields, or descriptors such as @every 1m).",
    printcolumn(name = "Cron", type_ = "string", json_path = ".spec.cron"),
    printcolumn(
        name = "Function",
        type_ = "string",
        json_path = ".spec.functionref.name"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
pub struct TimeTriggerSpec {
    /// Cron schedule: 5 fields, 6 with seconds first, or `@yearly`, `@monthly`, `@weekly`,
    /// `@daily`, `@hourly`, `@every <duration>`.
    pub cron: String,
    /// The function to invoke.
    pub functionref: FunctionReference,
    /// HTTP method of the invocation (default `POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "POST"))]
    pub method: Option<String>,
    /// Path appended to the function's internal URL (default `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("default" = "/"))]
    pub subpath: Option<String>,
}
