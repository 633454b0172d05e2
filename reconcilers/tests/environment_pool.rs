//! The environment reconciler against a real API server (localcluster): convergence, placement
//! over simulated Liqo clusters, offloading gating, claim → refill, spec roll that spares claimed
//! pods, cluster loss, idempotency (no write on an unchanged reconcile), and restart adoption.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{reflector, watcher};
use kube::{Api, Client, ResourceExt};
use rivulet_api::Environment;
use rivulet_reconcilers::environment::pool_pod::PoolPodConfig;
use rivulet_reconcilers::environment::reconciler::{Context, reconcile, run};
use rivulet_testing::{TestCluster, eventually};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

mod common;

use common::*;

async fn create_env(client: &Client, namespace: &str, name: &str, poolsize: i32) -> Environment {
    let api: Api<Environment> = Api::namespaced(client.clone(), namespace);
    let env: Environment = serde_json::from_value(json!({
        "apiVersion": "fission.io/v1", "kind": "Environment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"version": 3, "runtime": {"image": "fission/python-env"}, "poolsize": poolsize}
    }))
    .unwrap();
    api.create(&PostParams::default(), &env).await.unwrap()
}

/// Warm pods per cluster label.
/// A context for calling `reconcile` directly (as a freshly started controller would).
async fn direct_context(client: &Client) -> Arc<Context> {
    direct_context_with(client, PoolPodConfig::default()).await
}

async fn direct_context_with(client: &Client, pool: PoolPodConfig) -> Arc<Context> {
    let (nodes, writer) = reflector::store::<Node>();
    let stream = reflector(
        writer,
        watcher(Api::<Node>::all(client.clone()), watcher::Config::default()).default_backoff(),
    );
    tokio::spawn(stream.for_each(|_| std::future::ready(())));
    nodes.wait_until_ready().await.unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test".into(),
            instance: None,
        },
    );
    Arc::new(Context {
        client: client.clone(),
        pool,
        nodes,
        offloading: Some(offloading_resource()),
        recorder,
        refills: rivulet_reconcilers::environment::refill::Refills::default(),
    })
}

fn start_controller(client: &Client) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        let _ = stopped.await;
    };
    let caches = rivulet_reconcilers::support::shared::Caches::new(client);
    let reconciler = run(
        client.clone(),
        &caches,
        PoolPodConfig::default(),
        Some(offloading_resource()),
        rivulet_reconcilers::support::Metrics::new(),
        shutdown,
    );
    tokio::spawn(caches.serve(reconciler));
    stop
}

async fn three_clusters(client: &Client, namespace: &str) {
    install_crds(client).await;
    add_node(client, "venice", None).await;
    add_node(client, "liqo-naples", Some(("naples", "south"))).await;
    add_node(client, "liqo-florence", Some(("florence", "center"))).await;
    add_namespace(client, namespace).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_of_nine_over_three_clusters_is_three_each_and_idempotent() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    three_clusters(&client, "liqo-demo").await;
    mark_offloading_ready(&client, "liqo-demo").await;
    let stop = start_controller(&client);
    create_env(&client, "liqo-demo", "python", 9).await;
    wait_counts(
        &client,
        "liqo-demo",
        &[("florence", 3), ("local", 3), ("naples", 3)],
    )
    .await;

    // Remote pods are pinned to their cluster and tolerate the virtual-node taint.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "liqo-demo");
    let naples = pods
        .list(&ListParams::default().labels("rivulet.dev/cluster=naples"))
        .await
        .unwrap();
    let spec = naples.items[0].spec.clone().unwrap();
    let term = &spec
        .affinity
        .unwrap()
        .node_affinity
        .unwrap()
        .required_during_scheduling_ignored_during_execution
        .unwrap()
        .node_selector_terms[0];
    let expr = &term.match_expressions.as_ref().unwrap()[0];
    assert_eq!(
        (expr.key.as_str(), expr.values.clone().unwrap()),
        ("liqo.io/remote-cluster-id", vec!["naples".to_owned()])
    );
    assert!(
        spec.tolerations
            .unwrap()
            .iter()
            .any(|t| t.key.as_deref() == Some("virtual-node.liqo.io/not-allowed"))
    );
    assert!(spec.topology_spread_constraints.is_none());

    // Status reports the pool per cluster.
    let envs: Api<Environment> = Api::namespaced(client.clone(), "liqo-demo");
    let status = eventually(WAIT, "status with clusters", || {
        let envs = envs.clone();
        async move {
            let env = envs.get("python").await.map_err(|e| e.to_string())?;
            match env.status {
                Some(s) if s.clusters.len() == 3 => Ok(s),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert_eq!(status.pool_size, Some(9));
    let placed = status.condition("Placed").unwrap();
    assert_eq!(
        (placed.status.as_str(), placed.reason.as_str()),
        ("True", "Placed")
    );

    // Stop the controller; a fresh reconcile (what a restarted controller does first) writes
    // nothing, several times over: the global resourceVersion does not move.
    stop.send(()).unwrap();
    let ctx = direct_context(&client).await;
    let before = tc.cluster.resource_version();
    let env = Arc::new(envs.get("python").await.unwrap());
    for _ in 0..3 {
        reconcile(env.clone(), ctx.clone()).await.unwrap();
    }
    assert_eq!(
        tc.cluster.resource_version(),
        before,
        "an unchanged reconcile must not write"
    );
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seven_is_three_two_two_and_remote_pods_wait_for_offloading() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    three_clusters(&client, "liqo-demo").await;
    let _stop = start_controller(&client);
    create_env(&client, "liqo-demo", "python", 7).await;
    // No NamespaceOffloading yet: only the local share exists, and the status says why.
    wait_counts(&client, "liqo-demo", &[("local", 3)]).await;
    env_ready_message_contains(
        &client,
        "liqo-demo",
        "python",
        "wait until the namespace's NamespaceOffloading is Ready",
    )
    .await;
    // The reconciler watches offloadings: a Ready one brings the remote share at once.
    mark_offloading_ready(&client, "liqo-demo").await;
    wait_counts(
        &client,
        "liqo-demo",
        &[("florence", 2), ("local", 3), ("naples", 2)],
    )
    .await;
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claimed_pods_are_refilled_and_survive_a_spec_roll() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_node(&client, "venice", None).await;
    add_namespace(&client, "fns").await;
    let _stop = start_controller(&client);
    create_env(&client, "fns", "python", 3).await;
    wait_counts(&client, "fns", &[("local", 3)]).await;

    // Claim one pod as the router does: one label update. The pool refills to 3 warm pods.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "fns");
    let warm = pods
        .list(&ListParams::default().labels("managed=true"))
        .await
        .unwrap();
    let claimed = warm.items[0].name_any();
    let relabel = json!({"metadata": {"labels": {"managed": "false", "functionName": "hello"}}});
    pods.patch(&claimed, &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    wait_counts(&client, "fns", &[("local", 3)]).await;

    // Change the image: warm pods roll, the claimed (specialized) pod is not touched.
    let claimed_rv = pods.get(&claimed).await.unwrap().resource_version();
    let old_hash = warm.items[1].labels()["rivulet.dev/pool-spec-hash"].clone();
    let envs: Api<Environment> = Api::namespaced(client.clone(), "fns");
    envs.patch(
        "python",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"runtime": {"image": "fission/python-env:1.2"}}})),
    )
    .await
    .unwrap();
    eventually(WAIT, "warm pods of the new spec only", || {
        let pods = pods.clone();
        let old_hash = old_hash.clone();
        async move {
            let list = pods
                .list(&ListParams::default().labels("managed=true"))
                .await
                .map_err(|e| e.to_string())?;
            let live: Vec<&Pod> = list
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .collect();
            let images: Vec<String> = live
                .iter()
                .map(|p| {
                    p.spec.as_ref().unwrap().containers[0]
                        .image
                        .clone()
                        .unwrap()
                })
                .collect();
            let stale = live
                .iter()
                .any(|p| p.labels()["rivulet.dev/pool-spec-hash"] == old_hash);
            if live.len() == 3 && !stale && images.iter().all(|i| i == "fission/python-env:1.2") {
                Ok(())
            } else {
                Err(format!("{images:?}"))
            }
        }
    })
    .await;
    let still = pods.get(&claimed).await.unwrap();
    assert_eq!(
        still.resource_version(),
        claimed_rv,
        "the claimed pod must not be written"
    );
    assert!(still.metadata.deletion_timestamp.is_none());
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_cluster_has_its_pods_recreated_elsewhere() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    three_clusters(&client, "liqo-demo").await;
    mark_offloading_ready(&client, "liqo-demo").await;
    let _stop = start_controller(&client);
    create_env(&client, "liqo-demo", "python", 9).await;
    wait_counts(
        &client,
        "liqo-demo",
        &[("florence", 3), ("local", 3), ("naples", 3)],
    )
    .await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .delete("liqo-florence", &DeleteParams::default())
        .await
        .unwrap();
    wait_counts(&client, "liqo-demo", &[("local", 5), ("naples", 4)]).await;
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_spec_keeps_the_pool_and_says_why() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_node(&client, "venice", None).await;
    add_namespace(&client, "fns").await;
    let _stop = start_controller(&client);
    create_env(&client, "fns", "python", 2).await;
    wait_counts(&client, "fns", &[("local", 2)]).await;
    // An empty image passes the schema (as in Fission) but cannot run: Ready=False, pool kept.
    let envs: Api<Environment> = Api::namespaced(client.clone(), "fns");
    envs.patch(
        "python",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"runtime": {"image": ""}}})),
    )
    .await
    .unwrap();
    let condition = eventually(WAIT, "InvalidSpec condition", || {
        let envs = envs.clone();
        async move {
            let env = envs.get("python").await.map_err(|e| e.to_string())?;
            match env.status.and_then(|s| s.condition("Ready").cloned()) {
                Some(c) if c.reason == "InvalidSpec" => Ok(c),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    assert_eq!(condition.status, "False");
    assert!(
        condition.message.contains("spec.runtime.image"),
        "{}",
        condition.message
    );
    assert_eq!(
        warm_counts(&client, "fns").await,
        BTreeMap::from([("local".to_owned(), 2)])
    );
    tc.shutdown().await;
}

/// Issue 15.1: with a fetcher key, pods are created only after their Environment's token Secret,
/// which holds the token the router derives, and a deleted Secret is back before the next pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_pods_mount_the_environments_fetcher_token() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_node(&client, "venice", None).await;
    add_namespace(&client, "fns").await;
    let key = rivulet_api::specialize::FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
    let ctx = direct_context_with(
        &client,
        PoolPodConfig {
            fetcher_key: Some(key.clone()),
            ..PoolPodConfig::default()
        },
    )
    .await;
    let env = Arc::new(create_env(&client, "fns", "python", 2).await);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "fns");
    // The first refill waits 100 ms from the first sighting; reconcile until it has run.
    let filled = || async {
        eventually(WAIT, "the pool filled", || async {
            reconcile(env.clone(), ctx.clone()).await.unwrap();
            let n = pods.list(&ListParams::default()).await.unwrap().items.len();
            if n == 2 {
                Ok(())
            } else {
                Err(format!("{n} pods"))
            }
        })
        .await;
    };
    filled().await;

    let secrets: Api<Secret> = Api::namespaced(client.clone(), "fns");
    let token = || async {
        let secret = secrets.get("python.rivulet-fetcher-token").await.unwrap();
        String::from_utf8(secret.data.unwrap()["token"].0.clone()).unwrap()
    };
    assert_eq!(token().await, key.token_for(&env.uid().unwrap()));
    let listed = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(listed.len(), 2);
    for pod in &listed {
        let spec = pod.spec.as_ref().unwrap();
        let secret_volumes: Vec<_> = spec
            .volumes
            .iter()
            .flatten()
            .filter_map(|v| v.secret.as_ref()?.secret_name.clone())
            .collect();
        assert_eq!(secret_volumes, ["python.rivulet-fetcher-token"]);
    }

    // Secret gone, one pod gone: the refill brings the Secret back first.
    secrets
        .delete("python.rivulet-fetcher-token", &DeleteParams::default())
        .await
        .unwrap();
    pods.delete(&listed[0].name_any(), &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "the pod gone", || async {
        let n = pods.list(&ListParams::default()).await.unwrap().items.len();
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} pods"))
        }
    })
    .await;
    filled().await;
    assert_eq!(token().await, key.token_for(&env.uid().unwrap()));
    tc.shutdown().await;
}
