//! Reconcilers at scale: 1,000 Environments × poolsize 3 and 5,000 poolmgr Functions on
//! localcluster with simulated pods, reconciled by the real `rivulet controller` binary running
//! as a child process (so its peak RSS is its own). This process runs the cluster (API server,
//! node agent with `simulate_pods`, built-in controllers) and the measurements.
//!
//! ```sh
//! cargo build --release -p rivulet-operator --bin rivulet --example reconcilers_scale
//! target/release/examples/reconcilers_scale                 # 1000 envs, 5000 functions, resync 20 s
//! target/release/examples/reconcilers_scale 100 500 10      # envs, functions, resync seconds
//! ```
//!
//! Measures: time from the first create to convergence (every warm pod Ready, every Function
//! `Ready=True`, every Environment `Ready=True`); the API requests the controller sent until
//! then and during the steady-state window (its `rivulet_api_requests_total`); writes to the API server during 3 resync periods
//! after convergence (watch events on every kind the reconcilers write, and the store's global
//! resourceVersion minus the node agent's heartbeats); the controller's peak RSS (`VmHWM` of the
//! child process).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use rivulet_api::{Environment, Function};
use rivulet_localcluster::{Config, LocalCluster};
use rivulet_localcluster_agent::{Agent, AgentConfig};
use serde_json::json;

const NAMESPACE: &str = "default";
const POOLSIZE: usize = 3;
const RESYNC_PERIODS: u32 = 3;
const CONVERGE_DEADLINE: Duration = Duration::from_mins(10);

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .map_or(default, |a| a.parse().expect("numeric argument"))
}

/// `VmHWM` and `VmRSS` (kB) of a process.
fn memory_kb(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn rivulet_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/examples/reconcilers_scale → target/<profile>/rivulet
    let binary = exe.parent().unwrap().parent().unwrap().join("rivulet");
    assert!(
        binary.exists(),
        "{} not found: build it first (cargo build --release -p rivulet-operator --bin rivulet)",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_controller(kubeconfig: &Path, metrics_port: u16, resync: u64, log: &Path) -> Child {
    Command::new(rivulet_binary())
        .args([
            "controller",
            "--no-leader-elect",
            "--metrics-addr",
            &format!("127.0.0.1:{metrics_port}"),
        ])
        .env("KUBECONFIG", kubeconfig)
        .env("RIVULET_RESYNC_SECONDS", resync.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap()
}

/// The controller's `/metrics` text.
async fn scrape(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return String::new();
    };
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).await.unwrap();
    text
}

/// `rivulet_reconcile_total` per reconciler, from the controller's `/metrics`.
async fn reconciles(port: u16) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in scrape(port).await.lines() {
        if let Some(rest) = line.strip_prefix("rivulet_reconcile_total{reconciler=\"")
            && let Some((name, value)) = rest.split_once("\"} ")
        {
            out.insert(name.to_owned(), value.parse().unwrap_or(0.0));
        }
    }
    out
}

/// `rivulet_api_requests_total` per `verb resource`: every request the controller sent.
async fn api_requests(port: u16) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for line in scrape(port).await.lines() {
        let Some(rest) = line.strip_prefix("rivulet_api_requests_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            labels
                .split(',')
                .find_map(|l| l.strip_prefix(&format!("{name}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
                .unwrap_or_default()
        };
        out.insert(
            format!("{} {}", label("verb"), label("resource")),
            value.parse().unwrap_or(0.0),
        );
    }
    out
}

/// `after - before` per key, and the total.
fn delta(
    before: &BTreeMap<String, f64>,
    after: &BTreeMap<String, f64>,
) -> (f64, BTreeMap<String, f64>) {
    let per_key: BTreeMap<String, f64> = after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v > 0.0)
        .collect();
    (per_key.values().sum(), per_key)
}

fn condition_true(object: &serde_json::Value, type_: &str) -> bool {
    object["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == type_ && c["status"] == "True")
}

async fn install_crds(client: &Client) {
    rivulet_testing::install_crds(client, rivulet_api::crds::fission_crds()).await;
}

async fn create_all(client: &Client, envs: usize, functions: usize) {
    let dynamic = |gvk: &GroupVersionKind| {
        Api::<DynamicObject>::namespaced_with(
            client.clone(),
            NAMESPACE,
            &ApiResource::from_gvk(gvk),
        )
    };
    let fission = |kind: &str| GroupVersionKind::gvk("fission.io", "v1", kind);
    let packages = dynamic(&fission("Package"));
    let package = json!({"apiVersion": "fission.io/v1", "kind": "Package",
        "metadata": {"name": "pkg"},
        "spec": {"environment": {"name": "env-0"}, "deployment": {"type": "literal", "literal": "aGk="}}});
    packages
        .create(
            &PostParams::default(),
            &serde_json::from_value(package).unwrap(),
        )
        .await
        .unwrap();
    let environments = dynamic(&fission("Environment"));
    let function_api = dynamic(&fission("Function"));
    let env_objects = (0..envs).map(|i| {
        json!({"apiVersion": "fission.io/v1", "kind": "Environment", "metadata": {"name": format!("env-{i}")},
            "spec": {"version": 3, "runtime": {"image": "fission/python-env"}, "poolsize": POOLSIZE}})
    });
    let function_objects = (0..functions).map(|i| {
        json!({"apiVersion": "fission.io/v1", "kind": "Function", "metadata": {"name": format!("fn-{i}")},
            "spec": {"environment": {"name": format!("env-{}", i % envs)},
                     "package": {"packageref": {"name": "pkg"}, "functionName": "main.main"},
                     "InvokeStrategy": {"StrategyType": "execution", "ExecutionStrategy": {"ExecutorType": "poolmgr"}}}})
    });
    let creates = env_objects
        .map(|o| (environments.clone(), o))
        .chain(function_objects.map(|o| (function_api.clone(), o)));
    futures::stream::iter(creates)
        .map(|(api, object)| async move {
            api.create(
                &PostParams::default(),
                &serde_json::from_value(object).unwrap(),
            )
            .await
            .unwrap();
        })
        .buffer_unordered(32)
        .collect::<Vec<()>>()
        .await;
}

/// (warm pods Ready, Functions Ready, Environments Ready).
async fn progress(client: &Client) -> (usize, usize, usize) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let ready_pods = pods
        .list(&ListParams::default().labels("executorType=poolmgr,managed=true"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .count();
    let functions: Api<Function> = Api::namespaced(client.clone(), NAMESPACE);
    let ready_functions = functions
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|f| condition_true(&serde_json::to_value(f).unwrap(), "Ready"))
        .count();
    let environments: Api<Environment> = Api::namespaced(client.clone(), NAMESPACE);
    let ready_envs = environments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| condition_true(&serde_json::to_value(e).unwrap(), "Ready"))
        .count();
    (ready_pods, ready_functions, ready_envs)
}

/// Counts watch events (adds, changes, deletes) after the initial list, per kind.
fn count_writes(client: &Client, kinds: &[(&str, &str, &str)]) -> Vec<(String, Arc<AtomicU64>)> {
    kinds
        .iter()
        .map(|(group, version, kind)| {
            let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind));
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let counter = Arc::new(AtomicU64::new(0));
            let count = counter.clone();
            tokio::spawn(async move {
                let mut listed = false;
                let stream = watcher(api, watcher::Config::default());
                futures::pin_mut!(stream);
                while let Ok(Some(event)) = stream.try_next().await {
                    match event {
                        watcher::Event::InitDone => listed = true,
                        watcher::Event::Apply(_) | watcher::Event::Delete(_) if listed => {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            });
            ((*kind).to_owned(), counter)
        })
        .collect()
}

fn main() {
    let envs = usize::try_from(arg(1, 1000)).unwrap();
    let functions = usize::try_from(arg(2, 5000)).unwrap();
    let resync = arg(3, 20);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(envs, functions, resync));
}

async fn run(envs: usize, functions: usize, resync: u64) {
    let dir = tempfile::tempdir().unwrap();
    let mut agent_config = AgentConfig::new(dir.path().join("agent"));
    agent_config.simulate_pods = true;
    agent_config.max_pods = u32::try_from(envs * POOLSIZE + 100).unwrap();
    let mut server = Config::new(dir.path().join("server"));
    let extensions = rivulet_localcluster_agent::server_extensions(&agent_config);
    server.create_hooks = extensions.create_hooks;
    server.pod_logs = Some(extensions.pod_logs);
    // The bench, the node agent and the controller all connect from 127.0.0.1, and the
    // controller alone opens hundreds of connections at start-up (one per concurrent request):
    // the default cap of 512 per client address reset the bench's own creates.
    server.connections.max_per_client = 16_384;
    let cluster = LocalCluster::start(server).await.unwrap();
    let kubeconfig = cluster.kubeconfig_path().to_path_buf();
    let client = rivulet_testing::client_for(&kubeconfig).await.unwrap();
    install_crds(&client).await;
    let agent = Agent::start(client.clone(), agent_config.with_kubeconfig(&kubeconfig))
        .await
        .unwrap();

    let port = free_port();
    let log = dir.path().join("controller.log");
    let mut controller = start_controller(&kubeconfig, port, resync, &log);
    let pid = controller.id().to_string();
    rivulet_testing::eventually(Duration::from_secs(30), "controller metrics", || async {
        let counts = reconciles(port).await;
        if counts.contains_key("function") {
            Ok(())
        } else {
            Err(format!("{counts:?}"))
        }
    })
    .await;
    let (idle_hwm, _) = memory_kb(&pid);
    let requests_idle = api_requests(port).await;

    let started = Instant::now();
    create_all(&client, envs, functions).await;
    let created = started.elapsed();
    let want = (envs * POOLSIZE, functions, envs);
    let mut last = (0, 0, 0);
    while last != want {
        assert!(
            started.elapsed() < CONVERGE_DEADLINE,
            "not converged after {CONVERGE_DEADLINE:?}: {last:?} of {want:?} (log {})",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        last = progress(&client).await;
    }
    let converged = started.elapsed();
    let (converged_hwm, _) = memory_kb(&pid);
    let (requests, per_kind) = delta(&requests_idle, &api_requests(port).await);
    println!("reconciles until convergence: {:?}", reconciles(port).await);
    println!(
        "API requests by the controller until convergence: {requests} (after its start-up: \
         {} before the first create) {per_kind:?}",
        requests_idle.values().sum::<f64>()
    );
    println!(
        "converged: {} warm pods Ready, {functions} Functions Ready, {envs} Environments Ready \
         after {:.1} s (creates took {:.1} s); controller VmHWM {} MB",
        want.0,
        converged.as_secs_f64(),
        created.as_secs_f64(),
        converged_hwm / 1024
    );

    // Steady state: everything the reconcilers could write, watched for 3 resync periods.
    let kinds = [
        ("", "v1", "Pod"),
        ("fission.io", "v1", "Environment"),
        ("fission.io", "v1", "Function"),
        ("fission.io", "v1", "Package"),
        ("fission.io", "v1", "HTTPTrigger"),
        ("apps", "v1", "Deployment"),
        ("", "v1", "Service"),
        ("autoscaling", "v2", "HorizontalPodAutoscaler"),
        ("networking.k8s.io", "v1", "Ingress"),
        ("events.k8s.io", "v1", "Event"),
        ("offloading.liqo.io", "v1beta1", "NamespaceOffloading"),
    ];
    let heartbeat_kinds = [("", "v1", "Node"), ("coordination.k8s.io", "v1", "Lease")];
    let writes = count_writes(&client, &kinds);
    let heartbeats = count_writes(&client, &heartbeat_kinds);
    // Let the watches finish their initial lists before the window opens.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = reconciles(port).await;
    let requests_before = api_requests(port).await;
    let rv_before = cluster.resource_version();
    let window = Duration::from_secs(resync * u64::from(RESYNC_PERIODS) + 2);
    tokio::time::sleep(window).await;
    let rv_after = cluster.resource_version();
    let after = reconciles(port).await;
    let (window_requests, window_per_kind) = delta(&requests_before, &api_requests(port).await);
    let (hwm, rss) = memory_kb(&pid);

    let written: Vec<(String, u64)> = writes
        .iter()
        .map(|(k, c)| (k.clone(), c.load(Ordering::Relaxed)))
        .collect();
    let total: u64 = written.iter().map(|(_, n)| n).sum();
    let heartbeat_total: u64 = heartbeats
        .iter()
        .map(|(_, c)| c.load(Ordering::Relaxed))
        .sum();
    println!(
        "steady state over {RESYNC_PERIODS} resync periods of {resync} s ({} s window): {total} \
         writes to the kinds the reconcilers write {written:?}; store resourceVersion +{} of which \
         {heartbeat_total} node/lease heartbeats",
        window.as_secs(),
        rv_after - rv_before
    );
    let resyncs: BTreeMap<&String, f64> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0.0)))
        .collect();
    println!("reconciles during the window: {resyncs:?}");
    println!(
        "API requests by the controller during the window: {window_requests} {window_per_kind:?}"
    );
    println!(
        "controller memory: VmHWM {} MB (idle before the objects: {} MB), VmRSS now {} MB",
        hwm / 1024,
        idle_hwm / 1024,
        rss / 1024
    );
    let (own_hwm, _) = memory_kb("self");
    println!(
        "this process (API server + node agent + measurement): VmHWM {} MB",
        own_hwm / 1024
    );

    let _ = controller.kill();
    let _ = controller.wait();
    agent.shutdown().await;
    cluster.shutdown().await;
}
