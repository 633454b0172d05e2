//! The runner against a plain localcluster (no controller): a correct suite passes, and a wrong
//! value, a missing object and an errors file whose object exists each fail with a precise
//! message.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::path::Path;

use rivulet_kuttl::{RunOptions, run_suite};
use rivulet_testing::TestCluster;

fn suite() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/selftest/kuttl-test.yaml"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runner_passes_a_correct_suite_and_fails_each_broken_case_precisely() {
    let cluster = TestCluster::start().await.unwrap();
    let options = RunOptions::new(cluster.cluster.kubeconfig_path());
    let report = run_suite(suite(), &options).await.unwrap();
    println!("{report}");
    let failure = |name: &str| {
        let case = report.cases.iter().find(|c| c.name == name).unwrap();
        case.failure
            .as_ref()
            .map(|f| (f.to_string(), case.namespace.clone()))
    };

    assert_eq!(failure("pass"), None, "{report}");

    let (message, ns) = failure("wrong-value").expect("a wrong value must fail");
    assert!(
        message.contains(&format!(
            "wrong-value/00-assert.yaml: v1 ConfigMap {ns}/settings: .data.mode: expected \"slow\", actual \"fast\""
        )),
        "{message}"
    );
    assert!(
        message.starts_with("step 00 (00-assert, 00-install): not satisfied after 3s"),
        "{message}"
    );

    let (message, ns) = failure("missing").expect("a missing object must fail");
    assert!(
        message.contains(&format!(
            "missing/00-assert.yaml: v1 ConfigMap {ns}/never-created: not found"
        )),
        "{message}"
    );

    let (message, ns) = failure("errors-exist").expect("an errors object that exists must fail");
    assert!(
        message.contains(&format!(
            "errors-exist/00-errors.yaml: v1 Secret {ns}/leftover: exists and matches the errors file"
        )),
        "{message}"
    );
    assert_eq!(report.failures().count(), 3);
    cluster.shutdown().await;
}

#[tokio::test]
async fn a_suite_with_an_unsupported_field_is_rejected_before_running() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("kuttl-test.yaml"),
        "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [./cases]\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("cases/one")).unwrap();
    std::fs::write(
        dir.path().join("cases/one/00-assert.yaml"),
        "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ntimeout: 5\ncollectors: [{type: pod, pod: x}]\n",
    )
    .unwrap();
    // No cluster is needed: loading fails first.
    let options = RunOptions::new(dir.path().join("no-kubeconfig"));
    let err = run_suite(&dir.path().join("kuttl-test.yaml"), &options)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("one/00-assert.yaml: unsupported: TestAssert: unknown field `collectors`"),
        "{err}"
    );
}
