//! Defaulting, as the apiserver applies schema `default`s to custom resources (upstream
//! `defaulting.Default` and `PruneNonNullableNullsWithoutDefaults`), and the CRD-time check
//! that every `default` is itself pruned and valid (upstream `defaulting.ValidateDefaults`).
//!
//! A default fills a missing field, and also a `null` in a field that is not `nullable`; it
//! applies inside list items and map values too, and defaults of a defaulted object apply in
//! turn because the walk descends after filling.

use serde_json::Value;

use crate::error::FieldError;
use crate::path::FieldPath;
use crate::prune::prune;
use crate::schema::{AdditionalProperties, Schema};
use crate::validate::validate_value;

/// Upstream's `isNonNullableNull`: a `null` whose schema is not nullable but has a default.
fn defaultable_null(v: &Value, s: Option<&Schema>) -> bool {
    v.is_null() && s.is_some_and(|s| !s.nullable && s.default.is_some())
}

fn ap_schema(s: &Schema) -> Option<&Schema> {
    s.additional_properties
        .as_ref()
        .and_then(AdditionalProperties::schema)
}

/// Applies the schema's defaults to `value` in place.
pub fn apply_defaults(value: &mut Value, schema: &Schema) {
    match value {
        Value::Object(map) => {
            for (k, prop) in &schema.properties {
                let Some(default) = &prop.default else {
                    continue;
                };
                let missing_or_null = map.get(k).is_none_or(|v| defaultable_null(v, Some(prop)));
                if missing_or_null {
                    map.insert(k.clone(), default.clone());
                }
            }
            let value_schema = ap_schema(schema);
            for (k, v) in map.iter_mut() {
                if let Some(prop) = schema.properties.get(k) {
                    apply_defaults(v, prop);
                } else if let Some(vs) = value_schema {
                    if let (true, Some(d)) = (defaultable_null(v, Some(vs)), &vs.default) {
                        *v = d.clone();
                    }
                    apply_defaults(v, vs);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = schema.items.as_deref() else {
                return;
            };
            for v in items.iter_mut() {
                if let (true, Some(d)) =
                    (defaultable_null(v, Some(item_schema)), &item_schema.default)
                {
                    *v = d.clone();
                }
                apply_defaults(v, item_schema);
            }
        }
        _ => {}
    }
}

/// Drops `null` map entries whose schema is not `nullable` and has no default (they would fail
/// validation otherwise); upstream runs this right after pruning.
pub fn prune_non_nullable_nulls(value: &mut Value, schema: &Schema) {
    match value {
        Value::Object(map) => {
            map.retain(|k, v| {
                let s = schema.properties.get(k).or_else(|| ap_schema(schema));
                !(v.is_null() && s.is_some_and(|s| !s.nullable && s.default.is_none()))
            });
            for (k, v) in map.iter_mut() {
                if let Some(s) = schema.properties.get(k).or_else(|| ap_schema(schema)) {
                    prune_non_nullable_nulls(v, s);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.items.as_deref() {
                for v in items.iter_mut() {
                    prune_non_nullable_nulls(v, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Every problem with the `default`s of a structural schema rooted at `path`: a default must not
/// carry fields the schema would prune, and must validate against its own schema. Like
/// upstream, `additionalProperties` and junctors are not searched (defaults are not allowed
/// there), and the metadata of embedded resources is only checked against its schema.
pub fn check_defaults(root: &Schema, path: &FieldPath) -> Vec<FieldError> {
    let mut errors = Vec::new();
    walk(root, path, true, false, &mut errors);
    errors
}

fn walk(
    s: &Schema,
    path: &FieldPath,
    is_resource: bool,
    inside_meta: bool,
    errors: &mut Vec<FieldError>,
) {
    let embedded = is_resource || s.x_embedded_resource;
    let inside_meta = inside_meta && !s.x_embedded_resource;
    if let Some(default) = &s.default {
        let default_path = path.child("default");
        if !inside_meta {
            let mut pruned = default.clone();
            prune(&mut pruned, s, embedded);
            if &pruned != default {
                errors.push(FieldError::invalid(
                    &default_path,
                    default.clone(),
                    "must not have unknown fields",
                ));
            }
        }
        errors.extend(validate_value(s, default, Some(&default_path)));
    }
    if let Some(items) = &s.items {
        walk(items, &path.child("items"), false, inside_meta, errors);
    }
    for (k, prop) in &s.properties {
        let meta = embedded && matches!(k.as_str(), "metadata" | "apiVersion" | "kind");
        walk(
            prop,
            &path.child("properties").key(k),
            false,
            inside_meta || meta,
            errors,
        );
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema(v: &Value) -> Schema {
        let mut errors = Vec::new();
        let s = Schema::parse(v, &FieldPath::new("s"), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        s
    }

    #[test]
    fn fills_missing_fields_recursively() {
        let s = schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "default": {},
            "properties": {"replicas": {"type": "integer", "default": 1},
                           "strategy": {"type": "object", "default": {"type": "Rolling"},
                                        "properties": {"type": {"type": "string"}, "maxSurge": {"type": "integer", "default": 25}}}}}}}),
        );
        let mut obj = json!({});
        apply_defaults(&mut obj, &s);
        assert_eq!(
            obj,
            json!({"spec": {"replicas": 1, "strategy": {"type": "Rolling", "maxSurge": 25}}})
        );
        let mut given = json!({"spec": {"replicas": 5, "strategy": {"type": "Recreate"}}});
        apply_defaults(&mut given, &s);
        assert_eq!(
            given,
            json!({"spec": {"replicas": 5, "strategy": {"type": "Recreate", "maxSurge": 25}}})
        );
    }

    #[test]
    fn defaults_reach_list_items_and_map_values() {
        let s = schema(&json!({"type": "object", "properties": {
            "ports": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}}}},
            "limits": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "max": {"type": "integer", "default": 10}}}}}}));
        let mut obj = json!({"ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}], "limits": {"cpu": {}, "mem": {"max": 2}}});
        apply_defaults(&mut obj, &s);
        assert_eq!(
            obj,
            json!({"ports": [{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}],
            "limits": {"cpu": {"max": 10}, "mem": {"max": 2}}})
        );
    }

    #[test]
    fn nulls_are_defaulted_unless_nullable() {
        let s = schema(&json!({"type": "object", "properties": {
            "a": {"type": "string", "default": "x"},
            "b": {"type": "string", "nullable": true, "default": "y"},
            "list": {"type": "array", "items": {"type": "string", "default": "z"}},
            "m": {"type": "object", "additionalProperties": {"type": "integer", "default": 0}}}}));
        let mut obj = json!({"a": null, "b": null, "list": [null, "q"], "m": {"k": null}});
        apply_defaults(&mut obj, &s);
        assert_eq!(
            obj,
            json!({"a": "x", "b": null, "list": ["z", "q"], "m": {"k": 0}})
        );
    }

    #[test]
    fn non_nullable_nulls_without_defaults_are_dropped() {
        let s = schema(&json!({"type": "object", "properties": {
            "a": {"type": "string"}, "b": {"type": "string", "nullable": true},
            "o": {"type": "object", "properties": {"c": {"type": "integer"}}},
            "m": {"type": "object", "additionalProperties": {"type": "string"}}}}));
        let mut obj =
            json!({"a": null, "b": null, "o": {"c": null}, "m": {"k": null}, "unknown": null});
        prune_non_nullable_nulls(&mut obj, &s);
        assert_eq!(obj, json!({"b": null, "o": {}, "m": {}, "unknown": null}));
    }

    #[test]
    fn defaults_must_be_pruned_and_valid() {
        let s = schema(
            &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "mode": {"type": "string", "enum": ["a", "b"], "default": "c"},
            "obj": {"type": "object", "properties": {"x": {"type": "integer"}}, "default": {"x": 1, "y": 2}},
            "ok": {"type": "integer", "minimum": 0, "default": 3},
            "list": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "integer", "default": "no"}}}}}}}}),
        );
        let errors: Vec<String> = check_defaults(&s, &FieldPath::new("openAPIV3Schema"))
            .iter()
            .map(ToString::to_string)
            .collect();
        let p = "openAPIV3Schema.properties[spec]";
        // Upstream validates a default with an empty root name, hence "value:  in body".
        assert_eq!(
            errors,
            [
                format!(
                    r#"{p}.properties[list].items.properties[n].default: Invalid value: "string":  in body must be of type integer: "string""#
                ),
                format!(
                    r#"{p}.properties[mode].default: Unsupported value: "c": supported values: "a", "b""#
                ),
                format!(
                    r#"{p}.properties[obj].default: Invalid value: {{"x":1,"y":2}}: must not have unknown fields"#
                ),
            ]
        );
    }

    #[test]
    fn embedded_resource_defaults_may_carry_type_meta() {
        let s = schema(
            &json!({"type": "object", "properties": {"tpl": {"type": "object", "x-kubernetes-embedded-resource": true,
            "properties": {"spec": {"type": "object"}},
            "default": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "spec": {}}}}}),
        );
        assert!(check_defaults(&s, &FieldPath::new("s")).is_empty());
    }
}
