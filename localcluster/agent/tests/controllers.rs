//! Deployments → ReplicaSets → Pods and EndpointSlices through the API.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::too_many_lines
)]

mod common;

use common::*;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

fn deployment(replicas: i32, image_tag: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{
                "name": "c", "image": "local/exec", "command": ["sleep", "600"], "env": [{"name": "TAG", "value": image_tag}],
                "ports": [{"name": "http", "containerPort": 8080}]}]}}}
    }))
    .unwrap()
}

async fn converged(api: &Api<Deployment>, replicas: i32) -> Deployment {
    eventually(
        WAIT,
        &format!("deployment at {replicas} updated, ready, available replicas"),
        || async {
            let d = api.get("web").await.map_err(|e| e.to_string())?;
            let s = d.status.clone().unwrap_or_default();
            let ok = s.observed_generation == d.metadata.generation
                && s.replicas == Some(replicas)
                && s.updated_replicas == Some(replicas)
                && s.ready_replicas.unwrap_or(0) == replicas
                && s.available_replicas.unwrap_or(0) == replicas;
            if ok { Ok(d) } else { Err(format!("{s:?}")) }
        },
    )
    .await
}

async fn live_pods(env: &Env) -> Vec<String> {
    let pods = env
        .pods("default")
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    pods.items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| p.name_any())
        .collect()
}

#[tokio::test]
async fn deployment_scales_and_rolls_a_template_change() {
    let env = Env::start(|c| c.simulate_pods = true).await;
    let api: Api<Deployment> = Api::namespaced(env.client.clone(), "default");
    api.create(&PostParams::default(), &deployment(3, "v1"))
        .await
        .unwrap();
    let d = converged(&api, 3).await;
    let conds = d.status.unwrap().conditions.unwrap();
    assert!(conds.iter().any(|c| c.type_.as_deref() == Some("Available") && c.status.as_deref() == Some("True")));
    let sets: Api<ReplicaSet> = Api::namespaced(env.client.clone(), "default");
    let first = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let hash = first[0].labels()["pod-template-hash"].clone();
    assert_eq!(first[0].name_any(), format!("web-{hash}"));
    let pods = live_pods(&env).await;
    assert_eq!(pods.len(), 3);
    assert!(pods.iter().all(|p| p.starts_with(&format!("web-{hash}-"))));
    // Scale up and down.
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    converged(&api, 5).await;
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 2}})),
    )
    .await
    .unwrap();
    converged(&api, 2).await;
    eventually(WAIT, "two pods left", || async {
        let n = live_pods(&env).await.len();
        if n == 2 { Ok(()) } else { Err(n.to_string()) }
    })
    .await;
    // A template change rolls to a new ReplicaSet; the old one ends at zero and is kept.
    api.replace("web", &PostParams::default(), &{
        let mut d = deployment(2, "v2");
        d.metadata.resource_version = api.get("web").await.unwrap().metadata.resource_version;
        d
    })
    .await
    .unwrap();
    converged(&api, 2).await;
    let sets_now = sets.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(sets_now.len(), 2);
    let new = sets_now
        .iter()
        .find(|rs| rs.labels()["pod-template-hash"] != hash)
        .unwrap();
    let old = sets_now
        .iter()
        .find(|rs| rs.labels()["pod-template-hash"] == hash)
        .unwrap();
    assert_eq!(new.spec.replicas, Some(2));
    assert_eq!(old.spec.replicas, Some(0));
    assert_eq!(new.annotations()["deployment.kubernetes.io/revision"], "2");
    eventually(WAIT, "only new pods", || async {
        let pods = live_pods(&env).await;
        let new_prefix = format!("{}-", new.name_any());
        if pods.len() == 2 && pods.iter().all(|p| p.starts_with(&new_prefix)) {
            Ok(())
        } else {
            Err(format!("{pods:?}"))
        }
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn endpoint_slices_follow_ready_pods() {
    let env = Env::start(|_| {}).await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "default");
    deployments
        .create(&PostParams::default(), &deployment(2, "v1"))
        .await
        .unwrap();
    let services: Api<Service> = Api::namespaced(env.client.clone(), "default");
    services.create(&PostParams::default(), &serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}
    })).unwrap()).await.unwrap();
    // A selected pod that never becomes ready.
    env.pods("default").create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "unready", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "image": "local/exec", "command": ["sleep", "600"],
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1}}]}
    }))).await.unwrap();
    let slices: Api<EndpointSlice> = Api::namespaced(env.client.clone(), "default");
    let slice = eventually(
        WAIT,
        "slice with 2 ready and 1 not ready endpoint",
        || async {
            let list = slices
                .list(&ListParams::default().labels("kubernetes.io/service-name=web"))
                .await
                .map_err(|e| e.to_string())?;
            let Some(s) = list.items.into_iter().next() else {
                return Err("no slice".into());
            };
            let eps = s.endpoints.clone().unwrap_or_default();
            let ready = eps
                .iter()
                .filter(|e| e.conditions.as_ref().and_then(|c| c.ready) == Some(true))
                .count();
            if eps.len() == 3 && ready == 2 {
                Ok(s)
            } else {
                Err(format!("{eps:?}"))
            }
        },
    )
    .await;
    let ports = slice.ports.unwrap();
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].port),
        (Some("web"), Some(8080))
    );
    assert!(
        slice
            .endpoints
            .as_ref()
            .unwrap()
            .iter()
            .all(|e| e.addresses[0].starts_with("127."))
    );
    let endpoints: Api<Endpoints> = Api::namespaced(env.client.clone(), "default");
    let eps = endpoints.get("web").await.unwrap();
    let subset = &eps.subsets.unwrap()[0];
    assert_eq!(subset.addresses.as_ref().unwrap().len(), 2);
    assert_eq!(subset.not_ready_addresses.as_ref().unwrap().len(), 1);
    // Scaling to zero empties the ready endpoints.
    deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 0}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "only the unready endpoint left", || async {
        let s = slices.get("web").await.map_err(|e| e.to_string())?;
        let n = s.endpoints.map_or(0, |e| e.len());
        if n == 1 { Ok(()) } else { Err(n.to_string()) }
    })
    .await;
    env.stop().await;
}

async fn kubectl(env: &Env, args: &[&str]) -> String {
    let out = tokio::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", env.kubeconfig())
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_rollout_status_scale_and_set_env() {
    let env = Env::start(|_| {}).await;
    kubectl(
        &env,
        &[
            "create",
            "deployment",
            "app",
            "--image=local/exec",
            "--replicas=2",
            "--",
            "sleep",
            "600",
        ],
    )
    .await;
    let out = kubectl(
        &env,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    kubectl(&env, &["set", "env", "deployment/app", "FOO=bar"]).await;
    let out = kubectl(
        &env,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    assert!(out.contains("successfully rolled out"), "{out}");
    kubectl(&env, &["scale", "deployment/app", "--replicas=3"]).await;
    kubectl(
        &env,
        &["rollout", "status", "deployment/app", "--timeout=30s"],
    )
    .await;
    let pods = env
        .pods("default")
        .list(&ListParams::default().labels("app=app"))
        .await
        .unwrap();
    let live: Vec<_> = pods
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    assert!(live.len() >= 3, "{}", live.len());
    eventually(WAIT, "three pods with FOO=bar running", || async {
        let pods = env
            .pods("default")
            .list(&ListParams::default().labels("app=app"))
            .await
            .map_err(|e| e.to_string())?;
        let live: Vec<_> = pods
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        let with_env = live
            .iter()
            .filter(|p| {
                p.spec.as_ref().unwrap().containers[0]
                    .env
                    .iter()
                    .flatten()
                    .any(|e| e.name == "FOO")
            })
            .count();
        if live.len() == 3 && with_env == 3 {
            Ok(())
        } else {
            Err(format!("{} live, {with_env} with FOO", live.len()))
        }
    })
    .await;
    let history = kubectl(&env, &["rollout", "history", "deployment/app"]).await;
    assert!(history.contains('1') && history.contains('2'), "{history}");
    env.stop().await;
}
