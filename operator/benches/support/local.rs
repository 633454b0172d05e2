//! `rivulet up` for the data-plane benchmarks: manifests, warm pods, timed requests.
#![allow(dead_code, clippy::cast_precision_loss)]

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, Client};
use rivulet_testing::{UpProcess, eventually, http_response};

pub fn up(extra: &[&str]) -> UpProcess {
    UpProcess::start(Path::new(env!("CARGO_BIN_EXE_rivulet")), extra)
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An Environment of `image` (Fission's python image when `None`) with `poolsize` warm pods.
pub fn environment(name: &str, poolsize: usize, image: Option<&str>) -> String {
    let image = image.unwrap_or("fission/python-env");
    format!(
        "apiVersion: fission.io/v1\nkind: Environment\nmetadata: {{name: {name}, namespace: default}}\nspec: {{version: 3, runtime: {{image: {image}}}, poolsize: {poolsize}}}\n---\n"
    )
}

/// A Package, Function and GET/POST trigger `/<name>` in environment `env`.
pub fn function(name: &str, env: &str, extra_spec: &str) -> String {
    let code = base64(b"def main():\n    return 'hello'\n");
    format!(
        "apiVersion: fission.io/v1\nkind: Package\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  environment: {{namespace: default, name: {env}}}\n  deployment: {{type: literal, literal: {code}}}\n---\napiVersion: fission.io/v1\nkind: Function\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  environment: {{namespace: default, name: {env}}}\n  package: {{packageref: {{namespace: default, name: {name}}}}}\n{extra_spec}  InvokeStrategy: {{StrategyType: execution, ExecutionStrategy: {{ExecutorType: poolmgr}}}}\n---\napiVersion: fission.io/v1\nkind: HTTPTrigger\nmetadata: {{name: {name}, namespace: default}}\nspec: {{relativeurl: /{name}, methods: [GET, POST], functionref: {{type: name, name: {name}}}}}\n---\n"
    )
}

pub fn ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Pods matching a label selector in `default`.
pub async fn pods(client: &Client, selector: &str) -> Vec<Pod> {
    Api::<Pod>::namespaced(client.clone(), "default")
        .list(&ListParams::default().labels(selector))
        .await
        .unwrap()
        .items
}

/// Ready, unclaimed warm pods of an environment.
pub async fn warm_pods(client: &Client, env: &str) -> Vec<Pod> {
    pods(client, &format!("environmentName={env},managed=true"))
        .await
        .into_iter()
        .filter(ready)
        .collect()
}

pub async fn wait_for_warm(client: &Client, env: &str, count: usize) {
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

/// Ready pods specialized for `function`.
pub async fn function_pods(client: &Client, function: &str) -> Vec<Pod> {
    pods(client, &format!("functionName={function}"))
        .await
        .into_iter()
        .filter(ready)
        .collect()
}

pub fn pod_ip(pod: &Pod) -> String {
    pod.status.as_ref().unwrap().pod_ip.clone().unwrap()
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i]
}

/// A markdown table of p50, p95 and max per row of sorted samples.
pub fn latency_table(title: &str, rows: &[(&str, &Vec<Duration>)]) {
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

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// Waits until a GET of `url` answers 200.
pub async fn answers_200(url: &str, wait: Duration) {
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

/// Time to the first byte of the answer (the status line) of one GET; status 0 when the
/// connection failed or closed before a status line.
pub async fn first_byte(url: &str) -> (Duration, u16) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let started = Instant::now();
    let Ok(mut stream) = tokio::net::TcpStream::connect(host).await else {
        return (started.elapsed(), 0);
    };
    let request = format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).await.is_err() {
        return (started.elapsed(), 0);
    }
    let mut buf = [0u8; 16];
    let mut read = 0;
    while read < 12 {
        match stream.read(&mut buf[read..]).await {
            Ok(0) | Err(_) => return (started.elapsed(), 0),
            Ok(n) => read += n,
        }
    }
    let elapsed = started.elapsed();
    let status = std::str::from_utf8(&buf[9..12])
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (elapsed, status)
}
