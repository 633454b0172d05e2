//! What to do with a namespace's `NamespaceOffloading` given what its Environments need (pure):
//! create ours, update ours (mutable fields only), adopt someone else's without touching it,
//! delete ours once unneeded, or wait while it terminates.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorTerm, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use kube::ResourceExt;
use kube::api::DynamicObject;
use rivulet_api::keys::{liqo, rivulet};
use rivulet_api::liqo::v1beta1::NamespaceOffloadingSpec;
use rivulet_api::liqo::{
    NamespaceOffloadingStatus, namespace_mapping_strategy, offloading_phase,
    pod_offloading_strategy,
};

use super::desired::{ClusterSet, DesiredOffloading};
use crate::placement::{Cluster, LOCAL_CLUSTER, selector_matches};

/// Event reasons this reconciler publishes on Environments.
pub mod reasons {
    /// Rivulet created the namespace's NamespaceOffloading.
    pub const CREATED: &str = "OffloadingCreated";
    /// Rivulet updated a mutable field of its NamespaceOffloading.
    pub const UPDATED: &str = "OffloadingUpdated";
    /// A NamespaceOffloading Rivulet did not create is in place and covers what the pools need.
    pub const ADOPTED: &str = "OffloadingAdopted";
    /// A NamespaceOffloading Rivulet did not create does not give the pools what they need.
    pub const FOREIGN_MISMATCH: &str = "OffloadingNotRivulets";
    /// An immutable field differs from the configured value; Rivulet keeps the current one.
    pub const IMMUTABLE_FIELD: &str = "OffloadingImmutableField";
}

/// A `NamespaceOffloading` as read from the cluster.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Current {
    /// Labelled `app.kubernetes.io/managed-by=rivulet`: Rivulet created it.
    pub ours: bool,
    /// Has a deletion timestamp (Liqo's finalizer is tearing remote namespaces down).
    pub deleting: bool,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// The spec (v1alpha1 fields are a subset of v1beta1's).
    pub spec: NamespaceOffloadingSpec,
    /// Liqo's status.
    pub status: NamespaceOffloadingStatus,
}

impl Current {
    /// Reads the fields the decision needs. An unreadable spec or status reads as empty.
    pub fn from_object(object: &DynamicObject) -> Self {
        let field = |name: &str| object.data.get(name).cloned();
        Self {
            ours: object
                .labels()
                .get(rivulet::MANAGED_BY_LABEL)
                .map(String::as_str)
                == Some(rivulet::MANAGED_BY_VALUE),
            deleting: object.metadata.deletion_timestamp.is_some(),
            generation: object.metadata.generation,
            spec: field("spec")
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default(),
            status: field("status")
                .and_then(|s| serde_json::from_value(s).ok())
                .unwrap_or_default(),
        }
    }
}

/// An immutable field whose configured value differs from the object's: reported, never patched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// JSON path of the field.
    pub field: &'static str,
    /// Value on the object (Liqo's default when unset).
    pub current: String,
    /// Value Rivulet would have set.
    pub wanted: String,
}

impl std::fmt::Display for Conflict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is {} but Rivulet is configured for {}; the field is immutable (changing it means \
             deleting the offloading, which deletes everything in the remote namespaces), so \
             Rivulet keeps {}",
            self.field, self.current, self.wanted, self.current
        )
    }
}

/// What a foreign `NamespaceOffloading` does for the pools of its namespace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Environments that place pods remotely.
    pub environments: Vec<String>,
    /// `podOffloadingStrategy` (Liqo's default `LocalAndRemote` when unset).
    pub pod_offloading_strategy: String,
    /// Remote clusters its `clusterSelector` selects, or why that cannot be told.
    pub selects: Result<ClusterSet, String>,
    /// Clusters the Environments ask for that it does not select.
    pub missing: Vec<String>,
    /// `status.offloadingPhase`, with `(stale)` when Liqo has not seen the latest generation.
    pub phase: String,
}

impl Effect {
    /// Whether the pools get what they ask for: every asked cluster selected, pods allowed both
    /// locally and remotely, and Liqo not reporting a failure.
    pub fn covers(&self) -> bool {
        self.selects.is_ok()
            && self.missing.is_empty()
            && self.pod_offloading_strategy == pod_offloading_strategy::LOCAL_AND_REMOTE
            && !matches!(
                self.phase.as_str(),
                offloading_phase::SOME_FAILED | offloading_phase::ALL_FAILED
            )
    }

    /// Event reason.
    pub fn reason(&self) -> &'static str {
        if self.covers() {
            reasons::ADOPTED
        } else {
            reasons::FOREIGN_MISMATCH
        }
    }

    /// Event note and log line.
    pub fn message(&self, namespace: &str) -> String {
        let selects = match &self.selects {
            Ok(set) => set.to_string(),
            Err(why) => format!("an unknown set of clusters ({why})"),
        };
        let mut message = format!(
            "NamespaceOffloading {namespace}/{} was not created by Rivulet and is left unchanged: \
             podOffloadingStrategy {}, selects {selects}, phase {}",
            liqo::NAMESPACE_OFFLOADING_NAME,
            self.pod_offloading_strategy,
            self.phase
        );
        if !self.missing.is_empty() {
            let _ = write!(
                message,
                "; clusters asked for by spec.placement but not selected: [{}] (their warm pods \
                 cannot schedule there; widen the offloading's clusterSelector)",
                self.missing.join(", ")
            );
        }
        match self.pod_offloading_strategy.as_str() {
            pod_offloading_strategy::LOCAL => message.push_str(
                "; strategy Local keeps every pod in the local cluster, so remote warm pods stay Pending",
            ),
            pod_offloading_strategy::REMOTE => message.push_str(
                "; strategy Remote forbids local nodes, so local warm pods stay Pending (use LocalAndRemote)",
            ),
            _ => {}
        }
        message
    }
}

/// What the reconcile does with the namespace's offloading.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Nothing needs an offloading and none of Rivulet's exists (a foreign one is left alone).
    Nothing,
    /// Create Rivulet's offloading.
    Create(DesiredOffloading),
    /// Rivulet's offloading differs in a mutable field: apply this (immutable fields as they are).
    Update {
        /// What to apply.
        desired: DesiredOffloading,
        /// Immutable fields kept at their current value.
        conflicts: Vec<Conflict>,
    },
    /// Rivulet's offloading is as wanted (up to the reported immutable fields).
    UpToDate {
        /// Environments that need it.
        environments: Vec<String>,
        /// Immutable fields kept at their current value.
        conflicts: Vec<Conflict>,
    },
    /// Rivulet's offloading is no longer needed by any Environment.
    Delete,
    /// Someone else's offloading: never written; its effect is reported.
    Adopt(Effect),
    /// The offloading is being deleted; once it is gone, a new one is created if still needed.
    Terminating,
}

/// Decides from what the namespace needs and what exists. `clusters` (every known cluster) lets
/// the effect of a foreign selector be told.
pub fn decide(
    desired: Option<&DesiredOffloading>,
    current: Option<&Current>,
    clusters: &[Cluster],
) -> Decision {
    match (desired, current) {
        (None, None) => Decision::Nothing,
        (Some(desired), None) => Decision::Create(desired.clone()),
        (_, Some(current)) if current.deleting => Decision::Terminating,
        (None, Some(current)) => delete_decision(current),
        (Some(desired), Some(current)) if !current.ours => {
            Decision::Adopt(effect(desired, current, clusters))
        }
        (Some(desired), Some(current)) => update_decision(desired, current),
    }
}

/// An existing offloading nobody needs: deleted only when Rivulet created it.
pub fn delete_decision(current: &Current) -> Decision {
    if current.ours && !current.deleting {
        Decision::Delete
    } else {
        Decision::Nothing
    }
}

/// Rivulet's own offloading: mutable fields converge, immutable ones keep their value.
pub fn update_decision(desired: &DesiredOffloading, current: &Current) -> Decision {
    let mut patched = desired.clone();
    let mut conflicts = Vec::new();
    let current_mapping = current.spec.namespace_mapping_strategy.clone();
    let effective = |v: &Option<String>| {
        v.clone()
            .unwrap_or_else(|| namespace_mapping_strategy::DEFAULT_NAME.into())
    };
    if effective(&current_mapping) != effective(&desired.spec.namespace_mapping_strategy) {
        conflicts.push(Conflict {
            field: "spec.namespaceMappingStrategy",
            current: effective(&current_mapping),
            wanted: effective(&desired.spec.namespace_mapping_strategy),
        });
    }
    // Apply what is there: omitting a field this manager applied before would remove it.
    patched.spec.namespace_mapping_strategy = current_mapping;
    let same = current.spec.pod_offloading_strategy == patched.spec.pod_offloading_strategy
        && normalized(current.spec.cluster_selector.as_ref())
            == normalized(patched.spec.cluster_selector.as_ref());
    if same {
        Decision::UpToDate {
            environments: desired.environments.clone(),
            conflicts,
        }
    } else {
        Decision::Update {
            desired: patched,
            conflicts,
        }
    }
}

/// An absent selector and `nodeSelectorTerms: []` mean the same: every cluster.
fn normalized(selector: Option<&NodeSelector>) -> Vec<NodeSelectorTerm> {
    selector
        .map(|s| s.node_selector_terms.clone())
        .unwrap_or_default()
}

/// What a foreign offloading gives the Environments that need one.
pub fn effect(desired: &DesiredOffloading, current: &Current, clusters: &[Cluster]) -> Effect {
    let selects = selected_clusters(current.spec.cluster_selector.as_ref(), clusters);
    let asked: Vec<String> = match &desired.clusters {
        ClusterSet::All => clusters
            .iter()
            .filter(|c| c.remote)
            .map(|c| c.id.clone())
            .collect(),
        ClusterSet::Only(ids) => ids.iter().cloned().collect(),
    };
    let missing = match &selects {
        Ok(set) => asked.into_iter().filter(|id| !set.contains(id)).collect(),
        Err(_) => Vec::new(),
    };
    let phase = current
        .status
        .offloading_phase
        .clone()
        .unwrap_or_else(|| "unknown (no status yet)".into());
    let stale = current.status.observed_generation.is_some()
        && current.status.observed_generation != current.generation;
    Effect {
        environments: desired.environments.clone(),
        pod_offloading_strategy: current
            .spec
            .pod_offloading_strategy
            .clone()
            .unwrap_or_else(|| pod_offloading_strategy::LOCAL_AND_REMOTE.into()),
        selects,
        missing,
        phase: if stale {
            format!("{phase} (stale: Liqo has not reconciled the latest spec)")
        } else {
            phase
        },
    }
}

/// The remote clusters a `clusterSelector` selects, matched against each cluster's virtual-node
/// labels as Liqo does: terms are ORed, a term's expressions ANDed, no terms select every cluster.
pub fn selected_clusters(
    selector: Option<&NodeSelector>,
    clusters: &[Cluster],
) -> Result<ClusterSet, String> {
    let terms = normalized(selector);
    if terms.is_empty() {
        return Ok(ClusterSet::All);
    }
    let mut ids = BTreeSet::new();
    for cluster in clusters.iter().filter(|c| c.remote) {
        for term in &terms {
            if term_matches(term, cluster)? {
                ids.insert(cluster.id.clone());
                break;
            }
        }
    }
    Ok(ClusterSet::Only(ids))
}

fn term_matches(term: &NodeSelectorTerm, cluster: &Cluster) -> Result<bool, String> {
    if term.match_fields.as_ref().is_some_and(|f| !f.is_empty()) {
        return Err("clusterSelector uses matchFields".into());
    }
    let expressions = term.match_expressions.clone().unwrap_or_default();
    // As in Kubernetes, an empty term matches nothing.
    if expressions.is_empty() {
        return Ok(false);
    }
    let selector = LabelSelector {
        match_expressions: Some(
            expressions
                .into_iter()
                .map(|e| LabelSelectorRequirement {
                    key: e.key,
                    operator: e.operator,
                    values: e.values,
                })
                .collect(),
        ),
        match_labels: None,
    };
    selector_matches(&selector, &cluster.labels)
}

/// Pods of the namespace that still run (or are pinned to run) on a remote cluster: on a Liqo
/// virtual node, or labelled for a remote cluster by the environment reconciler. Deleting the
/// offloading under them would delete their remote copies, specialized pods serving requests
/// included, so deletion waits for them.
pub fn remote_pods(pods: &[Pod], nodes: &[Node]) -> Vec<String> {
    let virtual_nodes: BTreeSet<String> = nodes
        .iter()
        .filter(|n| {
            n.labels().get(liqo::TYPE_LABEL).map(String::as_str) == Some(liqo::TYPE_VIRTUAL_NODE)
        })
        .map(ResourceExt::name_any)
        .collect();
    let mut names: Vec<String> = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| {
            let on_virtual = p
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| virtual_nodes.contains(n));
            let pinned_remote = p
                .labels()
                .get(rivulet::CLUSTER_LABEL)
                .is_some_and(|c| c != LOCAL_CLUSTER);
            on_virtual || pinned_remote
        })
        .map(ResourceExt::name_any)
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use serde_json::json;

    use super::*;
    use crate::offloading::desired::{MappingStrategy, cluster_selector};

    fn cluster(id: &str, region: &str) -> Cluster {
        Cluster {
            id: id.into(),
            remote: true,
            labels: BTreeMap::from([
                ("liqo.io/type".to_owned(), "virtual-node".to_owned()),
                ("liqo.io/remote-cluster-id".to_owned(), id.to_owned()),
                ("topology.liqo.io/region".to_owned(), region.to_owned()),
            ]),
            allocatable_cpu_millis: 4000,
        }
    }

    fn seed() -> Vec<Cluster> {
        vec![
            Cluster {
                id: LOCAL_CLUSTER.into(),
                remote: false,
                labels: BTreeMap::new(),
                allocatable_cpu_millis: 4000,
            },
            cluster("florence", "center"),
            cluster("naples", "south"),
        ]
    }

    fn wanted(clusters: ClusterSet, mapping: MappingStrategy) -> DesiredOffloading {
        DesiredOffloading {
            environments: vec!["python".into()],
            spec: NamespaceOffloadingSpec {
                namespace_mapping_strategy: Some(mapping.as_str().into()),
                remote_namespace_name: None,
                pod_offloading_strategy: Some("LocalAndRemote".into()),
                cluster_selector: Some(cluster_selector(&clusters)),
            },
            clusters,
        }
    }

    fn object(
        labels: &serde_json::Value,
        spec: &serde_json::Value,
        status: &serde_json::Value,
    ) -> Current {
        let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": "liqo-demo", "labels": labels, "generation": 1},
        "spec": spec, "status": status,
    }))
    .unwrap();
        Current::from_object(&object)
    }

    fn ours(spec: &serde_json::Value) -> Current {
        object(
            &json!({"app.kubernetes.io/managed-by": "rivulet"}),
            spec,
            &json!({}),
        )
    }

    fn both() -> ClusterSet {
        ClusterSet::Only(["florence".to_owned(), "naples".to_owned()].into())
    }

    #[test]
    fn nothing_wanted_nothing_there() {
        assert_eq!(decide(None, None, &seed()), Decision::Nothing);
    }

    #[test]
    fn wanted_and_absent_is_created() {
        let desired = wanted(ClusterSet::All, MappingStrategy::EnforceSameName);
        assert_eq!(
            decide(Some(&desired), None, &seed()),
            Decision::Create(desired.clone())
        );
    }

    #[test]
    fn ours_as_wanted_is_up_to_date() {
        let desired = wanted(both(), MappingStrategy::EnforceSameName);
        let current = ours(&serde_json::to_value(&desired.spec).unwrap());
        assert!(current.ours);
        assert_eq!(
            decide(Some(&desired), Some(&current), &seed()),
            Decision::UpToDate {
                environments: vec!["python".into()],
                conflicts: vec![]
            }
        );
    }

    #[test]
    fn absent_selector_equals_empty_terms() {
        let desired = wanted(ClusterSet::All, MappingStrategy::EnforceSameName);
        let current = ours(
            &json!({"namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "LocalAndRemote"}),
        );
        assert!(matches!(
            decide(Some(&desired), Some(&current), &seed()),
            Decision::UpToDate { .. }
        ));
    }

    #[test]
    fn ours_with_other_clusters_is_updated() {
        let desired = wanted(both(), MappingStrategy::EnforceSameName);
        let current = ours(&json!({
            "namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "LocalAndRemote",
            "clusterSelector": {"nodeSelectorTerms": []}
        }));
        assert_eq!(
            decide(Some(&desired), Some(&current), &seed()),
            Decision::Update {
                desired: desired.clone(),
                conflicts: vec![]
            }
        );
    }

    #[test]
    fn immutable_mapping_is_reported_and_kept_never_patched() {
        // Configured DefaultName, created with EnforceSameName: no write, a conflict.
        let desired = wanted(ClusterSet::All, MappingStrategy::DefaultName);
        let current = ours(&json!({
            "namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "LocalAndRemote",
            "clusterSelector": {"nodeSelectorTerms": []}
        }));
        let Decision::UpToDate { conflicts, .. } = decide(Some(&desired), Some(&current), &seed())
        else {
            panic!("expected UpToDate");
        };
        assert_eq!(
            conflicts,
            [Conflict {
                field: "spec.namespaceMappingStrategy",
                current: "EnforceSameName".into(),
                wanted: "DefaultName".into()
            }]
        );
        insta::assert_snapshot!("immutable_conflict_message", conflicts[0].to_string());

        // A mutable change as well: the update carries the current (unset) mapping, not ours.
        let desired = wanted(both(), MappingStrategy::EnforceSameName);
        let current = ours(&json!({"podOffloadingStrategy": "Local"}));
        let Decision::Update {
            desired: patch,
            conflicts,
        } = decide(Some(&desired), Some(&current), &seed())
        else {
            panic!("expected Update");
        };
        assert_eq!(patch.spec.namespace_mapping_strategy, None);
        assert_eq!(
            patch.spec.pod_offloading_strategy.as_deref(),
            Some("LocalAndRemote")
        );
        assert_eq!(
            conflicts[0].current, "DefaultName",
            "unset reads as Liqo's default"
        );
    }

    #[test]
    fn foreign_offloading_is_adopted_and_its_effect_reported() {
        let desired = wanted(ClusterSet::All, MappingStrategy::EnforceSameName);
        let foreign = object(
            &json!({}),
            &json!({
                "namespaceMappingStrategy": "DefaultName", "podOffloadingStrategy": "LocalAndRemote",
                "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [
                    {"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}
                ]}]}
            }),
            &json!({"offloadingPhase": "Ready", "observedGeneration": 1}),
        );
        assert!(!foreign.ours);
        let Decision::Adopt(effect) = decide(Some(&desired), Some(&foreign), &seed()) else {
            panic!("expected Adopt");
        };
        assert_eq!(
            effect.selects,
            Ok(ClusterSet::Only(["naples".to_owned()].into()))
        );
        assert_eq!(effect.missing, ["florence"]);
        assert!(!effect.covers());
        assert_eq!(effect.reason(), reasons::FOREIGN_MISMATCH);
        insta::assert_snapshot!("foreign_missing_florence", effect.message("liqo-demo"));
    }

    #[test]
    fn foreign_offloading_that_covers_everything_is_adopted_quietly() {
        let desired = wanted(both(), MappingStrategy::EnforceSameName);
        let foreign = object(
            &json!({"app.kubernetes.io/managed-by": "someone-else"}),
            &json!({"podOffloadingStrategy": "LocalAndRemote", "clusterSelector": {"nodeSelectorTerms": []}}),
            &json!({"offloadingPhase": "InProgress", "observedGeneration": 0}),
        );
        let Decision::Adopt(effect) = decide(Some(&desired), Some(&foreign), &seed()) else {
            panic!("expected Adopt");
        };
        assert!(effect.covers());
        assert_eq!(effect.reason(), reasons::ADOPTED);
        insta::assert_snapshot!("foreign_covering_stale", effect.message("liqo-demo"));
    }

    #[test]
    fn foreign_strategies_that_block_pools_are_mismatches() {
        let desired = wanted(both(), MappingStrategy::EnforceSameName);
        for strategy in ["Local", "Remote"] {
            let foreign = object(
                &json!({}),
                &json!({"podOffloadingStrategy": strategy}),
                &json!({}),
            );
            let Decision::Adopt(effect) = decide(Some(&desired), Some(&foreign), &seed()) else {
                panic!("expected Adopt");
            };
            assert!(!effect.covers(), "{strategy}");
            assert!(
                effect
                    .message("ns")
                    .contains(&format!("strategy {strategy}"))
            );
        }
    }

    #[test]
    fn only_ours_is_deleted_and_only_when_unneeded() {
        let ours = ours(&json!({"podOffloadingStrategy": "LocalAndRemote"}));
        let foreign = object(&json!({}), &json!({}), &json!({}));
        assert_eq!(decide(None, Some(&ours), &seed()), Decision::Delete);
        assert_eq!(decide(None, Some(&foreign), &seed()), Decision::Nothing);
        let desired = wanted(ClusterSet::All, MappingStrategy::EnforceSameName);
        assert!(matches!(
            decide(Some(&desired), Some(&ours), &seed()),
            Decision::Update { .. } | Decision::UpToDate { .. }
        ));
    }

    #[test]
    fn a_terminating_offloading_is_waited_for() {
        let mut terminating = ours(&json!({}));
        terminating.deleting = true;
        let desired = wanted(ClusterSet::All, MappingStrategy::EnforceSameName);
        assert_eq!(
            decide(Some(&desired), Some(&terminating), &seed()),
            Decision::Terminating
        );
        assert_eq!(
            decide(None, Some(&terminating), &seed()),
            Decision::Terminating
        );
        assert_eq!(delete_decision(&terminating), Decision::Nothing);
    }

    #[test]
    fn selector_semantics_follow_node_selectors() {
        let clusters = seed();
        let term = |exprs: serde_json::Value| -> NodeSelector {
            serde_json::from_value(json!({"nodeSelectorTerms": [{"matchExpressions": exprs}]}))
                .unwrap()
        };
        // Terms are ORed.
        let two_terms: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}]},
        {"matchExpressions": [{"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ["florence"]}]}
    ]}))
    .unwrap();
        assert_eq!(selected_clusters(Some(&two_terms), &clusters), Ok(both()));
        assert_eq!(
            selected_clusters(
                Some(&term(
                    json!([{"key": "topology.liqo.io/region", "operator": "NotIn", "values": ["south"]}])
                )),
                &clusters
            ),
            Ok(ClusterSet::Only(["florence".to_owned()].into()))
        );
        // An empty term matches nothing; no terms (or no selector) select every cluster.
        let empty_term: NodeSelector =
            serde_json::from_value(json!({"nodeSelectorTerms": [{}]})).unwrap();
        assert_eq!(
            selected_clusters(Some(&empty_term), &clusters),
            Ok(ClusterSet::Only(BTreeSet::new()))
        );
        assert_eq!(selected_clusters(None, &clusters), Ok(ClusterSet::All));
        let fields: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["liqo-naples"]}]}
        ]}))
        .unwrap();
        assert!(selected_clusters(Some(&fields), &clusters).is_err());
    }

    #[test]
    fn remote_pods_are_on_virtual_nodes_or_pinned_remotely() {
        let nodes: Vec<Node> = vec![
        serde_json::from_value(json!({"metadata": {"name": "venice"}})).unwrap(),
        serde_json::from_value(json!({"metadata": {"name": "liqo-naples", "labels": {"liqo.io/type": "virtual-node"}}})).unwrap(),
    ];
        let pod = |name: &str, node: Option<&str>, cluster: Option<&str>, deleting: bool| -> Pod {
            let mut pod: Pod = serde_json::from_value(json!({
                "metadata": {"name": name, "labels": {}},
                "spec": {"containers": [], "nodeName": node}
            }))
            .unwrap();
            if let Some(c) = cluster {
                pod.labels_mut()
                    .insert("rivulet.dev/cluster".into(), c.into());
            }
            if deleting {
                pod.metadata.deletion_timestamp =
                    Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
            }
            pod
        };
        let pods = vec![
            pod("local-warm", Some("venice"), Some("local"), false),
            pod("specialized-remote", Some("liqo-naples"), None, false),
            pod("pending-remote", None, Some("florence"), false),
            pod("going", Some("liqo-naples"), Some("naples"), true),
            pod("unrelated", None, None, false),
        ];
        assert_eq!(
            remote_pods(&pods, &nodes),
            ["pending-remote", "specialized-remote"]
        );
    }
}
