//! Pods as local processes through the API: addresses, volumes, probes, logs, restarts,
//! termination, agent restarts.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::too_many_lines
)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kube::api::{DeleteParams, LogParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn two_containers_share_an_empty_dir_and_serve_on_the_pod_address() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    let p = pod(json!({
        "metadata": {"name": "web"},
        "spec": {
            "volumes": [{"name": "shared", "emptyDir": {}}],
            "containers": [
                {"name": "server", "image": "local/exec",
                 "command": ["python3", "-m", "http.server", "8080", "--bind", "$(RIVULET_BIND_ADDRESS)", "--directory", "$(RIVULET_ROOT)/srv"],
                 "volumeMounts": [{"name": "shared", "mountPath": "/srv"}],
                 "readinessProbe": {"httpGet": {"path": "/msg", "port": 8080}, "periodSeconds": 1}},
                {"name": "writer", "image": "local/exec",
                 "command": ["sh", "-c", "echo \"hello from $POD_NAME\" > \"$RIVULET_ROOT/data/msg\"; exec sleep 600"],
                 "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                 "volumeMounts": [{"name": "shared", "mountPath": "/data"}]},
            ]
        }
    }));
    api.create(&PostParams::default(), &p).await.unwrap();
    let running = pod_when(&api, "web", "pod Ready", is_ready).await;
    let ip = pod_ip(&running);
    assert!(ip.starts_with("127.") && ip != "127.0.0.1", "{ip}");
    assert_eq!(
        running.status.as_ref().unwrap().phase.as_deref(),
        Some("Running")
    );
    assert_eq!(
        running.spec.as_ref().unwrap().node_name.as_deref(),
        Some("local")
    );
    let body = http_get(&format!("{ip}:8080"), "/msg").await.unwrap();
    assert_eq!(body, "hello from web\n");
    // Nothing listens on the same port of another loopback address.
    assert!(http_get("127.0.0.1:8080", "/msg").await.is_err() || ip == "127.0.0.1");
    env.stop().await;
}

#[tokio::test]
async fn readiness_gates_the_ready_condition() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "gated"},
        "spec": {"volumes": [{"name": "tmp", "emptyDir": {}}], "containers": [{
            "name": "c", "image": "local/exec", "command": ["sleep", "600"],
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
            "readinessProbe": {"exec": {"command": ["sh", "-c", "test -f \"$RIVULET_ROOT/tmp/ready\""]}, "periodSeconds": 1}}]}
    }))).await.unwrap();
    let running = pod_when(&api, "gated", "container running", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    assert_eq!(condition(&running, "Ready").as_deref(), Some("False"));
    assert_eq!(
        condition(&running, "ContainersReady").as_deref(),
        Some("False")
    );
    let uid = running.metadata.uid.clone().unwrap();
    std::fs::write(
        env.config
            .data_dir
            .join("pods")
            .join(&uid)
            .join("volumes/tmp/ready"),
        b"",
    )
    .unwrap();
    pod_when(&api, "gated", "Ready after the file appears", is_ready).await;
    std::fs::remove_file(
        env.config
            .data_dir
            .join("pods")
            .join(&uid)
            .join("volumes/tmp/ready"),
    )
    .unwrap();
    pod_when(&api, "gated", "not Ready after 3 failures", |p| {
        !is_ready(p)
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn crash_loop_backs_off_and_keeps_the_previous_logs() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    api.create(
        &PostParams::default(),
        &pod(json!({
            "metadata": {"name": "crash"},
            "spec": {"containers": [{"name": "c", "image": "local/exec",
                "command": ["sh", "-c", "echo attempt; exit 3"]}]}
        })),
    )
    .await
    .unwrap();
    let p = pod_when(&api, "crash", "CrashLoopBackOff after restarts", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .is_some_and(|c| {
                c.restart_count >= 2
                    && c.state
                        .as_ref()
                        .and_then(|s| s.waiting.as_ref())
                        .and_then(|w| w.reason.as_deref())
                        == Some("CrashLoopBackOff")
            })
    })
    .await;
    let cs = &p
        .status
        .as_ref()
        .unwrap()
        .container_statuses
        .as_ref()
        .unwrap()[0];
    let waiting = cs.state.as_ref().unwrap().waiting.as_ref().unwrap();
    assert!(
        waiting.message.as_deref().unwrap().starts_with("back-off "),
        "{waiting:?}"
    );
    assert_eq!(
        cs.last_state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code,
        3
    );
    assert_eq!(p.status.as_ref().unwrap().phase.as_deref(), Some("Running"));
    let logs = api
        .logs(
            "crash",
            &LogParams {
                previous: true,
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(logs, "attempt\n");
    env.stop().await;
}

#[tokio::test]
async fn restart_policy_never_and_on_failure_finish_the_pod() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    for (name, policy, code, phase) in [
        ("ok", "Never", 0, "Succeeded"),
        ("bad", "Never", 1, "Failed"),
        ("onf", "OnFailure", 0, "Succeeded"),
    ] {
        api.create(&PostParams::default(), &pod(json!({
            "metadata": {"name": name},
            "spec": {"restartPolicy": policy, "containers": [{"name": "c", "image": "local/exec", "command": ["sh", "-c", format!("exit {code}")]}]}
        }))).await.unwrap();
        let p = pod_when(&api, name, phase, |p| {
            p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase)
        })
        .await;
        assert_eq!(
            p.status.unwrap().container_statuses.unwrap()[0].restart_count,
            0
        );
    }
    env.stop().await;
}

#[tokio::test]
async fn a_process_ignoring_sigterm_is_killed_after_the_grace_period() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    let tok = token("stubborn");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "stubborn"},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "c", "image": "local/exec",
            "command": ["sh", "-c", format!("trap '' TERM; echo {tok}; while true; do sleep 0.1; done"), tok.clone()]}]}
    }))).await.unwrap();
    pod_when(&api, "stubborn", "Ready", is_ready).await;
    assert_eq!(processes_with(&tok).len(), 1);
    let began = Instant::now();
    api.delete("stubborn", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "pod object removed", || async {
        match api.get_opt("stubborn").await {
            Ok(None) => Ok(()),
            other => Err(format!(
                "{:?}",
                other.map(|p| p.map(|p| p.metadata.deletion_timestamp))
            )),
        }
    })
    .await;
    let took = began.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "deleted after {took:?}, before the grace period"
    );
    assert!(took < Duration::from_secs(10), "deleted after {took:?}");
    assert!(processes_with(&tok).is_empty());
    env.stop().await;
}

/// One container ends on SIGTERM, the other ignores it: the stop must still wait out the grace
/// period and kill the second without re-polling the first container's finished task (a panic,
/// "JoinHandle polled after completion", that left the pod object behind).
#[tokio::test]
async fn a_pod_with_one_stubborn_and_one_polite_container_is_removed() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    let stubborn = token("stubborn2");
    let polite = token("polite2");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "mixed"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [
            {"name": "polite", "image": "local/exec",
             "command": ["sh", "-c", format!("echo {polite}; while true; do sleep 0.1; done"), polite.clone()]},
            {"name": "stubborn", "image": "local/exec",
             "command": ["sh", "-c", format!("trap '' TERM; echo {stubborn}; while true; do sleep 0.1; done"), stubborn.clone()]}
        ]}
    }))).await.unwrap();
    pod_when(&api, "mixed", "Ready", is_ready).await;
    api.delete("mixed", &DeleteParams::default()).await.unwrap();
    eventually(WAIT, "pod object removed", || async {
        match api.get_opt("mixed").await {
            Ok(None) => Ok(()),
            other => Err(format!(
                "{:?}",
                other.map(|p| p.map(|p| p.metadata.deletion_timestamp))
            )),
        }
    })
    .await;
    assert!(processes_with(&stubborn).is_empty());
    assert!(processes_with(&polite).is_empty());
    env.stop().await;
}

#[tokio::test]
async fn a_process_honouring_sigterm_ends_before_the_grace_period() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    let tok = token("polite");
    let marker = env.dir.path().join("prestop-ran");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "polite"},
        "spec": {"terminationGracePeriodSeconds": 30, "containers": [{"name": "c", "image": "local/exec",
            "command": ["sleep", "600"], "args": [], "env": [{"name": "T", "value": tok.clone()}, {"name": "MARKER", "value": marker.display().to_string()}],
            "lifecycle": {"preStop": {"exec": {"command": ["sh", "-c", "echo bye > \"$MARKER\""]}}}}]}
    }))).await.unwrap();
    let p = pod_when(&api, "polite", "Ready", is_ready).await;
    let uid = p.metadata.uid.clone().unwrap();
    let began = Instant::now();
    api.delete("polite", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "pod removed", || async {
        match api.get_opt("polite").await {
            Ok(None) => Ok(()),
            other => Err(format!("{:?}", other.is_ok())),
        }
    })
    .await;
    assert!(began.elapsed() < Duration::from_secs(10));
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "bye\n",
        "the preStop hook ran"
    );
    assert!(
        !env.config.data_dir.join("pods").join(uid).exists(),
        "the pod directory is removed"
    );
    env.stop().await;
}

#[tokio::test]
async fn an_unmapped_image_waits_with_a_clear_reason() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    api.create(
        &PostParams::default(),
        &pod(json!({
            "metadata": {"name": "unknown"},
            "spec": {"containers": [{"name": "c", "image": "example.com/team/app:1.2"}]}
        })),
    )
    .await
    .unwrap();
    let p = pod_when(&api, "unknown", "ImageNotMapped", |p| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .and_then(|c| c.first())
            .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
            .as_deref()
            == Some("ImageNotMapped")
    })
    .await;
    let msg = p.status.unwrap().container_statuses.unwrap()[0]
        .state
        .clone()
        .unwrap()
        .waiting
        .unwrap()
        .message
        .unwrap();
    assert!(
        msg.contains("example.com/team/app:1.2") && msg.contains("images.yaml"),
        "{msg}"
    );
    // Mapping the image in the table file starts it without touching the pod.
    std::fs::write(
        env.config.data_dir.join("images.yaml"),
        "images:\n- image: example.com/team/app\n  command: [sleep, '600']\n",
    )
    .unwrap();
    pod_when(&api, "unknown", "Ready once mapped", is_ready).await;
    env.stop().await;
}

#[tokio::test]
async fn logs_through_kube_rs_and_kubectl_including_follow() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "talker"},
        "spec": {"volumes": [{"name": "t", "emptyDir": {}}], "containers": [{"name": "c", "image": "local/exec",
            "volumeMounts": [{"name": "t", "mountPath": "/t"}],
            "command": ["sh", "-c", "echo one; echo two >&2; while [ ! -f \"$RIVULET_ROOT/t/go\" ]; do sleep 0.05; done; echo three; sleep 0.2; exit 0"]}],
            "restartPolicy": "Never"}
    }))).await.unwrap();
    let p = pod_when(&api, "talker", "running", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")
    })
    .await;
    eventually(WAIT, "first lines", || async {
        let l = api
            .logs("talker", &LogParams::default())
            .await
            .map_err(|e| e.to_string())?;
        if l == "one\ntwo\n" { Ok(()) } else { Err(l) }
    })
    .await;
    let tail = api
        .logs(
            "talker",
            &LogParams {
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(tail, "two\n");
    let kubeconfig = env.kubeconfig();
    let follow = tokio::process::Command::new("kubectl")
        .args(["logs", "-f", "talker"])
        .env("KUBECONFIG", &kubeconfig)
        .output();
    let uid = p.metadata.uid.clone().unwrap();
    let go = env
        .config
        .data_dir
        .join("pods")
        .join(&uid)
        .join("volumes/t/go");
    let (out, ()) = tokio::join!(follow, async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        std::fs::write(&go, b"").unwrap();
    });
    let out = out.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\nthree\n");
    let plain = tokio::process::Command::new("kubectl")
        .args(["logs", "talker", "--timestamps"])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&plain.stdout).to_string();
    assert!(
        text.lines().count() == 3
            && text
                .lines()
                .all(|l| l.len() > 20 && l.as_bytes()[4] == b'-'),
        "{text}{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    env.stop().await;
}

#[tokio::test]
async fn agent_restart_on_the_same_data_dir_does_not_duplicate_processes() {
    let mut env = Env::start(|_| {}).await;
    let api = env.pods("default");
    let tok = token("durable");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "durable"},
        "spec": {"containers": [{"name": "c", "image": "local/exec", "command": ["sh", "-c", "sleep 600; :", tok.clone()]}]}
    }))).await.unwrap();
    let before = pod_when(&api, "durable", "Ready", is_ready).await;
    assert_eq!(processes_with(&tok).len(), 1);
    // An orphan left by a crashed agent (recorded in the pid dir) is reaped on start.
    let orphan_tok = token("orphan");
    let orphan = std::process::Command::new("sh")
        .args(["-c", "exec sleep 600", &orphan_tok])
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = orphan.id();
    let started = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let start_time = started[started.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .to_string();
    std::fs::write(
        env.config.data_dir.join("pids/crashed.c.pid"),
        format!("{pid} {start_time}\n"),
    )
    .unwrap();
    env.restart_agent().await;
    eventually(WAIT, "orphan reaped", || async {
        if processes_with(&orphan_tok).is_empty() {
            Ok(())
        } else {
            Err("alive".into())
        }
    })
    .await;
    let after = pod_when(&api, "durable", "Ready again", |p| {
        is_ready(p) && processes_with(&tok).len() == 1
    })
    .await;
    assert_eq!(pod_ip(&after), pod_ip(&before), "the pod keeps its address");
    assert_eq!(processes_with(&tok).len(), 1);
    env.stop().await;
    assert!(
        processes_with(&tok).is_empty(),
        "no process outlives the agent"
    );
    drop(orphan);
}

use std::os::unix::process::CommandExt;

#[tokio::test]
async fn dropping_the_agent_kills_every_process_of_each_container() {
    let mut env = Env::start(|_| {}).await;
    let api = env.pods("default");
    let outer = token("outer");
    let inner = token("inner");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "tree"},
        "spec": {"containers": [{"name": "c", "image": "local/exec",
            "command": ["sh", "-c", format!("sh -c 'sleep 600; :' {inner}; :"), outer.clone()]}]}
    }))).await.unwrap();
    pod_when(&api, "tree", "Ready", is_ready).await;
    // The outer shell's script names the inner token too.
    eventually(WAIT, "both processes up", || async {
        if processes_with(&outer).len() == 1 && processes_with(&inner).len() == 2 {
            Ok(())
        } else {
            Err("not yet".into())
        }
    })
    .await;
    drop(env.agent.take());
    eventually(WAIT, "the whole group gone", || async {
        let left = processes_with(&outer).len() + processes_with(&inner).len();
        if left == 0 {
            Ok(())
        } else {
            Err(left.to_string())
        }
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn init_containers_run_in_order_before_the_containers() {
    let env = Env::start(|_| {}).await;
    let api = env.pods("default");
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "init"},
        "spec": {"volumes": [{"name": "w", "emptyDir": {}}],
            "initContainers": [
                {"name": "first", "image": "local/exec", "command": ["sh", "-c", "echo 1 >> \"$RIVULET_ROOT/w/order\""], "volumeMounts": [{"name": "w", "mountPath": "/w"}]},
                {"name": "second", "image": "local/exec", "command": ["sh", "-c", "sleep 0.3; echo 2 >> \"$RIVULET_ROOT/w/order\""], "volumeMounts": [{"name": "w", "mountPath": "/w"}]},
            ],
            "containers": [{"name": "main", "image": "local/exec", "command": ["sh", "-c", "cat \"$RIVULET_ROOT/w/order\"; echo 3; sleep 600"],
                "volumeMounts": [{"name": "w", "mountPath": "/w"}]}]}
    }))).await.unwrap();
    let p = pod_when(&api, "init", "Ready", is_ready).await;
    assert_eq!(condition(&p, "Initialized").as_deref(), Some("True"));
    let init = p
        .status
        .as_ref()
        .unwrap()
        .init_container_statuses
        .clone()
        .unwrap();
    assert!(init.iter().all(|c| {
        c.state
            .as_ref()
            .unwrap()
            .terminated
            .as_ref()
            .unwrap()
            .exit_code
            == 0
    }));
    eventually(WAIT, "main saw both init outputs", || async {
        let l = api
            .logs("init", &LogParams::default())
            .await
            .map_err(|e| e.to_string())?;
        if l == "1\n2\n3\n" { Ok(()) } else { Err(l) }
    })
    .await;
    // A failing init container with restartPolicy Never fails the pod; the containers never run.
    api.create(&PostParams::default(), &pod(json!({
        "metadata": {"name": "init-fails"},
        "spec": {"restartPolicy": "Never",
            "initContainers": [{"name": "broken", "image": "local/exec", "command": ["sh", "-c", "exit 7"]}],
            "containers": [{"name": "main", "image": "local/exec", "command": ["sleep", "600"]}]}
    }))).await.unwrap();
    let failed = pod_when(&api, "init-fails", "Failed", |p| {
        p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Failed")
    })
    .await;
    let status = failed.status.unwrap();
    assert_eq!(
        status.init_container_statuses.unwrap()[0]
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap()
            .exit_code,
        7
    );
    let main = &status.container_statuses.unwrap()[0];
    assert_eq!(
        main.state
            .as_ref()
            .unwrap()
            .waiting
            .as_ref()
            .unwrap()
            .reason
            .as_deref(),
        Some("PodInitializing")
    );
    env.stop().await;
}
