//! Schema-aware walks over objects: the field set of a value, the comparison of two values,
//! and removal of a path. These are the building blocks of server-side apply and of
//! managedFields tracking (structured-merge-diff's `typed` package in miniature).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::fieldset::{FieldPath, FieldSet, PathElement};
use crate::schema::{ListMapKey, ListType, MapType, MergeSchema, Seg};

/// The shape of a value at a path, as the merge algorithms see it.
pub(crate) enum Shape<'v> {
    /// A granular map: merged and owned field by field.
    Map(&'v Map<String, Value>),
    /// A set list.
    Set(&'v [Value]),
    /// A keyed list with its keys.
    Keyed(&'v [Value], Vec<ListMapKey>),
    /// Anything owned and replaced as a whole.
    Leaf,
}

/// Classifies `value` found at `segs`.
pub(crate) fn shape<'v>(schema: &dyn MergeSchema, segs: &[Seg<'_>], value: &'v Value) -> Shape<'v> {
    match value {
        Value::Object(map) => match schema.map_type(segs) {
            MapType::Granular => Shape::Map(map),
            MapType::Atomic => Shape::Leaf,
        },
        Value::Array(items) => match schema.list_type(segs) {
            ListType::Set => Shape::Set(items),
            ListType::Map(keys) if !keys.is_empty() => Shape::Keyed(items, keys),
            _ => Shape::Leaf,
        },
        _ => Shape::Leaf,
    }
}

/// An applied configuration whose list items cannot be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    /// An item of a keyed list lacks a key field that has no default.
    #[error(
        "{list}: element {index}: associative list with keys has an element that omits key field {key:?}"
    )]
    MissingKey {
        /// The list, e.g. `.spec.containers`.
        list: String,
        /// Position of the item.
        index: usize,
        /// The missing key field.
        key: String,
    },
    /// An item of a keyed list is not an object.
    #[error("{list}: element {index}: associative list with keys has an element that is not a map")]
    NotAMap {
        /// The list.
        list: String,
        /// Position of the item.
        index: usize,
    },
    /// Two items of a keyed list or set have the same identity.
    #[error("{list}: duplicate entries for key {key}")]
    Duplicate {
        /// The list.
        list: String,
        /// The repeated key or value, as in `[name="app"]`.
        key: String,
    },
}

/// The `k:{...}` element identifying `item` in a list keyed by `keys`, or the first missing key
/// field. Defaults fill in missing key fields.
fn item_key(item: &Value, keys: &[ListMapKey]) -> Result<PathElement, Option<String>> {
    let Value::Object(fields) = item else {
        return Err(None);
    };
    let mut key = Map::new();
    for k in keys {
        match fields
            .get(&k.name)
            .filter(|v| !v.is_null())
            .or(k.default.as_ref())
        {
            Some(v) => {
                key.insert(k.name.clone(), v.clone());
            }
            None => return Err(Some(k.name.clone())),
        }
    }
    Ok(PathElement::key(&key))
}

/// Like [`item_key`] but total: missing key fields are left out. Used on stored objects, which
/// the server already accepted, so that tracking never fails on them.
pub(crate) fn item_key_lenient(item: &Value, keys: &[ListMapKey]) -> PathElement {
    let mut key = Map::new();
    if let Value::Object(fields) = item {
        for k in keys {
            if let Some(v) = fields
                .get(&k.name)
                .filter(|v| !v.is_null())
                .or(k.default.as_ref())
            {
                key.insert(k.name.clone(), v.clone());
            }
        }
    }
    PathElement::key(&key)
}

/// Identities of the items of a keyed list (`keys` given) or a set (`None`).
pub(crate) fn item_ids(items: &[Value], keys: Option<&[ListMapKey]>) -> Vec<PathElement> {
    items
        .iter()
        .map(|item| match keys {
            Some(keys) => item_key_lenient(item, keys),
            None => PathElement::value(item),
        })
        .collect()
}

/// The fields `value` sets: leaves, atomic lists and maps, empty maps and lists, keyed-list
/// and set items.
/// With `strict`, items that cannot be identified (or repeat) are errors, as for an applied
/// configuration; otherwise they are identified as well as possible.
pub(crate) fn field_set(
    value: &Value,
    schema: &dyn MergeSchema,
    strict: bool,
) -> Result<FieldSet, ItemError> {
    let mut walk = SetWalk {
        schema,
        strict,
        out: FieldSet::new(),
        path: Vec::new(),
    };
    walk.collect(value, &mut Vec::new())?;
    Ok(walk.out)
}

struct SetWalk<'s> {
    schema: &'s dyn MergeSchema,
    strict: bool,
    out: FieldSet,
    path: Vec<PathElement>,
}

impl SetWalk<'_> {
    fn list_name(&self) -> String {
        FieldPath(self.path.clone()).to_string()
    }

    fn collect<'v>(&mut self, value: &'v Value, segs: &mut Vec<Seg<'v>>) -> Result<(), ItemError> {
        match shape(self.schema, segs, value) {
            // An empty map or list has nothing below it to own, so it is owned itself
            // (upstream records e.g. `f:emptyDir: {}`), and can be pruned later.
            Shape::Leaf => self.out.insert(&self.path),
            Shape::Map(map) if map.is_empty() => self.out.insert(&self.path),
            Shape::Set(items) | Shape::Keyed(items, _) if items.is_empty() => {
                self.out.insert(&self.path);
            }
            Shape::Map(map) => {
                for (name, child) in map {
                    self.path.push(PathElement::Field(name.clone()));
                    segs.push(Seg::Field(name));
                    self.collect(child, segs)?;
                    segs.pop();
                    self.path.pop();
                }
            }
            Shape::Set(items) => {
                let mut seen = HashSet::new();
                for item in items {
                    let id = PathElement::value(item);
                    if self.strict && !seen.insert(id.clone()) {
                        return Err(ItemError::Duplicate {
                            list: self.list_name(),
                            key: id.to_string(),
                        });
                    }
                    self.path.push(id);
                    self.out.insert(&self.path);
                    self.path.pop();
                }
            }
            Shape::Keyed(items, keys) => {
                let mut seen = HashSet::new();
                segs.push(Seg::Item);
                for (index, item) in items.iter().enumerate() {
                    let id = if self.strict {
                        item_key(item, &keys).map_err(|missing| match missing {
                            Some(key) => ItemError::MissingKey {
                                list: self.list_name(),
                                index,
                                key,
                            },
                            None => ItemError::NotAMap {
                                list: self.list_name(),
                                index,
                            },
                        })?
                    } else {
                        item_key_lenient(item, &keys)
                    };
                    if self.strict && !seen.insert(id.clone()) {
                        return Err(ItemError::Duplicate {
                            list: self.list_name(),
                            key: id.to_string(),
                        });
                    }
                    self.path.push(id);
                    self.out.insert(&self.path);
                    self.collect(item, segs)?;
                    self.path.pop();
                }
                segs.pop();
            }
        }
        Ok(())
    }
}

/// What changed between two values, as field sets (structured-merge-diff `Comparison`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Comparison {
    /// Fields present only in the new value.
    pub added: FieldSet,
    /// Leaves present in both with different values.
    pub modified: FieldSet,
    /// Fields present only in the old value (with every path below them).
    pub removed: FieldSet,
}

impl Comparison {
    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// Compares `old` and `new` field by field.
pub(crate) fn compare(old: &Value, new: &Value, schema: &dyn MergeSchema) -> Comparison {
    let mut walk = CompareWalk {
        schema,
        out: Comparison::default(),
        path: Vec::new(),
    };
    walk.visit(Some(old), Some(new), &mut Vec::new());
    walk.out
}

struct CompareWalk<'s> {
    schema: &'s dyn MergeSchema,
    out: Comparison,
    path: Vec<PathElement>,
}

impl CompareWalk<'_> {
    fn subtree(&self, value: &Value, segs: &[Seg<'_>]) -> FieldSet {
        let mut walk = SetWalk {
            schema: self.schema,
            strict: false,
            out: FieldSet::new(),
            path: self.path.clone(),
        };
        // Lenient walks cannot fail.
        let _ = walk.collect(value, &mut segs.to_vec());
        walk.out
    }

    fn added(&mut self, value: &Value, segs: &[Seg<'_>]) {
        let set = self.subtree(value, segs);
        self.out.added.union_in_place(&set);
    }

    fn removed(&mut self, value: &Value, segs: &[Seg<'_>]) {
        let set = self.subtree(value, segs);
        self.out.removed.union_in_place(&set);
        self.out.removed.insert(&self.path);
    }

    fn visit<'v>(
        &mut self,
        old: Option<&'v Value>,
        new: Option<&'v Value>,
        segs: &mut Vec<Seg<'v>>,
    ) {
        let (old, new) = match (old, new) {
            (None, None) => return,
            (None, Some(new)) => return self.added(new, segs),
            (Some(old), None) => return self.removed(old, segs),
            (Some(old), Some(new)) => (old, new),
        };
        match (shape(self.schema, segs, old), shape(self.schema, segs, new)) {
            (Shape::Map(old_map), Shape::Map(new_map)) => {
                let names: std::collections::BTreeSet<&String> =
                    old_map.keys().chain(new_map.keys()).collect();
                for name in names {
                    self.path.push(PathElement::Field(name.clone()));
                    segs.push(Seg::Field(name));
                    self.visit(old_map.get(name), new_map.get(name), segs);
                    segs.pop();
                    self.path.pop();
                }
            }
            (Shape::Set(old_items), Shape::Set(new_items)) => {
                self.items(old_items, new_items, None, segs);
            }
            (Shape::Keyed(old_items, keys), Shape::Keyed(new_items, _)) => {
                segs.push(Seg::Item);
                self.items(old_items, new_items, Some(&keys), segs);
                segs.pop();
            }
            (Shape::Leaf, Shape::Leaf) => {
                if old != new {
                    self.out.modified.insert(&self.path);
                }
            }
            // The value changed shape (say, a scalar became a map): the field itself changed.
            _ => {
                self.out.modified.insert(&self.path);
                let here = single(&self.path);
                let before = self.subtree(old, segs).difference(&here);
                let after = self.subtree(new, segs).difference(&here);
                self.out.removed.union_in_place(&before);
                self.out.added.union_in_place(&after);
            }
        }
    }

    /// Compares the items of two keyed lists (`keys` given; `segs` ends with `Item`) or sets.
    fn items<'v>(
        &mut self,
        old: &'v [Value],
        new: &'v [Value],
        keys: Option<&[ListMapKey]>,
        segs: &mut Vec<Seg<'v>>,
    ) {
        let old_ids = item_ids(old, keys);
        let new_ids = item_ids(new, keys);
        // First occurrence wins, as upstream ignores repeated items.
        let mut old_by_id: HashMap<&PathElement, &Value> = HashMap::with_capacity(old.len());
        for (id, item) in old_ids.iter().zip(old) {
            old_by_id.entry(id).or_insert(item);
        }
        let mut done = HashSet::new();
        for (id, new_item) in new_ids.iter().zip(new) {
            if !done.insert(id) {
                continue;
            }
            let old_item = old_by_id.get(id).copied();
            self.path.push(id.clone());
            match (old_item, keys) {
                (None, _) => {
                    self.out.added.insert(&self.path);
                    if keys.is_some() {
                        self.added(new_item, segs);
                    }
                }
                (Some(old_item), Some(_)) => self.visit(Some(old_item), Some(new_item), segs),
                (Some(_), None) => {}
            }
            self.path.pop();
        }
        for (id, old_item) in old_ids.iter().zip(old) {
            if done.insert(id) {
                self.path.push(id.clone());
                if keys.is_some() {
                    self.removed(old_item, segs);
                } else {
                    self.out.removed.insert(&self.path);
                }
                self.path.pop();
            }
        }
    }
}

fn single(path: &[PathElement]) -> FieldSet {
    let mut set = FieldSet::new();
    set.insert(path);
    set
}

/// Removes the field or item at `path` from `root`, if present.
pub(crate) fn remove_path(root: &mut Value, path: &[PathElement], schema: &dyn MergeSchema) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut segs: Vec<Seg<'_>> = Vec::new();
    let mut node = root;
    for element in parents {
        let Some(next) = locate(node, element, &mut segs, schema) else {
            return;
        };
        node = next;
    }
    match (node, last) {
        (Value::Object(map), PathElement::Field(name)) => {
            map.remove(name);
        }
        (Value::Array(items), element) => {
            if let Some(i) = position(items, element, &segs, schema) {
                items.remove(i);
            }
        }
        _ => {}
    }
}

fn locate<'a, 'p>(
    node: &'a mut Value,
    element: &'p PathElement,
    segs: &mut Vec<Seg<'p>>,
    schema: &dyn MergeSchema,
) -> Option<&'a mut Value> {
    match (node, element) {
        (Value::Object(map), PathElement::Field(name)) => {
            segs.push(Seg::Field(name));
            map.get_mut(name)
        }
        (Value::Array(items), element) => {
            let i = position(items, element, segs, schema)?;
            segs.push(Seg::Item);
            items.get_mut(i)
        }
        _ => None,
    }
}

fn position(
    items: &[Value],
    element: &PathElement,
    segs: &[Seg<'_>],
    schema: &dyn MergeSchema,
) -> Option<usize> {
    match element {
        PathElement::Index(i) => (*i < items.len()).then_some(*i),
        PathElement::Value(_) => items
            .iter()
            .position(|item| PathElement::value(item) == *element),
        PathElement::Key(_) => match schema.list_type(segs) {
            ListType::Map(keys) => items
                .iter()
                .position(|item| item_key_lenient(item, &keys) == *element),
            _ => None,
        },
        PathElement::Field(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BuiltinSchema;
    use serde_json::json;

    fn pod() -> BuiltinSchema {
        BuiltinSchema::for_kind("", "Pod")
    }

    fn rendered(set: &FieldSet) -> Vec<String> {
        set.paths().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn field_set_of_a_pod() {
        let value = json!({
            "metadata": {"labels": {"app": "x"}, "finalizers": ["f"]},
            "spec": {
                "nodeSelector": {"disk": "ssd"},
                "tolerations": [{"key": "k"}],
                "containers": [{"name": "app", "image": "i", "ports": [{"containerPort": 80}]}]
            }
        });
        let set = field_set(&value, &pod(), true).unwrap();
        assert_eq!(
            rendered(&set),
            [
                ".metadata.finalizers[=\"f\"]",
                ".metadata.labels.app",
                ".spec.containers[name=\"app\"]",
                ".spec.containers[name=\"app\"].image",
                ".spec.containers[name=\"app\"].name",
                ".spec.containers[name=\"app\"].ports[containerPort=80,protocol=\"TCP\"]",
                ".spec.containers[name=\"app\"].ports[containerPort=80,protocol=\"TCP\"].containerPort",
                ".spec.nodeSelector",
                ".spec.tolerations",
            ]
        );
    }

    #[test]
    fn strict_field_set_rejects_unidentifiable_items() {
        let missing = json!({"spec": {"containers": [{"image": "i"}]}});
        assert!(matches!(
            field_set(&missing, &pod(), true),
            Err(ItemError::MissingKey { index: 0, .. })
        ));
        assert!(field_set(&missing, &pod(), false).is_ok());
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = field_set(&dup, &pod(), true).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
        let dup_set = json!({"metadata": {"finalizers": ["a", "a"]}});
        assert!(field_set(&dup_set, &pod(), true).is_err());
    }

    #[test]
    fn compare_reports_added_modified_removed() {
        let old = json!({
            "data": {"a": "1", "b": "2"},
            "metadata": {"finalizers": ["x", "y"]},
            "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]}
        });
        let new = json!({
            "data": {"a": "1", "b": "3", "c": "4"},
            "metadata": {"finalizers": ["y", "z"]},
            "spec": {"containers": [{"name": "a", "image": "2"}, {"name": "c", "image": "1"}]}
        });
        let cmp = compare(&old, &new, &pod());
        assert_eq!(
            rendered(&cmp.added),
            [
                ".data.c",
                ".metadata.finalizers[=\"z\"]",
                ".spec.containers[name=\"c\"]",
                ".spec.containers[name=\"c\"].image",
                ".spec.containers[name=\"c\"].name",
            ]
        );
        assert_eq!(
            rendered(&cmp.modified),
            [".data.b", ".spec.containers[name=\"a\"].image"]
        );
        assert_eq!(
            rendered(&cmp.removed),
            [
                ".metadata.finalizers[=\"x\"]",
                ".spec.containers[name=\"b\"]",
                ".spec.containers[name=\"b\"].image",
                ".spec.containers[name=\"b\"].name",
            ]
        );
        assert!(compare(&old, &old, &pod()).is_empty());
    }

    #[test]
    fn compare_shape_change_is_a_modification() {
        let cmp = compare(
            &json!({"spec": {"x": 1}}),
            &json!({"spec": {"x": {"y": 1}}}),
            &pod(),
        );
        assert_eq!(rendered(&cmp.modified), [".spec.x"]);
        assert_eq!(rendered(&cmp.added), [".spec.x.y"]);
    }

    #[test]
    fn remove_path_handles_fields_keys_and_values() {
        let mut v = json!({
            "metadata": {"finalizers": ["a", "b"], "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "a", "env": [{"name": "E"}, {"name": "F"}]}]}
        });
        let s = pod();
        let env_e = [
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::Key(r#"{"name":"a"}"#.into()),
            PathElement::field("env"),
            PathElement::Key(r#"{"name":"E"}"#.into()),
        ];
        remove_path(&mut v, &env_e, &s);
        remove_path(
            &mut v,
            &[
                PathElement::field("metadata"),
                PathElement::field("labels"),
                PathElement::field("x"),
            ],
            &s,
        );
        remove_path(
            &mut v,
            &[
                PathElement::field("metadata"),
                PathElement::field("finalizers"),
                PathElement::value(&json!("a")),
            ],
            &s,
        );
        remove_path(
            &mut v,
            &[PathElement::field("nope"), PathElement::field("x")],
            &s,
        );
        assert_eq!(
            v,
            json!({
                "metadata": {"finalizers": ["b"], "labels": {"y": "2"}},
                "spec": {"containers": [{"name": "a", "env": [{"name": "F"}]}]}
            })
        );
    }
}
