//! Helpers shared by the reconcilers' integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::api::{ApiResource, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rivulet_testing::eventually;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

pub mod recorder;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn install_crds(client: &Client) {
    let all = rivulet_api::crds::fission_crds()
        .into_iter()
        .chain([rivulet_api::crds::namespace_offloading_crd(false)]);
    rivulet_testing::install_crds(client, all).await;
}

pub async fn add_node(client: &Client, name: &str, remote: Option<(&str, &str)>) {
    let mut labels = json!({"kubernetes.io/hostname": name});
    if let Some((id, region)) = remote {
        labels["liqo.io/type"] = "virtual-node".into();
        labels["liqo.io/remote-cluster-id"] = id.into();
        labels["topology.liqo.io/region"] = region.into();
    }
    let nodes: Api<Node> = Api::all(client.clone());
    let node: Node =
        serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let status = json!({"status": {
        "allocatable": {"cpu": "4", "pods": "110"},
        "capacity": {"cpu": "4", "pods": "110"},
        "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "ready"}]
    }});
    nodes
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

pub async fn add_namespace(client: &Client, name: &str) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// Rivulet's NamespaceOffloading in `namespace`, marked Ready.
pub async fn mark_offloading_ready(client: &Client, namespace: &str) {
    create_ready_offloading(
        client,
        namespace,
        json!({"namespaceMappingStrategy": "EnforceSameName", "podOffloadingStrategy": "LocalAndRemote"}),
    )
    .await;
}

/// A NamespaceOffloading `offloading` with `spec`, marked Ready as Liqo would.
pub async fn create_ready_offloading(
    client: &Client,
    namespace: &str,
    spec: Value,
) -> kube::api::DynamicObject {
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &offloading_resource());
    let object: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
        "metadata": {"name": "offloading", "namespace": namespace},
        "spec": spec
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let status = json!({"status": {"offloadingPhase": "Ready", "observedGeneration": 1}});
    api.patch_status(
        "offloading",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap()
}

pub fn offloading_resource() -> ApiResource {
    ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "offloading.liqo.io",
        "v1beta1",
        "NamespaceOffloading",
    ))
}

/// Creates a namespaced object from JSON.
pub async fn create<K>(client: &Client, namespace: &str, object: Value) -> K
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object).unwrap(),
    )
    .await
    .unwrap()
}

/// Waits until the object's `Ready` condition has `reason`, and returns its message.
pub async fn ready_reason<K>(client: &Client, namespace: &str, name: &str, reason: &str) -> String
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    eventually(WAIT, &format!("{name} Ready reason {reason}"), || {
        let api = api.clone();
        async move {
            let object =
                serde_json::to_value(api.get(name).await.map_err(|e| e.to_string())?).unwrap();
            let ready = object["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .cloned();
            match ready {
                Some(c) if c["reason"] == reason => {
                    Ok(c["message"].as_str().unwrap_or_default().to_owned())
                }
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

/// Waits until the Environment's `Ready` message contains `text`.
pub async fn env_ready_message_contains(client: &Client, namespace: &str, name: &str, text: &str) {
    let envs: Api<rivulet_api::Environment> = Api::namespaced(client.clone(), namespace);
    eventually(WAIT, &format!("{name} Ready message with {text:?}"), || {
        let envs = envs.clone();
        async move {
            let env = envs.get(name).await.map_err(|e| e.to_string())?;
            let message = env
                .status
                .and_then(|s| s.condition("Ready").map(|c| c.message.clone()))
                .unwrap_or_default();
            if message.contains(text) {
                Ok(())
            } else {
                Err(message)
            }
        }
    })
    .await;
}

/// Warm (unclaimed, not terminating) pool pods of `namespace` per cluster label.
pub async fn warm_counts(client: &Client, namespace: &str) -> BTreeMap<String, usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let list = pods
        .list(&ListParams::default().labels("executorType=poolmgr,managed=true"))
        .await
        .unwrap();
    let mut counts = BTreeMap::new();
    for pod in list
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        *counts
            .entry(
                pod.labels()
                    .get("rivulet.dev/cluster")
                    .cloned()
                    .unwrap_or_default(),
            )
            .or_insert(0) += 1;
    }
    counts
}

/// Waits until the warm pods per cluster are exactly `expected`.
pub async fn wait_counts(client: &Client, namespace: &str, expected: &[(&str, usize)]) {
    let expected: BTreeMap<String, usize> = expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), *v))
        .collect();
    eventually(WAIT, &format!("warm pods {expected:?}"), || {
        let expected = expected.clone();
        async move {
            let counts = warm_counts(client, namespace).await;
            if counts == expected {
                Ok(())
            } else {
                Err(format!("{counts:?}"))
            }
        }
    })
    .await;
}
