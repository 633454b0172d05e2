//! Sets of field paths in the `FieldsV1` format used by `metadata.managedFields`.
//!
//! A [`FieldSet`] is a trie of [`PathElement`]s in which some nodes are *members*. Leaves of an
//! object (scalars, atomic lists and maps) and the items of keyed lists and sets are members;
//! granular maps are not (only their fields are). This mirrors structured-merge-diff's
//! `fieldpath.Set`, so that sets round-trip through `FieldsV1` JSON exactly as upstream writes
//! them: `{"f:data":{"f:key":{}}}`, `{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:image":{}}}}`.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

/// One step of a field path.
///
/// Keys and values are stored as canonical JSON text (object keys sorted, no whitespace), which is
/// exactly the text that follows `k:` / `v:` in `FieldsV1`, and gives a total order for free.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A named field of a map or struct: `f:<name>`.
    Field(String),
    /// An item of a keyed list, identified by its key fields: `k:{"name":"app"}`.
    Key(String),
    /// An item of a set list, identified by its value: `v:"finalizer.example.com"`.
    Value(String),
    /// An item of a list by position: `i:<n>` (only read from foreign managedFields; never produced).
    Index(usize),
}

impl PathElement {
    /// A `Field` element.
    pub fn field(name: &str) -> Self {
        Self::Field(name.to_owned())
    }

    /// A `Key` element from a JSON object of key fields (serialized canonically).
    pub fn key(key_fields: &Map<String, Value>) -> Self {
        let mut text = String::new();
        write_canonical_map(&mut text, key_fields);
        Self::Key(text)
    }

    /// A `Value` element for a set item (serialized canonically).
    pub fn value(item: &Value) -> Self {
        Self::Value(canonical_json(item))
    }

    /// The `FieldsV1` object key for this element (`f:x`, `k:{..}`, `v:..`, `i:n`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            Self::Field(name) => format!("f:{name}"),
            Self::Key(json) => format!("k:{json}"),
            Self::Value(json) => format!("v:{json}"),
            Self::Index(index) => format!("i:{index}"),
        }
    }

    /// Parses a `FieldsV1` object key (anything but `.`).
    pub fn from_fields_v1_key(key: &str) -> Result<Self, FieldsV1Error> {
        let bad = || FieldsV1Error::BadKey(key.to_owned());
        let (kind, rest) = key.split_once(':').ok_or_else(bad)?;
        match kind {
            "f" => Ok(Self::Field(rest.to_owned())),
            "k" => match serde_json::from_str::<Value>(rest) {
                Ok(Value::Object(fields)) => Ok(Self::key(&fields)),
                _ => Err(bad()),
            },
            "v" => serde_json::from_str::<Value>(rest)
                .map(|v| Self::value(&v))
                .map_err(|_| bad()),
            "i" => rest.parse().map(Self::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

/// Formats like structured-merge-diff's `PathElement.String()`: `.name`, `[name="app"]`,
/// `[="value"]`, `[3]`.
impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Field(name) => write!(f, ".{name}"),
            Self::Key(json) => {
                f.write_char('[')?;
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(json) {
                    for (i, (name, value)) in fields.iter().enumerate() {
                        if i > 0 {
                            f.write_char(',')?;
                        }
                        write!(f, "{name}={}", canonical_json(value))?;
                    }
                }
                f.write_char(']')
            }
            Self::Value(json) => write!(f, "[={json}]"),
            Self::Index(index) => write!(f, "[{index}]"),
        }
    }
}

/// A path from the object root, e.g. `.spec.containers[name="app"].image`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<PathElement>);

impl FieldPath {
    /// Builds a path of `Field` elements from dotted names: `FieldPath::fields(&["data", "key"])`.
    pub fn fields(names: &[&str]) -> Self {
        Self(names.iter().map(|n| PathElement::field(n)).collect())
    }
}

/// Formats like upstream conflict messages: `.spec.replicas`.
impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|e| write!(f, "{e}"))
    }
}

/// Error reading a `fieldsV1` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldsV1Error {
    /// A key that is not `.`, `f:`, `k:{json object}`, `v:json` or `i:n`.
    #[error("invalid fieldsV1 key {0:?}")]
    BadKey(String),
    /// A value that is not a JSON object.
    #[error("invalid fieldsV1: expected an object at {0:?}")]
    NotAnObject(String),
}

/// A set of field paths (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    children: BTreeMap<PathElement, Node>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Node {
    member: bool,
    children: FieldSet,
}

impl Node {
    fn is_empty(&self) -> bool {
        !self.member && self.children.is_empty()
    }
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the set has no members.
    pub fn is_empty(&self) -> bool {
        // Invariant: nodes that are neither members nor have members below are never kept.
        self.children.is_empty()
    }

    /// Adds `path` as a member. The empty path is ignored (the root is never a member).
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let node = self.children.entry(first.clone()).or_default();
        if rest.is_empty() {
            node.member = true;
        } else {
            node.children.insert(rest);
        }
    }

    /// True when `path` is a member.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => false,
            Some((first, rest)) => self.children.get(first).is_some_and(|node| {
                if rest.is_empty() {
                    node.member
                } else {
                    node.children.contains(rest)
                }
            }),
        }
    }

    /// True when some member lies strictly below `path`.
    pub fn has_members_below(&self, path: &[PathElement]) -> bool {
        match path.split_first() {
            None => !self.is_empty(),
            Some((first, rest)) => self
                .children
                .get(first)
                .is_some_and(|node| node.children.has_members_below(rest)),
        }
    }

    /// Removes `path` and every member below it.
    pub fn remove_subtree(&mut self, path: &[PathElement]) {
        let Some((first, rest)) = path.split_first() else {
            self.children.clear();
            return;
        };
        if rest.is_empty() {
            self.children.remove(first);
        } else if let Some(node) = self.children.get_mut(first) {
            node.children.remove_subtree(rest);
            if node.is_empty() {
                self.children.remove(first);
            }
        }
    }

    /// Members of `self` or `other`.
    #[must_use]
    pub fn union(&self, other: &Self) -> Self {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    /// Adds every member of `other` to `self`.
    pub fn union_in_place(&mut self, other: &Self) {
        for (element, theirs) in &other.children {
            let mine = self.children.entry(element.clone()).or_default();
            mine.member |= theirs.member;
            mine.children.union_in_place(&theirs.children);
        }
    }

    /// Members of `self` that are not members of `other`.
    #[must_use]
    pub fn difference(&self, other: &Self) -> Self {
        let mut out = Self::new();
        for (element, mine) in &self.children {
            let node = match other.children.get(element) {
                None => mine.clone(),
                Some(theirs) => Node {
                    member: mine.member && !theirs.member,
                    children: mine.children.difference(&theirs.children),
                },
            };
            if !node.is_empty() {
                out.children.insert(element.clone(), node);
            }
        }
        out
    }

    /// Members of both `self` and `other`.
    #[must_use]
    pub fn intersection(&self, other: &Self) -> Self {
        let mut out = Self::new();
        for (element, mine) in &self.children {
            if let Some(theirs) = other.children.get(element) {
                let node = Node {
                    member: mine.member && theirs.member,
                    children: mine.children.intersection(&theirs.children),
                };
                if !node.is_empty() {
                    out.children.insert(element.clone(), node);
                }
            }
        }
        out
    }

    /// Every member, in set order (parents before children).
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        self.collect_paths(&mut Vec::new(), &mut out);
        out
    }

    fn collect_paths(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        for (element, node) in &self.children {
            prefix.push(element.clone());
            if node.member {
                out.push(FieldPath(prefix.clone()));
            }
            node.children.collect_paths(prefix, out);
            prefix.pop();
        }
    }

    /// Serializes to a `fieldsV1` JSON object.
    pub fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        for (element, node) in &self.children {
            let mut inner = match node.children.to_fields_v1() {
                Value::Object(inner) => inner,
                _ => Map::new(),
            };
            if node.member && !inner.is_empty() {
                inner.insert(".".to_owned(), Value::Object(Map::new()));
            }
            map.insert(element.to_fields_v1_key(), Value::Object(inner));
        }
        Value::Object(map)
    }

    /// Parses a `fieldsV1` JSON object.
    pub fn from_fields_v1(value: &Value) -> Result<Self, FieldsV1Error> {
        let Value::Object(map) = value else {
            return Err(FieldsV1Error::NotAnObject(String::new()));
        };
        let mut set = Self::new();
        for (key, inner) in map {
            if key == "." {
                continue;
            }
            let element = PathElement::from_fields_v1_key(key)?;
            let Value::Object(inner_map) = inner else {
                return Err(FieldsV1Error::NotAnObject(key.clone()));
            };
            let children = Self::from_fields_v1(inner)?;
            // `{}` means "member, no children"; `.` marks membership when there are children.
            let member = inner_map.is_empty() || inner_map.contains_key(".");
            let node = Node { member, children };
            if !node.is_empty() {
                set.children.insert(element, node);
            }
        }
        Ok(set)
    }
}

/// Canonical JSON text: object keys sorted, no whitespace. Independent of serde_json's
/// `preserve_order` feature, so keys in `k:{...}` always come out the same way.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value);
    out
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => write_canonical_map(out, map),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn write_canonical_map(out: &mut String, map: &Map<String, Value>) {
    let mut entries: Vec<_> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(key.clone()).to_string());
        out.push(':');
        write_canonical(out, value);
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(elements: &[PathElement]) -> Vec<PathElement> {
        elements.to_vec()
    }

    #[test]
    fn fields_v1_round_trip_with_items_and_dot() {
        let v1 = json!({
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}}},
            "f:finalizers": {"v:\"a/b\"": {}}
        });
        let set = FieldSet::from_fields_v1(&v1).unwrap();
        assert_eq!(set.to_fields_v1(), v1);
        let item = path(&[
            PathElement::field("spec"),
            PathElement::field("containers"),
            PathElement::Key(r#"{"name":"app"}"#.into()),
        ]);
        assert!(set.contains(&item));
        assert!(!set.contains(&item[..2]));
        assert!(set.has_members_below(&item));
    }

    /// An entry as kube-controller-manager writes it on a real cluster: `.` also marks maps.
    #[test]
    fn round_trips_controller_manager_output() {
        let v1 = json!({
            "f:metadata": {"f:annotations": {".": {}, "f:deployment.kubernetes.io/revision": {}}},
            "f:status": {"f:availableReplicas": {}, "f:conditions": {".": {}, "k:{\"type\":\"Available\"}": {
                ".": {}, "f:lastTransitionTime": {}, "f:message": {}, "f:reason": {}, "f:status": {}, "f:type": {}
            }}}
        });
        let set = FieldSet::from_fields_v1(&v1).unwrap();
        assert_eq!(set.to_fields_v1(), v1);
        assert!(set.contains(&FieldPath::fields(&["metadata", "annotations"]).0));
        assert_eq!(set.paths().len(), 10);
    }

    #[test]
    fn key_elements_are_canonical_and_display_like_upstream() {
        let key: Map<String, Value> =
            serde_json::from_value(json!({"protocol": "TCP", "containerPort": 80})).unwrap();
        let element = PathElement::key(&key);
        assert_eq!(
            element.to_fields_v1_key(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        let p = FieldPath(vec![
            PathElement::field("ports"),
            element,
            PathElement::field("name"),
        ]);
        assert_eq!(
            p.to_string(),
            r#".ports[containerPort=80,protocol="TCP"].name"#
        );
        assert_eq!(PathElement::value(&json!("x")).to_string(), r#"[="x"]"#);
        assert!(PathElement::from_fields_v1_key("k:[1]").is_err());
        assert!(PathElement::from_fields_v1_key("zz").is_err());
    }

    #[test]
    fn set_algebra() {
        let data_a = FieldPath::fields(&["data", "a"]);
        let data_b = FieldPath::fields(&["data", "b"]);
        let spec_c = FieldPath::fields(&["spec", "c"]);
        let mut left = FieldSet::new();
        left.insert(&data_a.0);
        left.insert(&data_b.0);
        let mut right = FieldSet::new();
        right.insert(&data_b.0);
        right.insert(&spec_c.0);
        assert_eq!(
            left.union(&right).paths(),
            vec![data_a.clone(), data_b.clone(), spec_c.clone()]
        );
        assert_eq!(left.difference(&right).paths(), vec![data_a.clone()]);
        assert_eq!(left.intersection(&right).paths(), vec![data_b.clone()]);
        assert!(left.difference(&left).is_empty());
        let mut both = left.union(&right);
        both.remove_subtree(&[PathElement::field("data")]);
        assert_eq!(both.paths(), vec![spec_c]);
    }

    #[test]
    fn rejects_non_object_values() {
        assert!(FieldSet::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(FieldSet::from_fields_v1(&json!([])).is_err());
    }
}
