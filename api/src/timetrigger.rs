//! `TimeTrigger`: invokes a function on a cron schedule.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::common::{ConditionedStatus, FunctionReference};

/// Desired state of a TimeTrigger: a cron schedule and the function it invokes.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "TimeTrigger",
    namespaced,
    status = "TimeTriggerStatus",
    doc = "A Fission TimeTrigger: invokes a function on a cron schedule (5 or 6 fields, or descriptors such as @every 1m).",
    printcolumn(name = "Cron", type_ = "string", json_path = ".spec.cron"),
    printcolumn(
        name = "Function",
        type_ = "string",
        json_path = ".spec.functionref.name"
    ),
    printcolumn(name = "Last-Fire", type_ = "date", json_path = ".status.lastFireTime"),
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

/// Rivulet's additive status of a TimeTrigger: conditions and the schedule's progress.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct TimeTriggerStatus {
    /// `observedGeneration` and the conditions (`Ready`).
    #[serde(flatten)]
    pub conditioned: ConditionedStatus,
    /// When the trigger last fired (scheduled time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fire_time: Option<Time>,
    /// When it fires next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_fire_time: Option<Time>,
    /// Invocations the function answered with 2xx or 3xx.
    #[serde(default)]
    pub delivered: i64,
    /// Invocations given up on (retries exhausted on transport errors, 5xx, 408 or 429; or another 4xx answer); each one is also an Event.
    #[serde(default)]
    pub failed: i64,
    /// The function's HTTP status of the last invocation, or why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_result: Option<String>,
}
