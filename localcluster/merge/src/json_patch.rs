//! JSON patch (RFC 6902), `application/json-patch+json`, with the quirks of the library the
//! kube-apiserver uses (evanphx/json-patch v4): `test` treats a missing path as `null`, which
//! kube-rs's finalizer helper relies on (`test /metadata/finalizers == null`).
//!
//! Status codes upstream (apiserver `handlers/patch.go`): a body that does not decode as a patch
//! is 400, more than [`MAX_OPERATIONS`] is 413, and every failure while applying (a failed
//! `test`, a missing path, a bad index) is 422. [`JsonPatchError::http_status`] returns these.

use serde_json::Value;

/// Most operations one patch may hold (apiserver `maxJSONPatchOperations`).
pub const MAX_OPERATIONS: usize = 10_000;

/// Why a JSON patch could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonPatchError {
    /// The body is not a JSON array of objects (400).
    #[error("invalid JSON patch: {0}")]
    Malformed(String),
    /// More than [`MAX_OPERATIONS`] operations (413).
    #[error("The allowed maximum operations in a JSON patch is {MAX_OPERATIONS}, got {0}")]
    TooManyOperations(usize),
    /// An operation is incomplete or unknown, e.g. no `path`, or `op: "frob"` (422).
    #[error("invalid operation {index}: {message}")]
    InvalidOperation {
        /// Position of the operation in the patch.
        index: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A `test` operation found a different value (422).
    #[error("testing value {path} failed: test failed")]
    TestFailed {
        /// The tested JSON pointer.
        path: String,
    },
    /// The pointer (or its parent, for `add`) does not exist (422).
    #[error("doc is missing path: {path}")]
    PathNotFound {
        /// The JSON pointer.
        path: String,
    },
    /// An array index is not a number, or is out of bounds (422).
    #[error("invalid array index in {path}")]
    InvalidIndex {
        /// The JSON pointer.
        path: String,
    },
    /// A pointer that does not start with `/` or has a bad `~` escape (422).
    #[error("invalid JSON pointer {0:?}")]
    InvalidPointer(String),
}

impl JsonPatchError {
    /// The HTTP status the kube-apiserver answers with for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Malformed(_) => 400,
            Self::TooManyOperations(_) => 413,
            _ => 422,
        }
    }
}

/// Applies a JSON patch (`patch` must be an array of operations) to a copy of `doc`.
pub fn json_patch(doc: &Value, patch: &Value) -> Result<Value, JsonPatchError> {
    let Value::Array(ops) = patch else {
        return Err(JsonPatchError::Malformed(
            "expected an array of operations".into(),
        ));
    };
    if ops.len() > MAX_OPERATIONS {
        return Err(JsonPatchError::TooManyOperations(ops.len()));
    }
    if let Some(i) = ops.iter().position(|op| !op.is_object()) {
        return Err(JsonPatchError::Malformed(format!(
            "operation {i} is not an object"
        )));
    }
    let mut out = doc.clone();
    for (index, op) in ops.iter().enumerate() {
        apply_op(&mut out, index, op)?;
    }
    Ok(out)
}

fn apply_op(doc: &mut Value, index: usize, op: &Value) -> Result<(), JsonPatchError> {
    let invalid = |message: &str| JsonPatchError::InvalidOperation {
        index,
        message: message.to_owned(),
    };
    let str_field = |name: &str| op.get(name).and_then(Value::as_str);
    let kind = str_field("op").ok_or_else(|| invalid("missing \"op\""))?;
    let path = str_field("path").ok_or_else(|| invalid("missing \"path\""))?;
    let value = || {
        op.get("value")
            .cloned()
            .ok_or_else(|| invalid("missing \"value\""))
    };
    let from = || str_field("from").ok_or_else(|| invalid("missing \"from\""));
    match kind {
        "add" => add(doc, path, value()?),
        "remove" => remove(doc, path).map(drop),
        "replace" => replace(doc, path, value()?),
        "move" => {
            let from = from()?;
            if path != from && path.starts_with(from) && path[from.len()..].starts_with('/') {
                return Err(invalid("cannot move a value into one of its children"));
            }
            let moved = remove(doc, from)?;
            add(doc, path, moved)
        }
        "copy" => {
            let from = from()?;
            let copied = get(doc, from)?.cloned().ok_or_else(|| missing(from))?;
            add(doc, path, copied)
        }
        "test" => {
            // evanphx/json-patch v4: an absent value tests equal to null.
            let expected = op.get("value").unwrap_or(&Value::Null);
            let actual = get(doc, path)?.unwrap_or(&Value::Null);
            if actual == expected {
                Ok(())
            } else {
                Err(JsonPatchError::TestFailed {
                    path: path.to_owned(),
                })
            }
        }
        other => Err(invalid(&format!("unknown op {other:?}"))),
    }
}

fn missing(path: &str) -> JsonPatchError {
    JsonPatchError::PathNotFound {
        path: path.to_owned(),
    }
}

/// Splits a JSON pointer into unescaped tokens (`~1` → `/`, `~0` → `~`).
fn tokens(pointer: &str) -> Result<Vec<String>, JsonPatchError> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(JsonPatchError::InvalidPointer(pointer.to_owned()));
    };
    rest.split('/')
        .map(|token| {
            let mut out = String::with_capacity(token.len());
            let mut chars = token.chars();
            while let Some(c) = chars.next() {
                if c == '~' {
                    match chars.next() {
                        Some('0') => out.push('~'),
                        Some('1') => out.push('/'),
                        _ => return Err(JsonPatchError::InvalidPointer(pointer.to_owned())),
                    }
                } else {
                    out.push(c);
                }
            }
            Ok(out)
        })
        .collect()
}

fn parse_index(token: &str, pointer: &str) -> Result<usize, JsonPatchError> {
    let invalid = || JsonPatchError::InvalidIndex {
        path: pointer.to_owned(),
    };
    if token.is_empty()
        || !token.bytes().all(|b| b.is_ascii_digit())
        || (token.len() > 1 && token.starts_with('0'))
    {
        return Err(invalid());
    }
    token.parse().map_err(|_| invalid())
}

/// The value at `pointer`, `Ok(None)` if its last step is absent.
fn get<'a>(doc: &'a Value, pointer: &str) -> Result<Option<&'a Value>, JsonPatchError> {
    let mut node = doc;
    for token in tokens(pointer)? {
        node = match node {
            Value::Object(map) => match map.get(&token) {
                Some(v) => v,
                None => return Ok(None),
            },
            Value::Array(items) => {
                match parse_index(&token, pointer).ok().and_then(|i| items.get(i)) {
                    Some(v) => v,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
    }
    Ok(Some(node))
}

/// The parent container of `pointer` and the last token; `None` for the root pointer.
fn parent_mut<'a>(
    doc: &'a mut Value,
    pointer: &str,
) -> Result<Option<(&'a mut Value, String)>, JsonPatchError> {
    let mut tokens = tokens(pointer)?;
    let Some(last) = tokens.pop() else {
        return Ok(None);
    };
    let mut node = doc;
    for token in tokens {
        node = match node {
            Value::Object(map) => map.get_mut(&token),
            Value::Array(items) => {
                let i = parse_index(&token, pointer)?;
                items.get_mut(i)
            }
            _ => None,
        }
        .ok_or_else(|| missing(pointer))?;
    }
    Ok(Some((node, last)))
}

fn add(doc: &mut Value, pointer: &str, value: Value) -> Result<(), JsonPatchError> {
    let Some((parent, last)) = parent_mut(doc, pointer)? else {
        *doc = value;
        return Ok(());
    };
    match parent {
        Value::Object(map) => {
            map.insert(last, value);
            Ok(())
        }
        Value::Array(items) => {
            let i = if last == "-" {
                items.len()
            } else {
                parse_index(&last, pointer)?
            };
            if i > items.len() {
                return Err(JsonPatchError::InvalidIndex {
                    path: pointer.to_owned(),
                });
            }
            items.insert(i, value);
            Ok(())
        }
        _ => Err(missing(pointer)),
    }
}

fn remove(doc: &mut Value, pointer: &str) -> Result<Value, JsonPatchError> {
    let Some((parent, last)) = parent_mut(doc, pointer)? else {
        return Err(missing(pointer));
    };
    match parent {
        Value::Object(map) => map.remove(&last).ok_or_else(|| missing(pointer)),
        Value::Array(items) => {
            let i = parse_index(&last, pointer)?;
            if i >= items.len() {
                return Err(JsonPatchError::InvalidIndex {
                    path: pointer.to_owned(),
                });
            }
            Ok(items.remove(i))
        }
        _ => Err(missing(pointer)),
    }
}

fn replace(doc: &mut Value, pointer: &str, value: Value) -> Result<(), JsonPatchError> {
    let Some((parent, last)) = parent_mut(doc, pointer)? else {
        *doc = value;
        return Ok(());
    };
    let slot = match parent {
        Value::Object(map) => map.get_mut(&last),
        Value::Array(items) => {
            let i = parse_index(&last, pointer)?;
            items.get_mut(i)
        }
        _ => None,
    };
    *slot.ok_or_else(|| missing(pointer))? = value;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)]
    fn patch(doc: Value, ops: Value) -> Result<Value, JsonPatchError> {
        json_patch(&doc, &ops)
    }

    #[test]
    fn add_remove_replace_move_copy() {
        let doc = json!({"a": {"b": [1, 2]}, "c": "x"});
        let out = patch(
            doc,
            json!([
                {"op": "add", "path": "/a/b/-", "value": 3},
                {"op": "add", "path": "/a/b/0", "value": 0},
                {"op": "remove", "path": "/a/b/1"},
                {"op": "replace", "path": "/c", "value": "y"},
                {"op": "copy", "from": "/c", "path": "/d"},
                {"op": "move", "from": "/a/b", "path": "/e"},
                {"op": "add", "path": "/a/new", "value": {"k": 1}}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"a": {"new": {"k": 1}}, "c": "y", "d": "y", "e": [0, 2, 3]})
        );
    }

    #[test]
    fn pointer_escapes() {
        let doc = json!({"metadata": {"annotations": {"a/b": "1", "m~n": "2"}}});
        let out = patch(
            doc,
            json!([
                {"op": "test", "path": "/metadata/annotations/a~1b", "value": "1"},
                {"op": "replace", "path": "/metadata/annotations/m~0n", "value": "3"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({"metadata": {"annotations": {"a/b": "1", "m~n": "3"}}})
        );
        assert_eq!(
            patch(
                json!({}),
                json!([{"op": "test", "path": "/a~2", "value": 1}])
            ),
            Err(JsonPatchError::InvalidPointer("/a~2".into()))
        );
    }

    /// kube-rs `finalizer()` adds its finalizer to an object without finalizers like this.
    #[test]
    fn finalizer_helper_add_on_object_without_finalizers() {
        let doc = json!({"metadata": {"name": "x"}});
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": ["example.com/cleanup"]}
        ]);
        let out = patch(doc, ops.clone()).unwrap();
        assert_eq!(
            out["metadata"]["finalizers"],
            json!(["example.com/cleanup"])
        );
        // A second writer that raced us fails the test: 422, and kube-rs retries.
        let err = patch(out, ops).unwrap_err();
        assert_eq!(
            err,
            JsonPatchError::TestFailed {
                path: "/metadata/finalizers".into()
            }
        );
        assert_eq!(err.http_status(), 422);
    }

    /// ...and removes it like this.
    #[test]
    fn finalizer_helper_remove() {
        let doc = json!({"metadata": {"finalizers": ["a", "example.com/cleanup"]}});
        let ops = json!([
            {"op": "test", "path": "/metadata/finalizers/1", "value": "example.com/cleanup"},
            {"op": "remove", "path": "/metadata/finalizers/1"}
        ]);
        assert_eq!(
            patch(doc, ops).unwrap(),
            json!({"metadata": {"finalizers": ["a"]}})
        );
    }

    #[test]
    fn errors_are_typed_with_upstream_status() {
        let doc = json!({"a": [1]});
        let cases = [
            (json!({"op": "add"}), 400),
            (json!([{"op": "remove", "path": "/nope"}]), 422),
            (json!([{"op": "replace", "path": "/nope", "value": 1}]), 422),
            (json!([{"op": "add", "path": "/x/y", "value": 1}]), 422),
            (json!([{"op": "add", "path": "/a/5", "value": 1}]), 422),
            (json!([{"op": "remove", "path": "/a/01"}]), 422),
            (json!([{"op": "frob", "path": "/a"}]), 422),
            (json!([{"op": "add", "path": "/a"}]), 422),
            (json!([{"op": "move", "from": "/a", "path": "/a/0"}]), 422),
            (json!([{"op": "test", "path": "/a/0", "value": 2}]), 422),
            (json!([1]), 400),
        ];
        for (ops, status) in cases {
            let err = patch(doc.clone(), ops.clone()).unwrap_err();
            assert_eq!(err.http_status(), status, "{ops} gave {err}");
        }
        assert!(matches!(
            patch(doc.clone(), json!([{"op": "remove", "path": "/nope"}])),
            Err(JsonPatchError::PathNotFound { .. })
        ));
        let many = Value::Array(vec![json!({"op": "test", "path": ""}); MAX_OPERATIONS + 1]);
        assert_eq!(patch(doc, many).unwrap_err().http_status(), 413);
    }

    #[test]
    fn failed_patch_leaves_input_untouched_and_root_ops_work() {
        let doc = json!({"a": 1});
        assert!(patch(doc.clone(), json!([{"op": "add", "path": "/b", "value": 2}, {"op": "test", "path": "/a", "value": 9}])).is_err());
        assert_eq!(doc, json!({"a": 1}));
        assert_eq!(
            patch(doc, json!([{"op": "replace", "path": "", "value": [1]}])).unwrap(),
            json!([1])
        );
    }
}
