//! `Environment`: a language runtime image (and optional builder) plus its warm pool.

use k8s_openapi::api::core::v1::{Container, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Desired state of an Environment: the runtime (and builder) images and how the warm pool of
/// runtime pods is shaped.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "Environment",
    namespaced,
    status = "EnvironmentStatus",
    doc = "A Fission Environment: a language runtime image, an optional builder, and a warm pool of runtime pods that functions are specialized into.",
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.runtime.image"),
    printcolumn(
        name = "Version",
        type_ = "integer",
        json_path = ".spec.version",
        priority = 1
    ),
    printcolumn(name = "Poolsize", type_ = "integer", json_path = ".spec.poolsize"),
    printcolumn(name = "Warm", type_ = "integer", json_path = ".status.readyPods"),
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
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// Interface version of the runtime: 1 loads `/userfunc/user` via `POST /specialize`; 2 adds
    /// builders and `POST /v2/specialize`; 3 also honours `poolsize`.
    #[schemars(range(min = 1, max = 3))]
    pub version: i32,

    /// The runtime container of every function pod.
    pub runtime: Runtime,

    /// The builder that turns source packages into deployable ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builder: Option<Builder>,

    /// `single` (default): a pod serves one function; `infinite`: one pod serves every function
    /// of this environment and is never taken out of the pool.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["single", "infinite", ""]))]
    pub allowed_functions_per_container: Option<String>,

    /// With Istio, lets function pods reach the external network (disables sidecar injection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_access_to_external_network: Option<bool>,

    /// Resources of the runtime container in pool pods (the base for `newdeploy` functions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Number of warm pods (honoured from version 3; version 1 and 2 always use 3). `0` keeps
    /// no pool, so `poolmgr` functions of this environment cannot run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub poolsize: Option<i32>,

    /// Seconds a terminating pod may finish in-flight work (pod grace period and a `preStop`
    /// sleep). Absent means 0, as in Fission; the Fission CLI sends 360.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub termination_grace_period: Option<i64>,

    /// Keep the deployment archive as is instead of unzipping it (JVM jars).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keeparchive: Option<bool>,

    /// Name of an image pull secret; when set it replaces the pod's `imagePullSecrets`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imagepullsecret: Option<String>,

    /// Rivulet extension: which clusters (the local one and Liqo peers) hold the warm pool, and
    /// how it is split between them. Absent: every Ready cluster, split uniformly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
}

/// Where the warm pool runs across the local cluster and Liqo peers (a Rivulet extension).
///
/// Remote clusters are the Liqo virtual nodes (`liqo.io/type=virtual-node`), grouped by
/// `liqo.io/remote-cluster-id`; a cluster's labels are its virtual node's labels.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Placement {
    /// Selects remote clusters by their virtual node's labels (for example
    /// `topology.liqo.io/region`). Absent selects every remote cluster; the local cluster is
    /// governed by `includeLocal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selector: Option<LabelSelector>,
    /// Whether the local cluster holds part of the pool (default `true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_local: Option<bool>,
    /// `Uniform` (default): counts differ by at most one between clusters. `Weighted`:
    /// proportional to each cluster's allocatable CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Uniform", "Weighted"]))]
    pub split: Option<String>,
}

/// Values of [`Placement::split`].
pub mod placement_split {
    /// Counts differ by at most one between clusters.
    pub const UNIFORM: &str = "Uniform";
    /// Counts proportional to allocatable CPU.
    pub const WEIGHTED: &str = "Weighted";
}

/// Observed state of an Environment: its warm pool, per cluster, and conditions.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentStatus {
    /// `metadata.generation` of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `Ready` (every desired warm pod is Ready) and `Placed` (which clusters hold the pool, or
    /// why it is local only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "crate::schema::conditions")]
    pub conditions: Vec<Condition>,
    /// Warm pods wanted in total.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool_size: Option<i32>,
    /// Warm pods of the current spec that are Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_pods: Option<i32>,
    /// The pool per cluster (`local` or a Liqo remote cluster ID).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    pub clusters: Vec<ClusterPoolStatus>,
}

/// The warm pool in one cluster.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ClusterPoolStatus {
    /// `local`, or the Liqo remote cluster ID.
    pub name: String,
    /// Warm pods wanted in this cluster.
    pub desired: i32,
    /// Warm pods of the current spec Ready in this cluster.
    pub ready: i32,
}

impl EnvironmentStatus {
    /// The condition of the given type, if present.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// The runtime container of function pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Runtime {
    /// Runtime image, for example `fission/python-env`.
    pub image: String,
    /// Merged into the runtime container (name, image and termination message path are
    /// Fission's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Merged into the pool pod last: lists are appended, fields set here win.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podspec: Option<PodSpec>,
}

/// The builder container that builds source packages.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Builder {
    /// Builder image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Default build command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Merged into the builder container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Merged into the builder pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podspec: Option<PodSpec>,
}

/// Values of `allowedFunctionsPerContainer`.
pub mod functions_per_container {
    /// One function per pod (the default).
    pub const SINGLE: &str = "single";
    /// Every function of the environment in one shared pod.
    pub const INFINITE: &str = "infinite";
}

impl EnvironmentSpec {
    /// Whether one pod serves every function of this environment.
    pub fn is_infinite(&self) -> bool {
        self.allowed_functions_per_container.as_deref() == Some(functions_per_container::INFINITE)
    }

    /// The number of warm pods this environment asks for (Fission's rules).
    pub fn pool_size(&self) -> i32 {
        crate::defaults::pool_size(self.version, self.poolsize, self.is_infinite())
    }
}
