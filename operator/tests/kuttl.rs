//! The KUTTL suite `kuttl-tests/` against one `rivulet up --simulate-pods` (pods are marked
//! Running/Ready without running anything: the suite asserts what the controller writes, not what
//! functions answer). The same files run on a real cluster with `kubectl kuttl test`
//! (kuttl-tests/README.md). `RIVULET_KUTTL_TESTS=a,b` runs only those test cases.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::Path;
use std::process::Command;

use rivulet_kuttl::{RunOptions, run_suite};
use rivulet_testing::UpProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuttl_suite_passes_on_rivulet_up() {
    let up = UpProcess::start(
        Path::new(env!("CARGO_BIN_EXE_rivulet")),
        &["--simulate-pods"],
    );
    // The controller puts HTTPTrigger Ingresses in the router's namespace, `rivulet`
    // (RouterService::default), which `rivulet up` does not create: until it does, the test
    // creates it, as an installation would.
    let created = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&up.kubeconfig)
        .args(["create", "namespace", "rivulet"])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(created.success(), "kubectl create namespace rivulet");

    let suite = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kuttl-tests/kuttl-test.yaml"
    ));
    let mut options = RunOptions::new(&up.kubeconfig);
    if let Ok(only) = std::env::var("RIVULET_KUTTL_TESTS") {
        options.only = only.split(',').map(str::to_owned).collect();
    }
    let report = run_suite(suite, &options).await.unwrap();
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
