//! Data-plane benchmark in local mode, Fission's benchmark scenarios (`test/benchmark` of the
//! fission repository) measured side by side in one run against `rivulet up`:
//!
//! - **warm-path**: `wrk -c50` to one specialized pod of a runtime that costs next to nothing
//!   (`support/responder.rs`), so the proxy's own cost shows: directly, through nginx
//!   `proxy_pass` (plain, and adding the router's 8 headers), and through `rivulet router` in its
//!   own process; added p50/p99 over direct and CPU per request of each proxy;
//! - **concurrency-sweep**: the same at 10/50/100/250/500 connections through the router and
//!   nginx: error rate per level, requests/s, p99, specializations during the sweep;
//! - **payload-sweep**: POST bodies of 1 KB/10 KB/100 KB/1 MB, direct, nginx and router;
//! - **warm-path-python**: the warm path to the real Python runtime (what a user's function
//!   sees), also through the router inside `rivulet up`;
//! - **cold-start-poolmgr**: time to first byte of the first request to each of 20 never-invoked
//!   Python functions on a settled warm pool, next to the **floor** measured directly on warm
//!   pods of an identical environment (the fetcher's specialize call + one request);
//! - **cold-burst-same-fn** / **cold-burst-distinct-fn**: 10 simultaneous first requests to one
//!   function, or to 10 functions, on a pool of 3 (Fission's defaults `burstSize: 10`,
//!   `poolsize: 3`): failures, specializations, latencies;
//! - **overload-burst**: 200 concurrent first requests to a cold function with `concurrency: 5`;
//! - **sandbox-cost**: cold starts in two `rivulet up` at once, pods sandboxed or plain.
//!
//! Prints markdown tables and the issue's goals (met or not), writes the run as JSON, and with
//! `--baseline FILE` prints each metric's ratio to an earlier run:
//!
//! ```sh
//! sudo apt-get install -y wrk nginx-light   # once
//! cargo bench -p rivulet-operator --bench dataplane -- [--only warm-path,cold-start-poolmgr] \
//!     [--json run.json] [--baseline earlier.json]
//! ```

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::cast_precision_loss
)]

use std::path::Path;
use std::time::{Duration, Instant};

use kube::{Api, Client};
use rivulet_api::specialize::FunctionSpecializeRequest;
use rivulet_api::{Environment, Function};
use rivulet_router::fetcher::FetcherClient;
use rivulet_testing::{UpProcess, client_for, http_response, kubectl_apply};

#[path = "support/local.rs"]
mod local;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/report.rs"]
mod report;
#[path = "support/responder.rs"]
mod responder;
#[path = "support/wrk.rs"]
mod wrk;

use local::{
    answers_200, environment, first_byte, function, function_pods, latency_table, percentile,
    pod_ip, wait_for_warm, warm_pods,
};
use proxy::{Proxy, nginx, router_headers, standalone_router};
use report::{Better, Options, Run};

const COLD_FUNCTIONS: usize = 20;
/// Warm pods of the cold-start environment.
const BENCH_POOL: usize = COLD_FUNCTIONS + 2;
/// Fission's `burstSize` and `poolsize`.
const BURST: usize = 10;
const BURST_POOL: usize = 3;
const SWEEP: [u32; 5] = [10, 50, 100, 250, 500];
const PAYLOADS: [(usize, &str); 4] = [
    (1024, "1KB"),
    (10 * 1024, "10KB"),
    (100 * 1024, "100KB"),
    (1024 * 1024, "1MB"),
];
/// One pod serves every connection, as for the direct and nginx runs (Fission's default
/// requestsPerPod of 1 would specialize a pod per concurrent connection).
const ONE_POD: &str = "  requestsPerPod: 1000\n  concurrency: 1\n";

fn wrk_run(connections: u32, seconds: u32, url: &str, script: Option<&Path>) -> wrk::Report {
    let c = format!("-c{connections}");
    let d = format!("-d{seconds}s");
    let mut args = vec!["-t2", &c, &d, "--timeout", "5s"];
    let script = script.map(|s| s.to_str().unwrap().to_owned());
    if let Some(s) = &script {
        args.extend(["-s", s]);
    }
    wrk::run(&args, url)
}

/// A wrk run through `proxy` with the CPU it spent per request, in µs.
fn with_cpu(proxy: &Proxy, run: impl FnOnce() -> wrk::Report) -> (wrk::Report, f64) {
    let before = proxy.cpu_us();
    let report = run();
    let per_request = (proxy.cpu_us() - before) / report.requests.max(1) as f64;
    (report, per_request)
}

/// What the scenarios share: one `rivulet up` with every environment and function applied
/// at once, so no scenario waits for another's pools.
struct Bench {
    up: UpProcess,
    client: Client,
    run: Run,
    scratch: tempfile::TempDir,
}

impl Bench {
    fn route(&self, path: &str) -> String {
        format!("{}/{path}", self.up.router)
    }

    fn key_file(&self) -> std::path::PathBuf {
        self.up.dir.path().join("data/fetcher.key")
    }

    async fn function(&self, name: &str) -> Function {
        Api::namespaced(self.client.clone(), "default")
            .get(name)
            .await
            .unwrap()
    }

    /// The address of the one pod specialized for `function`, after a first request.
    async fn serving_pod(&self, function: &str) -> String {
        answers_200(&self.route(function), Duration::from_mins(1)).await;
        let pods = function_pods(&self.client, function).await;
        assert_eq!(pods.len(), 1, "{function}: one pod serves every connection");
        format!("{}:8888", pod_ip(&pods[0]))
    }
}

fn main() {
    // The benchmark binary is also the responder runtime of its pods (its own runtime, one
    // thread), so this comes before the benchmark's runtime.
    responder::serve_if_asked();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}

async fn bench() {
    let options = Options::from_args("target/dataplane.json");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "load average at start: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let up = local::up(&[]);
    responder::register(&up.dir.path().join("data/agent"));
    let client = client_for(&up.kubeconfig).await.unwrap();
    let mut manifests = environment("resp", 2, Some(responder::IMAGE))
        + &function("echo", "resp", ONE_POD)
        + &environment("python", 2, None)
        + &function("warm", "python", ONE_POD)
        + &environment("bench", BENCH_POOL, None)
        + &environment("floor", COLD_FUNCTIONS, None)
        + &environment("same", BURST_POOL, None)
        + &function("same", "same", "")
        + &environment("distinct", BURST_POOL, None)
        + &function(
            "overload",
            "bench",
            "  concurrency: 5\n  requestsPerPod: 1\n",
        );
    for i in 0..COLD_FUNCTIONS {
        manifests += &function(&format!("cold{i:02}"), "bench", "");
        manifests += &function(&format!("floor{i:02}"), "floor", "");
    }
    for i in 0..BURST {
        manifests += &function(&format!("distinct{i:02}"), "distinct", "");
    }
    kubectl_apply(&up.kubeconfig, &manifests);
    for (env, count) in [
        ("resp", 2),
        ("python", 2),
        ("bench", BENCH_POOL),
        ("floor", COLD_FUNCTIONS),
        ("same", BURST_POOL),
        ("distinct", BURST_POOL),
    ] {
        wait_for_warm(&client, env, count).await;
    }
    let mut bench = Bench {
        up,
        client,
        run: Run::default(),
        scratch: tempfile::tempdir().unwrap(),
    };
    if options.runs("warm-path")
        || options.runs("concurrency-sweep")
        || options.runs("payload-sweep")
    {
        proxy_scenarios(&mut bench, &options).await;
    }
    if options.runs("warm-path-python") {
        warm_path_python(&mut bench).await;
    }
    if options.runs("cold-start-poolmgr") {
        cold_start(&mut bench).await;
    }
    if options.runs("cold-burst-same-fn") {
        cold_burst(&mut bench, "same", &vec!["same".to_owned(); BURST]).await;
    }
    if options.runs("cold-burst-distinct-fn") {
        let names: Vec<String> = (0..BURST).map(|i| format!("distinct{i:02}")).collect();
        cold_burst(&mut bench, "distinct", &names).await;
    }
    if options.runs("overload-burst") {
        overload_burst(&mut bench).await;
    }
    let Bench { up, mut run, .. } = bench;
    drop(up);
    if options.runs("sandbox-cost") {
        sandbox_cost(&mut run).await;
    }
    run.finish(&options);
}

/// warm-path, concurrency-sweep and payload-sweep: the responder's one pod, direct and through
/// each proxy.
async fn proxy_scenarios(bench: &mut Bench, options: &Options) {
    let direct = bench.serving_pod("echo").await;
    let echo = bench.function("echo").await;
    let router = standalone_router(&bench.up.kubeconfig, &bench.key_file());
    answers_200(&format!("{}/echo", router.url), Duration::from_secs(30)).await;
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = nginx(plain_dir.path(), &direct, "");
    let headers_dir = tempfile::tempdir().unwrap();
    let headers = nginx(headers_dir.path(), &direct, &router_headers(&echo));
    let targets: [(&str, &str, Option<&Proxy>, String); 4] = [
        (
            "direct",
            "direct to the pod",
            None,
            format!("http://{direct}/"),
        ),
        (
            "nginx",
            "nginx proxy_pass",
            Some(&plain),
            format!("{}/", plain.url),
        ),
        (
            "nginx-headers",
            "nginx proxy_pass + the router's 8 headers",
            Some(&headers),
            format!("{}/", headers.url),
        ),
        (
            "router",
            "rivulet router (own process)",
            Some(&router),
            format!("{}/echo", router.url),
        ),
    ];
    let run = &mut bench.run;

    if options.runs("warm-path") {
        println!("\nwarm-path: wrk -t2 -c50 -d10s, responder runtime, one pod");
        println!(
            "| path | req/s | p50 | p99 | added p50 / p99 over direct | CPU per request | errors |\n| --- | --- | --- | --- | --- | --- | --- |"
        );
        let mut direct_latency = (0.0, 0.0);
        for (key, name, proxy, url) in &targets {
            let (r, cpu) = match proxy {
                Some(p) => {
                    let (r, cpu) = with_cpu(p, || wrk_run(50, 10, url, None));
                    (r, Some(cpu))
                }
                None => (wrk_run(50, 10, url, None), None),
            };
            let prefix = format!("warm-path.{key}");
            run.add(
                &format!("{prefix}.rps"),
                r.requests_per_second,
                "req/s",
                Better::Higher,
            );
            run.add(&format!("{prefix}.p50"), r.p50_us(), "µs", Better::Lower);
            run.add(&format!("{prefix}.p99"), r.p99_us(), "µs", Better::Lower);
            run.add(
                &format!("{prefix}.error_rate"),
                r.error_rate(),
                "",
                Better::Lower,
            );
            let added = if proxy.is_none() {
                direct_latency = (r.p50_us(), r.p99_us());
                "-".to_owned()
            } else {
                let (p50, p99) = (r.p50_us() - direct_latency.0, r.p99_us() - direct_latency.1);
                run.add(&format!("{prefix}.added_p50"), p50, "µs", Better::Lower);
                run.add(&format!("{prefix}.added_p99"), p99, "µs", Better::Lower);
                format!("{p50:.0} / {p99:.0} µs")
            };
            if let Some(cpu) = cpu {
                run.add(
                    &format!("{prefix}.cpu_per_request"),
                    cpu,
                    "µs",
                    Better::Lower,
                );
            }
            println!(
                "| {name} | {:.0} | {} | {} | {added} | {} | {} |",
                r.requests_per_second,
                r.p50,
                r.p99,
                cpu.map_or("-".to_owned(), |c| format!("{c:.1} µs")),
                r.errors()
            );
        }
        let get = |run: &Run, m: &str| run.get(m).unwrap_or(f64::NAN);
        let (router_cpu, nginx_cpu) = (
            get(run, "warm-path.router.cpu_per_request"),
            get(run, "warm-path.nginx-headers.cpu_per_request"),
        );
        run.goal(
            format!("router CPU per request ≤ nginx's with the same headers ({router_cpu:.1} / {nginx_cpu:.1} µs = {:.2})", router_cpu / nginx_cpu),
            router_cpu <= nginx_cpu,
        );
        let (router_p50, nginx_p50) = (
            get(run, "warm-path.router.added_p50"),
            get(run, "warm-path.nginx-headers.added_p50"),
        );
        run.goal(
            format!("router's added p50 ≤ nginx's ({router_p50:.0} / {nginx_p50:.0} µs)"),
            router_p50 <= nginx_p50,
        );
    }

    if options.runs("concurrency-sweep") {
        let before = function_pods(&bench.client, "echo").await.len();
        println!("\nconcurrency-sweep: wrk -t2 -d5s per level, responder runtime");
        println!(
            "| connections | router req/s | router p99 | router error rate | nginx req/s | nginx p99 | nginx error rate |\n| --- | --- | --- | --- | --- | --- | --- |"
        );
        let mut worst = 0.0_f64;
        for level in SWEEP {
            let r = wrk_run(level, 5, &targets[3].3, None);
            let n = wrk_run(level, 5, &targets[1].3, None);
            for (key, report) in [("router", &r), ("nginx", &n)] {
                let prefix = format!("concurrency-sweep.c{level}.{key}");
                run.add(
                    &format!("{prefix}.rps"),
                    report.requests_per_second,
                    "req/s",
                    Better::Higher,
                );
                run.add(
                    &format!("{prefix}.p99"),
                    report.p99_us(),
                    "µs",
                    Better::Lower,
                );
                run.add(
                    &format!("{prefix}.error_rate"),
                    report.error_rate(),
                    "",
                    Better::Lower,
                );
            }
            worst = worst.max(r.error_rate());
            println!(
                "| {level} | {:.0} | {} | {:.4} | {:.0} | {} | {:.4} |",
                r.requests_per_second,
                r.p99,
                r.error_rate(),
                n.requests_per_second,
                n.p99,
                n.error_rate()
            );
        }
        let after = function_pods(&bench.client, "echo").await.len();
        let specializations = after.saturating_sub(before) as f64;
        run.add(
            "concurrency-sweep.specializations",
            specializations,
            "pods",
            Better::Lower,
        );
        println!("specializations during the sweep: {specializations}");
        run.goal(
            format!("router error rate 0 at every level up to 500 connections (worst {worst:.4})"),
            worst == 0.0,
        );
    }

    if options.runs("payload-sweep") {
        println!("\npayload-sweep: POST, wrk -t2 -c10 -d5s, responder runtime");
        println!(
            "| body | direct req/s | nginx req/s | router req/s | direct p50 | nginx p50 | router p50 |\n| --- | --- | --- | --- | --- | --- | --- |"
        );
        for (size, label) in PAYLOADS {
            let script = bench.scratch.path().join(format!("post-{label}.lua"));
            std::fs::write(
                &script,
                format!("wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {size})\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"),
            )
            .unwrap();
            let results: Vec<wrk::Report> = [&targets[0], &targets[1], &targets[3]]
                .iter()
                .map(|(key, _, _, url)| {
                    let r = wrk_run(10, 5, url, Some(&script));
                    let prefix = format!("payload-sweep.{label}.{key}");
                    run.add(
                        &format!("{prefix}.rps"),
                        r.requests_per_second,
                        "req/s",
                        Better::Higher,
                    );
                    run.add(&format!("{prefix}.p50"), r.p50_us(), "µs", Better::Lower);
                    run.add(
                        &format!("{prefix}.error_rate"),
                        r.error_rate(),
                        "",
                        Better::Lower,
                    );
                    r
                })
                .collect();
            println!(
                "| {label} | {:.0} | {:.0} | {:.0} | {} | {} | {} |",
                results[0].requests_per_second,
                results[1].requests_per_second,
                results[2].requests_per_second,
                results[0].p50,
                results[1].p50,
                results[2].p50
            );
        }
    }
}

/// The warm path to the real Python runtime, also through the router inside `rivulet up`.
async fn warm_path_python(bench: &mut Bench) {
    let direct = bench.serving_pod("warm").await;
    let warm = bench.function("warm").await;
    let router = standalone_router(&bench.up.kubeconfig, &bench.key_file());
    answers_200(&format!("{}/warm", router.url), Duration::from_secs(30)).await;
    let plain_dir = tempfile::tempdir().unwrap();
    let plain = nginx(plain_dir.path(), &direct, "");
    let headers_dir = tempfile::tempdir().unwrap();
    let headers = nginx(headers_dir.path(), &direct, &router_headers(&warm));
    println!("\nwarm-path-python: wrk -t2 -c32 -d10s, Python runtime, one pod");
    println!(
        "| path | req/s | p50 | p99 | proxy CPU per request |\n| --- | --- | --- | --- | --- |"
    );
    let rows: [(&str, &str, Option<&Proxy>, String); 5] = [
        (
            "direct",
            "direct to the runtime pod",
            None,
            format!("http://{direct}/"),
        ),
        (
            "nginx",
            "nginx proxy_pass",
            Some(&plain),
            format!("{}/", plain.url),
        ),
        (
            "nginx-headers",
            "nginx proxy_pass + the router's 8 headers",
            Some(&headers),
            format!("{}/", headers.url),
        ),
        (
            "router-in-up",
            "rivulet router (inside rivulet up)",
            None,
            bench.route("warm"),
        ),
        (
            "router",
            "rivulet router (own process)",
            Some(&router),
            format!("{}/warm", router.url),
        ),
    ];
    for (key, name, proxy, url) in &rows {
        let (r, cpu) = match proxy {
            Some(p) => {
                let (r, cpu) = with_cpu(p, || wrk_run(32, 10, url, None));
                (r, Some(cpu))
            }
            None => (wrk_run(32, 10, url, None), None),
        };
        assert_eq!(r.non_2xx, 0, "errors during the wrk run against {url}");
        let prefix = format!("warm-path-python.{key}");
        bench.run.add(
            &format!("{prefix}.rps"),
            r.requests_per_second,
            "req/s",
            Better::Higher,
        );
        bench
            .run
            .add(&format!("{prefix}.p50"), r.p50_us(), "µs", Better::Lower);
        println!(
            "| {name} | {:.0} | {} | {} | {} |",
            r.requests_per_second,
            r.p50,
            r.p99,
            cpu.map_or("-".to_owned(), |c| format!("{c:.1} µs"))
        );
    }
}

/// cold-start-poolmgr, next to the floor.
async fn cold_start(bench: &mut Bench) {
    let client = bench.client.clone();
    let mut cold = Vec::new();
    let mut failures = 0;
    for i in 0..COLD_FUNCTIONS {
        // A settled pool: the replacement of the pod claimed last is up, so no runtime is
        // booting (a Python start takes a core for about half a second) while this is timed,
        // as for the floor below.
        wait_for_warm(&client, "bench", BENCH_POOL).await;
        let (elapsed, status) = first_byte(&bench.route(&format!("cold{i:02}"))).await;
        if status == 200 {
            cold.push(elapsed);
        } else {
            failures += 1;
        }
    }
    // The floor: the same work without the router, on warm pods of an identical environment.
    // The fetchers accept only the router's token, derived from `up`'s key.
    let key = std::fs::read(bench.key_file()).unwrap();
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
        let function = bench.function(&format!("floor{i:02}")).await;
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
    assert!(!cold.is_empty(), "every cold start failed");
    cold.sort();
    floor.sort();
    println!(
        "\ncold-start-poolmgr: {COLD_FUNCTIONS} never-invoked Python functions, request to first byte ({failures} failed)"
    );
    latency_table(
        "",
        &[
            ("through the router", &cold),
            ("floor: specialize + first request, direct", &floor),
        ],
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let run = &mut bench.run;
    for (key, samples) in [("router", &cold), ("floor", &floor)] {
        run.add(
            &format!("cold-start-poolmgr.{key}.p50"),
            ms(percentile(samples, 0.5)),
            "ms",
            Better::Lower,
        );
        run.add(
            &format!("cold-start-poolmgr.{key}.p95"),
            ms(percentile(samples, 0.95)),
            "ms",
            Better::Lower,
        );
    }
    run.add(
        "cold-start-poolmgr.failures",
        f64::from(failures),
        "",
        Better::Lower,
    );
    let p50 = ms(percentile(&cold, 0.5)) / ms(percentile(&floor, 0.5));
    let p95 = ms(percentile(&cold, 0.95)) / ms(percentile(&floor, 0.95));
    run.add("cold-start-poolmgr.p50_over_floor", p50, "×", Better::Lower);
    run.add("cold-start-poolmgr.p95_over_floor", p95, "×", Better::Lower);
    println!("router / floor: p50 {p50:.2}, p95 {p95:.2}");
    run.goal(
        format!("cold start p50 ≤ 1.3× the floor ({p50:.2}×)"),
        p50 <= 1.3,
    );
    run.goal(
        format!("cold start p95 ≤ 2× the floor ({p95:.2}×)"),
        p95 <= 2.0,
    );
}

/// cold-burst-same-fn / -distinct-fn: one simultaneous first request per entry of `routes`,
/// on a settled pool of [`BURST_POOL`].
async fn cold_burst(bench: &mut Bench, env: &str, routes: &[String]) {
    wait_for_warm(&bench.client, env, BURST_POOL).await;
    let answers = futures::future::join_all(routes.iter().map(|r| {
        let url = bench.route(r);
        async move { first_byte(&url).await }
    }))
    .await;
    let mut samples: Vec<Duration> = answers
        .iter()
        .filter(|(_, s)| *s == 200)
        .map(|(d, _)| *d)
        .collect();
    samples.sort();
    let failures = answers.len() - samples.len();
    let mut names: Vec<&String> = routes.iter().collect();
    names.dedup();
    let mut specialized = 0;
    for name in names {
        specialized += local::pods(&bench.client, &format!("functionName={name}"))
            .await
            .len();
    }
    let scenario = if env == "same" {
        "cold-burst-same-fn"
    } else {
        "cold-burst-distinct-fn"
    };
    let statuses: Vec<u16> = answers
        .iter()
        .map(|(_, s)| *s)
        .filter(|s| *s != 200)
        .collect();
    println!(
        "\n{scenario}: {} simultaneous first requests, pool of {BURST_POOL}: {failures} failed {statuses:?}, {specialized} pods specialized",
        routes.len()
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    if !samples.is_empty() {
        latency_table("", &[("first request to first byte", &samples)]);
        bench.run.add(
            &format!("{scenario}.p50"),
            ms(percentile(&samples, 0.5)),
            "ms",
            Better::Lower,
        );
        bench.run.add(
            &format!("{scenario}.max"),
            ms(samples[samples.len() - 1]),
            "ms",
            Better::Lower,
        );
    }
    bench.run.add(
        &format!("{scenario}.failures"),
        failures as f64,
        "",
        Better::Lower,
    );
    bench.run.add(
        &format!("{scenario}.specializations"),
        specialized as f64,
        "pods",
        Better::Lower,
    );
    if env == "distinct" {
        bench.run.goal(
            format!("cold-burst-distinct-fn ({BURST} functions on a pool of {BURST_POOL}): 0 failures ({failures})"),
            failures == 0,
        );
    }
}

/// overload-burst: 200 concurrent first requests to a cold function with `concurrency: 5`.
async fn overload_burst(bench: &mut Bench) {
    wait_for_warm(&bench.client, "bench", 5).await;
    let url = bench.route("overload");
    let answers = futures::future::join_all((0..200).map(|_| {
        let url = url.clone();
        async move { http_response("GET", &url, "").await.map_or(0, |r| r.status) }
    }))
    .await;
    let count = |f: &dyn Fn(u16) -> bool| answers.iter().filter(|s| f(**s)).count();
    let specialized = local::pods(&bench.client, "functionName=overload")
        .await
        .len();
    println!("\noverload-burst: 200 concurrent first requests, concurrency 5, requestsPerPod 1");
    println!(
        "200 OK: {}, 429: {}, 5xx: {}, other: {}; pods specialized: {specialized}",
        count(&|s| s == 200),
        count(&|s| s == 429),
        count(&|s| s >= 500),
        count(&|s| s != 200 && s != 429 && s < 500)
    );
    bench.run.add(
        "overload-burst.ok",
        count(&|s| s == 200) as f64,
        "",
        Better::Higher,
    );
}

/// sandbox-cost: what the sandbox and the pod network cost on the cold path.
async fn sandbox_cost(run: &mut Run) {
    let sandboxed = local::up(&[]);
    let plain = local::up(&["--pod-sandbox", "none", "--pod-network", "host"]);
    let mut setups = Vec::new();
    for u in [&sandboxed, &plain] {
        let client = client_for(&u.kubeconfig).await.unwrap();
        let mut manifests = environment("side", 2, None);
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
        "\nsandbox-cost: cold start with and without the pod sandbox, {COLD_FUNCTIONS} functions each, alternating"
    );
    latency_table(
        "pods",
        &[
            (mode, &samples[0]),
            ("plain processes, host network", &samples[1]),
        ],
    );
    let ratio =
        percentile(&samples[0], 0.5).as_secs_f64() / percentile(&samples[1], 0.5).as_secs_f64();
    println!("p50 sandboxed / plain: {ratio:.2}");
    run.add("sandbox-cost.p50_ratio", ratio, "×", Better::Lower);
}
