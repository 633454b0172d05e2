//! The kubewatcher and the timer against localcluster, with a recording server in place of the
//! router's internal listener: Fission's request shape, label selectors, trigger updates and
//! deletion, ordered delivery, resumption after a restart without duplicates, retries and
//! reported failures, timer accuracy, and invalid specs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::large_futures
)] // test code: scenarios read top to bottom

mod common;

use std::time::Duration;

use common::recorder::{Received, Recorder};
use common::*;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use rivulet_api::{KubernetesWatchTrigger, TimeTrigger};
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::triggers::delivery::DeliveryConfig;
use rivulet_reconcilers::triggers::tasks::TriggerCalls;
use rivulet_testing::{TestCluster, eventually};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

/// Fires observed by the timer test: one a second for a minute.
const FIRES: usize = 61;
/// The router internal token the deliveries present (`rivulet router` answers 401 without it).
const ROUTER_TOKEN: &str = "router-internal-token";
const ROUTER_BEARER: &str = "Bearer router-internal-token";

/// Short back-off so retry scenarios finish quickly.
fn delivery() -> DeliveryConfig {
    DeliveryConfig {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        request_timeout: Duration::from_secs(5),
    }
}

struct Triggers {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    metrics: Metrics,
}

impl Triggers {
    fn start(client: &Client, recorder: &Recorder) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let metrics = Metrics::new();
        let calls = TriggerCalls {
            router_url: recorder.url(),
            delivery: delivery(),
            authorization: rivulet_reconcilers::triggers::delivery::bearer(ROUTER_TOKEN),
            metrics: metrics.clone(),
        };
        let tasks = vec![
            tokio::spawn(rivulet_reconcilers::triggers::kubewatcher::run(
                client.clone(),
                &calls,
                shutdown(stopped.clone()),
            )),
            tokio::spawn(rivulet_reconcilers::triggers::timetrigger::run(
                client.clone(),
                &calls,
                shutdown(stopped),
            )),
        ];
        Self {
            stop,
            tasks,
            metrics,
        }
    }

    /// Stops both and waits until they have written their last progress.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        }
    }
}

async fn pod(client: &Client, namespace: &str, name: &str, app: &str) {
    create::<Pod>(
        client,
        namespace,
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "labels": {"app": app}},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    )
    .await;
}

fn watch_json(name: &str, namespace: &str, function: &str, selector: Option<&str>) -> Value {
    let mut spec = json!({"namespace": namespace, "type": "pod",
                          "functionref": {"type": "name", "name": function}});
    if let Some(app) = selector {
        spec["labelselector"] = json!({"app": app});
    }
    json!({"apiVersion": "fission.io/v1", "kind": "KubernetesWatchTrigger",
           "metadata": {"name": name}, "spec": spec})
}

/// Waits until `path` has received exactly `expected` (in order) and returns the requests.
async fn received_exactly(recorder: &Recorder, path: &str, expected: &[&str]) -> Vec<Received> {
    eventually(WAIT, &format!("{expected:?} on {path}"), || async {
        let events = recorder.events(path);
        if events == expected {
            Ok(recorder.on(path))
        } else {
            Err(format!("{events:?}"))
        }
    })
    .await
}

async fn status_of(client: &Client, name: &str) -> Value {
    let api: Api<KubernetesWatchTrigger> = Api::namespaced(client.clone(), "default");
    serde_json::to_value(api.get(name).await.unwrap()).unwrap()["status"].clone()
}

async fn events_for(client: &Client, name: &str, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_events_reach_the_function_filtered_and_follow_updates() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "watched").await;
    add_namespace(&client, "other").await;
    let recorder = Recorder::start().await;
    let triggers = Triggers::start(&client, &recorder);

    pod(&client, "watched", "a", "x").await;
    pod(&client, "watched", "b", "y").await;
    create::<KubernetesWatchTrigger>(
        &client,
        "default",
        watch_json("pods", "watched", "fn", Some("x")),
    )
    .await;
    // A new subscription starts with the existing objects, as Fission's does; `b` does not
    // match the selector.
    let first = received_exactly(&recorder, "/fission-function/fn", &["ADDED a"]).await;
    let call = &first[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.header("x-kubernetes-object-type"), Some("Pod"));
    assert_eq!(call.header("authorization"), Some(ROUTER_BEARER));
    assert!(
        call.body.starts_with("{\n    \""),
        "4-space indented JSON: {}",
        call.body
    );
    let message =
        ready_reason::<KubernetesWatchTrigger>(&client, "default", "pods", "Watching").await;
    assert!(
        message.contains("pods in watched matching app=x"),
        "{message}"
    );

    pod(&client, "watched", "c", "x").await;
    pod(&client, "watched", "d", "y").await;
    Api::<Pod>::namespaced(client.clone(), "watched")
        .delete("a", &DeleteParams::default())
        .await
        .unwrap();
    received_exactly(
        &recorder,
        "/fission-function/fn",
        &["ADDED a", "ADDED c", "DELETED a"],
    )
    .await;
    eventually(WAIT, "progress recorded in status", || async {
        let delivery = status_of(&client, "pods").await["delivery"].clone();
        if delivery["delivered"] == 3 && delivery["lastEvent"]["type"] == "DELETED" {
            Ok(())
        } else {
            Err(delivery.to_string())
        }
    })
    .await;

    // Changing the selector takes effect without a restart: a new subscription, starting with
    // the objects that now match.
    let triggers_api: Api<KubernetesWatchTrigger> = Api::namespaced(client.clone(), "default");
    triggers_api
        .patch(
            "pods",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"labelselector": {"app": "y"}}})),
        )
        .await
        .unwrap();
    received_exactly(
        &recorder,
        "/fission-function/fn",
        &["ADDED a", "ADDED c", "DELETED a", "ADDED b", "ADDED d"],
    )
    .await;

    // So does changing the namespace.
    pod(&client, "other", "e", "y").await;
    triggers_api
        .patch(
            "pods",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"namespace": "other"}})),
        )
        .await
        .unwrap();
    received_exactly(
        &recorder,
        "/fission-function/fn",
        &[
            "ADDED a",
            "ADDED c",
            "DELETED a",
            "ADDED b",
            "ADDED d",
            "ADDED e",
        ],
    )
    .await;
    eventually(WAIT, "new subscription in status", || async {
        let delivery = status_of(&client, "pods").await["delivery"].clone();
        if delivery["subscription"] == "other/pod?app=y" && delivery["delivered"] == 1 {
            Ok(())
        } else {
            Err(delivery.to_string())
        }
    })
    .await;

    // Deleting the trigger stops its watch: a second trigger on the same namespace sees the
    // next pod, the deleted one does not.
    triggers_api
        .delete("pods", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "trigger gone", || async {
        match triggers_api.get_opt("pods").await.unwrap() {
            None => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await;
    create::<KubernetesWatchTrigger>(
        &client,
        "default",
        watch_json("witness", "other", "witness", None),
    )
    .await;
    received_exactly(&recorder, "/fission-function/witness", &["ADDED e"]).await;
    pod(&client, "other", "f", "y").await;
    received_exactly(
        &recorder,
        "/fission-function/witness",
        &["ADDED e", "ADDED f"],
    )
    .await;
    assert_eq!(
        recorder.events("/fission-function/fn").len(),
        6,
        "the deleted trigger delivered nothing more"
    );

    triggers.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kubewatcher_resumes_without_duplicates() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "watched").await;
    let recorder = Recorder::start().await;
    let triggers = Triggers::start(&client, &recorder);
    for name in ["p1", "p2"] {
        pod(&client, "watched", name, "x").await;
    }
    create::<KubernetesWatchTrigger>(
        &client,
        "default",
        watch_json("resume", "watched", "fn", None),
    )
    .await;
    received_exactly(&recorder, "/fission-function/fn", &["ADDED p1", "ADDED p2"]).await;
    // Events keep their order.
    for name in ["q1", "q2", "q3", "q4", "q5"] {
        pod(&client, "watched", name, "x").await;
    }
    received_exactly(
        &recorder,
        "/fission-function/fn",
        &[
            "ADDED p1", "ADDED p2", "ADDED q1", "ADDED q2", "ADDED q3", "ADDED q4", "ADDED q5",
        ],
    )
    .await;
    triggers.stop().await;
    let checkpoint = status_of(&client, "resume").await["delivery"].clone();
    assert_eq!(checkpoint["delivered"], 7, "{checkpoint}");

    // While the controller is down: one pod added, one deleted.
    pod(&client, "watched", "p3", "x").await;
    Api::<Pod>::namespaced(client.clone(), "watched")
        .delete("p1", &DeleteParams::default())
        .await
        .unwrap();
    let triggers = Triggers::start(&client, &recorder);
    received_exactly(
        &recorder,
        "/fission-function/fn",
        &[
            "ADDED p1",
            "ADDED p2",
            "ADDED q1",
            "ADDED q2",
            "ADDED q3",
            "ADDED q4",
            "ADDED q5",
            "ADDED p3",
            "DELETED p1",
        ],
    )
    .await;
    eventually(WAIT, "counts continue", || async {
        let delivery = status_of(&client, "resume").await["delivery"].clone();
        if delivery["delivered"] == 9 {
            Ok(())
        } else {
            Err(delivery.to_string())
        }
    })
    .await;
    triggers.stop().await;
    cluster.shutdown().await;
}

/// A delivery in flight when the controller stops gracefully is finished and recorded, so the
/// restarted watcher does not deliver it again (issue 15.5: it was cancelled with the stop and
/// its progress lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_in_flight_at_a_graceful_stop_is_not_replayed() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "inflight").await;
    let recorder = Recorder::start().await;
    let path = "/fission-function/fn";
    let triggers = Triggers::start(&client, &recorder);
    create::<KubernetesWatchTrigger>(
        &client,
        "default",
        watch_json("inflight", "inflight", "fn", None),
    )
    .await;
    ready_reason::<KubernetesWatchTrigger>(&client, "default", "inflight", "Watching").await;
    recorder.hold(path);
    pod(&client, "inflight", "a", "x").await;
    received_exactly(&recorder, path, &["ADDED a"]).await;
    // Stop while the function has not answered yet, then let the answer go.
    triggers.stop.send(true).unwrap();
    recorder.release(path);
    for task in triggers.tasks {
        tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
    }
    let triggers = Triggers::start(&client, &recorder);
    pod(&client, "inflight", "b", "x").await;
    // Deliveries are in order: a replayed `ADDED a` would come before `ADDED b`.
    received_exactly(&recorder, path, &["ADDED a", "ADDED b"]).await;
    triggers.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_then_reported() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "watched").await;
    let recorder = Recorder::start().await;
    recorder.script("/fission-function/flaky", &[503, 502]);
    recorder.always("/fission-function/broken", 500);
    recorder.always("/fission-function/missing", 404);
    let triggers = Triggers::start(&client, &recorder);
    pod(&client, "watched", "a", "x").await;
    for function in ["flaky", "broken", "missing"] {
        create::<KubernetesWatchTrigger>(
            &client,
            "default",
            watch_json(function, "watched", function, None),
        )
        .await;
    }
    // Two 5xx, then delivered: three attempts, one delivery.
    let flaky = received_exactly(
        &recorder,
        "/fission-function/flaky",
        &["ADDED a", "ADDED a", "ADDED a"],
    )
    .await;
    assert_eq!(
        flaky.iter().map(|r| r.status).collect::<Vec<_>>(),
        [503, 502, 200]
    );
    // Always 500: every attempt (4 in this test's configuration), then given up.
    received_exactly(
        &recorder,
        "/fission-function/broken",
        &["ADDED a", "ADDED a", "ADDED a", "ADDED a"],
    )
    .await;
    // A 404 is not retried.
    received_exactly(&recorder, "/fission-function/missing", &["ADDED a"]).await;
    for (name, delivered, failed) in [("flaky", 1, 0), ("broken", 0, 1), ("missing", 0, 1)] {
        eventually(WAIT, &format!("{name} counts"), || async {
            let delivery = status_of(&client, name).await["delivery"].clone();
            if delivery["delivered"] == delivered && delivery["failed"] == failed {
                Ok(delivery)
            } else {
                Err(delivery.to_string())
            }
        })
        .await;
    }
    let broken = status_of(&client, "broken").await["delivery"]["lastEvent"].clone();
    assert_eq!(broken["outcome"], "Failed");
    assert!(
        broken["message"]
            .as_str()
            .unwrap()
            .contains("gave up after 4 attempt(s): HTTP 500"),
        "{broken}"
    );
    for name in ["broken", "missing"] {
        eventually(
            WAIT,
            &format!("DeliveryFailed event for {name}"),
            || async {
                let events = events_for(&client, name, "DeliveryFailed").await;
                events
                    .first()
                    .and_then(|e| e.message.clone())
                    .ok_or_else(|| "no event yet".to_owned())
            },
        )
        .await;
    }
    assert!(
        events_for(&client, "flaky", "DeliveryFailed")
            .await
            .is_empty()
    );
    let metrics = triggers.metrics.encode();
    for series in [
        r#"rivulet_trigger_deliveries_total{trigger="kubewatcher",outcome="delivered"} 1"#,
        r#"rivulet_trigger_deliveries_total{trigger="kubewatcher",outcome="exhausted"} 1"#,
        r#"rivulet_trigger_deliveries_total{trigger="kubewatcher",outcome="rejected"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    triggers.stop().await;
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_triggers_say_what_to_fix() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    let recorder = Recorder::start().await;
    let triggers = Triggers::start(&client, &recorder);
    let mut deployments = watch_json("deployments", "default", "fn", None);
    deployments["spec"]["type"] = "deployment".into();
    create::<KubernetesWatchTrigger>(&client, "default", deployments).await;
    let message =
        ready_reason::<KubernetesWatchTrigger>(&client, "default", "deployments", "InvalidSpec")
            .await;
    assert!(message.contains("spec.type"), "{message}");
    let mut weights = watch_json("weights", "default", "fn", None);
    weights["spec"]["functionref"] =
        json!({"type": "function-weights", "functionweights": {"fn": 100}});
    create::<KubernetesWatchTrigger>(&client, "default", weights).await;
    let message = ready_reason::<KubernetesWatchTrigger>(
        &client,
        "default",
        "weights",
        "UnsupportedFunctionReference",
    )
    .await;
    assert!(message.contains("spec.functionref.type"), "{message}");

    create::<TimeTrigger>(
        &client,
        "default",
        timer_json("bad-cron", "61 * * * *", "fn"),
    )
    .await;
    let message = ready_reason::<TimeTrigger>(&client, "default", "bad-cron", "InvalidSpec").await;
    assert!(
        message.contains("spec.cron") && message.contains("above maximum (59)"),
        "{message}"
    );
    create::<TimeTrigger>(&client, "default", timer_json("never", "0 0 30 2 *", "fn")).await;
    ready_reason::<TimeTrigger>(&client, "default", "never", "NeverFires").await;
    for (name, reason) in [("deployments", "InvalidSpec"), ("bad-cron", "InvalidSpec")] {
        eventually(WAIT, &format!("{reason} event for {name}"), || async {
            let events = events_for(&client, name, reason).await;
            if events.is_empty() {
                Err("none yet".to_owned())
            } else {
                Ok(())
            }
        })
        .await;
    }
    // Fixing the spec makes the trigger work without a restart.
    Api::<TimeTrigger>::namespaced(client.clone(), "default")
        .patch(
            "bad-cron",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"cron": "@every 1s"}})),
        )
        .await
        .unwrap();
    ready_reason::<TimeTrigger>(&client, "default", "bad-cron", "Scheduled").await;
    eventually(WAIT, "the fixed timer fires", || async {
        if recorder.on("/fission-function/fn/").is_empty() {
            Err("no call yet".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
    triggers.stop().await;
    cluster.shutdown().await;
}

fn timer_json(name: &str, cron: &str, function: &str) -> Value {
    json!({"apiVersion": "fission.io/v1", "kind": "TimeTrigger", "metadata": {"name": name},
           "spec": {"cron": cron, "functionref": {"type": "name", "name": function}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_fire_every_second_without_drift_for_a_minute() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "demo").await;
    let recorder = Recorder::start().await;
    let triggers = Triggers::start(&client, &recorder);
    create::<TimeTrigger>(&client, "default", timer_json("tick", "@every 1s", "fn")).await;
    let mut get = timer_json("get", "*/2 * * * * *", "fn2");
    get["spec"]["method"] = "GET".into();
    get["spec"]["subpath"] = "/status".into();
    create::<TimeTrigger>(&client, "demo", get).await;

    let calls = eventually(Duration::from_secs(90), "61 fires", || async {
        let calls = recorder.on("/fission-function/fn/");
        if calls.len() >= FIRES {
            Ok(calls)
        } else {
            Err(format!("{} so far", calls.len()))
        }
    })
    .await;
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].header("x-fission-timer-name"), Some("tick"));
    assert_eq!(calls[0].header("authorization"), Some(ROUTER_BEARER));
    assert!(calls[0].body.is_empty());
    // Fire k is due k seconds after the first: the schedule counts from scheduled times, so
    // lateness never accumulates.
    let first = calls[0].at;
    for (k, call) in calls.iter().enumerate().take(FIRES) {
        let due = first + Duration::from_secs(k as u64);
        let off = if call.at > due {
            call.at - due
        } else {
            due - call.at
        };
        assert!(
            off <= Duration::from_secs(1),
            "fire {k} is {off:?} off schedule"
        );
    }
    let other = recorder.on("/fission-function/demo/fn2/status");
    assert!(
        other.len() >= 25,
        "even seconds over a minute: {}",
        other.len()
    );
    assert_eq!(other[0].method, "GET");
    assert_eq!(other[0].header("x-fission-timer-name"), Some("get"));

    let api: Api<TimeTrigger> = Api::namespaced(client.clone(), "default");
    let status = serde_json::to_value(api.get("tick").await.unwrap()).unwrap()["status"].clone();
    assert!(status["delivered"].as_i64().unwrap() >= 55, "{status}");
    assert!(status["lastFireTime"].is_string() && status["nextFireTime"].is_string());
    triggers.stop().await;
    cluster.shutdown().await;
}
