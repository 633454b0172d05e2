//! Node agent benchmark: pods started per second and time to Ready, for real process pods
//! (`local/exec` running a tiny HTTP server, readiness by HTTP probe) and for simulated pods.
//!
//! ```sh
//! cargo run --release -p rivulet-localcluster-agent --example bench            # 100 real + 3000 simulated
//! cargo run --release -p rivulet-localcluster-agent --example bench -- 50 1000  # other counts
//! ```
//!
//! The same binary is the tiny server (`bench serve`): it answers `HTTP/1.0 200` to every
//! connection on `$RIVULET_BIND_ADDRESS:8080`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use rivulet_localcluster::{Config, LocalCluster};
use rivulet_localcluster_agent::{Agent, AgentConfig};
use serde_json::json;

fn serve() {
    use std::io::{Read, Write};
    let addr = std::env::var("RIVULET_BIND_ADDRESS").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = std::net::TcpListener::bind((addr.as_str(), 8080)).expect("bind");
    for stream in listener.incoming().flatten() {
        let mut stream = stream;
        let mut buf = [0u8; 1024];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

async fn run(n: usize, simulate: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = AgentConfig::new(dir.path().join("agent"));
    config.simulate_pods = simulate;
    config.max_pods = u32::try_from(n).unwrap() + 10;
    let mut server = Config::new(dir.path().join("server"));
    let ext = rivulet_localcluster_agent::server_extensions(&config);
    server.create_hooks = ext.create_hooks;
    server.pod_logs = Some(ext.pod_logs);
    let cluster = LocalCluster::start(server).await.unwrap();
    let client = rivulet_testing::client_for(cluster.kubeconfig_path())
        .await
        .unwrap();
    let agent = Agent::start(client.clone(), config).await.unwrap();
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let exe = std::env::current_exe().unwrap().display().to_string();
    // Ready times as seen by a watcher.
    let watch_api = api.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(String, Instant)>();
    let watch = tokio::spawn(async move {
        let stream = watcher::watcher(watch_api, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        futures::pin_mut!(stream);
        while let Ok(Some(p)) = stream.try_next().await {
            if ready(&p) {
                let _ = tx.send((p.name_any(), Instant::now()));
            }
        }
    });
    let began = Instant::now();
    let created: HashMap<String, Instant> = futures::stream::iter(0..n)
        .map(|i| {
            let api = api.clone();
            let exe = exe.clone();
            async move {
                let name = format!("bench-{i}");
                let p: Pod = serde_json::from_value(json!({
                    "metadata": {"name": name},
                    "spec": {"containers": [{"name": "c", "image": "local/exec", "command": [exe, "serve"],
                        "readinessProbe": {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}}]}
                }))
                .unwrap();
                api.create(&PostParams::default(), &p).await.unwrap();
                (name, Instant::now())
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let created_in = began.elapsed();
    let mut ready_at: HashMap<String, Instant> = HashMap::new();
    while ready_at.len() < n {
        let (name, at) = tokio::time::timeout(Duration::from_mins(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        ready_at.entry(name).or_insert(at);
    }
    let all_ready = began.elapsed();
    let mut ttr: Vec<Duration> = ready_at
        .iter()
        .map(|(name, at)| at.saturating_duration_since(created[name]))
        .collect();
    ttr.sort();
    let kind = if simulate {
        "simulated"
    } else {
        "real process"
    };
    println!(
        "{n} {kind} pods: created in {:.2} s, all Ready after {:.2} s => {:.0} pods/s; time to Ready p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms",
        created_in.as_secs_f64(),
        all_ready.as_secs_f64(),
        usize_f64(n) / all_ready.as_secs_f64(),
        percentile(&ttr, 0.5).as_secs_f64() * 1000.0,
        percentile(&ttr, 0.95).as_secs_f64() * 1000.0,
        ttr.last().unwrap().as_secs_f64() * 1000.0,
    );
    let began = Instant::now();
    api.delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    loop {
        if api
            .list(&ListParams::default().limit(1))
            .await
            .unwrap()
            .items
            .is_empty()
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "  deleted all {n} (graceful, processes stopped) in {:.2} s",
        began.elapsed().as_secs_f64()
    );
    watch.abort();
    agent.shutdown().await;
    cluster.shutdown().await;
}

#[allow(clippy::cast_precision_loss)]
fn usize_f64(n: usize) -> f64 {
    n as f64
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("serve") {
        serve();
        return;
    }
    let real: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(100);
    let simulated: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3000);
    run(real, false).await;
    run(simulated, true).await;
}
