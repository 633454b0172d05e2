//! Issue 16: exec handlers of a sandboxed container run inside it, as `kubectl exec` would: an
//! exec readiness probe sees the container's own mount paths and processes.
//!
//! Needs bubblewrap, as `.ci/run` installs it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::api::PostParams;
use rivulet_localcluster_agent::kubelet::sandbox::SandboxMode;
use serde_json::json;

#[tokio::test]
async fn an_exec_probe_sees_the_containers_paths_and_processes() {
    let env = Env::start(|c| c.pod_sandbox = SandboxMode::Bwrap).await;
    let api = env.pods("default");
    // `/work` exists only inside the sandbox (the volume's mountPath); the probe also checks
    // that it sees the container's `sleep` among few processes (its own PID namespace).
    let probe = "test -f /work/ready && ls /proc | grep -c '^[0-9]' | awk '$1 < 10 {ok=1} END {exit !ok}' \
                 && grep -l sleep /proc/[0-9]*/cmdline";
    api.create(
        &PostParams::default(),
        &pod(json!({
            "metadata": {"name": "probed"},
            "spec": {
                "volumes": [{"name": "work", "emptyDir": {}}],
                "containers": [{
                    "name": "c", "image": "local/exec",
                    "command": ["sh", "-c", "touch /work/ready; exec sleep 600"],
                    "volumeMounts": [{"name": "work", "mountPath": "/work"}],
                    "readinessProbe": {"exec": {"command": ["sh", "-c", probe]}, "periodSeconds": 1}}]}
        })),
    )
    .await
    .unwrap();
    let ready = pod_when(&api, "probed", "pod Ready by its exec probe", is_ready).await;
    assert_eq!(condition(&ready, "Ready").as_deref(), Some("True"));
    assert!(
        !std::path::Path::new("/work/ready").exists(),
        "the file is the container's, not the host's"
    );
    env.stop().await;
}
