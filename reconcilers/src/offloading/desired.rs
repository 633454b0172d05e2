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
mod tests {
    use kube::api::ApiResource;
    use rivulet_api::liqo::{v1alpha1, v1beta1};

    use super::*;

    fn node(name: &str, remote: Option<(&str, &str)>, ready: bool) -> Node {
        let mut labels = serde_json::json!({"kubernetes.io/hostname": name});
        if let Some((id, region)) = remote {
            labels["liqo.io/type"] = "virtual-node".into();
            labels["liqo.io/remote-cluster-id"] = id.into();
            labels["topology.liqo.io/region"] = region.into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels},
            "status": {
                "allocatable": {"cpu": "4", "pods": "110"},
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
            }
        }))
        .unwrap()
    }

    /// Venice (local) plus the first `remote` of Naples (south), Florence (center), Milan (north).
    fn clusters(remote: usize) -> Vec<Node> {
        let peers = [
            ("naples", "south"),
            ("florence", "center"),
            ("milan", "north"),
        ];
        std::iter::once(node("venice", None, true))
            .chain(
                peers[..remote]
                    .iter()
                    .map(|(id, region)| node(&format!("liqo-{id}"), Some((id, region)), true)),
            )
            .collect()
    }

    fn env(yaml: &str) -> Environment {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn python(poolsize: i32, placement: &str) -> Environment {
        env(&format!(
            "apiVersion: fission.io/v1\nkind: Environment\nmetadata: {{name: python, namespace: liqo-demo}}\n\
         spec:\n  version: 3\n  runtime: {{image: fission/python-env}}\n  poolsize: {poolsize}\n{placement}"
        ))
    }

    fn renamed(mut env: Environment, name: &str) -> Environment {
        env.metadata.name = Some(name.into());
        env
    }

    fn desired(envs: &[Environment], nodes: &[Node]) -> Option<DesiredOffloading> {
        let refs: Vec<&Environment> = envs.iter().collect();
        desired_offloading(
            &refs,
            &discover_clusters(nodes),
            &known_clusters(nodes),
            MappingStrategy::default(),
        )
    }

    fn v1alpha1() -> ApiResource {
        ApiResource::erase::<v1alpha1::NamespaceOffloading>(&())
    }

    fn v1beta1() -> ApiResource {
        ApiResource::erase::<v1beta1::NamespaceOffloading>(&())
    }

    const SOUTH: &str =
        "  placement:\n    clusterSelector:\n      matchLabels: {topology.liqo.io/region: south}\n";
    const SOUTH_AND_CENTER: &str = "  placement:\n    clusterSelector:\n      matchExpressions:\n      - {key: topology.liqo.io/region, operator: In, values: [south, center]}\n";
    const ANY_REGION: &str = "  placement:\n    clusterSelector:\n      matchExpressions:\n      - {key: topology.liqo.io/region, operator: Exists}\n";

    #[test]
    fn seed_pool_of_nine_without_selector_offloads_to_every_cluster_in_both_versions() {
        let wanted = desired(&[python(9, "")], &clusters(2)).unwrap();
        assert_eq!(wanted.clusters, ClusterSet::All);
        assert_eq!(wanted.environments, ["python"]);
        insta::assert_yaml_snapshot!(
            "seed_every_cluster",
            (
                wanted.to_object("liqo-demo", &v1alpha1()),
                wanted.to_object("liqo-demo", &v1beta1()),
            )
        );
    }

    #[test]
    fn without_selector_one_two_three_clusters_select_every_cluster() {
        for remote in 1..=3 {
            let wanted = desired(&[python(9, "")], &clusters(remote)).unwrap();
            let object = wanted.to_object("liqo-demo", &v1beta1());
            assert_eq!(
                object["spec"]["clusterSelector"],
                serde_json::json!({"nodeSelectorTerms": []}),
                "{remote} remote clusters"
            );
        }
    }

    #[test]
    fn with_selectors_one_two_three_clusters_select_by_cluster_id() {
        let one = desired(&[python(9, SOUTH)], &clusters(3)).unwrap();
        let two = desired(&[python(9, SOUTH_AND_CENTER)], &clusters(3)).unwrap();
        let three = desired(&[python(9, ANY_REGION)], &clusters(3)).unwrap();
        insta::assert_yaml_snapshot!(
            "selected_one_two_three_v1beta1",
            [&one, &two, &three]
                .iter()
                .map(|d| d.to_object("liqo-demo", &v1beta1()))
                .collect::<Vec<_>>()
        );
        insta::assert_yaml_snapshot!(
            "selected_two_v1alpha1",
            two.to_object("liqo-demo", &v1alpha1())
        );
    }

    #[test]
    fn the_object_reads_back_as_either_typed_version() {
        let wanted = desired(&[python(9, SOUTH_AND_CENTER)], &clusters(2)).unwrap();
        let alpha: v1alpha1::NamespaceOffloading =
            serde_json::from_value(wanted.to_object("liqo-demo", &v1alpha1())).unwrap();
        let beta: v1beta1::NamespaceOffloading =
            serde_json::from_value(wanted.to_object("liqo-demo", &v1beta1())).unwrap();
        assert_eq!(alpha.metadata.name.as_deref(), Some("offloading"));
        assert_eq!(
            alpha.spec.cluster_selector, beta.spec.cluster_selector,
            "same selector in both versions"
        );
        assert_eq!(beta.spec.remote_namespace_name, None);
        assert_eq!(
            beta.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
            "rivulet"
        );
    }

    #[test]
    fn no_offloading_when_no_pod_would_go_remote() {
        // No Liqo peer.
        assert_eq!(desired(&[python(9, "")], &clusters(0)), None);
        // No pool.
        assert_eq!(desired(&[python(0, "")], &clusters(2)), None);
        // One pod over three clusters goes to the local one (local first).
        assert_eq!(desired(&[python(1, "")], &clusters(2)), None);
        // A selector that matches no peer keeps the pool local.
        let nowhere = "  placement:\n    clusterSelector:\n      matchLabels: {topology.liqo.io/region: west}\n";
        assert_eq!(desired(&[python(9, nowhere)], &clusters(2)), None);
        // Without the local cluster, even one pod goes remote.
        let remote_only = "  placement: {includeLocal: false}\n";
        assert!(desired(&[python(1, remote_only)], &clusters(2)).is_some());
    }

    #[test]
    fn environments_union_their_clusters_and_any_unselective_one_selects_all() {
        let center = "  placement:\n    clusterSelector:\n      matchLabels: {topology.liqo.io/region: center}\n";
        let envs = vec![
            renamed(python(9, SOUTH), "a"),
            renamed(python(9, center), "b"),
            renamed(python(0, ""), "idle"),
        ];
        let wanted = desired(&envs, &clusters(3)).unwrap();
        assert_eq!(
            wanted.clusters,
            ClusterSet::Only(["florence".to_owned(), "naples".to_owned()].into())
        );
        assert_eq!(wanted.environments, ["a", "b"]);
        let mut all = envs.clone();
        all.push(renamed(python(9, ""), "c"));
        assert_eq!(
            desired(&all, &clusters(3)).unwrap().clusters,
            ClusterSet::All
        );
    }

    #[test]
    fn environments_being_deleted_do_not_count() {
        let mut env = python(9, "");
        env.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(desired(&[env], &clusters(2)), None);
    }

    #[test]
    fn a_not_ready_virtual_node_keeps_its_cluster_offloaded() {
        let mut nodes = clusters(2);
        nodes[2] = node("liqo-florence", Some(("florence", "center")), false);
        let wanted = desired(&[python(9, SOUTH_AND_CENTER)], &nodes).unwrap();
        assert_eq!(
            wanted.clusters,
            ClusterSet::Only(["florence".to_owned(), "naples".to_owned()].into()),
            "a NotReady cluster must not be dropped (Liqo would delete its remote namespace)"
        );
        // Every peer NotReady: the offloading is still wanted.
        let nodes = vec![
            node("venice", None, true),
            node("liqo-naples", Some(("naples", "south")), false),
        ];
        assert!(desired(&[python(3, "")], &nodes).is_some());
    }

    #[test]
    fn local_cluster_not_ready_counts_as_the_environment_reconciler_sees_it() {
        // With the local node NotReady the environment reconciler puts the single pod remotely;
        // the offloading must exist for it.
        let nodes = vec![
            node("venice", None, false),
            node("liqo-naples", Some(("naples", "south")), true),
        ];
        assert!(desired(&[python(1, "")], &nodes).is_some());
    }

    #[test]
    fn mapping_strategy_parses_liqo_spelling_only() {
        assert_eq!(
            "EnforceSameName".parse::<MappingStrategy>(),
            Ok(MappingStrategy::EnforceSameName)
        );
        assert_eq!(
            "DefaultName".parse::<MappingStrategy>(),
            Ok(MappingStrategy::DefaultName)
        );
        assert!("SelectedName".parse::<MappingStrategy>().is_err());
        let wanted = desired_offloading(
            &[&python(9, "")],
            &discover_clusters(&clusters(1)),
            &known_clusters(&clusters(1)),
            MappingStrategy::DefaultName,
        )
        .unwrap();
        assert_eq!(
            wanted.spec.namespace_mapping_strategy.as_deref(),
            Some("DefaultName")
        );
    }
}
