//! `KubernetesWatchTrigger`: delivers Kubernetes watch events to a function.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
    status = "ConditionedStatus",
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
