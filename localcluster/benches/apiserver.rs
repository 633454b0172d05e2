//! API server benchmark (a documented command, not a timed test):
//!
//! ```text
//! cargo bench -p rivulet-localcluster --bench apiserver
//! ```
//!
//! Reports durable creates/s from 8 concurrent clients, LIST latency over 10,000 objects and
//! write-to-watch event latency to 100 concurrent watchers, against a fresh cluster in a temp dir.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::json;

const WRITERS: usize = 8;
const OBJECTS: usize = 10_000;
const LISTS: usize = 40;
const WATCHERS: usize = 100;
const EVENTS: usize = 200;

async fn client(path: &std::path::Path) -> kube::Client {
    let config = kube::Config::from_custom_kubeconfig(
        Kubeconfig::read_from(path).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn micros_now() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

#[tokio::main]
async fn main() {
    let dir = std::env::temp_dir().join(format!("lc-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let t = Instant::now();
    let cluster =
        rivulet_localcluster::LocalCluster::start(rivulet_localcluster::Config::new(&dir))
            .await
            .unwrap();
    println!(
        "startup (fresh data dir, incl. CA and certificate generation): {:.1?}",
        t.elapsed()
    );
    let admin = client(cluster.kubeconfig_path()).await;
    for ns in ["bench", "watch"] {
        let n: Namespace = serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &n)
            .await
            .unwrap();
    }

    bench_creates(cluster.kubeconfig_path()).await;
    bench_list(&admin).await;
    bench_watch(&admin).await;
    cluster.shutdown().await;
    let t = Instant::now();
    let restarted =
        rivulet_localcluster::LocalCluster::start(rivulet_localcluster::Config::new(&dir))
            .await
            .unwrap();
    println!(
        "restart with {} objects in the data dir: {:.1?}",
        OBJECTS + EVENTS,
        t.elapsed()
    );
    restarted.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Durable creates from 8 concurrent clients (one connection each).
async fn bench_creates(kubeconfig: &std::path::Path) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let c = client(kubeconfig).await;
        tasks.push(tokio::spawn(async move {
            let api: Api<ConfigMap> = Api::namespaced(c, "bench");
            for i in (w..OBJECTS).step_by(WRITERS) {
                let cm: ConfigMap = serde_json::from_value(json!({
                    "metadata": {"name": format!("cm-{i:05}"), "labels": {"app": "bench", "writer": w.to_string()}},
                    "data": {"index": i.to_string(), "payload": "x".repeat(200)},
                }))
                .unwrap();
                api.create(&PostParams::default(), &cm).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    println!(
        "creates: {OBJECTS} objects from {WRITERS} clients in {elapsed:.2?} = {:.0} creates/s (each fsynced before the reply)",
        OBJECTS as f64 / elapsed.as_secs_f64()
    );
}

/// LIST of 10,000 objects (raw JSON over HTTPS, as a client receives it).
async fn bench_list(admin: &kube::Client) {
    let mut lat = Vec::new();
    let mut bytes = 0;
    for _ in 0..LISTS {
        let req = hyper::Request::get("/api/v1/namespaces/bench/configmaps")
            .body(Vec::new())
            .unwrap();
        let t = Instant::now();
        let text = admin.request_text(req).await.unwrap();
        lat.push(t.elapsed());
        bytes = text.len();
    }
    lat.sort();
    println!(
        "list: {OBJECTS} objects ({:.1} MiB) x{LISTS}: p50 {:.1?} p99 {:.1?}",
        bytes as f64 / 1_048_576.0,
        percentile(&lat, 0.5),
        percentile(&lat, 0.99)
    );
    let typed = Instant::now();
    let listed = Api::<ConfigMap>::namespaced(admin.clone(), "bench")
        .list(&ListParams::default())
        .await
        .unwrap();
    println!(
        "list (kube-rs typed, incl. client deserialization): {} objects in {:.1?}",
        listed.items.len(),
        typed.elapsed()
    );
}

/// Write-to-watch latency with 100 concurrent watchers.
async fn bench_watch(admin: &kube::Client) {
    let watch_api: Api<ConfigMap> = Api::namespaced(admin.clone(), "watch");
    let rv = watch_api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
    let connected = Arc::new(tokio::sync::Barrier::new(WATCHERS + 1));
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let api = watch_api.clone();
        let rv = rv.clone();
        let samples = samples.clone();
        let connected = connected.clone();
        watchers.push(tokio::spawn(async move {
            let mut stream = api
                .watch(&WatchParams::default().timeout(120), &rv)
                .await
                .unwrap()
                .boxed();
            connected.wait().await;
            let mut seen = 0;
            while seen < EVENTS {
                if let Some(WatchEvent::Added(cm)) = stream.try_next().await.unwrap() {
                    let sent: u128 = cm.data.unwrap()["sent"].parse().unwrap();
                    samples
                        .lock()
                        .unwrap()
                        .push(Duration::from_micros((micros_now() - sent) as u64));
                    seen += 1;
                }
            }
        }));
    }
    connected.wait().await;
    for i in 0..EVENTS {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("ev-{i}")}, "data": {"sent": micros_now().to_string()}})).unwrap();
        watch_api.create(&PostParams::default(), &cm).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for w in watchers {
        w.await.unwrap();
    }
    let mut s = samples.lock().unwrap().clone();
    s.sort();
    println!(
        "watch: {EVENTS} events x {WATCHERS} watchers = {} deliveries, write-to-watch latency p50 {:.2?} p99 {:.2?}",
        s.len(),
        percentile(&s, 0.5),
        percentile(&s, 0.99)
    );
}
