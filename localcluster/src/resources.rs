//! What a served resource is: the built-in kinds as a data table, and custom resources derived
//! from CustomResourceDefinitions.

use std::sync::Arc;

use serde_json::Value;

/// A printer column of Table responses (rendered by `rivulet-kube-schema`).
pub type Column = rivulet_kube_schema::PrinterColumn;

/// Where the scale subresource reads and writes replicas.
#[derive(Debug, Clone)]
pub struct ScalePaths {
    pub spec_replicas: String,
    pub status_replicas: String,
    pub label_selector: Option<String>,
}

/// How lists and maps of a kind merge (strategic merge patch, server-side apply, managedFields).
#[derive(Clone)]
pub struct MergeRules(pub Arc<dyn rivulet_kube_merge::MergeSchema + Send + Sync>);

impl std::fmt::Debug for MergeRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MergeRules")
    }
}

/// One served group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    /// Storage key shared by every version (and by core/v1 and events.k8s.io/v1 events).
    pub storage: String,
    pub status: bool,
    pub scale: Option<ScalePaths>,
    /// Extra subresources beyond status/scale (`log`, `binding`, `finalize`).
    pub extra_subresources: Vec<&'static str>,
    pub columns: Vec<Column>,
    /// Field selectors beyond metadata.name/metadata.namespace: (field, JSON path in the object).
    pub selectable_fields: Vec<(String, String)>,
    /// Top-level fields of a built-in kind besides apiVersion/kind/metadata, for
    /// `fieldValidation` and pruning; `None` = not checked.
    pub top_level_fields: Option<&'static [&'static str]>,
    /// A custom resource (served from a CRD).
    pub custom: bool,
    /// The CRD's structural schema for this version (custom resources only).
    pub schema: Option<Arc<rivulet_kube_schema::StructuralSchema>>,
    pub merge: MergeRules,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` (or `plural` for core), as used in error messages.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `Kind.group` (or `Kind`), as used in Invalid messages.
    pub fn kind_group(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        // Access reviews are questions, not stored objects: create is all they serve.
        if self.is_review() {
            return &["create"];
        }
        &[
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }

    /// An `authorization.k8s.io` review: answered at create, never stored (crate::api::reviews).
    pub fn is_review(&self) -> bool {
        !self.custom && self.group == "authorization.k8s.io"
    }

    pub fn subresources(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.status {
            out.push("status");
        }
        if self.scale.is_some() {
            out.push("scale");
        }
        out.extend(self.extra_subresources.iter().copied());
        out
    }

    /// Whether a PUT without resourceVersion is allowed (built-ins yes, custom resources no).
    pub fn allow_unconditional_update(&self) -> bool {
        !self.custom
    }

    /// Whether the object keeps a `metadata.generation` that follows spec changes.
    pub fn tracks_generation(&self) -> bool {
        self.status || self.custom
    }
}

/// A built-in column; paths are constants, checked by the unit test below.
fn col(name: &str, kind: &str, json_path: &str, priority: i64) -> Option<Column> {
    let def = serde_json::json!({"name": name, "type": kind, "jsonPath": json_path, "priority": priority, "description": name});
    Column::from_definition(&def).ok()
}

fn age() -> Option<Column> {
    col("Age", "date", ".metadata.creationTimestamp", 0)
}

struct Row {
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    kind: &'static str,
    namespaced: bool,
    short: &'static [&'static str],
    all: bool,
    status: bool,
    scale: bool,
    extra: &'static [&'static str],
}

/// The built-in kinds (issue 3): one row each.
const BUILTINS: &[Row] = &[
    Row {
        group: "",
        version: "v1",
        plural: "namespaces",
        kind: "Namespace",
        namespaced: false,
        short: &["ns"],
        all: false,
        status: true,
        scale: false,
        extra: &["finalize"],
    },
    Row {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        short: &["po"],
        all: true,
        status: true,
        scale: false,
        extra: &["log", "binding"],
    },
    Row {
        group: "",
        version: "v1",
        plural: "services",
        kind: "Service",
        namespaced: true,
        short: &["svc"],
        all: true,
        status: true,
        scale: false,
        extra: &[],
    },
    Row {
        group: "",
        version: "v1",
        plural: "endpoints",
        kind: "Endpoints",
        namespaced: true,
        short: &["ep"],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "",
        version: "v1",
        plural: "configmaps",
        kind: "ConfigMap",
        namespaced: true,
        short: &["cm"],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "",
        version: "v1",
        plural: "secrets",
        kind: "Secret",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "",
        version: "v1",
        plural: "serviceaccounts",
        kind: "ServiceAccount",
        namespaced: true,
        short: &["sa"],
        all: false,
        status: false,
        scale: false,
        extra: &["token"],
    },
    Row {
        group: "",
        version: "v1",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        short: &["no"],
        all: false,
        status: true,
        scale: false,
        extra: &[],
    },
    Row {
        group: "",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "events.k8s.io",
        version: "v1",
        plural: "events",
        kind: "Event",
        namespaced: true,
        short: &["ev"],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        short: &["deploy"],
        all: true,
        status: true,
        scale: true,
        extra: &[],
    },
    Row {
        group: "apps",
        version: "v1",
        plural: "replicasets",
        kind: "ReplicaSet",
        namespaced: true,
        short: &["rs"],
        all: true,
        status: true,
        scale: true,
        extra: &[],
    },
    Row {
        group: "autoscaling",
        version: "v2",
        plural: "horizontalpodautoscalers",
        kind: "HorizontalPodAutoscaler",
        namespaced: true,
        short: &["hpa"],
        all: true,
        status: true,
        scale: false,
        extra: &[],
    },
    Row {
        group: "networking.k8s.io",
        version: "v1",
        plural: "ingresses",
        kind: "Ingress",
        namespaced: true,
        short: &["ing"],
        all: false,
        status: true,
        scale: false,
        extra: &[],
    },
    Row {
        group: "discovery.k8s.io",
        version: "v1",
        plural: "endpointslices",
        kind: "EndpointSlice",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "coordination.k8s.io",
        version: "v1",
        plural: "leases",
        kind: "Lease",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "networking.k8s.io",
        version: "v1",
        plural: "networkpolicies",
        kind: "NetworkPolicy",
        namespaced: true,
        short: &["netpol"],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "policy",
        version: "v1",
        plural: "poddisruptionbudgets",
        kind: "PodDisruptionBudget",
        namespaced: true,
        short: &["pdb"],
        all: false,
        status: true,
        scale: false,
        extra: &[],
    },
    Row {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "roles",
        kind: "Role",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterroles",
        kind: "ClusterRole",
        namespaced: false,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "rolebindings",
        kind: "RoleBinding",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "rbac.authorization.k8s.io",
        version: "v1",
        plural: "clusterrolebindings",
        kind: "ClusterRoleBinding",
        namespaced: false,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectaccessreviews",
        kind: "SelfSubjectAccessReview",
        namespaced: false,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "selfsubjectrulesreviews",
        kind: "SelfSubjectRulesReview",
        namespaced: false,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "subjectaccessreviews",
        kind: "SubjectAccessReview",
        namespaced: false,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "authorization.k8s.io",
        version: "v1",
        plural: "localsubjectaccessreviews",
        kind: "LocalSubjectAccessReview",
        namespaced: true,
        short: &[],
        all: false,
        status: false,
        scale: false,
        extra: &[],
    },
    Row {
        group: "apiextensions.k8s.io",
        version: "v1",
        plural: "customresourcedefinitions",
        kind: "CustomResourceDefinition",
        namespaced: false,
        short: &["crd", "crds"],
        all: false,
        status: true,
        scale: false,
        extra: &[],
    },
];

/// Server-side printer columns of a built-in kind (after the implicit Name column).
fn builtin_columns(group: &str, plural: &str) -> Vec<Column> {
    let columns = match (group, plural) {
        ("", "namespaces") => vec![col("Status", "string", ".status.phase", 0), age()],
        ("", "pods") => vec![
            col("Status", "string", ".status.phase", 0),
            age(),
            col("IP", "string", ".status.podIP", 1),
            col("Node", "string", ".spec.nodeName", 1),
        ],
        ("", "services") => vec![
            col("Type", "string", ".spec.type", 0),
            col("Cluster-IP", "string", ".spec.clusterIP", 0),
            age(),
            col("Selector", "string", ".spec.selector", 1),
        ],
        ("", "secrets") => vec![col("Type", "string", ".type", 0), age()],
        ("", "nodes") => vec![
            age(),
            col("Version", "string", ".status.nodeInfo.kubeletVersion", 0),
        ],
        ("", "events") => vec![
            col("Type", "string", ".type", 0),
            col("Reason", "string", ".reason", 0),
            col("Object", "string", ".involvedObject.name", 0),
            col("Message", "string", ".message", 0),
        ],
        ("events.k8s.io", "events") => vec![
            col("Type", "string", ".type", 0),
            col("Reason", "string", ".reason", 0),
            col("Object", "string", ".regarding.name", 0),
            col("Message", "string", ".note", 0),
        ],
        ("apps", "deployments" | "replicasets") => vec![
            col("Desired", "integer", ".spec.replicas", 0),
            col("Ready", "integer", ".status.readyReplicas", 0),
            col("Available", "integer", ".status.availableReplicas", 0),
            age(),
        ],
        ("autoscaling", "horizontalpodautoscalers") => vec![
            col("Reference", "string", ".spec.scaleTargetRef.name", 0),
            col("MinPods", "integer", ".spec.minReplicas", 0),
            col("MaxPods", "integer", ".spec.maxReplicas", 0),
            col("Replicas", "integer", ".status.currentReplicas", 0),
            age(),
        ],
        ("coordination.k8s.io", "leases") => {
            vec![col("Holder", "string", ".spec.holderIdentity", 0), age()]
        }
        ("apiextensions.k8s.io", _) => {
            vec![col("Created At", "date", ".metadata.creationTimestamp", 0)]
        }
        _ => vec![age()],
    };
    columns.into_iter().flatten().collect()
}

/// Top-level fields of the built-in kinds whose shape is fixed (KK `core/v1/types.go` etc.).
/// Kinds with many top-level fields (events, endpoints, endpointslices) are not checked.
fn builtin_top_level_fields(group: &str, plural: &str) -> Option<&'static [&'static str]> {
    match (group, plural) {
        ("", "configmaps") => Some(&["data", "binaryData", "immutable"]),
        ("", "secrets") => Some(&["data", "stringData", "type", "immutable"]),
        ("", "serviceaccounts") => Some(&[
            "secrets",
            "imagePullSecrets",
            "automountServiceAccountToken",
        ]),
        ("", "namespaces" | "pods" | "services" | "nodes")
        | ("apps", "deployments" | "replicasets")
        | ("autoscaling", "horizontalpodautoscalers")
        | ("networking.k8s.io", "ingresses")
        | ("apiextensions.k8s.io", "customresourcedefinitions") => Some(&["spec", "status"]),
        ("coordination.k8s.io", "leases") | ("networking.k8s.io", "networkpolicies") => {
            Some(&["spec"])
        }
        ("policy", "poddisruptionbudgets") | ("authorization.k8s.io", _) => {
            Some(&["spec", "status"])
        }
        ("rbac.authorization.k8s.io", "roles") => Some(&["rules"]),
        ("rbac.authorization.k8s.io", "clusterroles") => Some(&["rules", "aggregationRule"]),
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            Some(&["subjects", "roleRef"])
        }
        _ => None,
    }
}

fn builtin_fields(group: &str, plural: &str) -> Vec<(String, String)> {
    let pairs: &[(&str, &str)] = match (group, plural) {
        ("", "pods") => &[
            ("spec.nodeName", ".spec.nodeName"),
            ("spec.restartPolicy", ".spec.restartPolicy"),
            ("spec.schedulerName", ".spec.schedulerName"),
            ("spec.serviceAccountName", ".spec.serviceAccountName"),
            ("spec.hostNetwork", ".spec.hostNetwork"),
            ("status.phase", ".status.phase"),
            ("status.podIP", ".status.podIP"),
            ("status.nominatedNodeName", ".status.nominatedNodeName"),
        ],
        ("", "events") => &[
            ("involvedObject.kind", ".involvedObject.kind"),
            ("involvedObject.namespace", ".involvedObject.namespace"),
            ("involvedObject.name", ".involvedObject.name"),
            ("involvedObject.uid", ".involvedObject.uid"),
            ("involvedObject.apiVersion", ".involvedObject.apiVersion"),
            (
                "involvedObject.resourceVersion",
                ".involvedObject.resourceVersion",
            ),
            ("involvedObject.fieldPath", ".involvedObject.fieldPath"),
            ("reason", ".reason"),
            ("reportingComponent", ".reportingComponent"),
            ("source", ".source.component"),
            ("type", ".type"),
        ],
        ("events.k8s.io", "events") => &[
            ("regarding.kind", ".regarding.kind"),
            ("regarding.namespace", ".regarding.namespace"),
            ("regarding.name", ".regarding.name"),
            ("regarding.uid", ".regarding.uid"),
            ("reason", ".reason"),
            ("type", ".type"),
        ],
        ("", "secrets") => &[("type", ".type")],
        ("", "namespaces") => &[("status.phase", ".status.phase")],
        ("", "nodes") => &[("spec.unschedulable", ".spec.unschedulable")],
        ("apps", "replicasets") => &[("status.replicas", ".status.replicas")],
        _ => &[],
    };
    pairs
        .iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

/// Every built-in resource.
pub fn builtins() -> Vec<ResourceInfo> {
    BUILTINS
        .iter()
        .map(|r| ResourceInfo {
            group: r.group.into(),
            version: r.version.into(),
            plural: r.plural.into(),
            singular: r.kind.to_lowercase(),
            kind: r.kind.into(),
            namespaced: r.namespaced,
            short_names: r.short.iter().map(|s| (*s).to_string()).collect(),
            categories: if r.all {
                vec!["all".into()]
            } else {
                Vec::new()
            },
            // events.k8s.io/v1 events live in the core events store, as upstream.
            storage: if r.plural == "events" {
                "/events".into()
            } else {
                format!("{}/{}", r.group, r.plural)
            },
            status: r.status,
            scale: r.scale.then(|| ScalePaths {
                spec_replicas: ".spec.replicas".into(),
                status_replicas: ".status.replicas".into(),
                label_selector: Some(".status.selector".into()),
            }),
            extra_subresources: r.extra.to_vec(),
            columns: builtin_columns(r.group, r.plural),
            selectable_fields: builtin_fields(r.group, r.plural),
            top_level_fields: builtin_top_level_fields(r.group, r.plural),
            custom: false,
            schema: None,
            merge: MergeRules(Arc::new(rivulet_kube_merge::BuiltinSchema::for_kind(
                r.group, r.kind,
            ))),
        })
        .collect()
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The resources a CRD serves: one per served version. Empty when the CRD is malformed.
pub fn from_crd(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    let names = &spec["names"];
    let (Some(plural), Some(kind)) = (names["plural"].as_str(), names["kind"].as_str()) else {
        return Vec::new();
    };
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    let mut out = Vec::new();
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        let Some(version) = v["name"].as_str() else {
            continue;
        };
        let sub = &v["subresources"];
        // Invalid JSONPaths were rejected when the CRD was written; fall back to Age.
        let columns = rivulet_kube_schema::columns_for_version(v)
            .unwrap_or_else(|_| age().into_iter().collect());
        out.push(ResourceInfo {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: names["singular"]
                .as_str()
                .map_or_else(|| kind.to_lowercase(), str::to_string),
            kind: kind.into(),
            namespaced,
            short_names: str_list(&names["shortNames"]),
            categories: str_list(&names["categories"]),
            storage: format!("{group}/{plural}"),
            status: sub.get("status").is_some(),
            scale: sub.get("scale").map(|s| ScalePaths {
                spec_replicas: s["specReplicasPath"]
                    .as_str()
                    .unwrap_or(".spec.replicas")
                    .into(),
                status_replicas: s["statusReplicasPath"]
                    .as_str()
                    .unwrap_or(".status.replicas")
                    .into(),
                label_selector: s["labelSelectorPath"].as_str().map(str::to_string),
            }),
            extra_subresources: Vec::new(),
            columns,
            selectable_fields: v["selectableFields"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|f| f["jsonPath"].as_str())
                .map(|p| (p.trim_start_matches('.').to_string(), p.to_string()))
                .collect(),
            top_level_fields: None,
            custom: true,
            schema: v["schema"]
                .get("openAPIV3Schema")
                .and_then(|s| rivulet_kube_schema::StructuralSchema::parse(s).ok())
                .map(Arc::new),
            merge: MergeRules(
                match rivulet_kube_merge::OpenApiSchema::from_crd(crd, version) {
                    Some(s) => Arc::new(s),
                    None => Arc::new(rivulet_kube_merge::BuiltinSchema::object_meta_only()),
                },
            ),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn builtin_columns_parse() {
        let all = super::builtins();
        assert!(all.iter().all(|r| !r.columns.is_empty()));
        let pods = all.iter().find(|r| r.plural == "pods").map(|r| {
            r.columns
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
        });
        assert_eq!(pods, Some(vec!["Status", "Age", "IP", "Node"]));
    }
}
