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
        serde_json::from_value(json!({"nodeSelectorTerms": [{"matchExpressions": exprs}]})).unwrap()
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
            pod.metadata.deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::UNIX_EPOCH));
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
