//! `Function`: code (a Package) bound to an Environment, and how it is executed.

use k8s_openapi::api::autoscaling::v2::{HorizontalPodAutoscalerBehavior, MetricSpec};
use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConditionedStatus, ObjectRef, SecretOrConfigMapRef};

/// Desired state of a Function: its environment, its package and entrypoint, the secrets and
/// config maps it reads, and its execution strategy.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "Function",
    namespaced,
    shortname = "fn",
    status = "ConditionedStatus",
    doc = "A Fission Function: a Package run on an Environment with an execution strategy (poolmgr, newdeploy or container).",
    printcolumn(
        name = "Environment",
        type_ = "string",
        json_path = ".spec.environment.name"
    ),
    printcolumn(
        name = "Executor",
        type_ = "string",
        json_path = ".spec.InvokeStrategy.ExecutionStrategy.ExecutorType"
    ),
    printcolumn(
        name = "Package",
        type_ = "string",
        json_path = ".spec.package.packageref.name",
        priority = 1
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
#[serde(rename_all = "camelCase")]
pub struct FunctionSpec {
    /// The Environment the function runs on (and whose builder builds its source).
    pub environment: ObjectRef,

    /// The Package holding the code, and the entrypoint inside it.
    pub package: FunctionPackageRef,

    /// Secrets written to `/secrets/<namespace>/<name>/<key>`; same namespace as the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets: Option<Vec<SecretOrConfigMapRef>>,

    /// ConfigMaps written to `/configs/<namespace>/<name>/<key>`; same namespace as the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configmaps: Option<Vec<SecretOrConfigMapRef>>,

    /// Resources of the function container (`newdeploy` and `container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// How the function is executed.
    #[serde(rename = "InvokeStrategy")]
    pub invoke_strategy: InvokeStrategy,

    /// Per-request timeout in seconds; 0 or absent means 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub function_timeout: Option<i32>,

    /// Seconds a specialized pod may stay idle before it is reaped; absent means 120 (60 for
    /// `container`).
    #[serde(
        default,
        rename = "idletimeout",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0))]
    pub idle_timeout: Option<i32>,

    /// `poolmgr`: maximum specialized plus specializing pods; 0 or absent means 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub concurrency: Option<i32>,

    /// `poolmgr`: concurrent requests one specialized pod serves; 0 or absent means 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub requests_per_pod: Option<i32>,

    /// `poolmgr`: specialize a fresh pod for every request and never reuse it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub once_only: Option<bool>,

    /// `poolmgr`: idle specialized pods of the latest generation kept from reaping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub retain_pods: Option<i32>,

    /// Pod spec of the function; required for the `container` executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podspec: Option<PodSpec>,
}

/// The function's package and entrypoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct FunctionPackageRef {
    /// The Package object.
    #[serde(default)]
    pub packageref: PackageRef,
    /// Entrypoint passed verbatim to the runtime (for example `hello.main`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_name: Option<String>,
}

/// Reference to a Package, optionally pinned to a resourceVersion.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct PackageRef {
    /// Namespace of the Package; empty means the function's namespace.
    #[serde(default)]
    pub namespace: String,
    /// Name of the Package.
    #[serde(default)]
    pub name: String,
    /// resourceVersion of the Package the function was last applied with (stamped by the
    /// Fission CLI so that a package update changes the function).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resourceversion: Option<String>,
}

/// How a function is invoked. Fission's only strategy type is `execution`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct InvokeStrategy {
    /// The execution strategy.
    #[serde(rename = "ExecutionStrategy", default)]
    pub execution_strategy: ExecutionStrategy,
    /// Always `execution`.
    #[serde(rename = "StrategyType", default)]
    #[schemars(extend("enum" = ["execution"]))]
    pub strategy_type: String,
}

/// Which executor runs the function, and its scaling knobs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(transform = crate::schema::without_property_defaults)]
pub struct ExecutionStrategy {
    /// `poolmgr` (warm pool, specialized on demand), `newdeploy` (a Deployment per function) or
    /// `container` (a Deployment from `podspec`).
    #[serde(rename = "ExecutorType", default)]
    #[schemars(extend("enum" = ["poolmgr", "newdeploy", "container"]))]
    pub executor_type: String,
    /// `newdeploy`/`container`: minimum replicas.
    #[serde(rename = "MinScale", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub min_scale: Option<i32>,
    /// `newdeploy`/`container`: maximum replicas (> 0 and ≥ `MinScale`).
    #[serde(rename = "MaxScale", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_scale: Option<i32>,
    /// Deprecated CPU target (percent) for the HPA; prefer `hpaMetrics`.
    #[serde(
        rename = "TargetCPUPercent",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 0, max = 100))]
    pub target_cpu_percent: Option<i32>,
    /// Seconds allowed for specialization; values below 120 are raised to 120.
    #[serde(
        rename = "SpecializationTimeout",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub specialization_timeout: Option<i32>,
    /// `newdeploy`/`container`: HPA metrics.
    #[serde(
        rename = "hpaMetrics",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hpa_metrics: Option<Vec<MetricSpec>>,
    /// `newdeploy`/`container`: HPA scaling behaviour.
    #[serde(
        rename = "hpaBehavior",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub hpa_behavior: Option<HorizontalPodAutoscalerBehavior>,
}

/// The three executors, parsed from `ExecutorType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ExecutorType {
    /// Warm pool, specialized on demand.
    Poolmgr,
    /// A Deployment per function, specialized at start.
    Newdeploy,
    /// A Deployment from the function's pod spec.
    Container,
}

impl ExecutorType {
    /// Parses Fission's spelling; `None` for anything else (validation reports it).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            crate::keys::executor_types::POOLMGR => Some(Self::Poolmgr),
            crate::keys::executor_types::NEWDEPLOY => Some(Self::Newdeploy),
            crate::keys::executor_types::CONTAINER => Some(Self::Container),
            _ => None,
        }
    }

    /// Fission's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Poolmgr => crate::keys::executor_types::POOLMGR,
            Self::Newdeploy => crate::keys::executor_types::NEWDEPLOY,
            Self::Container => crate::keys::executor_types::CONTAINER,
        }
    }
}

impl FunctionSpec {
    /// The executor, if `ExecutorType` is valid.
    pub fn executor_type(&self) -> Option<ExecutorType> {
        ExecutorType::parse(&self.invoke_strategy.execution_strategy.executor_type)
    }
}
