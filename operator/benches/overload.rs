//! Overload with the shipped example (issue 15.10): `wrk -c200` and `-c500` against the README's
//! hello (`examples/hello-python/`, Fission's defaults `requestsPerPod: 1`, `concurrency: 500`).
//!
//! Side by side, on the same `rivulet up`:
//! - **queued**: through the router inside `rivulet up`, with the default overload bounds
//!   (2 specializations in flight, 1024 queued, 100 ms patience, no new pod while requests take
//!   more than twice their best time);
//! - **baseline**: a copy of the function (`hello-baseline`) through a `rivulet router` with
//!   `--max-specializing 500 --max-queued 0 --max-slowdown 0`: exactly the admission rules
//!   before the queue (a specialization per request while under `concurrency`, then 429).
//!
//! Each run reports non-2xx answers and socket errors, requests/s, p50/p99, and the function's
//! specialized pods afterwards. The queued runs go first, so the baseline's pods do not share
//! the CPU with them.
//!
//! ```sh
//! sudo apt-get install -y wrk   # once
//! cargo bench -p rivulet-operator --bench overload
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;
#[path = "support/wrk.rs"]
mod wrk;

use rivulet_testing::{UpProcess, client_for, eventually, free_port, http, kubectl_apply};

const SECONDS: &str = "10s";

fn wrk(connections: u32, url: &str) -> wrk::Report {
    let connections = format!("-c{connections}");
    wrk::run(
        &["-t2", &connections, "-d", SECONDS, "--timeout", "10s"],
        url,
    )
}

async fn serving(url: &str) {
    eventually(
        Duration::from_mins(2),
        &format!("{url} answers 200"),
        || {
            let url = url.to_owned();
            async move {
                let (code, body) = http("GET", &url, "").await.map_err(|e| e.to_string())?;
                if code == 200 {
                    Ok(())
                } else {
                    Err(format!("{code} {body}"))
                }
            }
        },
    )
    .await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    let up = UpProcess::start(Path::new(env!("CARGO_BIN_EXE_rivulet")), &[]);
    let client = client_for(&up.kubeconfig).await.unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let shipped = std::fs::read_to_string(repo.join("examples/hello-python/hello.yaml")).unwrap();
    // The same function and trigger under other names, for the baseline router.
    let baseline = shipped
        .split("---\n")
        .filter(|doc| doc.contains("kind: Function") || doc.contains("kind: HTTPTrigger"))
        .map(|doc| {
            doc.replace("name: hello\n", "name: hello-baseline\n")
                .replace("relativeurl: /hello\n", "relativeurl: /hello-baseline\n")
        })
        .collect::<Vec<_>>()
        .join("---\n");
    kubectl_apply(&up.kubeconfig, &format!("{shipped}\n---\n{baseline}"));

    let (public, internal) = (free_port().unwrap(), free_port().unwrap());
    let mut old_router = Command::new(env!("CARGO_BIN_EXE_rivulet"))
        .args(["router", "--port", &public.to_string(), "--internal-addr"])
        .arg(format!("127.0.0.1:{internal}"))
        .args([
            "--max-specializing",
            "500",
            "--max-queued",
            "0",
            "--max-slowdown",
            "0",
        ])
        .args(["--fetcher-key-file"])
        .arg(up.dir.path().join("data/fetcher.key"))
        .env("KUBECONFIG", &up.kubeconfig)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let queued_url = format!("{}/hello", up.router);
    let baseline_url = format!("http://127.0.0.1:{public}/hello-baseline");
    serving(&queued_url).await;
    serving(&baseline_url).await;

    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let specialized = |function: &'static str| {
        let pods = pods.clone();
        async move {
            pods.list(&ListParams::default().labels(&format!("functionName={function}")))
                .await
                .unwrap()
                .items
                .iter()
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .count()
        }
    };
    let mut rows = Vec::new();
    for (name, url, function) in [
        ("queued (default bounds)", &queued_url, "hello"),
        ("baseline (no queue)", &baseline_url, "hello-baseline"),
    ] {
        for connections in [200, 500] {
            let run = wrk(connections, url);
            let pods = specialized(function).await;
            rows.push((name, connections, run, pods));
        }
    }
    println!(
        "\nwrk -t2 -cN -d{SECONDS} against the shipped hello (requestsPerPod 1, concurrency 500)"
    );
    println!(
        "| path | connections | requests | req/s | p50 | p99 | non-2xx | socket errors | specialized pods after |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (name, connections, run, pods) in &rows {
        println!(
            "| {name} | {connections} | {} | {} | {} | {} | {} | {} | {pods} |",
            run.requests,
            run.requests_per_second,
            run.p50,
            run.p99,
            run.non_2xx,
            run.socket_errors.as_deref().unwrap_or("none")
        );
    }
    let _ = old_router.kill();
    let _ = old_router.wait();
    drop(up);
}
