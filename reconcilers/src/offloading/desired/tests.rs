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
    let nowhere =
        "  placement:\n    clusterSelector:\n      matchLabels: {topology.liqo.io/region: west}\n";
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
    env.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
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
