//! Crash safety: concurrent writers, `kill -9` of the server process, restart; every
//! acknowledged write must be there and resourceVersions must keep increasing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};

use common::{TempDir, WAIT, client_for, eventually};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

const DIR_ENV: &str = "LOCALCLUSTER_CRASH_CHILD_DIR";

/// Not a test of its own: the server process that `crash_kill9_keeps_every_acknowledged_write`
/// starts (by re-running this test binary) and kills.
#[test]
#[ignore = "helper process for crash_kill9_keeps_every_acknowledged_write"]
fn crash_child_server() {
    let Ok(dir) = std::env::var(DIR_ENV) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let cluster =
            rivulet_localcluster::LocalCluster::start(rivulet_localcluster::Config::new(&dir))
                .await
                .unwrap();
        std::fs::write(Path::new(&dir).join("ready"), cluster.url()).unwrap();
        std::future::pending::<()>().await;
    });
}

fn spawn_server(dir: &Path) -> Child {
    let _ = std::fs::remove_file(dir.join("ready"));
    Command::new(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "crash_child_server", "--nocapture"])
        .env(DIR_ENV, dir)
        .spawn()
        .unwrap()
}

async fn connect(dir: &Path) -> kube::Client {
    eventually(WAIT, "the server to start", || async {
        dir.join("ready").exists().then_some(())
    })
    .await;
    client_for(&dir.join("kubeconfig")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_kill9_keeps_every_acknowledged_write() {
    let dir = TempDir::new("crash");
    let mut child = spawn_server(dir.path());
    let client = connect(dir.path()).await;
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let mut writers = Vec::new();
    for w in 0..8 {
        let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let cm: ConfigMap = serde_json::from_value(
                    json!({"metadata": {"name": name}, "data": {"i": i.to_string()}}),
                )
                .unwrap();
                match api.create(&PostParams::default(), &cm).await {
                    Ok(c) => acked
                        .lock()
                        .unwrap()
                        .push((name, c.metadata.resource_version.unwrap().parse().unwrap())),
                    Err(_) => return,
                }
            }
        }));
    }
    eventually(WAIT, "a few hundred acknowledged writes", || async {
        (acked.lock().unwrap().len() >= 300).then_some(())
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    // A torn record at the tail (a write cut mid-append) must be dropped, not fail recovery.
    let mut wal = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.path().join("wal.log"))
        .unwrap();
    wal.write_all(&[42, 0, 0, 0, 1, 2, 3]).unwrap();
    drop(wal);

    let mut child = spawn_server(dir.path());
    let client = connect(dir.path()).await;
    let api: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let list = api.list(&ListParams::default()).await.unwrap();
    let present: std::collections::HashSet<String> = list
        .items
        .iter()
        .map(|c| c.metadata.name.clone().unwrap())
        .collect();
    let acked = acked.lock().unwrap().clone();
    let missing: Vec<&String> = acked
        .iter()
        .map(|(n, _)| n)
        .filter(|n| !present.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged writes lost: {missing:?}",
        missing.len(),
        acked.len()
    );
    let max_acked = acked.iter().map(|(_, rv)| *rv).max().unwrap();
    let after: ConfigMap = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "after-restart"}})).unwrap(),
        )
        .await
        .unwrap();
    assert!(
        after
            .metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > max_acked
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
