//! The KUTTL suites of `kuttl-tests/` against `rivulet up --simulate-pods` (pods are marked
//! Running/Ready without running anything: the suites assert what the controller writes, not what
//! functions answer). The same files run on a real cluster with `kubectl kuttl test`
//! (kuttl-tests/README.md). `RIVULET_KUTTL_TESTS=a,b` runs only those test cases.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::Path;
use std::process::{Command, Stdio};

use rivulet_kuttl::{RunOptions, load_suite, run_suite};
use rivulet_testing::UpProcess;

/// Runs the suite `kuttl-tests/<suite>` against a new `rivulet up <extra>`; panics with the
/// report and the end of `rivulet up`'s log if a case fails.
async fn run(suite: &str, extra: &[&str], namespaces: &[&str]) {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../kuttl-tests")
        .join(suite);
    let mut options = RunOptions::new("");
    if let Ok(only) = std::env::var("RIVULET_KUTTL_TESTS") {
        let loaded = load_suite(&suite).unwrap();
        options.only = only
            .split(',')
            .filter(|name| loaded.cases.iter().any(|c| c.name == *name))
            .map(str::to_owned)
            .collect();
        if options.only.is_empty() {
            return;
        }
    }
    let up = UpProcess::start(Path::new(env!("CARGO_BIN_EXE_rivulet")), extra);
    options.kubeconfig.clone_from(&up.kubeconfig);
    for namespace in namespaces {
        let created = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&up.kubeconfig)
            .args(["create", "namespace", namespace])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(created.success(), "kubectl create namespace {namespace}");
    }
    let report = run_suite(&suite, &options).await.unwrap();
    println!("{report}");
    if !report.passed() {
        let log = std::fs::read_to_string(up.dir.path().join("up.log")).unwrap_or_default();
        let start = log.len().saturating_sub(20_000);
        let start = (start..log.len())
            .find(|&i| log.is_char_boundary(i))
            .unwrap_or(0);
        panic!(
            "KUTTL suite failed:\n{report}\n\nlast part of rivulet up's log:\n{}",
            &log[start..]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuttl_suite_passes_on_rivulet_up() {
    // HTTPTrigger Ingresses go to the router's namespace, `fission`, which `rivulet up` creates
    // as deploy/ does: nothing to prepare.
    run("kuttl-test.yaml", &["--simulate-pods"], &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuttl_liqo_suite_passes_on_three_simulated_clusters() {
    run(
        "liqo/kuttl-test.yaml",
        &["--simulate-pods", "--clusters", "local,naples,florence"],
        &[],
    )
    .await;
}
