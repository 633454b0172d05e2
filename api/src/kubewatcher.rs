//! `KubernetesWatchTrigger`: delivers Kubernetes watch events to a function.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::common::{ConditionedStatus, FunctionReference};

/// Object types a watch trigger may watch (matched case-insensitively, as Fission does).
pub const WATCHABLE_TYPES: [&str; 4] = ["POD", "SERVICE", "REPLICATIONCONTROLLER", "JOB"];

/// Desired state of a KubernetesWatchTrigger: which objects to watch and the function that
/// receives each event.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "KubernetesWatchTrigger",
    namespaced,
    status = "KubernetesWatchTriggerStatus",
    doc = "A Fission KubernetesWatchTrigger: watch events of pods, services, replication controllers or jobs are delivered to a function.",
    printcolumn(name = "Watched-NS", type_ = "string", json_path = ".spec.namespace"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
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
pub struct KubernetesWatchTriggerSpec {
    /// Namespace whose objects are watched.
    pub namespace: String,
    /// Object type: `pod`, `service`, `replicationcontroller` or `job` (any case).
    #[serde(rename = "type")]
    pub object_type: String,
    /// Only objects with these labels are watched (Rivulet honours it; Fission ignores it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelselector: Option<BTreeMap<String, String>>,
    /// The function that receives the events.
    pub functionref: FunctionReference,
}

/// Rivulet's additive status of a KubernetesWatchTrigger: conditions, and how far delivery got.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesWatchTriggerStatus {
    /// `observedGeneration` and the conditions (`Ready`).
    #[serde(flatten)]
    pub conditioned: ConditionedStatus,
    /// Delivery progress of the current watch (written by the delivering controller, at most
    /// about once a second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<WatchDelivery>,
}

/// How far the events of one watch have been delivered. A restarted controller resumes after
/// `resourceVersion` instead of delivering every existing object again.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct WatchDelivery {
    /// The watch these figures belong to, as `<namespace>/<type>[?<selector>]`. When the trigger's
    /// namespace, type or label selector changes, a new subscription starts from the current
    /// objects.
    pub subscription: String,
    /// resourceVersion of the watched collection up to which every event has been delivered or
    /// given up on.
    #[serde(default)]
    pub resource_version: String,
    /// Events delivered (the function answered 2xx or 3xx).
    #[serde(default)]
    pub delivered: i64,
    /// Events given up on (retries exhausted on transport errors, 5xx, 408 or 429; or another 4xx answer); each one is also an Event.
    #[serde(default)]
    pub failed: i64,
    /// The last event handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_event: Option<DeliveredEvent>,
}

/// One watch event and what became of it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct DeliveredEvent {
    /// `ADDED`, `MODIFIED` or `DELETED`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Name of the object the event is about.
    pub name: String,
    /// resourceVersion of the object in the event.
    #[serde(default)]
    pub resource_version: String,
    /// When delivery finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<Time>,
    /// `Delivered` or `Failed`.
    pub outcome: String,
    /// The function's HTTP status, or why delivery failed.
    #[serde(default)]
    pub message: String,
}
