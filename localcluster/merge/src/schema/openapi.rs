//! Merge rules read from an OpenAPI v3 (structural) schema, as for custom resources.

use serde_json::Value;

use super::builtin::BuiltinSchema;
use super::types::{ListMapKey, ListType, MapType, MergeSchema, Seg};

/// Merge rules from an OpenAPI v3 schema such as a CRD version's `schema.openAPIV3Schema`.
///
/// Reads `properties`, `items`, `additionalProperties`, `x-kubernetes-list-type`
/// (`atomic`/`set`/`map`), `x-kubernetes-list-map-keys` (with key defaults from the item
/// schema's `default`) and `x-kubernetes-map-type`. Lists without a list type are atomic; maps
/// are granular. Paths under `metadata` use the ObjectMeta rules, as upstream treats a custom
/// resource's metadata as a typed `ObjectMeta`.
#[derive(Clone, Debug)]
pub struct OpenApiSchema {
    root: Value,
}

impl OpenApiSchema {
    /// Wraps a schema object (the value of `openAPIV3Schema`).
    pub fn new(root: Value) -> Self {
        Self { root }
    }

    /// The schema of `version` in a CRD object (`spec.versions[name=version].schema.openAPIV3Schema`),
    /// or `None` when that version has no schema.
    pub fn from_crd(crd: &Value, version: &str) -> Option<Self> {
        crd.pointer("/spec/versions")?
            .as_array()?
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(version))?
            .pointer("/schema/openAPIV3Schema")
            .map(|s| Self::new(s.clone()))
    }

    fn node(&self, path: &[Seg<'_>]) -> Option<&Value> {
        path.iter().try_fold(&self.root, |node, seg| match seg {
            Seg::Field(name) => node
                .get("properties")
                .and_then(|p| p.get(*name))
                .or_else(|| node.get("additionalProperties").filter(|a| a.is_object())),
            Seg::Item => node.get("items"),
        })
    }
}

fn is_metadata(path: &[Seg<'_>]) -> bool {
    path.first() == Some(&Seg::Field("metadata"))
}

impl MergeSchema for OpenApiSchema {
    fn list_type(&self, path: &[Seg<'_>]) -> ListType {
        if is_metadata(path) {
            return BuiltinSchema::object_meta_only().list_type(path);
        }
        let Some(node) = self.node(path) else {
            return ListType::Atomic;
        };
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => {
                let item_props = node.get("items").and_then(|i| i.get("properties"));
                let keys = node
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|name| ListMapKey {
                        name: name.to_owned(),
                        default: item_props
                            .and_then(|p| p.get(name))
                            .and_then(|k| k.get("default"))
                            .cloned(),
                    })
                    .collect();
                ListType::Map(keys)
            }
            _ => ListType::Atomic,
        }
    }

    fn map_type(&self, path: &[Seg<'_>]) -> MapType {
        if is_metadata(path) {
            return BuiltinSchema::object_meta_only().map_type(path);
        }
        match self
            .node(path)
            .and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
        {
            Some("atomic") => MapType::Atomic,
            _ => MapType::Granular,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Seg::{Field as F, Item};
    use serde_json::json;

    fn schema() -> OpenApiSchema {
        OpenApiSchema::new(json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "ports": {
                            "type": "array",
                            "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["port", "protocol"],
                            "items": {"type": "object", "properties": {
                                "port": {"type": "integer"},
                                "protocol": {"type": "string", "default": "TCP"},
                                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
                            }}
                        },
                        "args": {"type": "array", "items": {"type": "string"}},
                        "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
                        "byName": {"type": "object", "additionalProperties": {
                            "type": "object", "properties": {"hosts": {"type": "array", "x-kubernetes-list-type": "set"}}
                        }}
                    }
                }
            }
        }))
    }

    #[test]
    fn reads_list_and_map_types() {
        let s = schema();
        let ListType::Map(keys) = s.list_type(&[F("spec"), F("ports")]) else {
            panic!("expected a keyed list");
        };
        assert_eq!(
            keys[0],
            ListMapKey {
                name: "port".into(),
                default: None
            }
        );
        assert_eq!(
            keys[1],
            ListMapKey {
                name: "protocol".into(),
                default: Some(json!("TCP"))
            }
        );
        assert_eq!(
            s.list_type(&[F("spec"), F("ports"), Item, F("tags")]),
            ListType::Set
        );
        assert_eq!(s.list_type(&[F("spec"), F("args")]), ListType::Atomic);
        assert_eq!(
            s.list_type(&[F("spec"), F("byName"), F("anything"), F("hosts")]),
            ListType::Set
        );
        assert_eq!(s.map_type(&[F("spec"), F("selector")]), MapType::Atomic);
        assert_eq!(s.map_type(&[F("spec")]), MapType::Granular);
        assert_eq!(s.list_type(&[F("spec"), F("unknown")]), ListType::Atomic);
        assert_eq!(
            s.list_type(&[F("metadata"), F("finalizers")]),
            ListType::Set
        );
    }

    #[test]
    fn from_crd_picks_the_version() {
        let crd = json!({"spec": {"versions": [
            {"name": "v1", "schema": {"openAPIV3Schema": {"properties": {"spec": {"properties": {"xs": {"x-kubernetes-list-type": "set"}}}}}}}
        ]}});
        let s = OpenApiSchema::from_crd(&crd, "v1").unwrap();
        assert_eq!(s.list_type(&[F("spec"), F("xs")]), ListType::Set);
        assert!(OpenApiSchema::from_crd(&crd, "v2").is_none());
    }
}
