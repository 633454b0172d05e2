//! Pruning: dropping fields a structural schema does not declare, as the apiserver does before
//! storing a custom resource (upstream `pruning.PruneWithOptions`).
//!
//! - Under `x-kubernetes-preserve-unknown-fields: true` nothing is dropped, except below fields the
//!   schema declares again (pruning resumes there).
//! - A resource root and every `x-kubernetes-embedded-resource` keep `apiVersion` and `kind` (when
//!   strings) and `metadata` (when an object) untouched; the server coerces metadata separately.
//! - `additionalProperties: true|false` keeps the keys but prunes everything below them, as
//!   upstream does (there is no schema to keep anything by).
//!
//! The pruned paths (`spec.foo`, `spec.list[0].bar`) are returned sorted, for
//! `fieldValidation=Strict|Warn`: upstream words them `unknown field "spec.foo"`.

use serde_json::Value;

use crate::schema::{AdditionalProperties, Schema};

/// Prunes `value` in place against `schema` and returns the paths of the dropped fields.
/// `is_resource_root` treats the top level as a resource (keeps `apiVersion`/`kind`/`metadata`).
pub fn prune(value: &mut Value, schema: &Schema, is_resource_root: bool) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_node(value, Some(schema), is_resource_root, "", &mut pruned);
    pruned.sort();
    pruned
}

/// The message upstream uses for one pruned path under `fieldValidation=Strict|Warn`.
pub fn unknown_field_message(path: &str) -> String {
    format!("unknown field {}", crate::error::go_quote(path))
}

/// The `400 BadRequest` message for unknown fields under `fieldValidation=Strict` (upstream
/// `runtime.NewStrictDecodingError`): `strict decoding error: unknown field "a", unknown field "b"`.
pub fn strict_decoding_message(paths: &[String]) -> String {
    let fields: Vec<String> = paths.iter().map(|p| unknown_field_message(p)).collect();
    format!("strict decoding error: {}", fields.join(", "))
}

fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn ap_schema(s: &Schema) -> Option<&Schema> {
    s.additional_properties
        .as_ref()
        .and_then(AdditionalProperties::schema)
}

/// Whether an embedded resource keeps `key` with this value untouched.
fn keeps_meta(key: &str, v: &Value) -> bool {
    match key {
        "apiVersion" | "kind" => v.is_string(),
        "metadata" => v.is_object(),
        _ => false,
    }
}

fn prune_node(
    x: &mut Value,
    s: Option<&Schema>,
    embedded_override: bool,
    path: &str,
    pruned: &mut Vec<String>,
) {
    if let Some(s) = s
        && s.preserves_unknown_fields()
    {
        skip_prune(x, s, embedded_override, path, pruned);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                pruned.extend(map.keys().map(|k| key_path(path, k)));
                map.clear();
                return;
            };
            let embedded = embedded_override || s.x_embedded_resource;
            map.retain(|k, v| {
                if embedded && keeps_meta(k, v) {
                    return true;
                }
                let child = key_path(path, k);
                if let Some(prop) = s.properties.get(k) {
                    prune_node(v, Some(prop), false, &child, pruned);
                    true
                } else if s.additional_properties.is_some() {
                    prune_node(v, ap_schema(s), false, &child, pruned);
                    true
                } else {
                    pruned.push(child);
                    false
                }
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                prune_node(v, item_schema, false, &format!("{path}[{i}]"), pruned);
            }
        }
        _ => {}
    }
}

/// Inside `x-kubernetes-preserve-unknown-fields`: keep everything, but prune below declared fields.
fn skip_prune(
    x: &mut Value,
    s: &Schema,
    embedded_override: bool,
    path: &str,
    pruned: &mut Vec<String>,
) {
    match x {
        Value::Object(map) => {
            let embedded = embedded_override || s.x_embedded_resource;
            for (k, v) in map.iter_mut() {
                if embedded && matches!(k.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child = key_path(path, k);
                if let Some(prop) = s.properties.get(k) {
                    prune_node(v, Some(prop), false, &child, pruned);
                } else if s.additional_properties.is_some() {
                    prune_node(v, ap_schema(s), false, &child, pruned);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = &s.items {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, item_schema, false, &format!("{path}[{i}]"), pruned);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::path::FieldPath;

    fn schema(v: &Value) -> Schema {
        let mut errors = Vec::new();
        let s = Schema::parse(v, &FieldPath::new("s"), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        s
    }

    #[test]
    fn drops_unknown_fields_and_reports_them() {
        let s = schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "a": {"type": "string"},
            "list": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}}}}}}}}),
        );
        let mut obj = json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "whatever": 1},
            "spec": {"a": "1", "b": 2, "list": [{"k": "v", "extra": true}, {"k": "w"}]}, "junk": {}});
        let pruned = prune(&mut obj, &s, true);
        assert_eq!(pruned, ["junk", "spec.b", "spec.list[0].extra"]);
        assert_eq!(
            obj,
            json!({"apiVersion": "x/v1", "kind": "X", "metadata": {"name": "n", "whatever": 1},
            "spec": {"a": "1", "list": [{"k": "v"}, {"k": "w"}]}})
        );
        assert_eq!(
            unknown_field_message(&pruned[1]),
            r#"unknown field "spec.b""#
        );
        assert_eq!(
            strict_decoding_message(&pruned[..2]),
            r#"strict decoding error: unknown field "junk", unknown field "spec.b""#
        );
    }

    #[test]
    fn resource_root_meta_is_kept_only_with_the_right_types() {
        let s = schema(&json!({"type": "object"}));
        let mut obj = json!({"apiVersion": 1, "kind": "X", "metadata": "m"});
        assert_eq!(prune(&mut obj, &s, true), ["apiVersion", "metadata"]);
        assert_eq!(obj, json!({"kind": "X"}));
        let mut not_root = json!({"apiVersion": "v1", "kind": "X"});
        assert_eq!(prune(&mut not_root, &s, false), ["apiVersion", "kind"]);
    }

    #[test]
    fn preserve_unknown_fields_keeps_all_but_prunes_below_declared_fields() {
        let s = schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object",
            "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"typed": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}),
        );
        let mut obj = json!({"spec": {"free": {"x": [1, {"y": 2}]}, "typed": {"a": "1", "b": 2}}});
        assert_eq!(prune(&mut obj, &s, true), ["spec.typed.b"]);
        assert_eq!(
            obj,
            json!({"spec": {"free": {"x": [1, {"y": 2}]}, "typed": {"a": "1"}}})
        );
    }

    #[test]
    fn maps_prune_their_values_by_the_value_schema() {
        let s = schema(&json!({"type": "object", "properties": {
            "m": {"type": "object", "additionalProperties": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "t": {"type": "object", "additionalProperties": true},
            "raw": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}));
        let mut obj = json!({"m": {"k1": {"a": "x", "b": 1}}, "t": {"k": {"deep": 1}, "s": "kept"},
            "raw": [{"anything": {"goes": true}}]});
        assert_eq!(prune(&mut obj, &s, false), ["m.k1.b", "t.k.deep"]);
        assert_eq!(
            obj,
            json!({"m": {"k1": {"a": "x"}}, "t": {"k": {}, "s": "kept"}, "raw": [{"anything": {"goes": true}}]})
        );
    }

    #[test]
    fn additional_properties_false_keeps_keys_but_prunes_below_them() {
        // Upstream prunes with no schema under `additionalProperties: false`; validation then
        // rejects the keys.
        let s = schema(
            &json!({"type": "object", "properties": {"closed": {"type": "object", "additionalProperties": false}}}),
        );
        let mut obj = json!({"closed": {"k": {"deep": 1}, "s": 1}});
        assert_eq!(prune(&mut obj, &s, false), ["closed.k.deep"]);
        assert_eq!(obj, json!({"closed": {"k": {}, "s": 1}}));
    }

    #[test]
    fn embedded_resources_keep_their_type_and_object_meta() {
        let s = schema(
            &json!({"type": "object", "properties": {"template": {"type": "object",
            "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object", "properties": {"a": {"type": "string"}}}}}}}),
        );
        let mut obj = json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"labels": {"a": "b"}},
            "spec": {"a": "x", "b": "y"}, "status": {}}});
        assert_eq!(
            prune(&mut obj, &s, false),
            ["template.spec.b", "template.status"]
        );
        assert_eq!(obj["template"]["metadata"], json!({"labels": {"a": "b"}}));
        assert_eq!(obj["template"]["kind"], "Pod");
    }
}
