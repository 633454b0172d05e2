//! Which clusters hold an Environment's warm pool, and how many pods each (pure).
//!
//! Clusters are the local cluster plus Liqo peers: virtual nodes (`liqo.io/type=virtual-node`)
//! grouped by `liqo.io/remote-cluster-id`. Only clusters with a Ready node count. Each pod is
//! pinned to its cluster with required node affinity (remote: `liqo.io/remote-cluster-id In [id]`
//! plus Liqo's toleration; local: `liqo.io/type DoesNotExist`) — never with
//! `topologySpreadConstraints`, which Liqo copies to the remote cluster where they leave pods
//! Pending (reference/liqo.md §4.4).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelectorRequirement, NodeSelectorTerm, Toleration};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use rivulet_api::Placement;
use rivulet_api::environment::placement_split;
use rivulet_api::keys::liqo;

/// Identifier of the local cluster in pool labels and status.
pub const LOCAL_CLUSTER: &str = "local";

/// A cluster a pool can use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// [`LOCAL_CLUSTER`] or the Liqo remote cluster ID.
    pub id: String,
    /// Whether this is a Liqo peer (reached through virtual nodes).
    pub remote: bool,
    /// Labels used by `placement.clusterSelector`: the virtual node's labels (empty for local).
    pub labels: BTreeMap<String, String>,
    /// Sum of allocatable CPU of its Ready nodes, in millicores (the `Weighted` split).
    pub allocatable_cpu_millis: i64,
}

/// The clusters selected for a pool, or why there are none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// Selected clusters, local first then remote by ID.
    pub clusters: Vec<Cluster>,
    /// Machine-readable reason for the status condition.
    pub reason: &'static str,
    /// Human-readable explanation for the status condition.
    pub message: String,
}

/// Reasons reported with a [`Selection`].
pub mod reasons {
    /// Clusters selected as asked.
    pub const PLACED: &str = "Placed";
    /// No Liqo virtual node exists: the pool is local.
    pub const LOCAL_ONLY: &str = "LocalOnly";
    /// The placement matches no Ready cluster.
    pub const NO_CLUSTER_SELECTED: &str = "NoClusterSelected";
    /// `clusterSelector` is malformed.
    pub const INVALID_SELECTOR: &str = "InvalidClusterSelector";
}

/// Groups nodes into clusters. Clusters without a Ready node are left out.
pub fn discover_clusters(nodes: &[Node]) -> Vec<Cluster> {
    let mut local: Option<Cluster> = None;
    let mut remote: BTreeMap<String, Cluster> = BTreeMap::new();
    let mut sorted: Vec<&Node> = nodes.iter().filter(|n| is_ready(n)).collect();
    sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    for node in sorted {
        let labels = node.metadata.labels.clone().unwrap_or_default();
        let cpu = allocatable_cpu_millis(node);
        let is_virtual =
            labels.get(liqo::TYPE_LABEL).map(String::as_str) == Some(liqo::TYPE_VIRTUAL_NODE);
        let cluster_id = labels.get(liqo::REMOTE_CLUSTER_ID_LABEL).cloned();
        match (is_virtual, cluster_id) {
            (true, Some(id)) => {
                remote
                    .entry(id.clone())
                    .or_insert_with(|| Cluster {
                        id,
                        remote: true,
                        labels,
                        allocatable_cpu_millis: 0,
                    })
                    .allocatable_cpu_millis += cpu;
            }
            // A virtual node without a cluster ID cannot be targeted; skip it.
            (true, None) => {}
            (false, _) => {
                local
                    .get_or_insert_with(|| Cluster {
                        id: LOCAL_CLUSTER.to_owned(),
                        remote: false,
                        labels: BTreeMap::new(),
                        allocatable_cpu_millis: 0,
                    })
                    .allocatable_cpu_millis += cpu;
            }
        }
    }
    local.into_iter().chain(remote.into_values()).collect()
}

/// Applies an Environment's placement to the available clusters.
pub fn select_clusters(available: &[Cluster], placement: Option<&Placement>) -> Selection {
    let include_local = placement.and_then(|p| p.include_local).unwrap_or(true);
    let selector = placement.and_then(|p| p.cluster_selector.as_ref());
    let any_remote = available.iter().any(|c| c.remote);
    let mut clusters = Vec::new();
    for cluster in available {
        let wanted = if cluster.remote {
            match selector
                .map(|s| selector_matches(s, &cluster.labels))
                .transpose()
            {
                Ok(matches) => matches.unwrap_or(true),
                Err(why) => {
                    return Selection {
                        clusters: Vec::new(),
                        reason: reasons::INVALID_SELECTOR,
                        message: format!("spec.placement.clusterSelector: {why}"),
                    };
                }
            }
        } else {
            include_local
        };
        if wanted {
            clusters.push(cluster.clone());
        }
    }
    let ids = clusters
        .iter()
        .map(|c| c.id.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if clusters.is_empty() {
        let message = if available.is_empty() {
            "no Ready node in any cluster".to_owned()
        } else {
            format!(
                "spec.placement selects none of the Ready clusters [{}] (includeLocal: {include_local})",
                available
                    .iter()
                    .map(|c| c.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Selection {
            clusters,
            reason: reasons::NO_CLUSTER_SELECTED,
            message,
        }
    } else if !any_remote {
        Selection {
            clusters,
            reason: reasons::LOCAL_ONLY,
            message: "no Ready Liqo virtual node (liqo.io/type=virtual-node) found: the pool runs in the local cluster".into(),
        }
    } else {
        Selection {
            clusters,
            reason: reasons::PLACED,
            message: format!("pool placed on [{ids}]"),
        }
    }
}

/// Splits `total` pods over the selected clusters. `Uniform`: counts differ by at most one, the
/// extra pods going to the first clusters (local first). `Weighted`: proportional to allocatable
/// CPU with the largest-remainder method (exact total); uniform when no cluster reports CPU.
pub fn split(total: i32, clusters: &[Cluster], split: Option<&str>) -> BTreeMap<String, i32> {
    let total = total.max(0);
    let n = i32::try_from(clusters.len()).unwrap_or(i32::MAX);
    if n == 0 {
        return BTreeMap::new();
    }
    let weights: Vec<i64> = clusters
        .iter()
        .map(|c| c.allocatable_cpu_millis.max(0))
        .collect();
    let weight_sum: i64 = weights.iter().sum();
    let counts: Vec<i32> = if split == Some(placement_split::WEIGHTED) && weight_sum > 0 {
        largest_remainder(total, &weights, weight_sum)
    } else {
        (0..n)
            .map(|i| total / n + i32::from(i < total % n))
            .collect()
    };
    clusters.iter().map(|c| c.id.clone()).zip(counts).collect()
}

fn largest_remainder(total: i32, weights: &[i64], weight_sum: i64) -> Vec<i32> {
    let total64 = i64::from(total);
    let mut counts: Vec<i64> = weights.iter().map(|w| total64 * w / weight_sum).collect();
    let mut remainders: Vec<(i64, usize)> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| (total64 * w % weight_sum, i))
        .collect();
    // Largest remainder first; ties to the earlier cluster.
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let missing = total64 - counts.iter().sum::<i64>();
    for (_, i) in remainders
        .into_iter()
        .take(usize::try_from(missing).unwrap_or(0))
    {
        counts[i] += 1;
    }
    counts
        .into_iter()
        .map(|c| i32::try_from(c).unwrap_or(i32::MAX))
        .collect()
}

/// The node-affinity term that pins a pod to a cluster.
pub fn cluster_node_selector_term(cluster_id: &str) -> NodeSelectorTerm {
    let requirement = if cluster_id == LOCAL_CLUSTER {
        NodeSelectorRequirement {
            key: liqo::TYPE_LABEL.into(),
            operator: "DoesNotExist".into(),
            values: None,
        }
    } else {
        NodeSelectorRequirement {
            key: liqo::REMOTE_CLUSTER_ID_LABEL.into(),
            operator: "In".into(),
            values: Some(vec![cluster_id.to_owned()]),
        }
    };
    NodeSelectorTerm {
        match_expressions: Some(vec![requirement]),
        match_fields: None,
    }
}

/// The toleration a pod needs to run on a Liqo virtual node.
pub fn virtual_node_toleration() -> Toleration {
    Toleration {
        key: Some(liqo::VIRTUAL_NODE_TAINT_KEY.into()),
        operator: Some("Exists".into()),
        effect: Some("NoExecute".into()),
        ..Toleration::default()
    }
}

/// Whether a label selector matches a label set; an error names the malformed expression.
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    for (key, value) in selector.match_labels.iter().flatten() {
        if labels.get(key) != Some(value) {
            return Ok(false);
        }
    }
    for (i, expr) in selector.match_expressions.iter().flatten().enumerate() {
        let values = expr.values.as_deref().unwrap_or_default();
        let present = labels.get(&expr.key);
        let matches = match expr.operator.as_str() {
            "In" | "NotIn" if values.is_empty() => {
                return Err(format!(
                    "matchExpressions[{i}]: operator {} needs values",
                    expr.operator
                ));
            }
            "In" => present.is_some_and(|v| values.contains(v)),
            "NotIn" => present.is_none_or(|v| !values.contains(v)),
            "Exists" | "DoesNotExist" if !values.is_empty() => {
                return Err(format!(
                    "matchExpressions[{i}]: operator {} takes no values",
                    expr.operator
                ));
            }
            "Exists" => present.is_some(),
            "DoesNotExist" => present.is_none(),
            other => {
                return Err(format!(
                    "matchExpressions[{i}]: unsupported operator {other:?} (In, NotIn, Exists, DoesNotExist)"
                ));
            }
        };
        if !matches {
            return Ok(false);
        }
    }
    Ok(true)
}

fn is_ready(node: &Node) -> bool {
    let unschedulable = node
        .spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false);
    let ready = node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
        .is_some_and(|c| c.status == "True");
    ready && !unschedulable
}

fn allocatable_cpu_millis(node: &Node) -> i64 {
    node.status
        .as_ref()
        .and_then(|s| s.allocatable.as_ref())
        .and_then(|a| a.get("cpu"))
        .map_or(0, cpu_millis)
}

/// Parses a CPU quantity (`2`, `1500m`, `0.5`) into millicores; unparsable counts as 0.
fn cpu_millis(quantity: &Quantity) -> i64 {
    let text = quantity.0.trim();
    if let Some(millis) = text.strip_suffix('m') {
        return millis.parse().unwrap_or(0);
    }
    text.parse::<f64>().map_or(0, |cores| {
        let millis = (cores * 1000.0).round();
        if (0.0..9.0e15).contains(&millis) {
            // Bounded above, so the conversion is exact.
            #[allow(clippy::cast_possible_truncation)]
            let millis = millis as i64;
            millis
        } else {
            0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, remote: Option<(&str, &str)>, ready: bool, cpu: &str) -> Node {
        let mut labels = serde_json::json!({"kubernetes.io/hostname": name});
        if let Some((id, region)) = remote {
            labels["liqo.io/type"] = "virtual-node".into();
            labels["liqo.io/remote-cluster-id"] = id.into();
            labels["topology.liqo.io/region"] = region.into();
        }
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": labels},
            "status": {
                "allocatable": {"cpu": cpu, "pods": "110"},
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]
            }
        }))
        .unwrap()
    }

    /// The seed: Venice (local), Naples (south) and Florence (center).
    fn seed_nodes() -> Vec<Node> {
        vec![
            node("venice-control-plane", None, true, "4"),
            node("liqo-naples", Some(("naples", "south")), true, "2"),
            node("liqo-florence", Some(("florence", "center")), true, "2000m"),
        ]
    }

    fn counts(total: i32, nodes: &[Node], placement: Option<&Placement>) -> Vec<(String, i32)> {
        let selection = select_clusters(&discover_clusters(nodes), placement);
        let split_kind = placement.and_then(|p| p.split.as_deref());
        split(total, &selection.clusters, split_kind)
            .into_iter()
            .collect()
    }

    fn pairs(expected: &[(&str, i32)]) -> Vec<(String, i32)> {
        expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect()
    }

    #[test]
    fn clusters_are_local_plus_virtual_nodes_grouped_by_cluster_id() {
        let mut nodes = seed_nodes();
        nodes.push(node("venice-worker", None, true, "2"));
        nodes.push(node("liqo-naples-2", Some(("naples", "south")), true, "1"));
        let clusters = discover_clusters(&nodes);
        let summary: Vec<(&str, bool, i64)> = clusters
            .iter()
            .map(|c| (c.id.as_str(), c.remote, c.allocatable_cpu_millis))
            .collect();
        assert_eq!(
            summary,
            [
                ("local", false, 6000),
                ("florence", true, 2000),
                ("naples", true, 3000)
            ]
        );
        assert_eq!(clusters[2].labels["topology.liqo.io/region"], "south");
    }

    #[test]
    fn not_ready_and_unidentified_nodes_are_left_out() {
        let nodes = vec![
            node("venice", None, true, "4"),
            node("liqo-naples", Some(("naples", "south")), false, "2"),
        ];
        let ids: Vec<String> = discover_clusters(&nodes)
            .into_iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(ids, ["local"]);
    }

    #[test]
    fn uniform_split_over_three_clusters() {
        assert_eq!(
            counts(9, &seed_nodes(), None),
            pairs(&[("florence", 3), ("local", 3), ("naples", 3)])
        );
        // 7 → 3/2/2: the extra pod goes to the first cluster (local).
        assert_eq!(
            counts(7, &seed_nodes(), None),
            pairs(&[("florence", 2), ("local", 3), ("naples", 2)])
        );
        assert_eq!(
            counts(0, &seed_nodes(), None),
            pairs(&[("florence", 0), ("local", 0), ("naples", 0)])
        );
    }

    #[test]
    fn uniform_split_invariant_holds_for_every_size() {
        for clusters in 1..=5 {
            let nodes: Vec<Node> = (0..clusters)
                .map(|i| {
                    if i == 0 {
                        node("local", None, true, "1")
                    } else {
                        node(&format!("v{i}"), Some((&format!("c{i}"), "r")), true, "1")
                    }
                })
                .collect();
            for total in 0..40 {
                let c: Vec<i32> = counts(total, &nodes, None)
                    .into_iter()
                    .map(|(_, n)| n)
                    .collect();
                assert_eq!(c.iter().sum::<i32>(), total);
                assert!(
                    c.iter().max().unwrap() - c.iter().min().unwrap() <= 1,
                    "{total} over {clusters}: {c:?}"
                );
            }
        }
    }

    #[test]
    fn one_and_two_cluster_placements() {
        let only_local = vec![node("venice", None, true, "4")];
        assert_eq!(counts(3, &only_local, None), pairs(&[("local", 3)]));
        let two = vec![
            node("venice", None, true, "4"),
            node("liqo-naples", Some(("naples", "south")), true, "2"),
        ];
        assert_eq!(counts(5, &two, None), pairs(&[("local", 3), ("naples", 2)]));
    }

    #[test]
    fn cluster_selector_and_include_local() {
        let placement: Placement = serde_json::from_value(serde_json::json!({
        "clusterSelector": {"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}]},
        "includeLocal": false
    }))
    .unwrap();
        assert_eq!(
            counts(4, &seed_nodes(), Some(&placement)),
            pairs(&[("naples", 4)])
        );
        let remote_only: Placement =
            serde_json::from_value(serde_json::json!({"includeLocal": false})).unwrap();
        assert_eq!(
            counts(4, &seed_nodes(), Some(&remote_only)),
            pairs(&[("florence", 2), ("naples", 2)])
        );
    }

    #[test]
    fn weighted_split_follows_allocatable_cpu() {
        let placement = Placement {
            split: Some("Weighted".into()),
            ..Placement::default()
        };
        // local 4 cores, naples 2, florence 2 → 8 pods: 4/2/2.
        assert_eq!(
            counts(8, &seed_nodes(), Some(&placement)),
            pairs(&[("florence", 2), ("local", 4), ("naples", 2)])
        );
        // 7 pods: quotas 3.5/1.75/1.75 → 3/2/2 by largest remainder, total exact.
        let c = counts(7, &seed_nodes(), Some(&placement));
        assert_eq!(c.iter().map(|(_, n)| n).sum::<i32>(), 7);
        assert_eq!(c, pairs(&[("florence", 2), ("local", 3), ("naples", 2)]));
    }

    #[test]
    fn reasons_explain_the_placement() {
        let local_only =
            select_clusters(&discover_clusters(&[node("venice", None, true, "1")]), None);
        assert_eq!(local_only.reason, reasons::LOCAL_ONLY);
        let placed = select_clusters(&discover_clusters(&seed_nodes()), None);
        assert_eq!(placed.reason, reasons::PLACED);
        assert_eq!(placed.message, "pool placed on [local, florence, naples]");
        let nothing: Placement = serde_json::from_value(serde_json::json!({
        "clusterSelector": {"matchLabels": {"topology.liqo.io/region": "north"}}, "includeLocal": false
    }))
    .unwrap();
        let none = select_clusters(&discover_clusters(&seed_nodes()), Some(&nothing));
        assert_eq!(none.reason, reasons::NO_CLUSTER_SELECTED);
        assert!(
            none.message.contains("[local, florence, naples]"),
            "{}",
            none.message
        );
        let bad: Placement = serde_json::from_value(serde_json::json!({
        "clusterSelector": {"matchExpressions": [{"key": "x", "operator": "Near", "values": ["y"]}]}
    }))
    .unwrap();
        let invalid = select_clusters(&discover_clusters(&seed_nodes()), Some(&bad));
        assert_eq!(invalid.reason, reasons::INVALID_SELECTOR);
        assert!(
            invalid.message.contains("unsupported operator \"Near\""),
            "{}",
            invalid.message
        );
    }

    #[test]
    fn a_cluster_that_goes_away_gets_its_share_redistributed() {
        let mut nodes = seed_nodes();
        assert_eq!(
            counts(9, &nodes, None),
            pairs(&[("florence", 3), ("local", 3), ("naples", 3)])
        );
        nodes.retain(|n| n.metadata.name.as_deref() != Some("liqo-florence"));
        assert_eq!(
            counts(9, &nodes, None),
            pairs(&[("local", 5), ("naples", 4)])
        );
    }

    #[test]
    fn affinity_terms_pin_pods_to_their_cluster() {
        insta::assert_yaml_snapshot!(
            "cluster_affinity",
            (
                cluster_node_selector_term(LOCAL_CLUSTER),
                cluster_node_selector_term("naples"),
                virtual_node_toleration()
            )
        );
    }

    #[test]
    fn cpu_quantities() {
        for (q, m) in [("2", 2000), ("1500m", 1500), ("0.5", 500), ("bogus", 0)] {
            assert_eq!(cpu_millis(&Quantity(q.into())), m, "{q}");
        }
    }
}
