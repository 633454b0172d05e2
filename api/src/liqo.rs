//! Liqo's `NamespaceOffloading` (group `offloading.liqo.io`), in both served versions:
//! `v1alpha1` (Liqo ≤ 0.10, the seed setup) and `v1beta1` (Liqo ≥ 1.0). The operator discovers
//! which one the cluster serves. Field set is the same except `remoteNamespaceName` (v1beta1).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of `NamespaceOffloading`.
pub const GROUP: &str = "offloading.liqo.io";

/// Values of `namespaceMappingStrategy` (immutable after creation).
pub mod namespace_mapping_strategy {
    /// The remote namespace has the local namespace's name.
    pub const ENFORCE_SAME_NAME: &str = "EnforceSameName";
    /// The remote namespace name is derived from the local namespace and cluster (Liqo default).
    pub const DEFAULT_NAME: &str = "DefaultName";
    /// The remote namespace is `spec.remoteNamespaceName` (v1beta1 / Liqo ≥ 0.10.2).
    pub const SELECTED_NAME: &str = "SelectedName";
}

/// Values of `podOffloadingStrategy`.
pub mod pod_offloading_strategy {
    /// Pods may run locally and on the selected remote clusters (Liqo default).
    pub const LOCAL_AND_REMOTE: &str = "LocalAndRemote";
    /// Pods run only on the selected remote clusters.
    pub const REMOTE: &str = "Remote";
    /// Pods run only locally.
    pub const LOCAL: &str = "Local";
}

/// Values of `status.offloadingPhase`.
pub mod offloading_phase {
    /// Every selected cluster has the remote namespace.
    pub const READY: &str = "Ready";
    /// No cluster matches the selector.
    pub const NO_CLUSTER_SELECTED: &str = "NoClusterSelected";
    /// Remote namespaces are being created.
    pub const IN_PROGRESS: &str = "InProgress";
    /// Some remote namespaces failed.
    pub const SOME_FAILED: &str = "SomeFailed";
    /// Every remote namespace failed.
    pub const ALL_FAILED: &str = "AllFailed";
    /// The offloading is being deleted.
    pub const TERMINATING: &str = "Terminating";
}

/// Observed state of a `NamespaceOffloading`, written by Liqo.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceOffloadingStatus {
    /// Name of the namespace in the remote clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_namespace_name: Option<String>,
    /// `Ready`, `NoClusterSelected`, `InProgress`, `SomeFailed`, `AllFailed` or `Terminating`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offloading_phase: Option<String>,
    /// Conditions per remote cluster (keyed by NamespaceMap name in v1alpha1, cluster ID in
    /// v1beta1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_namespaces_conditions: Option<BTreeMap<String, Vec<RemoteNamespaceCondition>>>,
    /// `metadata.generation` Liqo last reconciled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A condition of one remote namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteNamespaceCondition {
    /// `OffloadingRequired` or `Ready`.
    #[serde(rename = "type")]
    pub type_: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// When the status last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<Time>,
    /// Machine-readable reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `offloading.liqo.io/v1alpha1` (Liqo ≤ 0.10).
pub mod v1alpha1 {
    use k8s_openapi::api::core::v1::NodeSelector;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    pub use super::NamespaceOffloadingStatus;

    /// Which clusters a namespace is offloaded to, how remote namespaces are named, and where
    /// its pods may run. The object must be named `offloading`.
    #[derive(
        CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema,
    )]
    #[kube(
        group = "offloading.liqo.io",
        version = "v1alpha1",
        kind = "NamespaceOffloading",
        namespaced,
        shortname = "nsof",
        status = "NamespaceOffloadingStatus",
        doc = "Liqo NamespaceOffloading (v1alpha1): offloads the namespace to the clusters selected by clusterSelector."
    )]
    #[serde(rename_all = "camelCase")]
    pub struct NamespaceOffloadingSpec {
        /// `EnforceSameName` or `DefaultName` (immutable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("enum" = ["EnforceSameName", "DefaultName"]))]
        pub namespace_mapping_strategy: Option<String>,
        /// `LocalAndRemote`, `Remote` or `Local`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("enum" = ["LocalAndRemote", "Remote", "Local"]))]
        pub pod_offloading_strategy: Option<String>,
        /// Selector over virtual-node labels; absent selects every cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cluster_selector: Option<NodeSelector>,
    }
}

/// `offloading.liqo.io/v1beta1` (Liqo ≥ 1.0).
pub mod v1beta1 {
    use k8s_openapi::api::core::v1::NodeSelector;
    use kube::CustomResource;
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};

    pub use super::NamespaceOffloadingStatus;

    /// Which clusters a namespace is offloaded to, how remote namespaces are named, and where
    /// its pods may run. The object must be named `offloading`.
    #[derive(
        CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema,
    )]
    #[kube(
        group = "offloading.liqo.io",
        version = "v1beta1",
        kind = "NamespaceOffloading",
        namespaced,
        shortname = "nsof",
        status = "NamespaceOffloadingStatus",
        doc = "Liqo NamespaceOffloading (v1beta1): offloads the namespace to the clusters selected by clusterSelector."
    )]
    #[serde(rename_all = "camelCase")]
    pub struct NamespaceOffloadingSpec {
        /// `EnforceSameName`, `DefaultName` or `SelectedName` (immutable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("enum" = ["EnforceSameName", "DefaultName", "SelectedName"]))]
        pub namespace_mapping_strategy: Option<String>,
        /// Remote namespace name, required with `SelectedName` (immutable).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub remote_namespace_name: Option<String>,
        /// `LocalAndRemote`, `Remote` or `Local`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[schemars(extend("enum" = ["LocalAndRemote", "Remote", "Local"]))]
        pub pod_offloading_strategy: Option<String>,
        /// Selector over virtual-node labels; absent selects every cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cluster_selector: Option<NodeSelector>,
    }
}
