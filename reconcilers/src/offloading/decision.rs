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
mod tests;
