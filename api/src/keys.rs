//! Label, annotation, volume and condition keys shared with Fission and Liqo.
//!
//! Fission's keys are unprefixed (`environmentName`, `managed`, ...); keeping them lets Fission
//! tooling and dashboards that select on them keep working. Rivulet's own keys use the
//! `rivulet.dev/` prefix.

/// Labels Fission puts on pool and function pods (`pkg/apis/core/v1/const.go`).
pub mod fission_labels {
    /// Namespace of the Environment a pod belongs to.
    pub const ENVIRONMENT_NAMESPACE: &str = "environmentNamespace";
    /// Name of the Environment a pod belongs to.
    pub const ENVIRONMENT_NAME: &str = "environmentName";
    /// UID of the Environment a pod belongs to.
    pub const ENVIRONMENT_UID: &str = "environmentUid";
    /// Namespace of the Function a specialized pod serves.
    pub const FUNCTION_NAMESPACE: &str = "functionNamespace";
    /// Name of the Function a specialized pod serves.
    pub const FUNCTION_NAME: &str = "functionName";
    /// UID of the Function a specialized pod serves.
    pub const FUNCTION_UID: &str = "functionUid";
    /// Executor that owns the pod: `poolmgr`, `newdeploy` or `container`.
    pub const EXECUTOR_TYPE: &str = "executorType";
    /// `true` while a pod is an unclaimed member of a warm pool, `false` once claimed.
    pub const MANAGED: &str = "managed";
}

/// Annotations Fission puts on pods.
pub mod fission_annotations {
    /// Identifier of the executor instance that claimed the pod.
    pub const EXECUTOR_INSTANCE_ID: &str = "executorInstanceId";
    /// resourceVersion of the Function a pod was specialized for.
    pub const FUNCTION_RESOURCE_VERSION: &str = "functionResourceVersion";
    /// `<podIP>:8888`, the address a specialized pod serves the function on.
    pub const SVC_HOST: &str = "svcHost";
    /// Set by `fission spec apply` to the spec's deployment name.
    pub const SPEC_NAME: &str = "fission-name";
    /// Set by `fission spec apply` to the spec's deployment UID.
    pub const SPEC_UID: &str = "fission-uid";
}

/// Names of the volumes shared between the runtime container and the fetcher.
pub mod fission_volumes {
    /// Function code, mounted at [`USERFUNC_PATH`](super::fission_paths::USERFUNC).
    pub const USERFUNC: &str = "userfunc";
    /// Builder packages.
    pub const PACKAGES: &str = "packages";
    /// Secrets written by the fetcher.
    pub const SECRETS: &str = "secrets";
    /// ConfigMaps written by the fetcher.
    pub const CONFIGMAPS: &str = "configmaps";
    /// Downward-API pod information.
    pub const PODINFO: &str = "podinfo";
}

/// In-pod paths of the shared volumes.
pub mod fission_paths {
    /// Function code.
    pub const USERFUNC: &str = "/userfunc";
    /// Secrets, as `/secrets/<namespace>/<name>/<key>`.
    pub const SECRETS: &str = "/secrets";
    /// ConfigMaps, as `/configs/<namespace>/<name>/<key>`.
    pub const CONFIGS: &str = "/configs";
    /// Downward-API pod information.
    pub const PODINFO: &str = "/etc/podinfo";
}

/// Values of the `executorType` label and of `ExecutorType`.
pub mod executor_types {
    /// Warm pool, specialized on demand.
    pub const POOLMGR: &str = "poolmgr";
    /// One Deployment per function, specialized at start.
    pub const NEWDEPLOY: &str = "newdeploy";
    /// One Deployment per function from a user-supplied pod spec.
    pub const CONTAINER: &str = "container";
}

/// Keys that Liqo defines (reference/liqo.md §1–§2).
pub mod liqo {
    /// Node label marking Liqo virtual nodes; its value is `virtual-node`.
    pub const TYPE_LABEL: &str = "liqo.io/type";
    /// Value of [`TYPE_LABEL`] on virtual nodes.
    pub const TYPE_VIRTUAL_NODE: &str = "virtual-node";
    /// Node label carrying the remote cluster's ID.
    pub const REMOTE_CLUSTER_ID_LABEL: &str = "liqo.io/remote-cluster-id";
    /// Taint key on virtual nodes (`NoExecute`, value `true`).
    pub const VIRTUAL_NODE_TAINT_KEY: &str = "virtual-node.liqo.io/not-allowed";
    /// Value of the virtual-node taint.
    pub const VIRTUAL_NODE_TAINT_VALUE: &str = "true";
    /// Namespace label Liqo sets on offloaded namespaces (never strip it).
    pub const SCHEDULING_ENABLED_LABEL: &str = "liqo.io/scheduling-enabled";
    /// The only accepted name of a `NamespaceOffloading` object.
    pub const NAMESPACE_OFFLOADING_NAME: &str = "offloading";
    /// Finalizer Liqo's controller adds to `NamespaceOffloading`.
    pub const NAMESPACE_OFFLOADING_FINALIZER: &str =
        "namespaceoffloading-controller.liqo.io/finalizer";
    /// Topology label prefix Liqo copies from cluster labels onto virtual nodes.
    pub const TOPOLOGY_REGION_LABEL: &str = "topology.liqo.io/region";
}

/// Rivulet's own keys.
pub mod rivulet {
    /// Annotation the router writes on a specialized pod: RFC 3339 time of its last request. The
    /// router refreshes it at most every [`LAST_ACTIVITY_REFRESH_SECONDS`] per pod, and keeps refreshing it while a request is
    /// in flight, so a long request is never mistaken for idleness. The function reconciler reaps
    /// idle pods from it (absent: the pod's creation time).
    pub const LAST_ACTIVITY_ANNOTATION: &str = "rivulet.dev/last-activity";
    /// Longest time the router waits before refreshing [`LAST_ACTIVITY_ANNOTATION`] (seconds).
    /// The annotation can be this much older than the pod's last request, so the reaper adds it
    /// to `idletimeout` before calling a pod idle.
    pub const LAST_ACTIVITY_REFRESH_SECONDS: u64 = 10;
    /// Annotation the router writes on a pod it specialized: the Function's `metadata.generation`
    /// at the time, so the reaper can tell pods of an older spec (status writes do not change it,
    /// unlike `functionResourceVersion`).
    pub const FUNCTION_GENERATION_ANNOTATION: &str = "rivulet.dev/function-generation";
    /// Label on pool pods: hash of the Environment spec they were built from, so a spec change
    /// rolls warm pods without touching specialized ones.
    pub const POOL_SPEC_HASH_LABEL: &str = "rivulet.dev/pool-spec-hash";
    /// Label on pool pods: the cluster (local or Liqo remote cluster ID) the pod is pinned to.
    pub const CLUSTER_LABEL: &str = "rivulet.dev/cluster";
    /// Label marking objects Rivulet created (for example a `NamespaceOffloading`).
    pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
    /// Value of [`MANAGED_BY_LABEL`].
    pub const MANAGED_BY_VALUE: &str = "rivulet";
}

/// Condition types and reasons Rivulet reports.
pub mod conditions {
    /// The object is reconciled and usable.
    pub const READY: &str = "Ready";
    /// A spec field breaks a validation rule; the message names the field and the rule.
    pub const REASON_INVALID_SPEC: &str = "InvalidSpec";
    /// Function: whether the router could specialize a pod with its code (owned by the router,
    /// field manager `rivulet-router`; the function reconciler owns `Ready`).
    pub const SPECIALIZED: &str = "Specialized";
    /// `Specialized=True`: the last specialization succeeded.
    pub const REASON_SPECIALIZED: &str = "Specialized";
    /// `Specialized=False`: the fetcher or the runtime refused the code (fetch, checksum,
    /// archive, load error); the message is theirs.
    pub const REASON_SPECIALIZATION_FAILED: &str = "SpecializationFailed";
    /// `Specialized=False`: the specialization did not finish within its timeout.
    pub const REASON_SPECIALIZATION_TIMED_OUT: &str = "SpecializationTimedOut";
}
