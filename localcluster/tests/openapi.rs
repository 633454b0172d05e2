//! `/openapi/v2` and `/openapi/v3`, proven with the real `kubectl explain` (v3 first in 1.32).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WAIT, eventually, start};

const FUNCTION_CRD: &str = include_str!("../../crds/fission.io_functions.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_built_in_kinds() {
    let env = start("explain-builtin").await;
    let out = env.kubectl_ok(&["explain", "deployment.spec"], None);
    assert!(out.contains("GROUP:      apps"), "{out}");
    assert!(out.contains("KIND:       Deployment"), "{out}");
    assert!(
        out.contains("DeploymentSpec is the specification of the desired behavior of the"),
        "{out}"
    );
    assert!(out.contains("minReadySeconds\t<integer>"), "{out}");
    assert!(
        out.contains("template\t<PodTemplateSpec> -required-"),
        "{out}"
    );

    // A field three references deep, through PodTemplateSpec and PodSpec.
    let out = env.kubectl_ok(
        &["explain", "deployment.spec.template.spec.containers.image"],
        None,
    );
    assert!(out.contains("Container image name."), "{out}");

    let out = env.kubectl_ok(&["explain", "pods"], None);
    assert!(out.contains("VERSION:    v1"), "{out}");
    assert!(
        out.contains("Pod is a collection of containers that can run on a host."),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_a_crd_created_at_runtime() {
    let env = start("explain-crd").await;
    // Not served yet: kubectl cannot map the name.
    let before = env.kubectl(&["explain", "function"], None);
    assert!(!before.status.success());

    // Server-side: the CRD is too big for client-side apply's last-applied annotation.
    env.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(FUNCTION_CRD));
    env.kubectl_ok(
        &[
            "wait",
            "--for=condition=Established",
            "crd/functions.fission.io",
            "--timeout=10s",
        ],
        None,
    );
    let out = env.kubectl_ok(&["explain", "function"], None);
    assert!(out.contains("GROUP:      fission.io"), "{out}");
    assert!(out.contains("KIND:       Function"), "{out}");
    assert!(
        out.contains("A Fission Function: a Package run on an Environment"),
        "{out}"
    );
    assert!(out.contains("metadata\t<ObjectMeta>"), "{out}");
    assert!(out.contains("Standard object's metadata."), "{out}");

    let out = env.kubectl_ok(&["explain", "function.spec.environment"], None);
    assert!(
        out.contains("The Environment the function runs on (and whose builder builds its"),
        "{out}"
    );
    assert!(
        out.contains("Name of the referenced object (a DNS-1123 label)."),
        "{out}"
    );

    // The metadata reference resolves to the built-in ObjectMeta schema.
    let out = env.kubectl_ok(&["explain", "function.metadata.labels"], None);
    assert!(out.contains("Map of string keys and values"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v3_root_hash_changes_when_a_crd_is_added() {
    let env = start("openapi-hash").await;
    let root = |env: &common::Env| {
        let out = env.kubectl_ok(&["get", "--raw", "/openapi/v3"], None);
        serde_json::from_str::<serde_json::Value>(&out).unwrap()
    };
    let before = root(&env);
    assert!(
        before["paths"]["apis/apps/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/apis/apps/v1?hash=")
    );
    assert!(before["paths"].get("apis/example.com/v1").is_none());

    env.kubectl_ok(&["apply", "-f", "-"], Some(common::WIDGET_CRD));
    let url = eventually(WAIT, "the widgets group in /openapi/v3", || {
        let after = root(&env);
        async move {
            after["paths"]["apis/example.com/v1"]["serverRelativeURL"]
                .as_str()
                .map(str::to_string)
        }
    })
    .await;
    let doc: serde_json::Value =
        serde_json::from_str(&env.kubectl_ok(&["get", "--raw", &url], None)).unwrap();
    let widget = &doc["components"]["schemas"]["com.example.v1.Widget"];
    assert_eq!(
        widget["x-kubernetes-group-version-kind"][0]["kind"],
        "Widget"
    );
    assert_eq!(
        widget["properties"]["spec"]["properties"]["size"]["maximum"],
        10
    );
    // The PATCH operation advertises fieldValidation (kubectl then validates server-side).
    let patch =
        &doc["paths"]["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"]["patch"];
    assert!(
        patch["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "fieldValidation"),
        "{patch}"
    );
    // The built-in group's document did not change.
    let after = root(&env);
    assert_eq!(
        before["paths"]["apis/apps/v1"],
        after["paths"]["apis/apps/v1"]
    );

    // kubectl apply with its default strict validation still works with the schemas served.
    env.kubectl_ok(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: default}\nspec: {size: 3}\n"),
    );
    let bad = env.kubectl(
        &["apply", "-f", "-"],
        Some("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w2, namespace: default}\nspec: {size: 3, bogus: 1}\n"),
    );
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("unknown field \"spec.bogus\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_json_has_the_definitions() {
    let env = start("openapi-v2").await;
    let (code, doc) = env
        .raw("GET", "/openapi/v2", "application/json", Vec::new())
        .await;
    assert_eq!(code, 200);
    assert_eq!(doc["swagger"], "2.0");
    let spec = &doc["definitions"]["io.k8s.api.apps.v1.Deployment"]["properties"]["spec"];
    assert_eq!(
        spec["$ref"],
        "#/definitions/io.k8s.api.apps.v1.DeploymentSpec"
    );
}
