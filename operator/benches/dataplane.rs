//! Data-plane benchmark in local mode (`rivulet up` with the real Python runtime), measured side
//! by side in one run:
//!
//! - **warm path**: `wrk -c32` against one specialized runtime pod directly, through nginx
//!   `proxy_pass` (keep-alive upstream) to the same pod, and through the router;
//! - **cold start**: time to first byte of the first request to each of 20 never-invoked
//!   functions on a warm pool, next to the floor measured directly on other warm pods of the same
//!   image (the fetcher's specialize call + one request to the runtime);
//! - **burst**: 200 concurrent first requests to a cold function with `concurrency: 5`;
//! - **sandbox cost**: the cold start of (b) in two `rivulet up` running at once, one with the
//!   default pods (bubblewrap sandbox, own network namespace when root) and one with
//!   `--pod-sandbox none --pod-network host`, requests alternating between them.
//!
//! ```sh
//! sudo apt-get install -y wrk nginx-light   # once
//! cargo bench -p rivulet-operator --bench dataplane
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use rivulet_api::specialize::FunctionSpecializeRequest;
use rivulet_api::{Environment, Function};
use rivulet_router::fetcher::FetcherClient;
#[path = "support/wrk.rs"]
mod wrk;

use rivulet_testing::{UpProcess, client_for, eventually, free_port, http_response, kubectl_apply};

const COLD_FUNCTIONS: usize = 20;
/// Warm pods of the benchmark's environment.
const BENCH_POOL: usize = COLD_FUNCTIONS + 2;
const WRK_SECONDS: &str = "10s";

fn up() -> UpProcess {
    UpProcess::start(Path::new(env!("CARGO_BIN_EXE_rivulet")), &[])
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn environment(name: &str, poolsize: usize) -> String {
    format!(
        "apiVersion: fission.io/v1\nkind: Environment\nmetadata: {{name: {name}, namespace: default}}\nspec: {{version: 3, runtime: {{image: fission/python-env}}, poolsize: {poolsize}}}\n---\n"
    )
}

/// A Package, Function and GET trigger `/<name>` in environment `env`.
fn function(name: &str, env: &str, extra_spec: &str) -> String {
    let code = base64(b"def main():\n    return 'hello'\n");
    format!(
        "apiVersion: fission.io/v1\nkind: Package\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  environment: {{namespace: default, name: {env}}}\n  deployment: {{type: literal, literal: {code}}}\n---\napiVersion: fission.io/v1\nkind: Function\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  environment: {{namespace: default, name: {env}}}\n  package: {{packageref: {{namespace: default, name: {name}}}}}\n{extra_spec}  InvokeStrategy: {{StrategyType: execution, ExecutionStrategy: {{ExecutorType: poolmgr}}}}\n---\napiVersion: fission.io/v1\nkind: HTTPTrigger\nmetadata: {{name: {name}, namespace: default}}\nspec: {{relativeurl: /{name}, methods: [GET], functionref: {{type: name, name: {name}}}}}\n---\n"
    )
}

fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ready, unclaimed warm pods of an environment.
async fn warm_pods(client: &Client, env: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(&format!("environmentName={env},managed=true")))
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(ready)
        .collect()
}

async fn wait_for_warm(client: &Client, env: &str, count: usize) {
    eventually(
        Duration::from_mins(5),
        &format!("{count} warm {env} pods"),
        || async {
            let n = warm_pods(client, env).await.len();
            if n >= count {
                Ok(())
            } else {
                Err(format!("{n} ready"))
            }
        },
    )
    .await;
}

fn pod_ip(pod: &Pod) -> String {
    pod.status.as_ref().unwrap().pod_ip.clone().unwrap()
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

/// A markdown table of p50, p95 and max per row of sorted samples.
fn latency_table(title: &str, rows: &[(&str, &Vec<Duration>)]) {
    println!("| {title} | p50 | p95 | max |\n| --- | --- | --- | --- |");
    for (name, samples) in rows {
        println!(
            "| {name} | {} | {} | {} |",
            ms(percentile(samples, 0.5)),
            ms(percentile(samples, 0.95)),
            ms(samples[samples.len() - 1])
        );
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Waits until a GET of `url` answers 200.
async fn answers_200(url: &str, wait: Duration) {
    eventually(wait, &format!("GET {url} -> 200"), || async {
        let r = http_response("GET", url, "")
            .await
            .map_err(|e| e.to_string())?;
        if r.status == 200 {
            Ok(())
        } else {
            Err(format!("{r:?}"))
        }
    })
    .await;
}

/// Time to the first byte of the answer (the status line) of one GET.
async fn first_byte(url: &str) -> (Duration, u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(
            format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut buf = [0u8; 16];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut buf[read..]).await.unwrap();
        assert!(n > 0, "connection closed before the status line");
        read += n;
    }
    let elapsed = started.elapsed();
    let status = std::str::from_utf8(&buf[9..12]).unwrap().parse().unwrap();
    (elapsed, status)
}

type Wrk = wrk::Report;

fn wrk(url: &str) -> Wrk {
    let run = wrk::run(&["-t2", "-c32", "-d", WRK_SECONDS], url);
    assert_eq!(
        run.non_2xx, 0,
        "errors during the wrk run against {url}: {} non-2xx answers",
        run.non_2xx
    );
    run
}

/// nginx in front of `upstream`, keep-alive to it, on a free port, with `extra` directives in
/// its `location`; returns (child, port).
fn nginx(dir: &Path, upstream: &str, extra: &str) -> (Child, u16) {
    let port = free_port().unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes auto;\npid {pid};\nerror_log stderr error;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  upstream fn {{ server {upstream}; keepalive 64; }}\n  server {{\n    listen 127.0.0.1:{port};\n    location / {{ proxy_pass http://fn; proxy_http_version 1.1; proxy_set_header Connection \"\"; {extra} }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            tmp = dir.display(),
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .args(["-c", conf.to_str().unwrap(), "-p", dir.to_str().unwrap()])
        .spawn()
        .expect("nginx is not installed: sudo apt-get install -y nginx-light");
    (child, port)
}

/// The headers Fission's router adds (and so ours does), set by nginx: the Python runtime
/// parses every one of them, which costs it about a tenth of its throughput.
fn router_headers(function: &Function) -> String {
    let meta = &function.metadata;
    [
        ("X-Fission-Full-Url", "$request_uri".to_owned()),
        ("X-Fission-Function-Uid", meta.uid.clone().unwrap()),
        ("X-Fission-Function-Name", meta.name.clone().unwrap()),
        (
            "X-Fission-Function-Namespace",
            meta.namespace.clone().unwrap(),
        ),
        (
            "X-Fission-Function-Resourceversion",
            meta.resource_version.clone().unwrap(),
        ),
        ("Forwarded", "\"host=$http_host;\"".to_owned()),
        ("X-Forwarded-Host", "$http_host".to_owned()),
        ("X-Forwarded-For", "$remote_addr".to_owned()),
    ]
    .iter()
    .map(|(name, value)| format!("proxy_set_header {name} {value};"))
    .collect::<Vec<_>>()
    .join(" ")
}

/// CPU time (user + system) used so far by process `pid` and its child processes (nginx's
/// workers), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own + children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .map(cpu_ticks)
        .sum::<u64>()
}

/// `wrk` against `url`, with the CPU the proxy process `pid` spent per request.
fn wrk_with_cpu(url: &str, pid: u32) -> (Wrk, f64) {
    let before = cpu_ticks(pid);
    let run = wrk(url);
    let ticks = cpu_ticks(pid) - before;
    // Clock ticks are 10 ms on Linux (USER_HZ = 100).
    let micros = ticks as f64 * 10_000.0 / run.requests as f64;
    (run, micros)
}

/// nginx with `extra` in front of `upstream`: its wrk run and its CPU per request (µs).
fn behind_nginx(dir: &Path, upstream: &str, extra: &str) -> (Wrk, f64) {
    let (mut child, port) = nginx(dir, upstream, extra);
    let url = format!("http://127.0.0.1:{port}/");
    let ready = || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let measured = wrk_with_cpu(&url, child.id());
    // SIGTERM, not SIGKILL: the master then stops its workers.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    measured
}

/// `rivulet router` as its own process on free ports; returns it and its public URL.
fn standalone_router(kubeconfig: &Path, fetcher_key: &Path) -> (Child, String) {
    let (public, internal) = (free_port().unwrap(), free_port().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_rivulet"))
        .args(["router", "--port", &public.to_string(), "--internal-addr"])
        .arg(format!("127.0.0.1:{internal}"))
        // It specializes the pods it serves again (recovery): it needs `up`'s key.
        .arg("--fetcher-key-file")
        .arg(fetcher_key)
        .env("KUBECONFIG", kubeconfig)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    (child, format!("http://127.0.0.1:{public}"))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let up = up();
    let client = client_for(&up.kubeconfig).await.unwrap();
    let mut manifests = environment("bench", BENCH_POOL) + &environment("floor", COLD_FUNCTIONS);
    // One pod serves every connection, as for the direct and nginx runs (Fission's default
    // requestsPerPod of 1 would specialize a pod per concurrent connection).
    manifests += &function(
        "warm",
        "bench",
        "  requestsPerPod: 1000\n  concurrency: 1\n",
    );
    manifests += &function("burst", "bench", "  concurrency: 5\n  requestsPerPod: 1\n");
    for i in 0..COLD_FUNCTIONS {
        manifests += &function(&format!("cold{i:02}"), "bench", "");
        manifests += &function(&format!("floor{i:02}"), "floor", "");
    }
    kubectl_apply(&up.kubeconfig, &manifests);
    wait_for_warm(&client, "bench", BENCH_POOL).await;
    wait_for_warm(&client, "floor", COLD_FUNCTIONS).await;
    let route = |path: &str| format!("{}/{path}", up.router);
    answers_200(&route("warm"), Duration::from_mins(1)).await;

    // (a) Warm path.
    let warm_pod = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("functionName=warm"))
        .await
        .unwrap()
        .items
        .into_iter()
        .find(ready)
        .unwrap();
    let direct = format!("{}:8888", pod_ip(&warm_pod));
    let warm_function: Function = Api::namespaced(client.clone(), "default")
        .get("warm")
        .await
        .unwrap();
    let direct_run = wrk(&format!("http://{direct}/"));
    let plain_dir = tempfile::tempdir().unwrap();
    let nginx_plain = behind_nginx(plain_dir.path(), &direct, "");
    let headers_dir = tempfile::tempdir().unwrap();
    let nginx_headers = behind_nginx(headers_dir.path(), &direct, &router_headers(&warm_function));
    let in_up = wrk(&route("warm"));
    // The router as deployed in a cluster: its own process, not sharing one with the API
    // server, node agent and reconcilers of local mode.
    let (mut standalone, standalone_url) =
        standalone_router(&up.kubeconfig, &up.dir.path().join("data/fetcher.key"));
    answers_200(&format!("{standalone_url}/warm"), Duration::from_secs(30)).await;
    let alone = wrk_with_cpu(&format!("{standalone_url}/warm"), standalone.id());
    let _ = Command::new("kill")
        .args(["-TERM", &standalone.id().to_string()])
        .status();
    let _ = standalone.wait();
    let results = [
        ("direct to the runtime pod", direct_run, None),
        ("nginx proxy_pass", nginx_plain.0, Some(nginx_plain.1)),
        (
            "nginx proxy_pass adding the router's 8 headers",
            nginx_headers.0,
            Some(nginx_headers.1),
        ),
        ("rivulet router (inside rivulet up)", in_up, None),
        ("rivulet router (own process)", alone.0, Some(alone.1)),
    ];
    println!("\n(a) warm path, wrk -t2 -c32 -d{WRK_SECONDS}, same specialized pod");
    println!(
        "| path | req/s | p50 | p99 | proxy CPU per request |\n| --- | --- | --- | --- | --- |"
    );
    for (name, r, cpu) in &results {
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            r.requests_per_second,
            r.p50,
            r.p99,
            cpu.map_or("-".to_owned(), |us| format!("{us:.0} µs"))
        );
    }
    for (name, r, _) in &results[3..] {
        for (baseline, b, _) in &results[1..3] {
            println!(
                "{name} / {baseline}: req/s {:.2}",
                r.requests_per_second / b.requests_per_second
            );
        }
    }

    // (b) Cold start, one function at a time, each with a warm pod waiting.
    let mut cold = Vec::new();
    for i in 0..COLD_FUNCTIONS {
        // A settled pool: the replacement of the pod claimed last is up, so no runtime is
        // booting (a Python start takes a core for about half a second) while this is timed,
        // as for the floor below.
        wait_for_warm(&client, "bench", BENCH_POOL).await;
        let (elapsed, status) = first_byte(&route(&format!("cold{i:02}"))).await;
        assert_eq!(status, 200, "cold{i:02}");
        cold.push(elapsed);
    }
    // The floor: the same work without the router, on warm pods of an identical environment.
    // The fetchers accept only the router's token, derived from `up`'s key.
    let key = std::fs::read(up.dir.path().join("data/fetcher.key")).unwrap();
    let fetcher = FetcherClient::with_key(Some(
        rivulet_api::specialize::FetcherKey::from_file_bytes(&key).unwrap(),
    ));
    let environment: Environment = Api::namespaced(client.clone(), "default")
        .get("floor")
        .await
        .unwrap();
    let pods = warm_pods(&client, "floor").await;
    let mut floor = Vec::new();
    for (i, pod) in pods.iter().take(COLD_FUNCTIONS).enumerate() {
        let function: Function = Api::namespaced(client.clone(), "default")
            .get(&format!("floor{i:02}"))
            .await
            .unwrap();
        let request = FunctionSpecializeRequest::for_function(&function, &environment);
        let ip = pod_ip(pod);
        let started = Instant::now();
        fetcher
            .specialize(
                format!("{ip}:8000").parse().unwrap(),
                environment.metadata.uid.as_deref().unwrap_or_default(),
                &request,
            )
            .await
            .unwrap();
        let specialize = started.elapsed();
        let (first, status) = first_byte(&format!("http://{ip}:8888/")).await;
        assert_eq!(status, 200);
        floor.push(specialize + first);
    }
    cold.sort();
    floor.sort();
    println!(
        "\n(b) cold start, {COLD_FUNCTIONS} never-invoked python functions, request to first byte"
    );
    latency_table(
        "",
        &[
            ("through the router", &cold),
            ("floor: specialize + first request, direct", &floor),
        ],
    );
    println!(
        "p50 router / floor: {:.2}",
        percentile(&cold, 0.5).as_secs_f64() / percentile(&floor, 0.5).as_secs_f64()
    );

    // (c) Burst.
    wait_for_warm(&client, "bench", 5).await;
    let url = route("burst");
    let answers = futures::future::join_all((0..200).map(|_| {
        let url = url.clone();
        async move { http_response("GET", &url, "").await.map_or(0, |r| r.status) }
    }))
    .await;
    let count = |f: &dyn Fn(u16) -> bool| answers.iter().filter(|s| f(**s)).count();
    let specialized = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels("functionName=burst"))
        .await
        .unwrap()
        .items
        .len();
    println!("\n(c) burst: 200 concurrent first requests, concurrency 5, requestsPerPod 1");
    println!(
        "200 OK: {}, 429: {}, 5xx: {}, other: {}; pods specialized: {specialized}",
        count(&|s| s == 200),
        count(&|s| s == 429),
        count(&|s| s >= 500),
        count(&|s| s != 200 && s != 429 && s < 500)
    );
    drop(up);

    sandbox_cost().await;
}

/// (d) What the sandbox and the pod network cost on the cold path.
async fn sandbox_cost() {
    let sandboxed = up();
    let plain = UpProcess::start(
        Path::new(env!("CARGO_BIN_EXE_rivulet")),
        &["--pod-sandbox", "none", "--pod-network", "host"],
    );
    let mut setups = Vec::new();
    for u in [&sandboxed, &plain] {
        let client = client_for(&u.kubeconfig).await.unwrap();
        let mut manifests = environment("side", 2);
        for i in 0..COLD_FUNCTIONS {
            manifests += &function(&format!("side{i:02}"), "side", "");
        }
        kubectl_apply(&u.kubeconfig, &manifests);
        setups.push((u, client));
    }
    let mut samples = [Vec::new(), Vec::new()];
    for i in 0..COLD_FUNCTIONS {
        for (n, (u, _)) in setups.iter().enumerate() {
            // Both pools settled, so neither up boots a runtime while the other is timed.
            for (_, c) in &setups {
                wait_for_warm(c, "side", 2).await;
            }
            let url = format!("{}/side{i:02}", u.router);
            let (elapsed, status) = first_byte(&url).await;
            assert_eq!(status, 200, "{url}");
            samples[n].push(elapsed);
        }
    }
    let log = std::fs::read_to_string(sandboxed.dir.path().join("up.log")).unwrap_or_default();
    let mode = match (
        log.contains("pods run sandboxed"),
        log.contains("pods get their own network"),
    ) {
        (true, true) => "sandboxed, own network namespaces",
        (true, false) => "sandboxed, host network",
        _ => "not sandboxed (bubblewrap missing?)",
    };
    for s in &mut samples {
        s.sort();
    }
    println!(
        "\n(d) cold start with and without the pod sandbox, {COLD_FUNCTIONS} functions each, alternating"
    );
    latency_table(
        "pods",
        &[
            (mode, &samples[0]),
            ("plain processes, host network", &samples[1]),
        ],
    );
    println!(
        "p50 sandboxed / plain: {:.2}",
        percentile(&samples[0], 0.5).as_secs_f64() / percentile(&samples[1], 0.5).as_secs_f64()
    );
}
