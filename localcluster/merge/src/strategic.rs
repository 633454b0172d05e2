//! Strategic merge patch, `application/strategic-merge-patch+json` (built-in kinds only: the
//! apiserver answers 415 for custom resources, which is the caller's job).
//!
//! Follows apimachinery `pkg/util/strategicpatch` as the server runs it: maps merge recursively
//! and `null` deletes; lists merge per [`MergeSchema`] (keyed lists by their first key, like the
//! single upstream `patchMergeKey`; sets by value; all others are replaced). Directives:
//! `$patch: replace|delete|merge` on maps and list items, `$retainKeys`,
//! `$deleteFromPrimitiveList/<field>` and `$setElementOrder/<field>`. Merged lists follow the
//! patch's order (or `$setElementOrder`) for the items it names, and keep the others in place.

use serde_json::{Map, Value};

use crate::fieldset::{PathElement, canonical_json};
use crate::order::interleave;
use crate::schema::{ListType, MergeSchema, Seg};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Why a strategic merge patch could not be applied. [`Self::http_status`] gives upstream's code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    /// The patch is not an object, or a directive has the wrong shape (400).
    #[error("invalid strategic merge patch: {0}")]
    BadPatch(String),
    /// An item of a keyed list lacks the merge key (422).
    #[error("map: {path} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// Schema path of the list, e.g. `.spec.containers`.
        path: String,
        /// The merge key.
        key: String,
    },
    /// A list merged by key holds lists (422, upstream `ErrNoListOfLists`).
    #[error("lists of lists are not supported: {path}")]
    ListOfLists {
        /// Schema path of the list.
        path: String,
    },
    /// A patch with `$retainKeys` sets a field not in that list (422).
    #[error("the patch at {path} has fields that are not in $retainKeys")]
    RetainKeysMismatch {
        /// Schema path of the map.
        path: String,
    },
}

impl StrategicMergeError {
    /// The HTTP status the kube-apiserver answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::BadPatch(_) => 400,
            _ => 422,
        }
    }
}

/// Applies a strategic merge patch to `original` using `schema` for list semantics.
pub fn strategic_merge_patch(
    original: &Value,
    patch: &Value,
    schema: &dyn MergeSchema,
) -> Result<Value, StrategicMergeError> {
    let Value::Object(patch_map) = patch else {
        return Err(StrategicMergeError::BadPatch(
            "the patch must be a JSON object".into(),
        ));
    };
    let base = match original {
        Value::Object(map) => map.clone(),
        _ => Map::new(),
    };
    let merger = Merger { schema };
    let merged = merger.merge_map(base, patch_map, &mut Vec::new())?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

struct Merger<'s> {
    schema: &'s dyn MergeSchema,
}

fn render(path: &[Seg<'_>]) -> String {
    path.iter()
        .map(|s| match s {
            Seg::Field(name) => format!(".{name}"),
            Seg::Item => "[]".to_owned(),
        })
        .collect()
}

fn directive(map: &Map<String, Value>) -> Result<Option<&str>, StrategicMergeError> {
    match map.get(PATCH) {
        None => Ok(None),
        Some(Value::String(d)) if matches!(d.as_str(), "replace" | "delete" | "merge") => {
            Ok(Some(d))
        }
        Some(other) => Err(StrategicMergeError::BadPatch(format!(
            "unknown $patch directive {other}"
        ))),
    }
}

fn string_list<'v>(value: &'v Value, what: &str) -> Result<Vec<&'v str>, StrategicMergeError> {
    value
        .as_array()
        .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
        .ok_or_else(|| StrategicMergeError::BadPatch(format!("{what} must be a list of strings")))
}

/// Patch content with directives and `null`s removed, for places where it lands as-is.
fn strip(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !k.starts_with('$') && !v.is_null())
                .map(|(k, v)| (k.clone(), strip(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .filter(|i| !is_directive_item(i))
                .map(strip)
                .collect(),
        ),
        scalar => scalar.clone(),
    }
}

/// A list element that is only a directive, like `{"$patch": "replace"}`.
fn is_directive_item(item: &Value) -> bool {
    item.as_object()
        .is_some_and(|m| m.len() == 1 && m.contains_key(PATCH))
}

fn replaces_list(patch: &[Value]) -> bool {
    patch
        .iter()
        .any(|i| i.get(PATCH).and_then(Value::as_str) == Some("replace"))
}

/// Reorders `items` so that those identified in `preferred` follow its order.
fn reorder(
    items: Vec<Value>,
    preferred: &[PathElement],
    id: impl Fn(&Value) -> PathElement,
) -> Vec<Value> {
    let ids: Vec<PathElement> = items.iter().map(&id).collect();
    let mut slots: Vec<Option<Value>> = items.into_iter().map(Some).collect();
    interleave(&ids, preferred)
        .into_iter()
        .filter_map(|(left, _)| left.and_then(|i| slots[i].take()))
        .collect()
}

fn key_id(key: &str) -> impl Fn(&Value) -> PathElement {
    move |item| {
        let mut fields = Map::new();
        if let Some(v) = item.get(key) {
            fields.insert(key.to_owned(), v.clone());
        }
        PathElement::key(&fields)
    }
}

impl Merger<'_> {
    /// Merges a patch map into `original`; `None` means "delete this map".
    fn merge_map<'p>(
        &self,
        mut original: Map<String, Value>,
        patch: &'p Map<String, Value>,
        path: &mut Vec<Seg<'p>>,
    ) -> Result<Option<Map<String, Value>>, StrategicMergeError> {
        match directive(patch)? {
            Some("replace") => {
                return Ok(match strip(&Value::Object(patch.clone())) {
                    Value::Object(map) => Some(map),
                    _ => None,
                });
            }
            Some("delete") => return Ok(None),
            _ => {}
        }
        if let Some(retain) = patch.get(RETAIN_KEYS) {
            let keep = string_list(retain, RETAIN_KEYS)?;
            if patch
                .keys()
                .any(|k| !k.starts_with('$') && !keep.contains(&k.as_str()))
            {
                return Err(StrategicMergeError::RetainKeysMismatch { path: render(path) });
            }
            original.retain(|k, _| keep.contains(&k.as_str()));
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
                let Value::Array(doomed) = value else {
                    return Err(StrategicMergeError::BadPatch(format!(
                        "{key} must be a list"
                    )));
                };
                if let Some(Value::Array(items)) = original.get_mut(field) {
                    items.retain(|i| !doomed.contains(i));
                }
            }
        }
        for (key, value) in patch {
            if key.starts_with('$') {
                continue;
            }
            if value.is_null() {
                original.remove(key);
                continue;
            }
            path.push(Seg::Field(key));
            let merged = self.merge_value(original.remove(key), value, path)?;
            path.pop();
            if let Some(merged) = merged {
                original.insert(key.clone(), merged);
            }
        }
        for (key, value) in patch {
            if let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) {
                let Value::Array(order) = value else {
                    return Err(StrategicMergeError::BadPatch(format!(
                        "{key} must be a list"
                    )));
                };
                path.push(Seg::Field(field));
                let list_type = self.schema.list_type(path);
                path.pop();
                if let Some(Value::Array(items)) = original.remove(field) {
                    let ordered = match list_type {
                        ListType::Map(keys) if !keys.is_empty() => {
                            let id = key_id(&keys[0].name);
                            let preferred: Vec<_> = order.iter().map(&id).collect();
                            reorder(items, &preferred, id)
                        }
                        ListType::Set => {
                            let preferred: Vec<_> = order.iter().map(PathElement::value).collect();
                            reorder(items, &preferred, PathElement::value)
                        }
                        _ => items,
                    };
                    original.insert(field.to_owned(), Value::Array(ordered));
                }
            }
        }
        Ok(Some(original))
    }

    /// Merges one patch value into the original value of a field; `None` means "delete it".
    fn merge_value<'p>(
        &self,
        original: Option<Value>,
        patch: &'p Value,
        path: &mut Vec<Seg<'p>>,
    ) -> Result<Option<Value>, StrategicMergeError> {
        match patch {
            Value::Object(patch_map) => {
                let base = match original {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                Ok(self.merge_map(base, patch_map, path)?.map(Value::Object))
            }
            Value::Array(patch_items) => {
                let base = match original {
                    Some(Value::Array(items)) => items,
                    _ => Vec::new(),
                };
                match self.schema.list_type(path) {
                    ListType::Set => Ok(Some(Value::Array(merge_set(base, patch_items)))),
                    ListType::Map(keys) if !keys.is_empty() => self
                        .merge_keyed(base, patch_items, &keys[0].name, path)
                        .map(|v| Some(Value::Array(v))),
                    _ => Ok(Some(strip(patch))),
                }
            }
            scalar => Ok(Some(scalar.clone())),
        }
    }

    fn merge_keyed<'p>(
        &self,
        mut items: Vec<Value>,
        patch: &'p [Value],
        key: &str,
        path: &mut Vec<Seg<'p>>,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        if replaces_list(patch) {
            // Upstream drops every element that carries a directive, not just the marker.
            return Ok(patch
                .iter()
                .filter(|i| i.get(PATCH).is_none())
                .map(strip)
                .collect());
        }
        let id = key_id(key);
        let mut patch_order = Vec::new();
        for item in patch {
            let patch_item = match item {
                Value::Object(map) => map,
                Value::Array(_) => {
                    return Err(StrategicMergeError::ListOfLists { path: render(path) });
                }
                _ => {
                    return Err(StrategicMergeError::BadPatch(format!(
                        "{} must hold objects",
                        render(path)
                    )));
                }
            };
            let Some(wanted) = patch_item.get(key) else {
                return Err(StrategicMergeError::MissingMergeKey {
                    path: render(path),
                    key: key.to_owned(),
                });
            };
            if directive(patch_item)? == Some("delete") {
                items.retain(|i| i.get(key) != Some(wanted));
                continue;
            }
            patch_order.push(id(item));
            let position = items.iter().position(|i| i.get(key) == Some(wanted));
            let base = match position.map(|p| std::mem::take(&mut items[p])) {
                Some(Value::Object(map)) => map,
                _ => Map::new(),
            };
            path.push(Seg::Item);
            let merged = self.merge_map(base, patch_item, path)?;
            path.pop();
            match (position, merged) {
                (Some(p), Some(m)) => items[p] = Value::Object(m),
                (Some(p), None) => {
                    items.remove(p);
                }
                (None, Some(m)) => items.push(Value::Object(m)),
                (None, None) => {}
            }
        }
        Ok(reorder(items, &patch_order, id))
    }
}

fn merge_set(mut items: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    if replaces_list(patch) {
        return patch
            .iter()
            .filter(|i| !is_directive_item(i))
            .cloned()
            .collect();
    }
    let mut seen: std::collections::HashSet<String> = items.iter().map(canonical_json).collect();
    let mut order = Vec::new();
    for item in patch.iter().filter(|i| !is_directive_item(i)) {
        order.push(PathElement::value(item));
        if seen.insert(canonical_json(item)) {
            items.push(item.clone());
        }
    }
    reorder(items, &order, PathElement::value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BuiltinSchema;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)]
    fn pod_patch(original: Value, patch: Value) -> Result<Value, StrategicMergeError> {
        strategic_merge_patch(&original, &patch, &BuiltinSchema::for_kind("", "Pod"))
    }

    #[allow(clippy::needless_pass_by_value)]
    fn pod(containers: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    #[test]
    fn containers_merge_by_name_and_env_by_name() {
        let original = pod(json!([
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
            {"name": "side", "image": "side:1"}
        ]));
        let patch = json!({"spec": {"containers": [
            {"name": "app", "image": "app:2", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}
        ]}});
        let out = pod_patch(original, patch).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([
                {"name": "app", "image": "app:2", "env": [
                    {"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}
                ]},
                {"name": "side", "image": "side:1"}
            ])
        );
    }

    #[test]
    fn patch_delete_and_replace_directives_in_lists() {
        let original = pod(json!([{"name": "a", "image": "a"}, {"name": "b", "image": "b"}]));
        let out = pod_patch(
            original.clone(),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "b", "image": "b"}])
        );
        let out = pod_patch(
            original,
            json!({"spec": {"containers": [{"name": "c", "image": "c"}, {"$patch": "replace"}]}}),
        )
        .unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "c", "image": "c"}])
        );
    }

    #[test]
    fn replace_drops_every_directive_element() {
        let original = pod(json!([{"name": "a"}]));
        let patch = json!({"spec": {"containers": [
            {"name": "b"}, {"name": "c", "$patch": "delete"}, {"$patch": "replace"}
        ]}});
        let out = pod_patch(original, patch).unwrap();
        assert_eq!(out["spec"]["containers"], json!([{"name": "b"}]));
    }

    #[test]
    fn map_directives_and_nulls() {
        let original =
            json!({"metadata": {"labels": {"a": "1", "b": "2"}, "annotations": {"x": "y"}}});
        let out = pod_patch(
            original.clone(),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}, "annotations": {"$patch": "delete"}}}),
        )
        .unwrap();
        assert_eq!(out, json!({"metadata": {"labels": {"c": "3"}}}));
        let out = pod_patch(
            original,
            json!({"metadata": {"labels": {"a": null, "d": "4"}}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["labels"], json!({"b": "2", "d": "4"}));
        assert_eq!(
            pod_patch(json!({}), json!({"metadata": {"$patch": "bogus"}}))
                .unwrap_err()
                .http_status(),
            400
        );
        assert_eq!(
            pod_patch(json!({}), json!([1])).unwrap_err().http_status(),
            400
        );
    }

    #[test]
    fn retain_keys_drops_other_fields() {
        let original = json!({"spec": {"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]}});
        let patch = json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}, "$retainKeys": ["emptyDir", "name"]}]}});
        let out = pod_patch(original.clone(), patch).unwrap();
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "emptyDir": {}}])
        );
        let bad =
            json!({"spec": {"volumes": [{"name": "v", "emptyDir": {}, "$retainKeys": ["name"]}]}});
        assert!(matches!(
            pod_patch(original, bad),
            Err(StrategicMergeError::RetainKeysMismatch { .. })
        ));
    }

    #[test]
    fn finalizers_are_a_set_with_delete_from_primitive_list() {
        let original = json!({"metadata": {"finalizers": ["a", "b"]}});
        let out = pod_patch(
            original.clone(),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["a", "b", "c"]));
        let out = pod_patch(
            original,
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}}),
        )
        .unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!(["b"]));
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let original = json!({"spec": {"tolerations": [{"key": "a"}], "containers": [{"name": "c", "args": ["1", "2"]}]}});
        let out = pod_patch(
            original,
            json!({"spec": {"tolerations": [{"key": "b"}], "containers": [{"name": "c", "args": ["3"]}]}}),
        )
        .unwrap();
        assert_eq!(out["spec"]["tolerations"], json!([{"key": "b"}]));
        assert_eq!(out["spec"]["containers"][0]["args"], json!(["3"]));
    }

    #[test]
    fn set_element_order_reorders() {
        let original = pod(json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patch = json!({"spec": {
            "$setElementOrder/containers": [{"name": "c"}, {"name": "b"}, {"name": "a"}],
            "containers": [{"name": "b", "image": "x"}]
        }});
        let out = pod_patch(original, patch).unwrap();
        let names: Vec<_> = out["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].clone())
            .collect();
        assert_eq!(names, [json!("c"), json!("b"), json!("a")]);
        assert_eq!(out["spec"]["containers"][1]["image"], json!("x"));
    }

    #[test]
    fn missing_merge_key_and_list_of_lists() {
        let original = pod(json!([{"name": "a"}]));
        let err = pod_patch(
            original.clone(),
            json!({"spec": {"containers": [{"image": "x"}]}}),
        )
        .unwrap_err();
        assert_eq!(
            err,
            StrategicMergeError::MissingMergeKey {
                path: ".spec.containers".into(),
                key: "name".into()
            }
        );
        assert_eq!(err.http_status(), 422);
        let err = pod_patch(original, json!({"spec": {"containers": [["x"]]}})).unwrap_err();
        assert!(matches!(err, StrategicMergeError::ListOfLists { .. }));
    }

    #[test]
    fn new_content_is_stripped_of_directives_and_nulls() {
        let out = pod_patch(
            json!({}),
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "E", "value": null}]}], "x": {"$patch": "merge", "y": 1}}}),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "E"}]}], "x": {"y": 1}}})
        );
    }

    #[test]
    fn service_ports_merge_by_port() {
        let schema = BuiltinSchema::for_kind("", "Service");
        let original = json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}, {"port": 443}], "selector": {"a": "1"}}});
        let patch =
            json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}], "selector": {"b": "2"}}});
        let out = strategic_merge_patch(&original, &patch, &schema).unwrap();
        assert_eq!(
            out["spec"]["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443}])
        );
        // Strategic merge ignores mapType=atomic: maps always merge (upstream only reads patchStrategy).
        assert_eq!(out["spec"]["selector"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn deployment_template_containers_and_conditions() {
        let schema = BuiltinSchema::for_kind("apps", "Deployment");
        let original = json!({
            "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "1"}]}}},
            "status": {"conditions": [{"type": "Available", "status": "False"}, {"type": "Progressing", "status": "True"}]}
        });
        let patch = json!({
            "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "2"}]}}},
            "status": {"conditions": [{"type": "Available", "status": "True"}]}
        });
        let out = strategic_merge_patch(&original, &patch, &schema).unwrap();
        assert_eq!(
            out["spec"]["template"]["spec"]["containers"],
            json!([{"name": "a", "image": "1"}, {"name": "b", "image": "2"}])
        );
        assert_eq!(
            out["status"]["conditions"],
            json!([{"type": "Available", "status": "True"}, {"type": "Progressing", "status": "True"}])
        );
    }
}
