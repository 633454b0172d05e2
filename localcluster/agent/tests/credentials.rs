//! Issue 16.4: a pod's Kubernetes credentials are its ServiceAccount's token, never the admin
//! token: at `/var/run/secrets/kubernetes.io/serviceaccount` with `KUBERNETES_SERVICE_*` when
//! sandboxed (kubectl's in-cluster config finds them), in a kubeconfig of its own otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::api::{LogParams, PostParams};
use rivulet_localcluster_agent::kubelet::sandbox::SandboxMode;
use serde_json::json;

/// Runs `script` in a pod to completion and returns its log.
async fn run(env: &Env, script: &str) -> String {
    let api = env.pods("default");
    api.create(
        &PostParams::default(),
        &pod(json!({
            "metadata": {"name": "creds"},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "c", "image": "local/exec", "command": ["sh", "-c", script]}]}
        })),
    )
    .await
    .unwrap();
    pod_when(&api, "creds", "the pod finished", |p| {
        matches!(
            p.status.as_ref().and_then(|s| s.phase.as_deref()),
            Some("Succeeded" | "Failed")
        )
    })
    .await;
    api.logs("creds", &LogParams::default()).await.unwrap()
}

const KUBECTL: &str = "kubectl get pod creds -o name; kubectl create configmap x 2>&1 | grep -o 'configmaps is forbidden: User \"system:serviceaccount:default:default\"'";

#[tokio::test]
async fn a_plain_process_gets_a_kubeconfig_with_its_own_token() {
    let env = Env::start(|c| c.pod_sandbox = SandboxMode::None).await;
    let admin = env.kubeconfig().display().to_string();
    let log = run(
        &env,
        &format!(
            "test \"$KUBECONFIG\" != '{admin}' && grep -o 'token: rivulet-sa' \"$KUBECONFIG\"; {KUBECTL}"
        ),
    )
    .await;
    assert_eq!(
        log,
        "token: rivulet-sa\npod/creds\nconfigmaps is forbidden: User \"system:serviceaccount:default:default\"\n",
        "{log}"
    );
    env.stop().await;
}

#[tokio::test]
async fn a_sandboxed_process_gets_the_service_account_files_and_no_kubeconfig() {
    let env = Env::start(|c| c.pod_sandbox = SandboxMode::Bwrap).await;
    let log = run(
        &env,
        &format!(
            "cd /var/run/secrets/kubernetes.io/serviceaccount && cat namespace && echo && \
             head -c 10 token && echo && grep -c CERTIFICATE ca.crt && \
             echo \"${{KUBECONFIG-no kubeconfig}}\"; {KUBECTL}"
        ),
    )
    .await;
    assert_eq!(
        log,
        "default\nrivulet-sa\n2\nno kubeconfig\npod/creds\nconfigmaps is forbidden: User \"system:serviceaccount:default:default\"\n",
        "{log}"
    );
    env.stop().await;
}
