//! Simulated Liqo peers through the API (reference/liqo.md §1–§2): virtual nodes, the
//! NamespaceOffloading CRD and controller stand-in, and the create-only pod webhook.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::too_many_lines
)]

mod common;

use common::*;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};

async fn env(real_pods: bool, v1alpha1: bool) -> Env {
    Env::start(|c| {
        c.clusters = vec!["venice".into(), "naples".into(), "florence".into()];
        c.simulate_pods = !real_pods;
        c.liqo_v1alpha1 = v1alpha1;
    })
    .await
}

fn offloadings(env: &Env, ns: &str, version: &str) -> Api<DynamicObject> {
    let ar = ApiResource {
        group: "offloading.liqo.io".into(),
        version: version.into(),
        api_version: format!("offloading.liqo.io/{version}"),
        kind: "NamespaceOffloading".into(),
        plural: "namespaceoffloadings".into(),
    };
    Api::namespaced_with(env.client.clone(), ns, &ar)
}

fn offloading(name: &str, spec: Value, version: &str) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": format!("offloading.liqo.io/{version}"), "kind": "NamespaceOffloading",
        "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

async fn namespace(env: &Env, name: &str) {
    let api: Api<Namespace> = Api::all(env.client.clone());
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .unwrap();
}

async fn ready_offloading(api: &Api<DynamicObject>) -> DynamicObject {
    eventually(
        WAIT,
        "offloadingPhase set for the current generation",
        || async {
            let o = api.get("offloading").await.map_err(|e| e.to_string())?;
            let status = &o.data["status"];
            if status["observedGeneration"] == json!(o.metadata.generation)
                && status["offloadingPhase"].is_string()
            {
                Ok(o)
            } else {
                Err(status.to_string())
            }
        },
    )
    .await
}

fn region_selector(regions: &[&str]) -> Value {
    json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": regions}]}]})
}

#[tokio::test]
async fn virtual_nodes_look_like_liqos() {
    let env = env(false, false).await;
    let nodes: Api<Node> = Api::all(env.client.clone());
    let naples = nodes.get("liqo-naples").await.unwrap();
    let labels = naples.labels();
    assert_eq!(labels["liqo.io/type"], "virtual-node");
    assert_eq!(labels["liqo.io/remote-cluster-id"], "naples");
    assert_eq!(labels["topology.liqo.io/region"], "south");
    assert_eq!(labels["kubernetes.io/role"], "agent");
    let taints = naples.spec.unwrap().taints.unwrap();
    assert_eq!(
        (
            taints[0].key.as_str(),
            taints[0].value.as_deref(),
            taints[0].effect.as_str()
        ),
        (
            "virtual-node.liqo.io/not-allowed",
            Some("true"),
            "NoExecute"
        )
    );
    let status = naples.status.unwrap();
    assert_eq!(status.allocatable.unwrap()["pods"].0, "110");
    assert!(
        status
            .conditions
            .unwrap()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    let local = nodes.get("venice").await.unwrap();
    assert!(!local.labels().contains_key("liqo.io/type"));
    assert!(local.spec.unwrap().taints.unwrap_or_default().is_empty());
    env.stop().await;
}

#[tokio::test]
async fn offloading_becomes_ready_labels_the_namespace_and_cleans_up_on_delete() {
    let env = env(false, false).await;
    namespace(&env, "demo").await;
    let api = offloadings(&env, "demo", "v1beta1");
    let refused = api
        .create(
            &PostParams::default(),
            &offloading("other", json!({}), "v1beta1"),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("NamespaceOffloading name must match offloading"),
        "{refused}"
    );
    api.create(
        &PostParams::default(),
        &offloading(
            "offloading",
            json!({
        "namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "LocalAndRemote",
        "clusterSelector": region_selector(&["south"])}),
            "v1beta1",
        ),
    )
    .await
    .unwrap();
    let o = ready_offloading(&api).await;
    let status = &o.data["status"];
    assert_eq!(status["offloadingPhase"], "Ready");
    assert_eq!(status["remoteNamespaceName"], "demo");
    assert_eq!(
        status["remoteNamespacesConditions"]["naples"][0]["type"],
        "OffloadingRequired"
    );
    assert_eq!(
        status["remoteNamespacesConditions"]["naples"][1]["reason"],
        "NamespaceCreated"
    );
    assert_eq!(
        status["remoteNamespacesConditions"]["florence"][0]["reason"],
        "ClusterNotSelected"
    );
    assert!(
        o.finalizers()
            .iter()
            .any(|f| f == "namespaceoffloading-controller.liqo.io/finalizer")
    );
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns = namespaces.get("demo").await.unwrap();
    assert_eq!(
        ns.labels()
            .get("liqo.io/scheduling-enabled")
            .map(String::as_str),
        Some("true")
    );
    // An immutable field change is reverted.
    api.patch(
        "offloading",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"namespaceMappingStrategy": "DefaultName"}})),
    )
    .await
    .unwrap();
    eventually(WAIT, "mapping strategy reverted", || async {
        let o = api.get("offloading").await.map_err(|e| e.to_string())?;
        if o.data["spec"]["namespaceMappingStrategy"] == "EnforceSameName" {
            Ok(())
        } else {
            Err(o.data["spec"].to_string())
        }
    })
    .await;
    // A selector matching nothing: NoClusterSelected.
    api.patch(
        "offloading",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"clusterSelector": region_selector(&["nowhere"])}})),
    )
    .await
    .unwrap();
    eventually(WAIT, "NoClusterSelected", || async {
        let o = ready_offloading(&api).await;
        if o.data["status"]["offloadingPhase"] == "NoClusterSelected" {
            Ok(())
        } else {
            Err(o.data["status"].to_string())
        }
    })
    .await;
    api.delete("offloading", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "offloading gone and label removed", || async {
        let gone = api
            .get_opt("offloading")
            .await
            .map_err(|e| e.to_string())?
            .is_none();
        let ns = namespaces.get("demo").await.map_err(|e| e.to_string())?;
        if gone && !ns.labels().contains_key("liqo.io/scheduling-enabled") {
            Ok(())
        } else {
            Err(format!("gone={gone}"))
        }
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn v1alpha1_is_served_with_the_flag() {
    let env = env(false, true).await;
    namespace(&env, "old").await;
    let api = offloadings(&env, "old", "v1alpha1");
    api.create(
        &PostParams::default(),
        &offloading("offloading", json!({}), "v1alpha1"),
    )
    .await
    .unwrap();
    let o = ready_offloading(&api).await;
    assert_eq!(o.data["status"]["offloadingPhase"], "Ready");
    assert_eq!(
        o.data["spec"]["namespaceMappingStrategy"], "DefaultName",
        "defaulted by the schema"
    );
    let keys: Vec<String> = o.data["status"]["remoteNamespacesConditions"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert!(
        keys.iter()
            .all(|k| k.starts_with("florence-") || k.starts_with("naples-"))
            && keys.len() == 2,
        "{keys:?}"
    );
    assert!(
        offloadings(&env, "old", "v1beta1")
            .list(&kube::api::ListParams::default())
            .await
            .is_err()
    );
    env.stop().await;
}

#[tokio::test]
async fn pods_are_mutated_only_when_created_after_the_offloading() {
    let env = env(true, false).await;
    namespace(&env, "demo").await;
    let pods = env.pods("demo");
    let remote_only = |name: &str| {
        pod(json!({"metadata": {"name": name}, "spec": {
        "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ["naples"]}]}]}}},
        "containers": [{"name": "c", "image": "local/exec", "command": ["sleep", "600"]}]}}))
    };
    // Created before the offloading: not mutated, so it can never reach the virtual node.
    pods.create(&PostParams::default(), &remote_only("early"))
        .await
        .unwrap();
    let api = offloadings(&env, "demo", "v1beta1");
    api.create(
        &PostParams::default(),
        &offloading(
            "offloading",
            json!({"podOffloadingStrategy": "LocalAndRemote"}),
            "v1beta1",
        ),
    )
    .await
    .unwrap();
    ready_offloading(&api).await;
    eventually(WAIT, "namespace labelled", || async {
        let ns: Namespace = Api::all(env.client.clone())
            .get("demo")
            .await
            .map_err(|e| e.to_string())?;
        if ns.labels().contains_key("liqo.io/scheduling-enabled") {
            Ok(())
        } else {
            Err("no label".into())
        }
    })
    .await;
    pods.create(&PostParams::default(), &remote_only("late"))
        .await
        .unwrap();
    let late = pod_when(&pods, "late", "Ready on liqo-naples", is_ready).await;
    assert_eq!(
        late.spec.as_ref().unwrap().node_name.as_deref(),
        Some("liqo-naples")
    );
    let tolerations = late.spec.as_ref().unwrap().tolerations.clone().unwrap();
    assert!(tolerations.iter().any(|t| t.key.as_deref()
        == Some("virtual-node.liqo.io/not-allowed")
        && t.operator.as_deref() == Some("Exists")));
    // The pod on the virtual node runs locally, on its own address.
    assert!(pod_ip(&late).starts_with("127."));
    let early = pod_when(&pods, "early", "PodScheduled=False", |p| {
        condition(p, "PodScheduled").as_deref() == Some("False")
    })
    .await;
    assert!(
        early
            .spec
            .as_ref()
            .unwrap()
            .tolerations
            .as_ref()
            .is_none_or(|t| t
                .iter()
                .all(|t| t.key.as_deref() != Some("virtual-node.liqo.io/not-allowed")))
    );
    // Remote strategy with a selector: the webhook ANDs liqo.io/type In [virtual-node].
    api.patch("offloading", &PatchParams::default(), &Patch::Merge(json!({"spec": {"podOffloadingStrategy": "Remote", "clusterSelector": region_selector(&["center"])}}))).await.unwrap();
    eventually(WAIT, "strategy visible to the webhook", || async {
        let o = api.get("offloading").await.map_err(|e| e.to_string())?;
        if o.data["spec"]["podOffloadingStrategy"] == "Remote" {
            Ok(())
        } else {
            Err("old".into())
        }
    })
    .await;
    pods.create(
        &PostParams::default(),
        &pod(json!({"metadata": {"name": "anywhere"}, "spec": {
        "containers": [{"name": "c", "image": "local/exec", "command": ["sleep", "600"]}]}})),
    )
    .await
    .unwrap();
    let anywhere = pod_when(&pods, "anywhere", "bound", |p| {
        p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some()
    })
    .await;
    assert_eq!(
        anywhere.spec.unwrap().node_name.as_deref(),
        Some("liqo-florence")
    );
    env.stop().await;
}

#[tokio::test]
async fn a_labelled_namespace_without_offloading_rejects_pods_like_liqo() {
    let env = env(false, false).await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces.create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "early", "labels": {"liqo.io/scheduling-enabled": "true"}}})).unwrap()).await.unwrap();
    let err = env
        .pods("early")
        .create(
            &PostParams::default(),
            &pod(json!({"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "local/exec", "command": ["true"]}]}})),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed retrieving NamespaceOffloading"),
        "{err}"
    );
    env.stop().await;
}
