use serde_json::{Value, json};

use super::*;

fn crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                      "shortNames": ["wd"], "categories": ["all"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}},
                    "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                 "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".spec.selector"}},
                "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]
            }]
        }
    })
}

fn remove(v: &mut Value, key: &str) {
    if let Some(o) = v.as_object_mut() {
        o.remove(key);
    }
}

fn messages(v: &Value) -> Vec<String> {
    check_crd(v).iter().map(ToString::to_string).collect()
}

#[track_caller]
fn assert_error(v: &Value, expected: &str) {
    let errors = messages(v);
    assert!(
        errors.iter().any(|e| e == expected),
        "missing {expected:?} in {errors:#?}"
    );
}

#[test]
fn a_valid_crd_passes() {
    assert_eq!(messages(&crd()), Vec::<String>::new());
    assert!(lint_crd(&crd()).is_empty(), "{:#?}", lint_crd(&crd()));
}

#[test]
fn name_must_be_plural_dot_group() {
    let mut c = crd();
    c["metadata"]["name"] = json!("widget.example.com");
    assert_error(
        &c,
        r#"metadata.name: Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group"#,
    );
    c["metadata"] = json!({});
    assert_error(
        &c,
        "metadata.name: Required value: name or generateName is required",
    );
}

#[test]
fn group_and_scope() {
    let mut c = crd();
    c["spec"]["group"] = json!("example");
    c["metadata"]["name"] = json!("widgets.example");
    assert_error(
        &c,
        r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#,
    );
    c["spec"]["group"] = json!("");
    assert_error(&c, "spec.group: Required value");
    let mut s = crd();
    s["spec"]["scope"] = json!("Global");
    assert_error(
        &s,
        r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
    );
    s["spec"]["scope"] = Value::Null;
    assert_error(&s, "spec.scope: Required value");
}

#[test]
fn names_rules() {
    let mut c = crd();
    c["spec"]["names"]["kind"] = json!("WidgetList");
    assert_error(
        &c,
        r#"spec.names.listKind: Invalid value: "WidgetList": kind and listKind may not be the same"#,
    );
    let mut c = crd();
    c["spec"]["names"]["shortNames"] = json!(["w_d"]);
    assert!(messages(&c).iter().any(|e| {
        e.starts_with(r#"spec.names.shortNames[0]: Invalid value: "w_d": a DNS-1035 label"#)
    }));
    let mut c = crd();
    c["spec"]["names"]["kind"] = json!("Wid get");
    assert!(messages(&c).iter().any(|e| e.starts_with(r#"spec.names.kind: Invalid value: "Wid get": may have mixed case, but should otherwise match: a DNS-1035 label"#)));
    // singular and listKind are defaulted from kind.
    let mut c = crd();
    remove(&mut c["spec"]["names"], "singular");
    remove(&mut c["spec"]["names"], "listKind");
    assert_eq!(messages(&c), Vec::<String>::new());
    c["spec"]["names"]["plural"] = json!("");
    assert_error(&c, "spec.names.plural: Required value");
}

#[test]
fn versions_storage_uniqueness_and_schemas() {
    let mut c = crd();
    let v1 = c["spec"]["versions"][0].clone();
    let mut v2 = v1.clone();
    v2["name"] = json!("v1");
    c["spec"]["versions"] = json!([v1, v2]);
    let errors = messages(&c);
    assert!(
        errors
            .iter()
            .any(|e| e.starts_with("spec.versions: Invalid value: [")
                && e.ends_with("must contain unique version names")),
        "{errors:#?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.ends_with("must have exactly one version marked as storage version")),
        "{errors:#?}"
    );

    let mut c = crd();
    c["spec"]["versions"][0]["name"] = json!("V1");
    assert!(
        messages(&c)
            .iter()
            .any(|e| e
                .starts_with(r#"spec.versions[0].name: Invalid value: "V1": a DNS-1035 label"#))
    );

    let mut c = crd();
    remove(&mut c["spec"]["versions"][0], "schema");
    assert_error(
        &c,
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
    );
}

#[test]
fn schema_errors_use_the_internal_paths() {
    // One version (identical schemas): the apiserver reports spec.validation.openAPIV3Schema.
    let mut c = crd();
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] =
        json!({"description": "untyped"});
    assert_error(
        &c,
        "spec.validation.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
    );
    // Two versions with different schemas: per-version paths.
    let mut v2 = c["spec"]["versions"][0].clone();
    v2["name"] = json!("v2");
    v2["storage"] = json!(false);
    v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] =
        json!({"type": "string"});
    if let Some(a) = c["spec"]["versions"].as_array_mut() {
        a.push(v2);
    }
    assert_error(
        &c,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
    );
    assert!(
        !messages(&c)
            .iter()
            .any(|e| e.starts_with("spec.versions[1].schema"))
    );
}

#[test]
fn status_subresource_restricts_root_keywords() {
    let mut c = crd();
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["minProperties"] = json!(1);
    assert!(messages(&c).iter().any(|e| {
        e.starts_with("spec.validation.openAPIV3Schema: Invalid value: \"\": only [Description")
    }));
    remove(&mut c["spec"]["versions"][0], "subresources");
    assert_eq!(messages(&c), Vec::<String>::new());
}

#[test]
fn scale_paths() {
    let mut c = crd();
    c["spec"]["versions"][0]["subresources"]["scale"] = json!({"specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.replicas",
        "labelSelectorPath": ".metadata.labels"});
    let errors = messages(&c);
    for expected in [
        r#"spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with ."#,
        r#"spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status"#,
        r#"spec.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either .spec or .status"#,
    ] {
        assert!(
            errors.contains(&expected.to_owned()),
            "missing {expected:?} in {errors:#?}"
        );
    }
    c["spec"]["versions"][0]["subresources"]["scale"] = json!({});
    assert_error(
        &c,
        "spec.subresources.scale.specReplicasPath: Required value",
    );
}

#[test]
fn printer_columns() {
    let mut c = crd();
    c["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
        {"name": "", "type": "text", "format": "hex", "jsonPath": "spec.x"}, {"name": "B", "jsonPath": ""}]);
    let errors = messages(&c);
    for expected in [
        "spec.additionalPrinterColumns[0].name: Required value",
        r#"spec.additionalPrinterColumns[0].type: Invalid value: "text": must be one of boolean,date,integer,number,string"#,
        r#"spec.additionalPrinterColumns[0].format: Invalid value: "hex": must be one of byte,date,date-time,double,float,int32,int64,password"#,
        r#"spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.x": must be a simple json path starting with ."#,
        "spec.additionalPrinterColumns[1].type: Required value: must be one of boolean,date,integer,number,string",
        "spec.additionalPrinterColumns[1].JSONPath: Required value",
    ] {
        assert!(
            errors.contains(&expected.to_owned()),
            "missing {expected:?} in {errors:#?}"
        );
    }
}

#[test]
fn selectable_fields() {
    let mut c = crd();
    c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.selector"}, {"jsonPath": ".spec.nope"},
        {"jsonPath": ".spec"}, {"jsonPath": ".spec.selector"}]);
    let errors = messages(&c);
    for expected in [
        r#"spec.versions[0].selectableFields[1].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not refer to a valid field"#,
        r#"spec.versions[0].selectableFields[2].jsonPath: Invalid value: ".spec": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."#,
        r#"spec.versions[0].selectableFields[3].jsonPath: Duplicate value: ".spec.selector""#,
    ] {
        assert!(
            errors.contains(&expected.to_owned()),
            "missing {expected:?} in {errors:#?}"
        );
    }
}

#[test]
fn conversion_and_preserve_unknown_fields() {
    let mut c = crd();
    c["spec"]["conversion"] = json!({"strategy": "Webhook"});
    assert_error(
        &c,
        "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
    );
    assert_error(
        &c,
        "spec.conversion.conversionReviewVersions: Required value",
    );
    c["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "http://x/convert"},
        "conversionReviewVersions": ["v2"]}});
    assert_error(
        &c,
        r#"spec.conversion.webhookClientConfig.url: Invalid value: "http://x/convert": 'https' is the only allowed URL scheme"#,
    );
    assert_error(
        &c,
        r#"spec.conversion.conversionReviewVersions: Invalid value: ["v2"]: must include at least one of v1, v1beta1"#,
    );
    c["spec"]["conversion"] =
        json!({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x"}}});
    assert_error(
        &c,
        "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
    );
    c["spec"]["conversion"] = json!({"strategy": "Magic"});
    assert_error(
        &c,
        r#"spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook""#,
    );
    let mut p = crd();
    p["spec"]["preserveUnknownFields"] = json!(true);
    assert_error(
        &p,
        "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
    );
}

#[test]
fn deprecation_warning() {
    let mut c = crd();
    c["spec"]["versions"][0]["deprecationWarning"] = json!("old");
    assert_error(
        &c,
        r#"spec.versions[0].deprecationWarning: Invalid value: "old": can only be set for deprecated versions"#,
    );
    c["spec"]["versions"][0]["deprecated"] = json!(true);
    assert_eq!(messages(&c), Vec::<String>::new());
}

#[test]
fn lint_finds_paths_the_schema_does_not_declare() {
    let mut c = crd();
    remove(
        &mut c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"],
        "status",
    );
    c["spec"]["versions"][0]["served"] = json!(false);
    c["spec"]["versions"][0]["additionalPrinterColumns"] = json!([{"name": "X", "type": "string", "jsonPath": ".spec.ghost"},
        {"name": "Y", "type": "string", "jsonPath": ".spec.a["}]);
    let lint: Vec<String> = lint_crd(&c).iter().map(ToString::to_string).collect();
    for expected in [
        r#"spec.versions: Invalid value: "": no version is served"#,
        r#"spec.versions[0].subresources.status: Invalid value: "": the status subresource is enabled but the schema declares no status: status writes are pruned"#,
        r#"spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: ".status.replicas": should name a field of type integer declared in the schema"#,
        r#"spec.versions[0].additionalPrinterColumns[0].jsonPath: Invalid value: ".spec.ghost": does not name a field declared in the schema"#,
    ] {
        assert!(
            lint.contains(&expected.to_owned()),
            "missing {expected:?} in {lint:#?}"
        );
    }
    assert!(lint.iter().any(|e| e.starts_with("spec.versions[0].additionalPrinterColumns[1].jsonPath: Invalid value: \".spec.a[\": does not parse")));
    // Upstream accepts all of this.
    assert!(
        !messages(&c)
            .iter()
            .any(|e| e.contains("ghost") || e.contains("served"))
    );
}

#[test]
fn version_schema_finds_a_version() {
    let c = crd();
    assert_eq!(
        version_schema(&c, "v1").and_then(|s| s.get("type")),
        Some(&json!("object"))
    );
    assert!(version_schema(&c, "v2").is_none());
}

#[test]
fn updates_keep_identity_and_stored_versions() {
    let mut old = crd();
    old["status"] = json!({"conditions": [{"type": "Established", "status": "True"}], "storedVersions": ["v1", "v1alpha1"]});
    let mut new = crd();
    new["spec"]["versions"][0]["name"] = json!("v1");
    new["spec"]["scope"] = json!("Cluster");
    new["spec"]["names"]["kind"] = json!("Gadget");
    new["spec"]["group"] = json!("other.com");
    new["metadata"]["name"] = json!("widgets.other.com");
    let errors: Vec<String> = check_crd_update(&new, &old)
        .iter()
        .map(ToString::to_string)
        .collect();
    for expected in [
        r#"spec.group: Invalid value: "other.com": field is immutable"#,
        r#"spec.scope: Invalid value: "Cluster": field is immutable"#,
        r#"spec.names.kind: Invalid value: "Gadget": field is immutable"#,
        r#"status.storedVersions[1]: Invalid value: "v1alpha1": missing from spec.versions; v1alpha1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1alpha1 and removes v1alpha1 from status.storedVersions"#,
    ] {
        assert!(
            errors.contains(&expected.to_owned()),
            "missing {expected:?} in {errors:#?}"
        );
    }
    // Before Established, scope and kind may still change.
    old["status"]["conditions"] = json!([]);
    old["status"]["storedVersions"] = json!(["v1"]);
    let mut renamed = crd();
    renamed["spec"]["names"]["kind"] = json!("Gadget");
    assert_eq!(check_crd_update(&renamed, &old), vec![]);
}
