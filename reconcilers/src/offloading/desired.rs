//! What a namespace's Environments ask of its `NamespaceOffloading` (pure).
//!
//! A namespace needs an offloading when one of its Environments would place warm pods on a remote
//! cluster (the environment reconciler's own split, reused from [`crate::placement`]). The
//! offloading then selects the union of the remote clusters those Environments select: every
//! cluster (`nodeSelectorTerms: []`) as soon as one of them has no `clusterSelector`, otherwise
//! `liqo.io/remote-cluster-id In [ids]`.

use std::collections::BTreeSet;
use std::str::FromStr;

use k8s_openapi::api::core::v1::{
    Node, NodeCondition, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm,
};
use kube::ResourceExt;
use kube::api::ApiResource;
use rivulet_api::Environment;
use rivulet_api::keys::{liqo, rivulet};
use rivulet_api::liqo::v1beta1::NamespaceOffloadingSpec;
use rivulet_api::liqo::{namespace_mapping_strategy, pod_offloading_strategy};
use serde_json::{Value, json};

use crate::placement::{Cluster, discover_clusters, select_clusters, split};

/// The `namespaceMappingStrategy` Rivulet writes on offloadings it creates. `SelectedName` is not
/// offered: it needs a remote name per namespace, which one operator setting cannot give.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MappingStrategy {
    /// The remote namespace has the local namespace's name (the seed's choice).
    #[default]
    EnforceSameName,
    /// Liqo derives the remote name from the namespace and the local cluster.
    DefaultName,
}

impl MappingStrategy {
    /// The value as Liqo spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EnforceSameName => namespace_mapping_strategy::ENFORCE_SAME_NAME,
            Self::DefaultName => namespace_mapping_strategy::DEFAULT_NAME,
        }
    }
}

impl FromStr for MappingStrategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            namespace_mapping_strategy::ENFORCE_SAME_NAME => Ok(Self::EnforceSameName),
            namespace_mapping_strategy::DEFAULT_NAME => Ok(Self::DefaultName),
            other => Err(format!(
                "unsupported namespaceMappingStrategy {other:?}: use EnforceSameName or DefaultName"
            )),
        }
    }
}

/// Settings of the offloading reconciler.
#[derive(Clone, Debug, Default)]
pub struct OffloadingConfig {
    /// The served `NamespaceOffloading` API, from [`super::discover`]. `None`: Liqo is not
    /// installed, and the reconciler idles.
    pub resource: Option<ApiResource>,
    /// `namespaceMappingStrategy` of the offloadings Rivulet creates (immutable once created).
    pub namespace_mapping: MappingStrategy,
}

/// Remote clusters an offloading selects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClusterSet {
    /// Every remote cluster, present and future.
    All,
    /// These remote cluster IDs.
    Only(BTreeSet<String>),
}

impl ClusterSet {
    /// Whether `id` is in the set.
    pub fn contains(&self, id: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(ids) => ids.contains(id),
        }
    }
}

impl std::fmt::Display for ClusterSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::All => f.write_str("every cluster"),
            Self::Only(ids) => {
                let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
                write!(f, "[{}]", ids.join(", "))
            }
        }
    }
}

/// The `NamespaceOffloading` a namespace needs.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredOffloading {
    /// Environments (names, sorted) whose pools go to remote clusters.
    pub environments: Vec<String>,
    /// Remote clusters they select.
    pub clusters: ClusterSet,
    /// The spec Rivulet applies (`remoteNamespaceName` is never set).
    pub spec: NamespaceOffloadingSpec,
}

impl DesiredOffloading {
    /// The object to server-side apply, in the served API version.
    pub fn to_object(&self, namespace: &str, resource: &ApiResource) -> Value {
        json!({
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "metadata": {
                "name": liqo::NAMESPACE_OFFLOADING_NAME,
                "namespace": namespace,
                "labels": {rivulet::MANAGED_BY_LABEL: rivulet::MANAGED_BY_VALUE},
            },
            "spec": self.spec,
        })
    }
}

/// Clusters as offloading sees them: every node counts, Ready or not. Offloading follows what
/// placement asks for, not momentary health: dropping a cluster from the selector (or deleting
/// the offloading) because its virtual node is briefly NotReady would make Liqo delete the remote
/// namespace and every pod in it (reference/liqo.md §1.4). A cluster leaves only when its
/// virtual nodes are gone (the peering ended).
pub fn known_clusters(nodes: &[Node]) -> Vec<Cluster> {
    let as_ready: Vec<Node> = nodes.iter().map(as_if_ready).collect();
    discover_clusters(&as_ready)
}

fn as_if_ready(node: &Node) -> Node {
    let mut node = node.clone();
    if let Some(spec) = node.spec.as_mut() {
        spec.unschedulable = None;
    }
    let status = node.status.get_or_insert_with(Default::default);
    let conditions = status.conditions.get_or_insert_with(Vec::new);
    conditions.retain(|c| c.type_ != "Ready");
    conditions.push(NodeCondition {
        type_: "Ready".into(),
        status: "True".into(),
        ..NodeCondition::default()
    });
    node
}

/// The remote clusters an Environment needs offloaded to, if its pool would place pods remotely
/// with either cluster view: `ready` (what the environment reconciler uses now) or `known` (see
/// [`known_clusters`]). The selected set comes from `known`, so it does not shrink when a
/// cluster is briefly NotReady.
pub fn remote_demand(
    env: &Environment,
    ready: &[Cluster],
    known: &[Cluster],
) -> Option<ClusterSet> {
    let placement = env.spec.placement.as_ref();
    let split_kind = placement.and_then(|p| p.split.as_deref());
    let places_remotely = |clusters: &[Cluster]| {
        let selection = select_clusters(clusters, placement);
        let counts = split(env.spec.pool_size(), &selection.clusters, split_kind);
        selection
            .clusters
            .iter()
            .any(|c| c.remote && counts.get(&c.id).is_some_and(|n| *n > 0))
    };
    if !places_remotely(ready) && !places_remotely(known) {
        return None;
    }
    if placement
        .and_then(|p| p.cluster_selector.as_ref())
        .is_none()
    {
        return Some(ClusterSet::All);
    }
    let ids = select_clusters(known, placement)
        .clusters
        .into_iter()
        .chain(select_clusters(ready, placement).clusters)
        .filter(|c| c.remote)
        .map(|c| c.id)
        .collect();
    Some(ClusterSet::Only(ids))
}

/// The `NamespaceOffloading` the namespace's Environments need; `None` when none of them places
/// pods remotely. Environments being deleted are ignored.
pub fn desired_offloading(
    environments: &[&Environment],
    ready: &[Cluster],
    known: &[Cluster],
    mapping: MappingStrategy,
) -> Option<DesiredOffloading> {
    let mut names = Vec::new();
    let mut union: Option<ClusterSet> = None;
    for env in environments
        .iter()
        .filter(|e| e.metadata.deletion_timestamp.is_none())
    {
        let Some(demand) = remote_demand(env, ready, known) else {
            continue;
        };
        names.push(env.name_any());
        union = Some(match (union, demand) {
            (Some(ClusterSet::All), _) | (_, ClusterSet::All) => ClusterSet::All,
            (None, only) => only,
            (Some(ClusterSet::Only(mut a)), ClusterSet::Only(b)) => {
                a.extend(b);
                ClusterSet::Only(a)
            }
        });
    }
    let clusters = union?;
    names.sort();
    Some(DesiredOffloading {
        environments: names,
        spec: NamespaceOffloadingSpec {
            namespace_mapping_strategy: Some(mapping.as_str().to_owned()),
            remote_namespace_name: None,
            pod_offloading_strategy: Some(pod_offloading_strategy::LOCAL_AND_REMOTE.to_owned()),
            cluster_selector: Some(cluster_selector(&clusters)),
        },
        clusters,
    })
}

/// The `clusterSelector` for a cluster set. Every cluster is `nodeSelectorTerms: []` (what
/// `liqoctl offload` writes without `--selector`); the schema requires `nodeSelectorTerms`
/// whenever `clusterSelector` is present (reference/liqo.md §1.2).
pub fn cluster_selector(clusters: &ClusterSet) -> NodeSelector {
    match clusters {
        ClusterSet::All => NodeSelector {
            node_selector_terms: Vec::new(),
        },
        ClusterSet::Only(ids) => NodeSelector {
            node_selector_terms: vec![NodeSelectorTerm {
                match_expressions: Some(vec![NodeSelectorRequirement {
                    key: liqo::REMOTE_CLUSTER_ID_LABEL.into(),
                    operator: "In".into(),
                    values: Some(ids.iter().cloned().collect()),
                }]),
                match_fields: None,
            }],
        },
    }
}

#[cfg(test)]
mod tests;
