//! The controller plumbing (`support`) against a real API server (localcluster): leader election on a Lease
//! (one leader among two; graceful handover within the lease duration; a leader that loses the
//! Lease stops its reconcilers without touching pods, and restarts them when it leads again), and
//! the HTTP endpoints (`/metrics` counters that grow with reconciles, `/healthz`, `/readyz`).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rivulet_api::Environment;
use rivulet_reconcilers::environment::pool_pod::PoolPodConfig;
use rivulet_reconcilers::environment::reconciler::run as run_environment;
use rivulet_reconcilers::support::leader::{self, Election, LeaseConfig, Stop};
use rivulet_reconcilers::support::shared::Caches;
use rivulet_reconcilers::support::{Health, HealthServer, Metrics};
use rivulet_testing::{TestCluster, eventually};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

mod common;

const WAIT: Duration = Duration::from_secs(20);

/// Short timings, so expiry-based takeovers happen within a test's patience.
fn fast(name: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        lease_duration: Duration::from_secs(3),
        renew_interval: Duration::from_millis(500),
        renew_deadline: Duration::from_secs(2),
        retry_interval: Duration::from_millis(300),
        ..LeaseConfig::new(name, "default", identity)
    }
}

/// A running elector: its handle, the stop that releases the Lease, and the loop's task.
struct Elector {
    election: Election,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn elect(client: &Client, config: LeaseConfig) -> Elector {
    let (stop, stopped) = oneshot::channel::<()>();
    let (election, run) = leader::run(client.clone(), config, async move {
        let _ = stopped.await;
    });
    Elector {
        election,
        stop,
        task: tokio::spawn(run),
    }
}

fn leads(elector: &Elector) -> bool {
    *elector.election.is_leader().borrow()
}

async fn lease(client: &Client, name: &str) -> Lease {
    Api::<Lease>::namespaced(client.clone(), "default")
        .get(name)
        .await
        .unwrap()
}

fn holder(lease: &Lease) -> Option<String> {
    lease.spec.as_ref().and_then(|s| s.holder_identity.clone())
}

/// Records whether both electors ever led at the same time.
fn watch_for_two_leaders(a: &Election, b: &Election) -> Arc<AtomicBool> {
    let both = Arc::new(AtomicBool::new(false));
    for (mut mine, other) in [
        (a.is_leader(), b.is_leader()),
        (b.is_leader(), a.is_leader()),
    ] {
        let both = both.clone();
        tokio::spawn(async move {
            while mine.changed().await.is_ok() {
                if *mine.borrow() && *other.borrow() {
                    both.store(true, Ordering::SeqCst);
                }
            }
        });
    }
    both
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_electors_have_one_leader_and_a_graceful_stop_hands_over_within_the_lease_duration() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    // Production timings: 15 s lease, renew every 5 s, standbys look every 2 s.
    let a = elect(&client, LeaseConfig::new("ctl", "default", "replica-a"));
    let b = elect(&client, LeaseConfig::new("ctl", "default", "replica-b"));
    let two_leaders = watch_for_two_leaders(&a.election, &b.election);

    eventually(WAIT, "one leader", || async {
        let (la, lb) = (leads(&a), leads(&b));
        if la ^ lb {
            Ok(())
        } else {
            Err(format!("a leads: {la}, b leads: {lb}"))
        }
    })
    .await;
    let (leader, standby, standby_id) = if leads(&a) {
        (a, b, "replica-b")
    } else {
        (b, a, "replica-a")
    };
    let held = lease(&client, "ctl").await;
    let leader_id = holder(&held).unwrap();
    assert_ne!(leader_id, standby_id);
    let spec = held.spec.clone().unwrap();
    assert_eq!(spec.lease_duration_seconds, Some(15));
    assert!(spec.renew_time.is_some() && spec.acquire_time.is_some());

    // The leader keeps renewing: renewTime moves while the holder stays.
    let first_renew = spec.renew_time.unwrap();
    eventually(WAIT, "a renewal", || async {
        let now = lease(&client, "ctl").await;
        let spec = now.spec.clone().unwrap();
        if spec.renew_time.as_ref() != Some(&first_renew) && holder(&now) == Some(leader_id.clone())
        {
            Ok(())
        } else {
            Err(format!("{spec:?}"))
        }
    })
    .await;
    assert!(
        !leads(&standby),
        "the standby must not lead while the leader renews"
    );

    // Graceful stop: the Lease is released, and the standby takes over well within 15 s.
    let stopped_at = Instant::now();
    let Elector {
        election: old_leader,
        stop,
        task,
    } = leader;
    stop.send(()).unwrap();
    task.await.unwrap();
    assert!(!*old_leader.is_leader().borrow());
    eventually(WAIT, "the standby leads", || async {
        if leads(&standby) {
            Ok(())
        } else {
            Err(format!("lease: {:?}", lease(&client, "ctl").await.spec))
        }
    })
    .await;
    let takeover = stopped_at.elapsed();
    assert!(
        takeover < Duration::from_secs(15),
        "takeover took {takeover:?}, more than the lease duration"
    );
    let after = lease(&client, "ctl").await;
    assert_eq!(holder(&after).as_deref(), Some(standby_id));
    assert_eq!(after.spec.unwrap().lease_transitions, Some(1));
    assert!(
        !two_leaders.load(Ordering::SeqCst),
        "both electors led at once"
    );

    // The standby (now leader) also releases on stop.
    standby.stop.send(()).unwrap();
    standby.task.await.unwrap();
    assert_eq!(holder(&lease(&client, "ctl").await), None);
}

/// Counts reconciler terms (started, running) around the real environment reconciler.
#[derive(Default)]
struct Terms {
    started: AtomicUsize,
    running: AtomicUsize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_the_lease_stops_its_reconcilers_without_touching_pods() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    common::install_crds(&client).await;
    common::add_node(&client, "venice", None).await;

    let elector = elect(&client, fast("ctl", "replica-a"));
    let terms = Arc::new(Terms::default());
    let metrics = Metrics::new();
    let (shut, shutdown) = oneshot::channel::<()>();
    let supervised = tokio::spawn({
        let (client, terms) = (client.clone(), terms.clone());
        leader::while_leader(
            elector.election.is_leader(),
            move |stop: Stop| {
                terms.started.fetch_add(1, Ordering::SeqCst);
                terms.running.fetch_add(1, Ordering::SeqCst);
                // Each term builds its caches, as `all::start` does.
                let caches = Caches::new(&client);
                let reconciler = run_environment(
                    client.clone(),
                    &caches,
                    PoolPodConfig::default(),
                    None,
                    metrics.clone(),
                    stop,
                );
                let terms = terms.clone();
                async move {
                    caches.serve(reconciler).await;
                    terms.running.fetch_sub(1, Ordering::SeqCst);
                }
            },
            async move {
                let _ = shutdown.await;
            },
            leader::DEFAULT_STOP_GRACE,
        )
    });

    create_env(&client, "python", 2).await;
    let pods = eventually(WAIT, "two warm pods", || async {
        let pods = warm_pods(&client).await;
        if pods.len() == 2 {
            Ok(pods)
        } else {
            Err(format!("{pods:?}"))
        }
    })
    .await;
    assert_eq!(terms.running.load(Ordering::SeqCst), 1);

    // Someone else takes the Lease (as a replica that saw it expire would).
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let mut taken = leases.get("ctl").await.unwrap();
    taken.spec.as_mut().unwrap().holder_identity = Some("intruder".into());
    leases
        .replace("ctl", &PostParams::default(), &taken)
        .await
        .unwrap();

    eventually(WAIT, "the reconcilers stopped", || async {
        let running = terms.running.load(Ordering::SeqCst);
        if !leads(&elector) && running == 0 {
            Ok(())
        } else {
            Err(format!("leads: {}, running: {running}", leads(&elector)))
        }
    })
    .await;
    assert_eq!(
        warm_pods(&client).await,
        pods,
        "losing leadership touched pods"
    );
    assert_eq!(
        holder(&lease(&client, "ctl").await).as_deref(),
        Some("intruder")
    );

    // The intruder never renews: after a lease duration of silence the Lease is taken back and
    // the reconcilers start again, adopting the same pods.
    eventually(WAIT, "leadership regained", || async {
        let started = terms.started.load(Ordering::SeqCst);
        if leads(&elector) && started == 2 && terms.running.load(Ordering::SeqCst) == 1 {
            Ok(())
        } else {
            Err(format!(
                "leads: {}, terms started: {started}",
                leads(&elector)
            ))
        }
    })
    .await;
    assert_eq!(
        holder(&lease(&client, "ctl").await).as_deref(),
        Some("replica-a")
    );
    assert_eq!(warm_pods(&client).await, pods);

    shut.send(()).unwrap();
    supervised.await.unwrap();
    assert_eq!(terms.running.load(Ordering::SeqCst), 0);
    elector.stop.send(()).unwrap();
    elector.task.await.unwrap();
}

async fn create_env(client: &Client, name: &str, poolsize: i32) {
    let api: Api<Environment> = Api::namespaced(client.clone(), "default");
    let env: Environment = serde_json::from_value(json!({
        "apiVersion": "fission.io/v1", "kind": "Environment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"version": 3, "runtime": {"image": "fission/python-env"}, "poolsize": poolsize}
    }))
    .unwrap();
    api.create(&PostParams::default(), &env).await.unwrap();
}

/// Warm pods by name, with uid and resourceVersion (any write to a pod changes the latter).
async fn warm_pods(client: &Client) -> BTreeMap<String, (String, String)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default().labels("executorType=poolmgr,managed=true"))
        .await
        .unwrap()
        .items
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            (
                p.name_any(),
                (p.uid().unwrap(), p.resource_version().unwrap()),
            )
        })
        .collect()
}

/// `GET path` over a fresh connection: status code and body.
async fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no header end")?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, body.to_owned()))
}

/// The value of one sample line (`name{labels} value`) in an exposition.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_grow_with_reconciles_and_health_endpoints_answer() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    common::install_crds(&client).await;
    common::add_node(&client, "venice", None).await;

    // Readiness as `rivulet controller` wires it: the election loop has reached the Lease API.
    let elector = elect(&client, fast("ctl", "replica-a"));
    let election = elector.election.clone();
    let metrics = Metrics::new();
    let health = Health {
        metrics: metrics.clone(),
        ready: Arc::new(move || {
            if election.is_live() {
                Ok(())
            } else {
                Err("no Lease round yet".into())
            }
        }),
    };
    let server = HealthServer::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop_http, http_stopped) = oneshot::channel::<()>();
    let http = tokio::spawn(server.serve(health, async move {
        let _ = http_stopped.await;
    }));

    assert_eq!(get(addr, "/healthz").await.unwrap(), (200, "ok\n".into()));
    eventually(WAIT, "/readyz 200", || async {
        match get(addr, "/readyz").await? {
            (200, _) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(get(addr, "/nope").await.unwrap().0, 404);

    let (stop, stopped) = oneshot::channel::<()>();
    let caches = Caches::new(&client);
    let reconciler = run_environment(
        client.clone(),
        &caches,
        PoolPodConfig::default(),
        None,
        metrics.clone(),
        async move {
            let _ = stopped.await;
        },
    );
    let reconciler = tokio::spawn(caches.serve(reconciler));
    let total = r#"rivulet_reconcile_total{reconciler="environment"}"#;
    let (status, before) = get(addr, "/metrics").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(sample(&before, total), Some(0.0), "{before}");

    create_env(&client, "python", 1).await;
    let first = eventually(WAIT, "reconciles counted", || async {
        let (_, text) = get(addr, "/metrics").await?;
        match sample(&text, total) {
            Some(n) if n >= 1.0 => Ok(n),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Claiming the warm pod (as the router does) triggers more reconciles: the count grows, and
    // the duration histogram counts every one of them.
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let warm = eventually(WAIT, "a warm pod", || async {
        warm_pods(&client)
            .await
            .into_keys()
            .next()
            .ok_or("none".to_owned())
    })
    .await;
    pods.patch(
        &warm,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"managed": "false"}}})),
    )
    .await
    .unwrap();
    eventually(WAIT, "more reconciles", || async {
        let (_, text) = get(addr, "/metrics").await?;
        match sample(&text, total) {
            Some(n) if n > first => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // Once the reconciler has stopped, the histogram has counted every reconcile.
    stop.send(()).unwrap();
    reconciler.await.unwrap();
    let (_, text) = get(addr, "/metrics").await.unwrap();
    let durations = sample(
        &text,
        r#"rivulet_reconcile_duration_seconds_count{reconciler="environment"}"#,
    );
    assert_eq!(durations, sample(&text, total), "{text}");
    stop_http.send(()).unwrap();
    http.await.unwrap();
    elector.stop.send(()).unwrap();
    elector.task.await.unwrap();
}
