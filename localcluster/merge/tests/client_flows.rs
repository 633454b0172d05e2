//! Write sequences as real clients send them, through the public API only, the way the API
//! server chains the calls: patch the stored object, then record the write's ownership.

// Helpers outside `#[test]` functions unwrap too; a panic is the test failure we want.
#![allow(clippy::unwrap_used)]

use rivulet_kube_merge::{
    ApplyRequest, BuiltinSchema, Scope, UpdateWrite, apply, json_patch, merge_patch,
    read_managed_fields, record_update, strategic_merge_patch,
};
use serde_json::{Value, json};

const T1: &str = "2026-11-23T08:00:00Z";
const T2: &str = "2026-11-23T08:01:00Z";
const T3: &str = "2026-11-23T08:02:00Z";

fn write<'a>(old: Option<&'a Value>, manager: &'a str, now: &'a str) -> UpdateWrite<'a> {
    UpdateWrite {
        old,
        manager,
        scope: Scope::Whole,
        now,
    }
}

fn managers(object: &Value) -> Vec<(String, &'static str)> {
    read_managed_fields(object)
        .unwrap()
        .into_iter()
        .map(|e| (e.manager, e.operation.as_str()))
        .collect()
}

/// kube-rs `runtime::finalizer`: add with `test null` + `add`, later remove by index; the
/// next add must pass its `test null` again, so the emptied list must not linger as `[]`.
#[test]
fn kube_rs_finalizer_add_remove_add() {
    let schema = BuiltinSchema::object_meta_only();
    let created = record_update(
        &write(None, "kube-rs", T1),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}),
        &schema,
    )
    .unwrap();
    let add = json!([
        {"op": "test", "path": "/metadata/finalizers", "value": null},
        {"op": "add", "path": "/metadata/finalizers", "value": ["widgets.example.com/cleanup"]}
    ]);
    let remove = json!([
        {"op": "test", "path": "/metadata/finalizers/0", "value": "widgets.example.com/cleanup"},
        {"op": "remove", "path": "/metadata/finalizers/0"}
    ]);
    let with = record_update(
        &write(Some(&created), "kube-rs", T2),
        json_patch(&created, &add).unwrap(),
        &schema,
    )
    .unwrap();
    assert_eq!(
        with["metadata"]["finalizers"],
        json!(["widgets.example.com/cleanup"])
    );
    let without = record_update(
        &write(Some(&with), "kube-rs", T3),
        json_patch(&with, &remove).unwrap(),
        &schema,
    )
    .unwrap();
    assert!(without["metadata"].get("finalizers").is_none(), "{without}");
    assert!(
        json_patch(&without, &add).is_ok(),
        "the finalizer can be added again"
    );
}

/// `kubectl apply` (client side): create, then a strategic merge patch that changes a value;
/// then `kubectl apply --server-side` of a different value conflicts with that manager.
#[test]
fn kubectl_client_side_then_server_side() {
    let schema = BuiltinSchema::for_kind("apps", "Deployment");
    let manifest = json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}}
    });
    let created = record_update(
        &write(None, "kubectl-client-side-apply", T1),
        manifest.clone(),
        &schema,
    )
    .unwrap();
    let patch = json!({"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}],
        "containers": [{"name": "web", "image": "nginx:2"}]
    }}}});
    let patched = strategic_merge_patch(&created, &patch, &schema).unwrap();
    let live = record_update(
        &write(Some(&created), "kubectl-client-side-apply", T2),
        patched,
        &schema,
    )
    .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:2")
    );
    assert_eq!(
        managers(&live),
        [("kubectl-client-side-apply".to_owned(), "Update")]
    );

    let mut applied = manifest;
    applied["spec"]["template"]["spec"]["containers"][0]["image"] = json!("nginx:3");
    let request = ApplyRequest {
        live: Some(&live),
        applied: &applied,
        manager: "kubectl",
        force: false,
        scope: Scope::Main,
        now: T3,
    };
    let err = apply(&request, &schema).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.template.spec.containers[name="web"].image"#
    );
    // --force-conflicts takes the image; replicas etc. are shared (same values).
    let forced = apply(
        &ApplyRequest {
            force: true,
            ..request
        },
        &schema,
    )
    .unwrap()
    .object;
    assert_eq!(
        forced["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("nginx:3")
    );
    assert_eq!(
        managers(&forced),
        [
            ("kubectl".to_owned(), "Apply"),
            ("kubectl-client-side-apply".to_owned(), "Update")
        ]
    );
}

/// A controller's status merge patch through `/status` is tracked with subresource `status`.
#[test]
fn status_merge_patch_through_the_subresource() {
    let schema = BuiltinSchema::object_meta_only();
    let live = record_update(
        &write(None, "user", T1),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}),
        &schema,
    )
    .unwrap();
    let patched = merge_patch(&live, &json!({"status": {"ready": true}}));
    let out = record_update(
        &UpdateWrite {
            old: Some(&live),
            manager: "ctrl",
            scope: Scope::Status,
            now: T2,
        },
        patched,
        &schema,
    )
    .unwrap();
    let entries = read_managed_fields(&out).unwrap();
    let status = entries.iter().find(|e| e.manager == "ctrl").unwrap();
    assert_eq!(status.subresource.as_deref(), Some("status"));
    assert_eq!(
        status.fields.to_fields_v1(),
        json!({"f:status": {"f:ready": {}}})
    );
}
