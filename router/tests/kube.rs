//! The router on a localcluster with simulated pods: claiming, specialization, re-discovery,
//! activity, newdeploy load balancing, status codes through the real server, graceful shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use hyper::http::StatusCode;
use kube::Api;
use rivulet_api::keys::rivulet;
use rivulet_router::RouterConfig;
use rivulet_router::admission::Overload;
use rivulet_testing::eventually;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_request_claims_specializes_and_proxies() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    let f = function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let config = RouterConfig {
        instance_id: Some("router-a".into()),
        ..config()
    };
    let router = start_router(c.clone(), config).await;
    routed(router.public_addr, "/hello").await;

    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, format!("hello from hello at {}", fake.ip));

    let pod = get_pod(c, "warm-1").await.unwrap();
    assert_eq!(label(&pod, "managed").as_deref(), Some("false"));
    assert_eq!(label(&pod, "functionName").as_deref(), Some("hello"));
    assert_eq!(label(&pod, "functionNamespace").as_deref(), Some("default"));
    assert_eq!(label(&pod, "functionUid"), f.metadata.uid);
    assert_eq!(
        annotation(&pod, "executorInstanceId").as_deref(),
        Some("router-a")
    );
    assert_eq!(
        annotation(&pod, rivulet::FUNCTION_GENERATION_ANNOTATION),
        f.metadata.generation.map(|g| g.to_string())
    );
    assert_eq!(
        annotation(&pod, "functionResourceVersion"),
        f.metadata.resource_version
    );
    assert_eq!(
        annotation(&pod, "svcHost"),
        Some(format!("{}:8888", fake.ip))
    );

    // Fission's specialize body: FetchReq/LoadReq, deployment fetch of the function's package.
    let bodies = fake.state.specializations.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert_eq!(body["FetchReq"]["fetchType"], 1);
    assert_eq!(body["FetchReq"]["package"]["name"], "hello-pkg");
    assert_eq!(body["FetchReq"]["filename"], "deployarchive");
    assert_eq!(body["LoadReq"]["functionName"], "hello.main");
    assert_eq!(body["LoadReq"]["filepath"], "/userfunc/deployarchive");
    assert_eq!(body["LoadReq"]["FunctionMetadata"]["name"], "hello");

    // Warm: same pod, no second specialization.
    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(fake.state.specializations.lock().unwrap().len(), 1);
    assert_eq!(fake.state.requests.load(Ordering::SeqCst), 2);

    // Metrics on the internal listener.
    let metrics = get(router.internal_addr, "/metrics").await;
    assert!(
        metrics.body.contains(
            r#"rivulet_router_requests_total{namespace="default",name="hello",code="200"} 2"#
        ),
        "{}",
        metrics.body
    );
    assert!(
        metrics.body.contains(r#"result="success"} 1"#),
        "{}",
        metrics.body
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_path_makes_no_api_call() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let (counting, count) = counting_client(&tc).await;
    let config = RouterConfig {
        // One write after the first request, then none for an hour.
        activity_interval: Duration::from_hours(1),
        ..config()
    };
    let router = start_router(counting, config).await;
    routed(router.public_addr, "/hello").await;
    assert_eq!(
        get(router.public_addr, "/hello").await.status,
        StatusCode::OK
    );
    // The first activity write lands (off the request path); then the count must stay put.
    eventually(WAIT, "first activity write", || async {
        let pod = get_pod(c, "warm-1").await.unwrap();
        annotation(&pod, rivulet::LAST_ACTIVITY_ANNOTATION)
            .ok_or_else(|| "no annotation".to_owned())
    })
    .await;
    let before = count.load(Ordering::SeqCst);
    for _ in 0..20 {
        assert_eq!(
            get(router.public_addr, "/hello").await.status,
            StatusCode::OK
        );
    }
    assert_eq!(fake.state.requests.load(Ordering::SeqCst), 21);
    assert_eq!(
        count.load(Ordering::SeqCst),
        before,
        "the warm path sent API requests"
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_specialization_deletes_the_pod_and_shows_the_cause() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    *fake.state.fail_with.lock().unwrap() =
        Some("error loading function: ModuleNotFoundError: No module named 'helo'".into());
    warm_pod(c, "warm-1", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;

    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{reply:?}");
    assert!(
        reply.body.contains("No module named 'helo'") && reply.body.contains("warm-1"),
        "{}",
        reply.body
    );
    eventually(WAIT, "failed pod deleted", || async {
        match get_pod(c, "warm-1").await {
            None => Ok(()),
            Some(p) if p.metadata.deletion_timestamp.is_some() => Ok(()),
            Some(_) => Err("still there".to_owned()),
        }
    })
    .await;
    assert!(router.shutdown().await);
}

/// Waits for function `hello`'s `Specialized` condition to have `status`.
async fn specialized_condition(
    c: &kube::Client,
    status: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition {
    let functions: Api<rivulet_api::Function> = Api::namespaced(c.clone(), "default");
    eventually(WAIT, &format!("Specialized={status}"), || async {
        let f = functions.get("hello").await.map_err(|e| e.to_string())?;
        f.status
            .and_then(|s| s.condition("Specialized").cloned())
            .filter(|c| c.status == status)
            .ok_or_else(|| "not yet".to_owned())
    })
    .await
}

/// Waits for a Warning Event with `reason` regarding an object of each of `kinds`.
async fn warning_events(c: &kube::Client, reason: &str, kinds: &[&str]) {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(c.clone(), "default");
    eventually(WAIT, &format!("{reason} Events on {kinds:?}"), || async {
        let list = events
            .list(&kube::api::ListParams::default())
            .await
            .map_err(|e| e.to_string())?;
        let on = |kind: &str| {
            list.items.iter().any(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some(kind)
            })
        };
        if kinds.iter().all(|k| on(k)) {
            Ok(())
        } else {
            Err(format!("{} events", list.items.len()))
        }
    })
    .await;
}

/// Issue 15.6: the failure shows on the Function (`Specialized=False`) and as Warning Events on
/// the Function and its Package; the next requests get the recorded answer without claiming
/// another warm pod, until the Package changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_specialization_is_recorded_and_held_until_the_package_changes() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    *fake.state.fail_with.lock().unwrap() =
        Some("error loading function: SyntaxError: invalid syntax (hello.py, line 1)".into());
    create::<rivulet_api::Package>(
        c,
        json!({"apiVersion": "fission.io/v1", "kind": "Package",
            "metadata": {"name": "hello-pkg", "namespace": "default"},
            "spec": {"environment": {"name": "python", "namespace": "default"},
                     "deployment": {"type": "literal", "literal": "ZGVmIG1haW4oOgo="}}}),
    )
    .await;
    warm_pod(c, "warm-1", &env, &fake).await;
    warm_pod(c, "warm-2", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;

    let first = get(router.public_addr, "/hello").await;
    assert_eq!(first.status, StatusCode::BAD_GATEWAY, "{first:?}");
    assert!(first.body.contains("SyntaxError"), "{}", first.body);
    let condition = specialized_condition(c, "False").await;
    assert_eq!(condition.reason, "SpecializationFailed");
    assert!(
        condition.message.contains("SyntaxError"),
        "{}",
        condition.message
    );
    warning_events(c, "SpecializationFailed", &["Function", "Package"]).await;

    // Held: the same answer, and the other warm pod stays in the pool.
    let unclaimed = || async {
        let warm = |name: &'static str| async move {
            get_pod(c, name)
                .await
                .is_some_and(|p| label(&p, "managed").as_deref() == Some("true"))
        };
        warm("warm-1").await || warm("warm-2").await
    };
    for _ in 0..3 {
        let again = get(router.public_addr, "/hello").await;
        assert_eq!(again.status, StatusCode::BAD_GATEWAY);
        assert!(again.body.contains("SyntaxError"), "{}", again.body);
    }
    assert!(unclaimed().await, "a held function claims no warm pod");
    assert_eq!(fake.state.specializations.lock().unwrap().len(), 1);

    // A new Package generation is tried at once; success heals the condition.
    *fake.state.fail_with.lock().unwrap() = None;
    let packages: Api<rivulet_api::Package> = Api::namespaced(c.clone(), "default");
    packages
        .patch(
            "hello-pkg",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(json!({"spec": {"deployment": {"literal": "ZGVmIG1haW4oKToKICAgIHJldHVybiAxCg=="}}})),
        )
        .await
        .unwrap();
    eventually(WAIT, "the new package serves", || async {
        let reply = get(router.public_addr, "/hello").await;
        if reply.status == StatusCode::OK {
            Ok(())
        } else {
            Err(format!("{reply:?}"))
        }
    })
    .await;
    specialized_condition(c, "True").await;
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_pools_answer_503_with_the_reason() {
    let tc = cluster().await;
    let c = &tc.client;
    environment(c, "nopool", 0).await;
    environment(c, "python", 3).await; // no pod ever becomes ready
    function(c, "a", "nopool", json!({})).await;
    function(c, "b", "python", json!({})).await;
    trigger(c, "a", "/a", "a").await;
    trigger(c, "b", "/b", "b").await;
    let config = RouterConfig {
        pool_wait: Duration::from_millis(300),
        ..config()
    };
    let router = start_router(c.clone(), config).await;
    routed(router.public_addr, "/b").await;
    let reply = get(router.public_addr, "/a").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply
            .body
            .contains("default/nopool has no warm pool (poolsize 0)"),
        "{}",
        reply.body
    );
    let reply = get(router.public_addr, "/b").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply
            .body
            .contains("no ready warm pod of environment default/python"),
        "{}",
        reply.body
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_racing_for_one_warm_pod_claim_it_once() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let config = RouterConfig {
        pool_wait: Duration::from_millis(500),
        ..config()
    };
    let a = start_router(c.clone(), config.clone()).await;
    let b = start_router(c.clone(), config).await;
    routed(a.public_addr, "/hello").await;
    routed(b.public_addr, "/hello").await;
    let (ra, rb) = tokio::join!(get(a.public_addr, "/hello"), get(b.public_addr, "/hello"));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    // The loser of the claim answers 503 after its pool wait; on a slow machine the second
    // request may instead arrive after the winner finished, and its router then adopts the
    // specialized pod (re-discovery) and answers 200. Either way: one claim, one specialization.
    assert!(
        statuses == [StatusCode::OK, StatusCode::SERVICE_UNAVAILABLE]
            || statuses == [StatusCode::OK, StatusCode::OK],
        "{ra:?} {rb:?}"
    );
    assert_eq!(fake.state.specializations.lock().unwrap().len(), 1);
    assert!(a.shutdown().await);
    assert!(b.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_router_recovers_the_specialized_pod() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let first = fake_pod().await;
    let spare = fake_pod().await;
    served_once_then_router_stopped(c, &env, &first).await;

    // A spare warm pod appears; the restarted router must not claim it.
    warm_pod(c, "warm-2", &env, &spare).await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;
    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, format!("hello from hello at {}", first.ip));
    // Recovered, not adopted unchecked: the same claim again (a pod restarted with SIGTERM has
    // an empty runtime), on the same pod.
    let calls = first.state.specializations.lock().unwrap().clone();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["FetchReq"], calls[1]["FetchReq"]);
    assert_eq!(
        calls[0]["LoadReq"]["filepath"],
        calls[1]["LoadReq"]["filepath"]
    );
    assert!(spare.state.specializations.lock().unwrap().is_empty());
    let spare_pod = get_pod(c, "warm-2").await.unwrap();
    assert_eq!(label(&spare_pod, "managed").as_deref(), Some("true"));
    assert!(router.shutdown().await);
}

/// Function `hello` on warm pod `warm-1` (`fake`), served once by a router that then stops
/// gracefully (so its `svcHost` write is done).
async fn served_once_then_router_stopped(
    c: &kube::Client,
    env: &rivulet_api::Environment,
    fake: &FakePod,
) {
    warm_pod(c, "warm-1", env, fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;
    assert_eq!(
        get(router.public_addr, "/hello").await.status,
        StatusCode::OK
    );
    assert!(router.shutdown().await);
}

/// Issue 15.4: after a restart, the specialized pod is not Ready yet when the first request
/// comes; the router waits for it (bounded) and specializes it again instead of claiming the
/// spare warm pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_specialized_pod_not_ready_yet_is_waited_for_not_replaced() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let first = fake_pod().await;
    let spare = fake_pod().await;
    served_once_then_router_stopped(c, &env, &first).await;

    // `rivulet up` restarts: the pod's processes start again, not Ready for a while.
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(c.clone(), "default");
    let readiness =
        |ready: &str| json!({"status": {"conditions": [{"type": "Ready", "status": ready}]}});
    pods.patch_status(
        "warm-1",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&readiness("False")),
    )
    .await
    .unwrap();
    warm_pod(c, "warm-2", &env, &spare).await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;
    let addr = router.public_addr;
    let request = tokio::spawn(async move { get(addr, "/hello").await });
    // The request usually reaches the router before the pod turns Ready again; either way the
    // pre-fix router failed below (it claimed the spare, or adopted the pod unchecked).
    pods.patch_status(
        "warm-1",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&readiness("True")),
    )
    .await
    .unwrap();
    let reply = request.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.body, format!("hello from hello at {}", first.ip));
    assert_eq!(first.state.specializations.lock().unwrap().len(), 2);
    assert!(spare.state.specializations.lock().unwrap().is_empty());
    let spare_pod = get_pod(c, "warm-2").await.unwrap();
    assert_eq!(label(&spare_pod, "managed").as_deref(), Some("true"));
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_of_an_older_generation_are_not_reused() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let old = fake_pod().await;
    let new = fake_pod().await;
    served_once_then_router_stopped(c, &env, &old).await;

    // The function changes (new generation) while the router is down.
    let functions: kube::Api<rivulet_api::Function> = kube::Api::namespaced(c.clone(), "default");
    let patch = json!({"spec": {"functionTimeout": 30}});
    let updated = functions
        .patch(
            "hello",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .unwrap();
    warm_pod(c, "warm-2", &env, &new).await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;
    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.body, format!("hello from hello at {}", new.ip));
    let pod = get_pod(c, "warm-2").await.unwrap();
    assert_eq!(
        annotation(&pod, rivulet::FUNCTION_GENERATION_ANNOTATION),
        updated.metadata.generation.map(|g| g.to_string())
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_is_refreshed_while_a_request_is_in_flight() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let config = RouterConfig {
        activity_interval: Duration::from_millis(300),
        ..config()
    };
    let router = start_router(c.clone(), config).await;
    routed(router.public_addr, "/hello").await;
    let addr = router.public_addr;
    let slow =
        tokio::spawn(async move { send(addr, "GET", "/hello", &[("x-test-hold", "1")]).await });
    eventually(WAIT, "request held by the runtime", || async {
        if fake.state.holding.load(Ordering::SeqCst) == 1 {
            Ok(())
        } else {
            Err("not yet".to_owned())
        }
    })
    .await;
    let activity = || async {
        let pod = get_pod(c, "warm-1").await.unwrap();
        annotation(&pod, rivulet::LAST_ACTIVITY_ANNOTATION).ok_or_else(|| "none".to_owned())
    };
    let first = eventually(WAIT, "first activity write", activity).await;
    let first_time: k8s_openapi::jiff::Timestamp = first.parse().unwrap();
    let later = eventually(WAIT, "activity refreshed during the request", || async {
        let value = activity().await?;
        if value == first {
            Err(format!("still {value}"))
        } else {
            Ok(value)
        }
    })
    .await;
    let later_time: k8s_openapi::jiff::Timestamp = later.parse().unwrap();
    assert!(later_time > first_time);
    assert_eq!(
        fake.state.holding.load(Ordering::SeqCst),
        1,
        "the request is still in flight"
    );
    fake.state.release.notify_waiters();
    assert_eq!(slow.await.unwrap().status, StatusCode::OK);
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newdeploy_pods_are_load_balanced() {
    let tc = cluster().await;
    let c = &tc.client;
    environment(c, "python", 3).await;
    let f = function(
        c,
        "nd",
        "python",
        json!({"InvokeStrategy": {"ExecutionStrategy": {"ExecutorType": "newdeploy"}}}),
    )
    .await;
    trigger(c, "nd", "/nd", "nd").await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/nd").await;
    let reply = get(router.public_addr, "/nd").await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.body.contains("no ready pod for function default/nd"),
        "{}",
        reply.body
    );

    let labels = json!({"executorType": "newdeploy", "functionUid": f.metadata.uid,
        "functionName": "nd", "functionNamespace": "default"});
    let one = fake_pod().await;
    let two = fake_pod().await;
    pod_object(c, "nd-1", &one, labels.clone()).await;
    pod_object(c, "nd-2", &two, labels).await;
    eventually(WAIT, "both pods serve", || async {
        get(router.public_addr, "/nd").await;
        if one.state.requests.load(Ordering::SeqCst) > 0
            && two.state.requests.load(Ordering::SeqCst) > 0
        {
            Ok(())
        } else {
            Err("one pod unused".to_owned())
        }
    })
    .await;
    let (a0, b0) = (
        one.state.requests.load(Ordering::SeqCst),
        two.state.requests.load(Ordering::SeqCst),
    );
    for _ in 0..10 {
        assert_eq!(get(router.public_addr, "/nd").await.status, StatusCode::OK);
    }
    let a = one.state.requests.load(Ordering::SeqCst) - a0;
    let b = two.state.requests.load(Ordering::SeqCst) - b0;
    assert_eq!((a, b), (5, 5), "round robin");
    assert!(
        one.state.specializations.lock().unwrap().is_empty(),
        "newdeploy pods are not specialized by the router"
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_codes_through_the_real_server() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    function(
        c,
        "hello",
        "python",
        json!({"concurrency": 1, "requestsPerPod": 1}),
    )
    .await;
    trigger(c, "hello", "/hello", "hello").await;
    // No queue: at the cap, the answer is 429 at once (the queue has tests of its own).
    let no_queue = RouterConfig {
        overload: Overload {
            max_queued: 0,
            ..Overload::default()
        },
        ..config()
    };
    let router = start_router(c.clone(), no_queue).await;
    routed(router.public_addr, "/hello").await;
    let addr = router.public_addr;

    let reply = get(addr, "/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.body, "404 page not found\n");
    let reply = send(addr, "POST", "/hello", &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET");
    assert_eq!(get(addr, "/router-healthz").await.status, StatusCode::OK);
    // Internal routes are not public by default, but served on the internal listener.
    assert_eq!(
        get(addr, "/fission-function/hello").await.status,
        StatusCode::NOT_FOUND
    );

    // concurrency 1, requestsPerPod 1, no queue: a second request while one is in flight gets
    // 429.
    let slow =
        tokio::spawn(async move { send(addr, "GET", "/hello", &[("x-test-hold", "1")]).await });
    eventually(WAIT, "request held", || async {
        if fake.state.holding.load(Ordering::SeqCst) == 1 {
            Ok(())
        } else {
            Err("no".to_owned())
        }
    })
    .await;
    let reply = get(router.internal_addr, "/fission-function/hello").await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS, "{reply:?}");
    assert_eq!(reply.headers["retry-after"], "1");
    fake.state.release.notify_waiters();
    assert_eq!(slow.await.unwrap().status, StatusCode::OK);
    assert_eq!(
        get(router.internal_addr, "/fission-function/hello")
            .await
            .status,
        StatusCode::OK
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_requests_in_flight() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    // No queue: at the cap, the answer is 429 at once (the queue has tests of its own).
    let no_queue = RouterConfig {
        overload: Overload {
            max_queued: 0,
            ..Overload::default()
        },
        ..config()
    };
    let router = start_router(c.clone(), no_queue).await;
    routed(router.public_addr, "/hello").await;
    let addr = router.public_addr;
    let slow =
        tokio::spawn(async move { send(addr, "GET", "/hello", &[("x-test-hold", "1")]).await });
    eventually(WAIT, "request held", || async {
        if fake.state.holding.load(Ordering::SeqCst) == 1 {
            Ok(())
        } else {
            Err("no".to_owned())
        }
    })
    .await;
    let shutdown = tokio::spawn(router.shutdown());
    // New connections are refused once the listener is closed.
    eventually(WAIT, "listener closed", || async {
        match tokio::net::TcpStream::connect(addr).await {
            Err(_) => Ok(()),
            Ok(_) => Err("still accepting".to_owned()),
        }
    })
    .await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the request in flight"
    );
    fake.state.release.notify_waiters();
    let reply = slow.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert!(shutdown.await.unwrap(), "drained within the timeout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_options_move_metrics_and_expose_internal_routes() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let fake = fake_pod().await;
    warm_pod(c, "warm-1", &env, &fake).await;
    function(c, "hello", "python", json!({})).await;
    let config = RouterConfig {
        metrics_addr: Some("127.0.0.1:0".parse().unwrap()),
        internal_routes_on_public: true,
        ..config()
    };
    let router = start_router(c.clone(), config).await;
    let metrics = router.metrics_addr.unwrap();
    routed(router.public_addr, "/fission-function/hello").await;
    let reply = get(router.public_addr, "/fission-function/hello").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let text = get(metrics, "/metrics").await;
    assert_eq!(text.status, StatusCode::OK);
    assert!(
        text.body.contains("rivulet_router_requests_total"),
        "{}",
        text.body
    );
    assert_eq!(
        get(router.internal_addr, "/metrics").await.status,
        StatusCode::NOT_FOUND,
        "metrics moved to their own listener"
    );
    assert_eq!(
        get(router.internal_addr, "/router-healthz").await.status,
        StatusCode::OK
    );
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_follow_trigger_and_pod_changes() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let first = fake_pod().await;
    let second = fake_pod().await;
    warm_pod(c, "warm-1", &env, &first).await;
    function(c, "hello", "python", json!({})).await;
    let router = start_router(c.clone(), config()).await;
    let addr = router.public_addr;
    assert_eq!(get(addr, "/hello").await.status, StatusCode::NOT_FOUND);

    // A trigger created while the router runs is routed after the debounce.
    trigger(c, "hello", "/hello", "hello").await;
    routed(addr, "/hello").await;
    let reply = get(addr, "/hello").await;
    assert_eq!(reply.body, format!("hello from hello at {}", first.ip));

    // The specialized pod goes away: the next request specializes another one.
    let pods: kube::Api<k8s_openapi::api::core::v1::Pod> =
        kube::Api::namespaced(c.clone(), "default");
    pods.delete("warm-1", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "warm-1 gone", || async {
        get_pod(c, "warm-1")
            .await
            .map_or(Ok(()), |_| Err("still there".to_owned()))
    })
    .await;
    warm_pod(c, "warm-2", &env, &second).await;
    eventually(WAIT, "served by the new pod", || async {
        let reply = get(addr, "/hello").await;
        if reply.body == format!("hello from hello at {}", second.ip) {
            Ok(())
        } else {
            Err(format!("{reply:?}"))
        }
    })
    .await;
    assert_eq!(second.state.specializations.lock().unwrap().len(), 1);

    // Deleting the trigger removes the route.
    let triggers: kube::Api<rivulet_api::HTTPTrigger> = kube::Api::namespaced(c.clone(), "default");
    triggers
        .delete("hello", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "route removed", || async {
        let status = get(addr, "/hello").await.status;
        if status == StatusCode::NOT_FOUND {
            Ok(())
        } else {
            Err(status.to_string())
        }
    })
    .await;
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_environments_share_one_pod_without_claiming_it() {
    let tc = cluster().await;
    let c = &tc.client;
    let env: rivulet_api::Environment = create(
        c,
        json!({"apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": "shared", "namespace": "default"},
            "spec": {"version": 3, "runtime": {"image": "fission/python-env"},
                     "allowedFunctionsPerContainer": "infinite"}}),
    )
    .await;
    let fake = fake_pod().await;
    warm_pod(c, "shared-1", &env, &fake).await;
    let a = function(c, "a", "shared", json!({})).await;
    let b = function(c, "b", "shared", json!({})).await;
    trigger(c, "a", "/a", "a").await;
    trigger(c, "b", "/b", "b").await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/a").await;
    routed(router.public_addr, "/b").await;
    assert_eq!(
        get(router.public_addr, "/a").await.body,
        format!("hello from a at {}", fake.ip)
    );
    assert_eq!(
        get(router.public_addr, "/b").await.body,
        format!("hello from b at {}", fake.ip)
    );
    let bodies = fake.state.specializations.lock().unwrap().clone();
    let files: Vec<_> = bodies
        .iter()
        .map(|b| b["FetchReq"]["filename"].clone())
        .collect();
    assert_eq!(files, [json!(a.metadata.uid), json!(b.metadata.uid)]);
    let pod = get_pod(c, "shared-1").await.unwrap();
    assert_eq!(
        label(&pod, "managed").as_deref(),
        Some("true"),
        "never relabelled"
    );
    assert_eq!(label(&pod, "functionUid"), None);
    assert!(router.shutdown().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_refuses_connections_is_evicted_and_deleted() {
    let tc = cluster().await;
    let c = &tc.client;
    let env = environment(c, "python", 3).await;
    let broken = fake_pod_without_runtime().await;
    warm_pod(c, "warm-1", &env, &broken).await;
    function(c, "hello", "python", json!({})).await;
    trigger(c, "hello", "/hello", "hello").await;
    let router = start_router(c.clone(), config()).await;
    routed(router.public_addr, "/hello").await;
    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{reply:?}");
    assert!(
        reply.body.contains("error connecting to function")
            && reply.body.contains(&broken.ip.to_string()),
        "{}",
        reply.body
    );
    eventually(WAIT, "broken pod deleted", || async {
        get_pod(c, "warm-1")
            .await
            .map_or(Ok(()), |_| Err("still there".to_owned()))
    })
    .await;
    // The next request specializes a healthy pod.
    let healthy = fake_pod().await;
    warm_pod(c, "warm-2", &env, &healthy).await;
    let reply = get(router.public_addr, "/hello").await;
    assert_eq!(reply.body, format!("hello from hello at {}", healthy.ip));
    assert!(router.shutdown().await);
}

/// With an installation key, the internal listener (which calls any function by name) answers
/// function calls only with the router internal token derived from it; health stays open, and
/// the public listener is unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_internal_listener_calls_functions_only_with_the_installation_token() {
    let tc = cluster().await;
    let key = rivulet_api::specialize::FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
    let token = key.router_internal_token();
    let router = start_router(
        tc.client.clone(),
        RouterConfig {
            internal_token: Some(token.clone()),
            fetcher_key: Some(key),
            ..config()
        },
    )
    .await;
    let internal = router.internal_addr;
    let denied = get(internal, "/fission-function/nothing").await;
    assert_eq!(denied.status, StatusCode::UNAUTHORIZED, "{denied:?}");
    assert_eq!(denied.headers["www-authenticate"], "Bearer");
    assert!(
        denied.body.contains("Authorization: Bearer"),
        "{}",
        denied.body
    );
    let wrong = send(
        internal,
        "GET",
        "/fission-function/nothing",
        &[("authorization", "Bearer 0000")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let bearer = format!("Bearer {token}");
    let allowed = send(
        internal,
        "GET",
        "/fission-function/nothing",
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(
        allowed.status,
        StatusCode::NOT_FOUND,
        "routed, no such function"
    );
    assert_eq!(
        get(internal, "/router-healthz").await.status,
        StatusCode::OK
    );
    assert_eq!(
        get(router.public_addr, "/router-healthz").await.status,
        StatusCode::OK
    );
    assert!(router.shutdown().await);
}
