//! Scheduling through the API: every selector, affinity and taint form, and the reason of an
//! unschedulable pod. Pods are simulated (nothing runs); the virtual nodes of two simulated
//! peers give labels and taints to schedule against.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::too_many_lines
)]

mod common;

use common::*;
use k8s_openapi::api::core::v1::Node;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

async fn env() -> Env {
    let env = Env::start(|c| {
        c.clusters = vec!["venice".into(), "naples".into(), "florence".into()];
        c.simulate_pods = true;
    })
    .await;
    // Numeric labels for Gt/Lt, set by someone other than the agent.
    let nodes: Api<Node> = Api::all(env.client.clone());
    for (node, generation) in [
        ("venice", "3"),
        ("liqo-naples", "5"),
        ("liqo-florence", "7"),
    ] {
        nodes
            .patch(
                node,
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"labels": {"gen": generation}}})),
            )
            .await
            .unwrap();
    }
    env
}

fn toleration() -> Value {
    json!([{"key": "virtual-node.liqo.io/not-allowed", "operator": "Exists", "effect": "NoExecute"}])
}

fn affinity(key: &str, op: &str, values: &[&str]) -> Value {
    json!({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": key, "operator": op, "values": values}]}]}}})
}

async fn place(env: &Env, name: &str, extra: Value) -> String {
    let api = env.pods("default");
    let mut spec =
        json!({"containers": [{"name": "c", "image": "local/exec", "command": ["true"]}]});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    api.create(
        &PostParams::default(),
        &pod(json!({"metadata": {"name": name}, "spec": spec})),
    )
    .await
    .unwrap();
    let p = pod_when(&api, name, "bound", |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
    })
    .await;
    p.spec.unwrap().node_name.unwrap()
}

#[tokio::test]
async fn every_selector_affinity_and_taint_form() {
    let env = env().await;
    // Without a toleration the tainted virtual nodes are out.
    assert_eq!(place(&env, "plain", json!({})).await, "venice");
    assert_eq!(place(&env, "by-selector", json!({"nodeSelector": {"topology.liqo.io/region": "south"}, "tolerations": toleration()})).await, "liqo-naples");
    assert_eq!(place(&env, "in", json!({"affinity": affinity("liqo.io/remote-cluster-id", "In", &["florence"]), "tolerations": toleration()})).await, "liqo-florence");
    assert_eq!(
        place(
            &env,
            "notin",
            json!({"affinity": affinity("gen", "NotIn", &["3", "5"]), "tolerations": toleration()})
        )
        .await,
        "liqo-florence"
    );
    assert_eq!(place(&env, "exists", json!({"affinity": affinity("topology.liqo.io/region", "Exists", &[]), "tolerations": toleration(), "nodeSelector": {"gen": "5"}})).await, "liqo-naples");
    assert_eq!(place(&env, "doesnotexist", json!({"affinity": affinity("liqo.io/type", "DoesNotExist", &[]), "tolerations": toleration()})).await, "venice");
    assert_eq!(
        place(
            &env,
            "gt",
            json!({"affinity": affinity("gen", "Gt", &["6"]), "tolerations": toleration()})
        )
        .await,
        "liqo-florence"
    );
    assert_eq!(
        place(
            &env,
            "lt",
            json!({"affinity": affinity("gen", "Lt", &["4"]), "tolerations": toleration()})
        )
        .await,
        "venice"
    );
    // A pod that names its node skips the scheduler.
    assert_eq!(
        place(&env, "named", json!({"nodeName": "liqo-naples"})).await,
        "liqo-naples"
    );
    env.stop().await;
}

#[tokio::test]
async fn tolerating_pods_spread_to_the_least_loaded_node() {
    let env = env().await;
    let mut placed = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..9 {
        *placed
            .entry(place(&env, &format!("p{i}"), json!({"tolerations": toleration()})).await)
            .or_default() += 1;
    }
    assert_eq!(
        placed.values().copied().collect::<Vec<_>>(),
        vec![3, 3, 3],
        "{placed:?}"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_unschedulable_pod_says_why_and_is_placed_when_a_node_fits() {
    let env = env().await;
    let api = env.pods("default");
    api.create(
        &PostParams::default(),
        &pod(json!({"metadata": {"name": "nowhere"}, "spec": {
        "affinity": affinity("liqo.io/remote-cluster-id", "In", &["naples"]),
        "containers": [{"name": "c", "image": "local/exec", "command": ["true"]}]}})),
    )
    .await
    .unwrap();
    let p = pod_when(&api, "nowhere", "PodScheduled=False", |p| {
        condition(p, "PodScheduled").as_deref() == Some("False")
    })
    .await;
    let cond = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(cond.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(
        cond.message.as_deref(),
        Some(
            "0/3 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 2 node(s) had untolerated taint {virtual-node.liqo.io/not-allowed: true}. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
        )
    );
    // Removing the taint from naples's node makes the pod schedulable there.
    let nodes: Api<Node> = Api::all(env.client.clone());
    nodes
        .patch(
            "liqo-naples",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"taints": null}})),
        )
        .await
        .unwrap();
    let bound = pod_when(&api, "nowhere", "bound after the taint is gone", |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some("liqo-naples")
    })
    .await;
    assert!(bound.spec.is_some());
    env.stop().await;
}

#[tokio::test]
async fn requests_beyond_allocatable_are_insufficient() {
    let env = env().await;
    let api = env.pods("default");
    api.create(&PostParams::default(), &pod(json!({"metadata": {"name": "huge"}, "spec": {
        "tolerations": toleration(),
        "containers": [{"name": "c", "image": "local/exec", "command": ["true"], "resources": {"requests": {"memory": "100Ei"}}}]}}))).await.unwrap();
    let p = pod_when(&api, "huge", "Unschedulable", |p| {
        condition(p, "PodScheduled").as_deref() == Some("False")
    })
    .await;
    let msg = p
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap()
        .message
        .unwrap();
    assert!(
        msg.starts_with("0/3 nodes are available: 3 Insufficient memory."),
        "{msg}"
    );
    env.stop().await;
}
