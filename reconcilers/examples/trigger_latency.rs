//! Kubewatcher benchmark: event-to-function latency for 1,000 pod events, next to the latency
//! of a plain watch on the same pods (the floor: what any watcher sees).
//!
//! ```sh
//! cargo run --release -p rivulet-reconcilers --example trigger_latency          # 1,000 pods
//! cargo run --release -p rivulet-reconcilers --example trigger_latency -- 200   # other count
//! ```
//!
//! A fresh localcluster in a temp dir; a recording HTTP server stands in for the router's
//! internal listener (the function); pods are created one after another by one client. For each
//! pod: time from just before its create request to (a) the `ADDED` event on a plain watch and
//! (b) the kubewatcher's POST reaching the recorder.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::recorder::Recorder;
use futures::TryStreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use rivulet_api::KubernetesWatchTrigger;
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::triggers::delivery::DeliveryConfig;
use rivulet_reconcilers::triggers::tasks::TriggerCalls;
use rivulet_testing::TestCluster;
use serde_json::json;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    let p50 = percentile(&samples, 0.5);
    println!(
        "{name:<32} n={:<5} p50={:>8.2?} p99={:>8.2?} max={:>8.2?}",
        samples.len(),
        p50,
        percentile(&samples, 0.99),
        samples[samples.len() - 1]
    );
    p50
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1000, |a| a.parse().expect("pod count"));
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    common::install_crds(&client).await;
    common::add_namespace(&client, "bench").await;
    let recorder = Recorder::start().await;
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    let calls = TriggerCalls {
        router_url: recorder.url(),
        delivery: DeliveryConfig::default(),
        authorization: None,
        metrics: Metrics::new(),
    };
    tokio::spawn(rivulet_reconcilers::triggers::kubewatcher::run(
        client.clone(),
        &calls,
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    ));
    common::create::<KubernetesWatchTrigger>(
        &client,
        "default",
        json!({"apiVersion": "fission.io/v1", "kind": "KubernetesWatchTrigger",
               "metadata": {"name": "bench"},
               "spec": {"namespace": "bench", "type": "pod",
                        "functionref": {"type": "name", "name": "fn"}}}),
    )
    .await;
    common::ready_reason::<KubernetesWatchTrigger>(&client, "default", "bench", "Watching").await;

    // The floor: a plain watch of the same namespace.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "bench");
    let seen: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let watched = seen.clone();
    let stream = pods.watch(&WatchParams::default(), "0").await.unwrap();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Ok(Some(event)) = stream.try_next().await {
            if let WatchEvent::Added(pod) = event {
                watched
                    .lock()
                    .unwrap()
                    .entry(pod.name_any())
                    .or_insert_with(Instant::now);
            }
        }
    });

    let mut sent = HashMap::new();
    let started = Instant::now();
    for i in 0..n {
        let name = format!("p{i:05}");
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {"app": "bench"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        sent.insert(name, Instant::now());
        pods.create(&PostParams::default(), &pod).await.unwrap();
    }
    let created_in = started.elapsed();
    let deadline = Instant::now() + Duration::from_mins(2);
    loop {
        let delivered = recorder.on("/fission-function/fn").len();
        if delivered >= n || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all_in = started.elapsed();
    let received: HashMap<String, Instant> = recorder
        .on("/fission-function/fn")
        .into_iter()
        .map(|r| (r.object_name(), r.at))
        .collect();
    let seen = seen.lock().unwrap().clone();
    let latency = |at: &HashMap<String, Instant>| -> Vec<Duration> {
        sent.iter()
            .filter_map(|(name, t0)| at.get(name).map(|t| t.duration_since(*t0)))
            .collect()
    };
    println!(
        "{n} pods created in {created_in:.2?} ({:.0}/s); all delivered after {all_in:.2?}; delivered {} of {n}",
        n as f64 / created_in.as_secs_f64(),
        received.len()
    );
    let floor = summary("plain watch (floor)", latency(&seen));
    let ours = summary("kubewatcher -> function", latency(&received));
    println!(
        "p50 ratio kubewatcher/floor: {:.2}",
        ours.as_secs_f64() / floor.as_secs_f64()
    );
    cluster.shutdown().await;
}
