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
    let local_only = select_clusters(&discover_clusters(&[node("venice", None, true, "1")]), None);
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
