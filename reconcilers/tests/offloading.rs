//! The offloading and environment reconcilers together (the shared set, `all::start`) against a
//! real API server (localcluster) with simulated Liqo clusters (virtual nodes): Rivulet creates
//! the namespace's NamespaceOffloading before any remote pod, remote pods follow as soon as Liqo
//! reports it Ready (without touching the Environment), and a NamespaceOffloading someone else
//! created is adopted, never written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::collections::BTreeMap;

use common::*;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rivulet_api::Environment;
use rivulet_reconcilers::all::{self, Settings};
use rivulet_reconcilers::offloading::OffloadingConfig;
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::support::leader::Stop;
use rivulet_testing::{TestCluster, eventually};
use serde_json::json;

/// Starts every reconciler (as `rivulet controller` does) with Liqo's v1beta1 API served.
fn start_all(client: &Client, metrics: &Metrics) -> tokio::sync::oneshot::Sender<()> {
    let settings = Settings {
        offloading: OffloadingConfig {
            resource: Some(offloading_resource()),
            ..OffloadingConfig::default()
        },
        ..Settings::default()
    };
    let (stop, stop_signal) = Stop::new();
    tokio::spawn(all::start(client, &settings, metrics, &stop_signal));
    stop
}

async fn three_clusters(client: &Client, namespace: &str) {
    add_node(client, "venice", None).await;
    add_node(client, "liqo-naples", Some(("naples", "south"))).await;
    add_node(client, "liqo-florence", Some(("florence", "center"))).await;
    add_namespace(client, namespace).await;
}

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
fn offloadings(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &offloading_resource())
}

/// Waits for an Event with `reason` on the Environment `env`, and returns its note.
async fn event_note(client: &Client, namespace: &str, env: &str, reason: &str) -> String {
    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    eventually(WAIT, &format!("event {reason} on {env}"), || {
        let events = events.clone();
        async move {
            let list = events
                .list(&ListParams::default())
                .await
                .map_err(|e| e.to_string())?;
            list.items
                .iter()
                .find(|e| {
                    e.reason.as_deref() == Some(reason)
                        && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(env)
                })
                .map(|e| e.note.clone().unwrap_or_default())
                .ok_or_else(|| {
                    let reasons: Vec<_> = list.items.iter().map(|e| e.reason.clone()).collect();
                    format!("{reasons:?}")
                })
        }
    })
    .await
}

/// Waits until the Environment's `Offloaded` condition has `reason`; returns (status, message).
async fn offloaded(client: &Client, namespace: &str, reason: &str) -> (String, String) {
    let envs: Api<Environment> = Api::namespaced(client.clone(), namespace);
    eventually(WAIT, &format!("Offloaded reason {reason}"), || {
        let envs = envs.clone();
        async move {
            let env = envs.get("python").await.map_err(|e| e.to_string())?;
            match env.status.and_then(|s| s.condition("Offloaded").cloned()) {
                Some(c) if c.reason == reason => Ok((c.status, c.message)),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

fn counter(metrics: &Metrics, reconciler: &str) -> f64 {
    let series = format!("rivulet_reconcile_total{{reconciler=\"{reconciler}\"}} ");
    let text = metrics.encode();
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .map_or(0.0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offloading_is_created_first_and_remote_pods_follow_when_it_turns_ready() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    three_clusters(&client, "liqo-demo").await;
    let metrics = Metrics::new();
    let _stop = start_all(&client, &metrics);
    let env = create_env(&client, "liqo-demo", "python", 7).await;

    // Rivulet creates the namespace's offloading; until Liqo reports it Ready only the local
    // share of the pool exists.
    let api = offloadings(&client, "liqo-demo");
    let offloading = eventually(WAIT, "Rivulet's NamespaceOffloading", || {
        let api = api.clone();
        async move {
            api.get_opt("offloading")
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "absent".to_owned())
        }
    })
    .await;
    assert_eq!(
        offloading.labels().get("app.kubernetes.io/managed-by"),
        Some(&"rivulet".to_owned())
    );
    assert_eq!(
        offloading.data["spec"]["podOffloadingStrategy"],
        "LocalAndRemote"
    );
    assert_eq!(
        offloading.data["spec"]["namespaceMappingStrategy"],
        "EnforceSameName"
    );
    wait_counts(&client, "liqo-demo", &[("local", 3)]).await;
    env_ready_message_contains(
        &client,
        "liqo-demo",
        "python",
        "wait until the namespace's NamespaceOffloading is Ready",
    )
    .await;
    event_note(&client, "liqo-demo", "python", "OffloadingCreated").await;
    let (status, message) = offloaded(&client, "liqo-demo", "OffloadingNotReady").await;
    assert_eq!(status, "False");
    assert!(message.contains("created by Rivulet"), "{message}");
    assert_eq!(
        warm_counts(&client, "liqo-demo").await,
        BTreeMap::from([("local".to_owned(), 3)]),
        "no remote pod before the offloading is Ready"
    );

    // Liqo reports the offloading Ready: the remote share follows without any change to the
    // Environment (the environment reconciler watches offloadings; its resync is minutes away).
    let status = json!({"status": {"offloadingPhase": "Ready", "observedGeneration": offloading.metadata.generation}});
    api.patch_status(
        "offloading",
        &PatchParams::default(),
        &Patch::Merge(&status),
    )
    .await
    .unwrap();
    wait_counts(
        &client,
        "liqo-demo",
        &[("florence", 2), ("local", 3), ("naples", 2)],
    )
    .await;
    let (status, _) = offloaded(&client, "liqo-demo", "OffloadingReady").await;
    assert_eq!(status, "True");
    let after = Api::<Environment>::namespaced(client.clone(), "liqo-demo")
        .get("python")
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, env.metadata.generation);
    assert_eq!(after.annotations(), env.annotations());

    // Every reconciler of the set is instrumented.
    for reconciler in ["environment", "offloading"] {
        assert!(counter(&metrics, reconciler) >= 1.0, "{reconciler}");
    }
    tc.shutdown().await;
}

/// A NamespaceOffloading created by someone else (no Rivulet label), Ready, selecting `ids`
/// (every cluster when empty).
async fn foreign_offloading(client: &Client, namespace: &str, ids: &[&str]) -> DynamicObject {
    let selector = if ids.is_empty() {
        json!({"nodeSelectorTerms": []})
    } else {
        json!({"nodeSelectorTerms": [{"matchExpressions": [{"key": "liqo.io/remote-cluster-id", "operator": "In", "values": ids}]}]})
    };
    create_ready_offloading(
        client,
        namespace,
        json!({"namespaceMappingStrategy": "DefaultName", "podOffloadingStrategy": "LocalAndRemote", "clusterSelector": selector}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_offloading_is_adopted_and_never_written() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    three_clusters(&client, "covered").await;
    add_namespace(&client, "partial").await;
    // One foreign offloading covers every cluster, the other only naples.
    let covering = foreign_offloading(&client, "covered", &[]).await;
    let partial = foreign_offloading(&client, "partial", &["naples"]).await;
    let _stop = start_all(&client, &Metrics::new());
    create_env(&client, "covered", "python", 9).await;
    create_env(&client, "partial", "python", 9).await;

    // The covering one is used as is: the pool spreads over the three clusters.
    wait_counts(
        &client,
        "covered",
        &[("florence", 3), ("local", 3), ("naples", 3)],
    )
    .await;
    let note = event_note(&client, "covered", "python", "OffloadingAdopted").await;
    assert!(note.contains("was not created by Rivulet"), "{note}");
    // The partial one is reported (what it misses), not fixed.
    let note = event_note(&client, "partial", "python", "OffloadingNotRivulets").await;
    assert!(note.contains("florence"), "{note}");

    // The verdicts are in the Environments' status too.
    let (status, _) = offloaded(&client, "covered", "OffloadingAdopted").await;
    assert_eq!(status, "True");
    let (status, message) = offloaded(&client, "partial", "OffloadingNotRivulets").await;
    assert_eq!(status, "False");
    assert!(message.contains("[florence]"), "{message}");

    // Neither was written: same resourceVersion, no Rivulet label or field manager.
    for (namespace, before) in [("covered", &covering), ("partial", &partial)] {
        let now = offloadings(&client, namespace)
            .get("offloading")
            .await
            .unwrap();
        assert_eq!(
            now.resource_version(),
            before.resource_version(),
            "{namespace}"
        );
        assert!(
            !now.labels().contains_key("app.kubernetes.io/managed-by"),
            "{namespace}"
        );
        assert!(
            now.managed_fields()
                .iter()
                .all(|m| m.manager.as_deref() != Some("rivulet-offloading")),
            "{namespace}"
        );
    }
    tc.shutdown().await;
}
