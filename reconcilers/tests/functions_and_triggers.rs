//! The function, package and httptrigger reconcilers against localcluster: every failure reason
//! of a Function, newdeploy objects and their garbage collection, package buildstatus defaulting,
//! routed triggers, route conflicts, Ingress with cleanup on delete, and no writes when unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::large_futures
)] // test code: scenarios read top to bottom

mod common;

use std::sync::Arc;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use rivulet_api::{Function, HTTPTrigger, Package};
use rivulet_reconcilers::environment::pool_pod::PoolPodConfig;
use rivulet_reconcilers::httptrigger::ingress::RouterService;
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::support::shared::Caches;
use rivulet_testing::{TestCluster, eventually};
use serde_json::{Value, json};

fn env_json(name: &str, poolsize: i32) -> Value {
    json!({"apiVersion": "fission.io/v1", "kind": "Environment", "metadata": {"name": name},
           "spec": {"version": 3, "runtime": {"image": "fission/python-env"}, "poolsize": poolsize}})
}

fn package_json(name: &str, deployable: bool) -> Value {
    let archive = if deployable {
        json!({"deployment": {"type": "literal", "literal": "aGk="}})
    } else {
        json!({"source": {"type": "literal", "literal": "aGk="}})
    };
    let mut spec = json!({"environment": {"name": "python"}});
    spec.as_object_mut()
        .unwrap()
        .extend(archive.as_object().unwrap().clone());
    json!({"apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": name}, "spec": spec})
}

fn function_json(name: &str, executor: &str, extra: &Value) -> Value {
    let mut spec = json!({
        "environment": {"name": "python"},
        "package": {"packageref": {"name": format!("{name}-pkg")}},
        "InvokeStrategy": {"StrategyType": "execution", "ExecutionStrategy": {"ExecutorType": executor, "MinScale": 1, "MaxScale": 3}}
    });
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"apiVersion": "fission.io/v1", "kind": "Function", "metadata": {"name": name}, "spec": spec})
}

/// The function, package and httptrigger reconcilers, running until [`Running::stop`] (or drop).
struct Running {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the reconcilers and waits until their in-flight reconciles have finished, so no
    /// write of theirs lands afterwards.
    async fn stop(self) {
        self.stop.send(true).unwrap();
        for task in self.tasks {
            task.await.unwrap();
        }
    }
}

/// Aborts a background task when the test scope ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn start_reconcilers(client: &Client) -> Running {
    start_reconcilers_with(client, &Metrics::new())
}

fn start_reconcilers_with(client: &Client, metrics: &Metrics) -> Running {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let shutdown = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    // The three share their caches, as in `all::start`.
    let caches = Caches::new(client);
    let function = rivulet_reconcilers::function::reconciler::run(
        client.clone(),
        &caches,
        PoolPodConfig::default(),
        metrics.clone(),
        shutdown(stopped.clone()),
    );
    let package = rivulet_reconcilers::package::reconciler::run(
        client.clone(),
        &caches,
        metrics.clone(),
        shutdown(stopped.clone()),
    );
    let httptrigger = rivulet_reconcilers::httptrigger::reconciler::run(
        client.clone(),
        &caches,
        RouterService {
            namespace: "rivulet".into(),
            name: "router".into(),
        },
        metrics.clone(),
        shutdown(stopped),
    );
    let reconcilers = tokio::spawn(caches.serve(async move {
        futures::join!(function, package, httptrigger);
    }));
    Running {
        stop,
        tasks: vec![reconcilers],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_reports_each_broken_reference_until_fixed() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "apps").await;
    let _stop = start_reconcilers(&client);
    let extra = json!({"secrets": [{"namespace": "apps", "name": "creds"}], "configmaps": [{"namespace": "apps", "name": "settings"}]});
    create::<Function>(&client, "apps", function_json("hello", "poolmgr", &extra)).await;

    let message = ready_reason::<Function>(&client, "apps", "hello", "EnvironmentNotFound").await;
    assert!(
        message.contains("spec.environment: Environment apps/python does not exist"),
        "{message}"
    );
    create::<rivulet_api::Environment>(&client, "apps", env_json("python", 0)).await;
    let message = ready_reason::<Function>(&client, "apps", "hello", "EnvironmentHasNoPool").await;
    assert!(message.contains("poolsize 0"), "{message}");
    let envs: Api<rivulet_api::Environment> = Api::namespaced(client.clone(), "apps");
    envs.patch(
        "python",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"poolsize": 1}})),
    )
    .await
    .unwrap();
    ready_reason::<Function>(&client, "apps", "hello", "PackageNotFound").await;
    create::<Package>(&client, "apps", package_json("hello-pkg", false)).await;
    let message = ready_reason::<Function>(&client, "apps", "hello", "PackageNotDeployable").await;
    assert!(
        message.contains("source builds are not supported yet"),
        "{message}"
    );
    ready_reason::<Package>(&client, "apps", "hello-pkg", "SourceBuildNotSupported").await;
    let packages: Api<Package> = Api::namespaced(client.clone(), "apps");
    packages.patch("hello-pkg", &PatchParams::default(), &Patch::Merge(json!({"spec": {"deployment": {"type": "literal", "literal": "aGk="}}, "status": {"buildstatus": "none"}}))).await.unwrap();
    ready_reason::<Function>(&client, "apps", "hello", "SecretNotFound").await;
    create::<Secret>(
        &client,
        "apps",
        json!({"metadata": {"name": "creds"}, "stringData": {"k": "v"}}),
    )
    .await;
    ready_reason::<Function>(&client, "apps", "hello", "ConfigMapNotFound").await;
    create::<ConfigMap>(
        &client,
        "apps",
        json!({"metadata": {"name": "settings"}, "data": {"k": "v"}}),
    )
    .await;
    ready_reason::<Function>(&client, "apps", "hello", "Ready").await;
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_function_and_package_report_the_field() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "apps").await;
    let metrics = Metrics::new();
    let _stop = start_reconcilers_with(&client, &metrics);
    create::<Function>(
        &client,
        "apps",
        function_json("web", "container", &json!({})),
    )
    .await;
    let message = ready_reason::<Function>(&client, "apps", "web", "InvalidSpec").await;
    assert!(
        message.contains("spec.podspec: executor type container requires a pod spec"),
        "{message}"
    );
    create::<Package>(&client, "apps", json!({"apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "empty"}, "spec": {"environment": {"name": "python"}}})).await;
    let message = ready_reason::<Package>(&client, "apps", "empty", "BuildFailed").await;
    assert!(
        message.contains("Both source and deployment are empty"),
        "{message}"
    );
    let packages: Api<Package> = Api::namespaced(client.clone(), "apps");
    assert_eq!(
        packages
            .get("empty")
            .await
            .unwrap()
            .status
            .unwrap()
            .buildstatus
            .as_deref(),
        Some("failed")
    );
    // A package that fails validation names the field.
    create::<Package>(&client, "apps", json!({"apiVersion": "fission.io/v1", "kind": "Package", "metadata": {"name": "badsum"}, "spec": {"environment": {"name": "python"}, "deployment": {"type": "literal", "literal": "aGk=", "checksum": {"type": "sha256", "sum": "abc"}}}})).await;
    let message = ready_reason::<Package>(&client, "apps", "badsum", "InvalidSpec").await;
    assert!(
        message.contains("spec.deployment.checksum.sum"),
        "{message}"
    );
    // A container function whose pod spec cannot be deployed (two ports) says why.
    let two_ports = json!({"podspec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 81}]}]}});
    create::<Function>(
        &client,
        "apps",
        function_json("twoports", "container", &two_ports),
    )
    .await;
    let message = ready_reason::<Function>(&client, "apps", "twoports", "InvalidPodSpec").await;
    assert!(message.contains("exactly one port, got 2"), "{message}");
    // The package and function reconcilers are instrumented under their own label.
    for reconciler in ["package", "function"] {
        let series = format!("rivulet_reconcile_total{{reconciler=\"{reconciler}\"}} ");
        let text = metrics.encode();
        let count: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .unwrap_or_else(|| panic!("no {series} in {text}"))
            .parse()
            .unwrap();
        assert!(count >= 1.0, "{series}{count}");
    }
    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newdeploy_objects_are_applied_once_and_collected_with_the_function() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "apps").await;
    create::<rivulet_api::Environment>(&client, "apps", env_json("python", 1)).await;
    create::<Package>(&client, "apps", package_json("resize-pkg", true)).await;
    let stop = start_reconcilers(&client);
    let function = create::<Function>(
        &client,
        "apps",
        function_json("resize", "newdeploy", &json!({})),
    )
    .await;
    let uid = function.metadata.uid.clone().unwrap();
    let name =
        rivulet_reconcilers::function::deploy::object_name("newdeploy", "resize", "apps", &uid);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "apps");
    let deployment = eventually(WAIT, "newdeploy Deployment", || {
        let deployments = deployments.clone();
        let name = name.clone();
        async move {
            deployments
                .get_opt(&name)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "absent".to_owned())
        }
    })
    .await;
    let fetcher_args = deployment.spec.template.spec.as_ref().unwrap().containers[1]
        .args
        .clone()
        .unwrap();
    assert_eq!(
        fetcher_args[..2],
        ["-specialize-on-startup", "-specialize-request"]
    );
    let request: Value = serde_json::from_str(&fetcher_args[2]).unwrap();
    assert_eq!(request["FetchReq"]["package"]["name"], "resize-pkg");
    assert_eq!(request["LoadReq"]["filepath"], "/userfunc/deployarchive");
    let services: Api<Service> = Api::namespaced(client.clone(), "apps");
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), "apps");
    assert_eq!(
        services
            .get(&name)
            .await
            .unwrap()
            .spec
            .unwrap()
            .ports
            .unwrap()[0]
            .port,
        80
    );
    assert_eq!(hpas.get(&name).await.unwrap().spec.max_replicas, 3);
    // No replica becomes available here (no node agent): the status says so, precisely.
    let message =
        ready_reason::<Function>(&client, "apps", "resize", "DeploymentNotAvailable").await;
    assert!(message.contains(&name), "{message}");

    // A reconcile of the unchanged function writes nothing.
    stop.stop().await;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "test".into(),
            instance: None,
        },
    );
    let caches = Caches::new(&client);
    let ctx = Arc::new(rivulet_reconcilers::function::reconciler::Context::new(
        client.clone(),
        &caches,
        PoolPodConfig::default(),
        recorder,
    ));
    let _caches = AbortOnDrop(tokio::spawn(caches.serve(std::future::pending::<()>())));
    let functions: Api<Function> = Api::namespaced(client.clone(), "apps");
    let before = tc.cluster.resource_version();
    let current = Arc::new(functions.get("resize").await.unwrap());
    rivulet_reconcilers::function::reconciler::reconcile(current.clone(), ctx.clone())
        .await
        .unwrap();
    rivulet_reconcilers::function::reconciler::reconcile(current, ctx)
        .await
        .unwrap();
    assert_eq!(
        tc.cluster.resource_version(),
        before,
        "an unchanged function must not cause writes"
    );

    // Deleting the function garbage-collects its objects (ownerReferences).
    functions
        .delete("resize", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "objects collected", || {
        let (deployments, services, hpas, name) = (
            deployments.clone(),
            services.clone(),
            hpas.clone(),
            name.clone(),
        );
        async move {
            let left = (
                deployments.get_opt(&name).await.unwrap().is_some(),
                services.get_opt(&name).await.unwrap().is_some(),
                hpas.get_opt(&name).await.unwrap().is_some(),
            );
            if left == (false, false, false) {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        }
    })
    .await;
    tc.shutdown().await;
}

fn trigger_json(name: &str, function: &str, extra: &Value) -> Value {
    let mut spec = json!({"relativeurl": "/hello", "methods": ["GET"], "functionref": {"type": "name", "name": function}});
    spec.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    json!({"apiVersion": "fission.io/v1", "kind": "HTTPTrigger", "metadata": {"name": name}, "spec": spec})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_route_conflict_and_ingress() {
    let tc = TestCluster::start().await.unwrap();
    let client = tc.client.clone();
    install_crds(&client).await;
    add_namespace(&client, "apps").await;
    add_namespace(&client, "rivulet").await;
    let metrics = Metrics::new();
    let _stop = start_reconcilers_with(&client, &metrics);
    create::<HTTPTrigger>(&client, "apps", trigger_json("first", "hello", &json!({}))).await;
    let message = ready_reason::<HTTPTrigger>(&client, "apps", "first", "FunctionNotFound").await;
    assert!(message.contains("\"hello\""), "{message}");
    create::<Function>(
        &client,
        "apps",
        function_json("hello", "poolmgr", &json!({})),
    )
    .await;
    let message = ready_reason::<HTTPTrigger>(&client, "apps", "first", "Routed").await;
    assert_eq!(message, "[GET] /hello -> hello");

    // A newer trigger on the same host, path and an overlapping method conflicts.
    create::<HTTPTrigger>(
        &client,
        "apps",
        trigger_json("second", "hello", &json!({"methods": ["GET", "POST"]})),
    )
    .await;
    let message = ready_reason::<HTTPTrigger>(&client, "apps", "second", "RouteConflict").await;
    assert!(message.contains("apps/first"), "{message}");
    // Removing the older one hands the route over.
    let triggers: Api<HTTPTrigger> = Api::namespaced(client.clone(), "apps");
    triggers
        .delete("first", &DeleteParams::default())
        .await
        .unwrap();
    ready_reason::<HTTPTrigger>(&client, "apps", "second", "Routed").await;

    // createingress: an Ingress in the router's namespace, removed with the trigger.
    create::<HTTPTrigger>(&client, "apps", trigger_json("public", "hello", &json!({"relativeurl": "/public", "createingress": true, "ingressconfig": {"host": "api.example.com", "path": "/public"}}))).await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), "rivulet");
    let ingress = eventually(WAIT, "ingress", || {
        let ingresses = ingresses.clone();
        async move {
            ingresses
                .get_opt("public")
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "absent".to_owned())
        }
    })
    .await;
    assert_eq!(
        ingress.spec.unwrap().rules.unwrap()[0].host.as_deref(),
        Some("api.example.com")
    );
    triggers
        .delete("public", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "ingress and trigger gone", || {
        let (ingresses, triggers) = (ingresses.clone(), triggers.clone());
        async move {
            let left = (
                ingresses.get_opt("public").await.unwrap().is_some(),
                triggers.get_opt("public").await.unwrap().is_some(),
            );
            if left == (false, false) {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        }
    })
    .await;
    let remaining = triggers
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    assert_eq!(remaining, 1);

    // Invalid spec (a URL that does not start with a slash) and a path the router cannot compile.
    create::<HTTPTrigger>(
        &client,
        "apps",
        trigger_json("badmethod", "hello", &json!({"relativeurl": "bad"})),
    )
    .await;
    let message = ready_reason::<HTTPTrigger>(&client, "apps", "badmethod", "InvalidSpec").await;
    assert!(message.contains("spec.relativeurl"), "{message}");
    create::<HTTPTrigger>(
        &client,
        "apps",
        trigger_json("badpath", "hello", &json!({"relativeurl": "/users/{id"})),
    )
    .await;
    let message = ready_reason::<HTTPTrigger>(&client, "apps", "badpath", "InvalidRoute").await;
    assert!(message.contains("unbalanced braces"), "{message}");
    assert!(
        metrics
            .encode()
            .contains("rivulet_reconcile_total{reconciler=\"httptrigger\"}"),
        "the httptrigger reconciler is instrumented"
    );
    tc.shutdown().await;
}
