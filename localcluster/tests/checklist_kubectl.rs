//! reference/apiserver.md closing checklist, the items about kubectl (real kubectl 1.32 binary).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WAIT, WIDGET_CRD, eventually, start};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

const CM: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: demo\ndata:\n  a: \"1\"\n";
const CR: &str = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n  color: red\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_01_kubectl_apply_strict_validation_and_patch_types() {
    let env = start("c01").await;
    env.kubectl_ok(&["apply", "-f", "-"], Some(CM));
    env.kubectl_ok(&["apply", "-f", "-"], Some(WIDGET_CRD));
    env.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
        None,
    );
    env.kubectl_ok(&["apply", "-f", "-"], Some(CR));

    // Re-apply changed manifests: strategic merge for built-ins, merge patch for CRs.
    let out = env.kubectl(
        &["apply", "-v=8", "-f", "-"],
        Some(&CM.replace("\"1\"", "\"2\"")),
    );
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("application/strategic-merge-patch+json"),
        "{log}"
    );
    let out = env.kubectl(
        &["apply", "-v=8", "-f", "-"],
        Some(&CR.replace("red", "blue")),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("application/merge-patch+json"), "{log}");

    let cm: ConfigMap = Api::default_namespaced(env.client.clone())
        .get("demo")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "2");
    let w = env.kubectl_ok(
        &["get", "widget", "w1", "-o", "jsonpath={.spec.color}"],
        None,
    );
    assert_eq!(w, "blue");
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_02_kubectl_server_side_apply_and_conflicts() {
    let env = start("c02").await;
    env.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(CM));
    env.kubectl_ok(
        &["apply", "--server-side", "-f", "-"],
        Some(&CM.replace("\"1\"", "\"2\"")),
    );
    // Another manager changing an owned field conflicts...
    let other = env.kubectl(
        &["apply", "--server-side", "--field-manager=other", "-f", "-"],
        Some(&CM.replace("\"1\"", "\"3\"")),
    );
    assert!(!other.status.success());
    let err = String::from_utf8_lossy(&other.stderr);
    assert!(err.contains("conflict") && err.contains(".data.a"), "{err}");
    // ...until it forces.
    env.kubectl_ok(
        &[
            "apply",
            "--server-side",
            "--field-manager=other",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&CM.replace("\"1\"", "\"3\"")),
    );
    let cm: ConfigMap = Api::default_namespaced(env.client.clone())
        .get("demo")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "3");
    let managers: Vec<String> = cm
        .metadata
        .managed_fields
        .unwrap()
        .iter()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert!(managers.contains(&"other".to_string()), "{managers:?}");

    // The 409 carries a FieldManagerConflict cause naming the field.
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let err = api
        .patch("demo", &PatchParams::apply("kubectl"), &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo"}, "data": {"a": "4"}})))
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("expected an API error")
    };
    assert_eq!(status.code, 409);
    let causes = status.details.unwrap().causes;
    assert!(
        causes
            .iter()
            .any(|c| c.reason == "FieldManagerConflict" && c.field == ".data.a"),
        "{causes:?}"
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_03_kubectl_get_columns_wide_and_short_names() {
    let env = start("c03").await;
    env.kubectl_ok(&["apply", "-f", "-"], Some(WIDGET_CRD));
    env.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
        None,
    );
    env.kubectl_ok(&["apply", "-f", "-"], Some(CR));
    let out = env.kubectl_ok(&["get", "wd"], None);
    let header = out.lines().next().unwrap();
    assert!(
        header.contains("SIZE") && !header.contains("COLOR"),
        "{out}"
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row, ["w1", "3"], "{out}");
    let wide = env.kubectl_ok(&["get", "widgets", "-o", "wide"], None);
    assert!(
        wide.lines().next().unwrap().contains("COLOR") && wide.contains("red"),
        "{wide}"
    );
    env.kubectl_ok(&["apply", "-f", "-"], Some(CM));
    let cm = env.kubectl_ok(&["get", "cm"], None);
    assert!(cm.contains("demo"), "{cm}");
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_04_kubectl_describe_pod_shows_events_from_events_k8s_io() {
    let env = start("c04").await;
    let pods: Api<Pod> = Api::default_namespaced(env.client.clone());
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}
    }))
    .unwrap();
    let pod = pods.create(&PostParams::default(), &pod).await.unwrap();
    let recorder =
        kube::runtime::events::Recorder::new(env.client.clone(), "test-controller".into());
    recorder
        .publish(
            &kube::runtime::events::Event {
                type_: kube::runtime::events::EventType::Normal,
                reason: "Testing".into(),
                note: Some("hello from events.k8s.io".into()),
                action: "Test".into(),
                secondary: None,
            },
            &kube::Resource::object_ref(&pod, &()),
        )
        .await
        .unwrap();
    let out = env.kubectl_ok(&["describe", "pod", "p"], None);
    assert!(
        out.contains("Name:")
            && out.contains("hello from events.k8s.io")
            && out.contains("Testing"),
        "{out}"
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_05_kubectl_delete_with_finalizer_waits_for_removal() {
    let env = start("c05").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let cm: ConfigMap = serde_json::from_value(
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    env.kubectl_ok(&["delete", "configmap", "held", "--wait=false"], None);
    let held = api.get("held").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());

    let watch_params = kube::api::WatchParams::default().fields("metadata.name=held");
    let rv = held.metadata.resource_version.clone().unwrap();
    let mut stream = futures::StreamExt::boxed(api.watch(&watch_params, &rv).await.unwrap());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    let deleted = tokio::time::timeout(WAIT, async {
        while let Some(ev) = futures::StreamExt::next(&mut stream).await {
            if let kube::api::WatchEvent::Deleted(obj) = ev.unwrap() {
                return obj;
            }
        }
        panic!("watch ended without DELETED");
    })
    .await
    .unwrap();
    assert_eq!(deleted.metadata.name.as_deref(), Some("held"));
    assert!(api.get_opt("held").await.unwrap().is_none());
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_06_kubectl_wait_established_and_delete() {
    let env = start("c06").await;
    env.kubectl_ok(&["apply", "-f", "-"], Some(WIDGET_CRD));
    env.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/widgets.example.com",
            "--timeout=10s",
        ],
        None,
    );
    env.kubectl_ok(&["apply", "-f", "-"], Some(CM));
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    api.patch(
        "demo",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold"]}})),
    )
    .await
    .unwrap();
    env.kubectl_ok(&["delete", "cm", "demo", "--wait=false"], None);
    let client = env.client.clone();
    let release = tokio::spawn(async move {
        let api: Api<ConfigMap> = Api::default_namespaced(client);
        api.patch(
            "demo",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    });
    env.kubectl_ok(&["wait", "--for=delete", "cm/demo", "--timeout=10s"], None);
    release.await.unwrap();
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_07_aggregated_and_legacy_discovery_with_new_crd() {
    let env = start("c07").await;
    let aggregated =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    for path in ["/api", "/apis"] {
        let req = hyper::Request::get(path)
            .header("accept", aggregated)
            .body(Vec::new())
            .unwrap();
        let resp = env
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .unwrap();
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert_eq!(
            ct,
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
        );
        let req = hyper::Request::get(path)
            .header("accept", "application/json")
            .body(Vec::new())
            .unwrap();
        let resp = env
            .client
            .send(req.map(kube::client::Body::from))
            .await
            .unwrap();
        assert_eq!(resp.headers()["content-type"], "application/json");
    }
    // The CRD create that reports Established=True also makes the resource discoverable.
    let crd: k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition =
        serde_yaml_ng::from_str(WIDGET_CRD).unwrap();
    let created = Api::all(env.client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    let conditions = created.status.unwrap().conditions.unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let (_, legacy) = env
        .raw(
            "GET",
            "/apis/example.com/v1",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(legacy["resources"][0]["name"], "widgets");
    let req = hyper::Request::get("/apis")
        .header("accept", aggregated)
        .body(Vec::new())
        .unwrap();
    let text = env.client.request_text(req).await.unwrap();
    assert!(text.contains("\"resource\":\"widgets\""), "{text}");
    // kubectl resolves the new kind right away.
    eventually(WAIT, "kubectl get widgets", || async {
        env.kubectl(&["get", "widgets"], None)
            .status
            .success()
            .then_some(())
    })
    .await;
    env.cluster.shutdown().await;
}

/// Not a checklist item: `kubectl create <kind>` sends protobuf bodies (client-go typed clients
/// never fall back to JSON), so the kinds it creates that way must be understood.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_imperative_commands_send_protobuf() {
    let env = start("create").await;
    env.kubectl_ok(&["create", "namespace", "made"], None);
    env.kubectl_ok(
        &[
            "-n",
            "made",
            "create",
            "configmap",
            "cfg",
            "--from-literal=a=b",
        ],
        None,
    );
    env.kubectl_ok(
        &[
            "-n",
            "made",
            "create",
            "secret",
            "generic",
            "sec",
            "--from-literal=k=v",
        ],
        None,
    );
    env.kubectl_ok(&["-n", "made", "create", "serviceaccount", "robot"], None);
    let cm: ConfigMap = Api::namespaced(env.client.clone(), "made")
        .get("cfg")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["a"], "b");
    let secret: k8s_openapi::api::core::v1::Secret = Api::namespaced(env.client.clone(), "made")
        .get("sec")
        .await
        .unwrap();
    assert_eq!(secret.data.unwrap()["k"].0, b"v");
    assert_eq!(secret.type_.as_deref(), None);
    env.kubectl_ok(
        &[
            "-n",
            "made",
            "create",
            "deployment",
            "web",
            "--image=nginx",
            "--replicas=2",
            "--port=80",
        ],
        None,
    );
    let d: k8s_openapi::api::apps::v1::Deployment = Api::namespaced(env.client.clone(), "made")
        .get("web")
        .await
        .unwrap();
    assert_eq!(d.spec.replicas, Some(2));
    let container = &d.spec.template.spec.unwrap().containers[0];
    assert_eq!(
        (container.name.as_str(), container.image.as_deref()),
        ("nginx", Some("nginx"))
    );
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 80);
    env.kubectl_ok(
        &[
            "-n",
            "made",
            "create",
            "service",
            "clusterip",
            "web",
            "--tcp=80:8080",
        ],
        None,
    );
    let svc: k8s_openapi::api::core::v1::Service = Api::namespaced(env.client.clone(), "made")
        .get("web")
        .await
        .unwrap();
    let spec = svc.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("ClusterIP"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(
        (port.port, port.target_port.clone()),
        (
            80,
            Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080))
        )
    );
    env.cluster.shutdown().await;
}

/// Not a checklist item: kubectl's default `fieldValidation=Strict` also catches typos in
/// built-in manifests; `--validate=false` (Ignore) drops the unknown fields instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_strict_validation_of_builtin_kinds() {
    let env = start("strict").await;
    let typo = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: typo\n  labls: {a: b}\ndat:\n  a: \"1\"\n";
    let out = env.kubectl(&["apply", "-f", "-"], Some(typo));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown field \"dat\"") && err.contains("unknown field \"metadata.labls\""),
        "{err}"
    );
    env.kubectl_ok(&["apply", "--validate=false", "-f", "-"], Some(typo));
    let cm: ConfigMap = Api::default_namespaced(env.client.clone())
        .get("typo")
        .await
        .unwrap();
    let raw = serde_json::to_value(&cm).unwrap();
    assert!(raw.get("dat").is_none() && cm.metadata.labels.is_none());
    env.cluster.shutdown().await;
}
