//! Type and object metadata of embedded resources (`x-kubernetes-embedded-resource: true`), as
//! upstream's `schema/objectmeta` package treats them: on write their `metadata` is rewritten
//! to the fields `ObjectMeta` knows (unknown and malformed fields dropped), and on validation
//! `apiVersion` and `kind` are required and checked, and `metadata` is checked like any object's
//! (name, generateName, namespace, labels, annotations). The resource root itself is the API
//! server's business (its metadata is decoded into `ObjectMeta` there), so it is skipped here.

use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::names::{dns1035_label, dns1123_label, label_value, path_segment_name, qualified_name};
use crate::path::FieldPath;
use crate::schema::{AdditionalProperties, Schema};

/// The JSON type each `ObjectMeta` field must have.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Int,
    StrMap,
    StrList,
    List,
    Time,
}

const OBJECT_META: [(&str, Kind); 15] = [
    ("name", Kind::Str),
    ("generateName", Kind::Str),
    ("namespace", Kind::Str),
    ("selfLink", Kind::Str),
    ("uid", Kind::Str),
    ("resourceVersion", Kind::Str),
    ("generation", Kind::Int),
    ("creationTimestamp", Kind::Time),
    ("deletionTimestamp", Kind::Time),
    ("deletionGracePeriodSeconds", Kind::Int),
    ("labels", Kind::StrMap),
    ("annotations", Kind::StrMap),
    ("ownerReferences", Kind::List),
    ("finalizers", Kind::StrList),
    ("managedFields", Kind::List),
];

/// Whether `name` is a field of `ObjectMeta` (API `meta/v1/types.go`): the API server drops the
/// others from every object's metadata, as decoding into `ObjectMeta` does upstream.
pub fn is_object_meta_field(name: &str) -> bool {
    OBJECT_META.iter().any(|(field, _)| *field == name)
}

fn well_typed(kind: Kind, v: &Value) -> bool {
    match kind {
        Kind::Str => v.is_string(),
        Kind::Int => v.as_i64().is_some(),
        Kind::Time => v
            .as_str()
            .is_some_and(|s| crate::columns::parse_rfc3339(s).is_some()),
        Kind::StrMap => v
            .as_object()
            .is_some_and(|m| m.values().all(Value::is_string)),
        Kind::StrList => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Kind::List => v.as_array().is_some_and(|a| a.iter().all(Value::is_object)),
    }
}

/// Whether `ObjectMeta`'s JSON form would omit the value (`omitempty`).
fn omitted(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Number(n) => n.as_i64() == Some(0),
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Bool(_) => false,
    }
}

/// Rewrites `meta` to what `ObjectMeta` round-trips: unknown fields, fields of the wrong type and
/// empty fields are dropped. Returns the paths of the dropped unknown fields (under `path`).
pub fn coerce_object_meta(meta: &mut Map<String, Value>, path: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    meta.retain(
        |k, v| match OBJECT_META.iter().find(|(name, _)| name == k) {
            None => {
                unknown.push(format!("{path}.{k}"));
                false
            }
            Some((_, kind)) => !omitted(v) && well_typed(*kind, v),
        },
    );
    unknown
}

/// Coerces the metadata of every embedded resource below the root; returns unknown-field paths.
pub(crate) fn coerce_embedded(value: &mut Value, schema: &Schema) -> Vec<String> {
    let mut unknown = Vec::new();
    walk_mut(value, schema, "", true, &mut unknown);
    unknown.sort();
    unknown
}

fn child_schema<'a>(s: &'a Schema, k: &str) -> Option<&'a Schema> {
    s.properties.get(k).or_else(|| {
        s.additional_properties
            .as_ref()
            .and_then(AdditionalProperties::schema)
    })
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_owned()
    } else {
        format!("{path}.{k}")
    }
}

fn walk_mut(v: &mut Value, s: &Schema, path: &str, is_root: bool, unknown: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            if s.x_embedded_resource
                && !is_root
                && let Some(Value::Object(meta)) = map.get_mut("metadata")
            {
                unknown.extend(coerce_object_meta(meta, &join(path, "metadata")));
            }
            for (k, child) in map.iter_mut() {
                if let Some(cs) = child_schema(s, k) {
                    walk_mut(child, cs, &join(path, k), false, unknown);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = &s.items {
                for (i, item) in items.iter_mut().enumerate() {
                    walk_mut(item, is, &format!("{path}[{i}]"), false, unknown);
                }
            }
        }
        _ => {}
    }
}

/// Upstream `objectmeta.Validate` (with the root excluded): type and object metadata of every
/// embedded resource.
pub fn validate_embedded(schema: &Schema, value: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    walk(value, schema, &FieldPath::root(), true, &mut errs);
    errs
}

fn walk(v: &Value, s: &Schema, path: &FieldPath, is_root: bool, errs: &mut Vec<FieldError>) {
    match v {
        Value::Object(map) => {
            if s.x_embedded_resource && !is_root {
                embedded_resource(map, path, errs);
            }
            for (k, child) in map {
                if let Some(prop) = s.properties.get(k) {
                    walk(child, prop, &path.child(k), false, errs);
                } else if let Some(ap) = s
                    .additional_properties
                    .as_ref()
                    .and_then(AdditionalProperties::schema)
                {
                    walk(child, ap, &path.key(k), false, errs);
                }
            }
        }
        Value::Array(items) => {
            if let Some(is) = &s.items {
                for (i, item) in items.iter().enumerate() {
                    walk(item, is, &path.index(i), false, errs);
                }
            }
        }
        _ => {}
    }
}

fn embedded_resource(map: &Map<String, Value>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    for key in ["apiVersion", "kind"] {
        match map.get(key) {
            None => errs.push(FieldError::required(path.child(key), "must not be empty")),
            Some(Value::String(s)) if s.is_empty() => {
                errs.push(FieldError::invalid(
                    path.child(key),
                    Value::from(""),
                    "must not be empty",
                ));
            }
            Some(Value::String(s)) if key == "apiVersion" => {
                if s.split('/').count() > 2 {
                    errs.push(FieldError::invalid(
                        path.child(key),
                        Value::from(s.clone()),
                        format!("unexpected GroupVersion string: {s}"),
                    ));
                }
            }
            Some(Value::String(s)) => {
                let problems = dns1035_label(&s.to_lowercase());
                if !problems.is_empty() {
                    errs.push(FieldError::invalid(
                        path.child(key),
                        Value::from(s.clone()),
                        format!(
                            "may have mixed case, but should otherwise match: {}",
                            problems.join(",")
                        ),
                    ));
                }
            }
            Some(other) => errs.push(FieldError::invalid(
                path.child(key),
                other.clone(),
                "must be a string",
            )),
        }
    }
    match map.get("metadata") {
        None => {}
        Some(Value::Object(meta)) => object_meta(meta, &path.child("metadata"), errs),
        Some(other) => errs.push(FieldError::invalid(
            path.child("metadata"),
            other.clone(),
            "must be an object",
        )),
    }
}

fn object_meta(meta: &Map<String, Value>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let text = |k: &str| meta.get(k).and_then(Value::as_str).unwrap_or("");
    for (key, prefix) in [("name", false), ("generateName", true)] {
        let value = text(key);
        if !value.is_empty() {
            for problem in path_segment_name(value, prefix) {
                errs.push(FieldError::invalid(
                    path.child(key),
                    Value::from(value),
                    problem,
                ));
            }
        }
    }
    let namespace = text("namespace");
    if !namespace.is_empty() {
        for problem in dns1123_label(namespace) {
            errs.push(FieldError::invalid(
                path.child("namespace"),
                Value::from(namespace),
                problem,
            ));
        }
    }
    for key in ["labels", "annotations"] {
        let Some(map) = meta.get(key).and_then(Value::as_object) else {
            continue;
        };
        let p = path.child(key);
        for (k, v) in map {
            for problem in qualified_name(k) {
                errs.push(FieldError::invalid(&p, Value::from(k.clone()), problem));
            }
            if key == "labels" {
                let v = v.as_str().unwrap_or("");
                for problem in label_value(v) {
                    errs.push(FieldError::invalid(&p, Value::from(v), problem));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Schema {
        let mut errors = Vec::new();
        let s = Schema::parse(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true},
                "many": {"type": "array", "items": {"type": "object", "x-kubernetes-embedded-resource": true,
                         "properties": {"data": {"type": "object", "additionalProperties": {"type": "string"}}}}}}}}}),
            &FieldPath::new("s"),
            &mut errors,
        );
        assert!(errors.is_empty(), "{errors:?}");
        s
    }

    #[test]
    fn object_meta_fields_are_known_by_name() {
        assert!(is_object_meta_field("labels"));
        assert!(is_object_meta_field("managedFields"));
        assert!(!is_object_meta_field("color"));
    }

    #[test]
    fn embedded_metadata_keeps_only_object_meta_fields() {
        let mut obj = json!({"metadata": {"name": "root", "bogus": 1}, "spec": {"template": {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "b"}, "annotations": "not-a-map", "creationTimestamp": null,
                         "color": "red", "finalizers": []}}}});
        let unknown = coerce_embedded(&mut obj, &schema());
        assert_eq!(unknown, ["spec.template.metadata.color"]);
        assert_eq!(
            obj["spec"]["template"]["metadata"],
            json!({"name": "p", "labels": {"a": "b"}})
        );
        // The root's metadata is the server's business.
        assert_eq!(obj["metadata"]["bogus"], 1);
    }

    #[test]
    fn embedded_resources_need_type_meta_and_valid_metadata() {
        let obj = json!({"apiVersion": "x/v1", "spec": {
            "template": {"kind": "Pod", "metadata": {"name": "a/b", "labels": {"bad key!": "v", "ok": "bad value!"}}},
            "many": [{"apiVersion": "a/b/c", "kind": "Config Map"}, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": "x"}]}});
        let errors: Vec<String> = validate_embedded(&schema(), &obj)
            .iter()
            .map(ToString::to_string)
            .collect();
        for expected in [
            "spec.template.apiVersion: Required value: must not be empty",
            r#"spec.template.metadata.name: Invalid value: "a/b": may not contain '/'"#,
            r#"spec.many[0].apiVersion: Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c"#,
            r#"spec.many[1].metadata: Invalid value: "x": must be an object"#,
        ] {
            assert!(
                errors.contains(&expected.to_owned()),
                "missing {expected:?} in {errors:#?}"
            );
        }
        assert!(errors.iter().any(|e| e.starts_with(
            r#"spec.template.metadata.labels: Invalid value: "bad key!": name part must consist"#
        )));
        assert!(errors.iter().any(|e| e.starts_with(
            r#"spec.template.metadata.labels: Invalid value: "bad value!": a valid label"#
        )));
        assert!(errors.iter().any(|e| e.starts_with(
            r#"spec.many[0].kind: Invalid value: "Config Map": may have mixed case"#
        )));
        // The root is not an embedded resource here: no complaint about its missing kind.
        assert!(!errors.iter().any(|e| e.starts_with("kind")));
    }
}
