//! A realistic CRD (nested objects, list-type maps and sets, int-or-string quantities,
//! defaults, an embedded resource, preserved subtrees, conditions, two versions) taken through
//! everything the API server does with it: CRD validation, defaulting, pruning, validation and
//! `kubectl get` table cells.

// Helpers outside #[test] functions panic on a broken fixture, which is the point of a test.
#![allow(clippy::expect_used)]

use rivulet_kube_schema::{
    IncludeObject, StructuralSchema, check_crd, check_crd_with, check_structural,
    columns_for_version, lint_crd, table, version_schema,
};
use serde_json::{Value, json};

fn crd() -> Value {
    serde_json::from_str(include_str!("fixtures/webapps.crd.json")).expect("fixture is JSON")
}

fn v1() -> StructuralSchema {
    let crd = crd();
    let schema = version_schema(&crd, "v1").expect("v1 schema");
    StructuralSchema::parse(schema).expect("v1 schema is structural")
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn the_crd_is_accepted() {
    let crd = crd();
    assert_eq!(check_crd(&crd), vec![]);
    assert_eq!(check_crd_with(&crd, true), vec![], "strict rules too");
    assert_eq!(lint_crd(&crd), vec![]);
    for version in ["v1", "v1beta1"] {
        assert_eq!(
            check_structural(version_schema(&crd, version).expect("schema")),
            vec![],
            "{version}"
        );
    }
}

#[test]
fn breaking_the_schema_is_reported_at_the_per_version_path() {
    let mut crd = crd();
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["containers"]
        ["items"]["properties"]["ports"]["x-kubernetes-list-map-keys"] =
        json!(["containerPort", "hostPort"]);
    let errors: Vec<String> = check_crd(&crd).iter().map(ToString::to_string).collect();
    assert_eq!(
        errors,
        [
            r#"spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[containers].items.properties[ports].x-kubernetes-list-map-keys: Invalid value: ["containerPort","hostPort"]: entries must all be names of item properties"#
        ]
    );
}

fn user_object() -> Value {
    json!({
        "apiVersion": "apps.example.com/v1", "kind": "WebApp",
        "metadata": {"name": "shop", "namespace": "default", "creationTimestamp": "2026-11-23T08:00:00Z"},
        "spec": {
            "containers": [{
                "name": "web", "image": "nginx:1.27",
                "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}],
                "env": [{"name": "A", "valueFrom": {"secretKeyRef": {"key": "k"}}}],
                "resources": {"limits": {"cpu": "500m", "memory": 1024}},
                "debug": true
            }],
            "strategy": {"maxSurge": null},
            "config": {"anything": {"nested": [1, 2]}},
            "podTemplate": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}, "shoeSize": 42}, "spec": {"x": 1}},
            "secretData": null,
            "extra": "dropped"
        },
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-23T08:01:00Z",
                                   "reason": "Up", "message": ""}]}
    })
}

#[test]
fn a_user_object_is_defaulted_pruned_and_valid() {
    let s = v1();
    let mut obj = user_object();
    let unknown = s.coerce(&mut obj);
    assert_eq!(
        unknown,
        [
            "spec.containers[0].debug",
            "spec.extra",
            "spec.podTemplate.metadata.shoeSize"
        ]
    );
    assert_eq!(obj["spec"]["replicas"], 1);
    assert_eq!(obj["spec"]["minReplicas"], 0);
    assert_eq!(obj["spec"]["tier"], "backend");
    assert_eq!(obj["spec"]["timeout"], "30s");
    assert_eq!(
        obj["spec"]["strategy"],
        json!({"type": "RollingUpdate", "maxSurge": "25%"})
    );
    assert_eq!(
        obj["spec"]["containers"][0]["ports"],
        json!([{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 80, "protocol": "UDP"}])
    );
    assert_eq!(
        obj["spec"]["containers"][0]["env"][0]["valueFrom"]["secretKeyRef"],
        json!({"key": "k", "name": ""})
    );
    assert_eq!(
        obj["spec"]["config"],
        json!({"anything": {"nested": [1, 2]}})
    );
    assert_eq!(
        obj["spec"]["podTemplate"],
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}}, "spec": {"x": 1}})
    );
    assert_eq!(
        obj["spec"]["secretData"],
        Value::Null,
        "nullable nulls stay"
    );
    assert_eq!(s.validate(&obj), vec![]);
    // Coercing again changes nothing: defaults and pruning are idempotent.
    let again = obj.clone();
    assert!(s.coerce(&mut obj).is_empty());
    assert_eq!(obj, again);
}

#[test]
fn a_bad_object_gets_one_cause_per_field() {
    let bad = json!({
        "apiVersion": "apps.example.com/v1", "kind": "WebApp", "metadata": {"name": "bad"},
        "spec": {
            "replicas": 101, "tier": "middle", "tags": ["a", "a"],
            "containers": [{"name": "Web", "image": ""}, {"name": "Web", "image": "x", "ports": [{"containerPort": 0}]}],
            "strategy": {"maxSurge": "lots"}, "timeout": "forever", "secretData": "!!",
            "podTemplate": {"kind": "Pod"}
        },
        "status": {"conditions": [{"type": "Ready", "status": "Maybe", "lastTransitionTime": "now", "reason": "R", "message": ""}]}
    });
    let errors = v1().validate(&bad);
    let text = sorted(errors.iter().map(ToString::to_string).collect());
    assert_eq!(text, sorted(vec![
        "spec.replicas: Invalid value: 101: spec.replicas in body should be less than or equal to 100".into(),
        r#"spec.tier: Unsupported value: "middle": supported values: "frontend", "backend""#.into(),
        r#"spec.containers[0].name: Invalid value: "Web": spec.containers[0].name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"#.into(),
        r#"spec.containers[0].image: Invalid value: "": spec.containers[0].image in body should be at least 1 chars long"#.into(),
        r#"spec.containers[1].name: Invalid value: "Web": spec.containers[1].name in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'"#.into(),
        "spec.containers[1].ports[0].containerPort: Invalid value: 0: spec.containers[1].ports[0].containerPort in body should be greater than or equal to 1".into(),
        r#"spec.strategy.maxSurge: Invalid value: "lots": spec.strategy.maxSurge in body should match '^[0-9]+%?$'"#.into(),
        r#"spec.timeout: Invalid value: "forever": spec.timeout in body must be of type duration: "forever""#.into(),
        r#"spec.secretData: Invalid value: "!!": spec.secretData in body must be of type byte: "!!""#.into(),
        r#"status.conditions[0].status: Unsupported value: "Maybe": supported values: "True", "False", "Unknown""#.into(),
        r#"status.conditions[0].lastTransitionTime: Invalid value: "now": status.conditions[0].lastTransitionTime in body must be of type date-time: "now""#.into(),
        r#"spec.tags[1]: Duplicate value: "a""#.into(),
        r#"spec.containers[1]: Duplicate value: {"name":"Web"}"#.into(),
        "spec.podTemplate.apiVersion: Required value: must not be empty".into(),
    ]));
    let reasons: std::collections::BTreeSet<&str> = errors
        .iter()
        .map(rivulet_kube_schema::FieldError::reason)
        .collect();
    assert_eq!(
        reasons.into_iter().collect::<Vec<_>>(),
        [
            "FieldValueDuplicate",
            "FieldValueInvalid",
            "FieldValueNotSupported",
            "FieldValueRequired",
            "FieldValueTypeInvalid"
        ]
    );
}

#[test]
fn kubectl_get_cells() {
    let crd = crd();
    let mut obj = user_object();
    v1().coerce(&mut obj);
    let columns = columns_for_version(&crd["spec"]["versions"][0]).expect("columns parse");
    let created = rivulet_kube_schema::parse_rfc3339("2026-11-23T08:00:00Z").expect("timestamp");
    let t = table(&columns, &[obj], created + 300, IncludeObject::None);
    let names: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .expect("definitions")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Name", "Replicas", "Ready", "Image", "Age"]);
    assert_eq!(t["columnDefinitions"][3]["priority"], 1);
    assert_eq!(
        t["rows"][0]["cells"],
        json!(["shop", 1, "True", "nginx:1.27", "5m"])
    );
    // The deprecated version declares no columns, so it serves the default Age column.
    let beta = columns_for_version(&crd["spec"]["versions"][1]).expect("default columns");
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].name, "Age");
}

#[test]
fn cel_rules_are_listed() {
    let rules = v1().cel_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(rules[0].object_path, "spec");
    assert_eq!(rules[0].rule, "self.minReplicas <= self.replicas");
}

#[test]
fn the_old_version_preserves_what_it_does_not_declare() {
    let crd = crd();
    let beta = StructuralSchema::parse(version_schema(&crd, "v1beta1").expect("schema"))
        .expect("structural");
    let mut obj = json!({"apiVersion": "apps.example.com/v1beta1", "kind": "WebApp", "metadata": {"name": "old"},
        "spec": {"replicas": 2, "anything": {"goes": true}}, "status": {"free": "form"}, "other": 1});
    assert_eq!(beta.coerce(&mut obj), ["other"]);
    assert_eq!(obj["spec"]["anything"], json!({"goes": true}));
    assert_eq!(beta.validate(&obj), vec![]);
}
