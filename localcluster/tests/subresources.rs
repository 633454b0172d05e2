//! Subresources and extension points the node agent relies on: pods/binding, pods/log through a
//! `PodLogs`, create hooks, and the scale subresource of built-ins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{start, start_with};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Binding, Pod};
use kube::api::{Api, LogParams, PostParams};
use rivulet_localcluster::hooks::{
    CreateHook, LogError, LogOptions, LogStream, ObjectReader, PodLogs,
};
use serde_json::{Value, json};

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"containers": [{"name": "main", "image": "i"}]}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binding_assigns_a_node_once() {
    let env = start("binding").await;
    let pods: Api<Pod> = Api::default_namespaced(env.client.clone());
    pods.create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    let binding: Binding = serde_json::from_value(
        json!({"metadata": {"name": "p"}, "target": {"kind": "Node", "name": "node-1"}}),
    )
    .unwrap();
    let req = hyper::Request::post("/api/v1/namespaces/default/pods/p/binding")
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&binding).unwrap())
        .unwrap();
    env.client.request_text(req).await.unwrap();
    assert_eq!(
        pods.get("p")
            .await
            .unwrap()
            .spec
            .unwrap()
            .node_name
            .as_deref(),
        Some("node-1")
    );
    let (code, _) = env
        .raw(
            "POST",
            "/api/v1/namespaces/default/pods/p/binding",
            "application/json",
            serde_json::to_vec(&binding).unwrap(),
        )
        .await;
    assert_eq!(code, 409);
    env.cluster.shutdown().await;
}

#[derive(Debug)]
struct FixedLogs;

impl PodLogs for FixedLogs {
    fn logs(
        &self,
        _ns: &str,
        name: &str,
        _uid: &str,
        container: &str,
        options: &LogOptions,
    ) -> Result<LogStream, LogError> {
        if container != "main" {
            return Err(LogError::NotFound(format!(
                "container {container} is not valid for pod {name}"
            )));
        }
        let text = format!(
            "hello from {name}/{container} tail={:?}\n",
            options.tail_lines
        );
        Ok(Box::pin(futures::stream::iter([Ok(bytes::Bytes::from(
            text,
        ))])))
    }
}

#[derive(Debug)]
struct LabelPods;

impl CreateHook for LabelPods {
    fn applies_to(&self, group: &str, resource: &str) -> bool {
        group.is_empty() && resource == "pods"
    }
    fn mutate(&self, object: &mut Value, read: &dyn ObjectReader) -> Result<(), String> {
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let ns_exists = read.get("", "namespaces", None, &ns).is_some();
        object["metadata"]["labels"]["mutated"] = json!(ns_exists.to_string());
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_logs_and_create_hooks_plug_in() {
    let env = start_with("ext", |c| {
        c.pod_logs = Some(Arc::new(FixedLogs));
        c.create_hooks = vec![Arc::new(LabelPods)];
    })
    .await;
    let pods: Api<Pod> = Api::default_namespaced(env.client.clone());
    let created = pods
        .create(&PostParams::default(), &pod("p"))
        .await
        .unwrap();
    assert_eq!(created.metadata.labels.unwrap()["mutated"], "true");
    let logs = pods
        .logs(
            "p",
            &LogParams {
                tail_lines: Some(3),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logs, "hello from p/main tail=Some(3)\n");
    let err = pods
        .logs(
            "p",
            &LogParams {
                container: Some("other".into()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(s) if s.code == 404));
    let out = env.kubectl_ok(&["logs", "p"], None);
    assert_eq!(out, "hello from p/main tail=None\n");
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_scale_deployment() {
    let env = start("scale").await;
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}
    }))
    .unwrap();
    let api: Api<Deployment> = Api::default_namespaced(env.client.clone());
    api.create(&PostParams::default(), &d).await.unwrap();
    env.kubectl_ok(&["scale", "deployment", "web", "--replicas=3"], None);
    assert_eq!(api.get("web").await.unwrap().spec.replicas, Some(3));
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    env.cluster.shutdown().await;
}
