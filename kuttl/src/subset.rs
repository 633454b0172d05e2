//! KUTTL's subset matching (`IsSubset` in kudobuilder/kuttl `internal/utils/subset.go`): an
//! expected object matches a live one when every key of each expected map is present with a
//! matching value (extra live keys are ignored), lists have the **same length** and match element
//! by element in order, and scalars are equal. Numbers compare by value (`3` matches `3.0`).

use std::fmt::{self, Write as _};

use serde_json::Value;

/// The first place where an expected value is not a subset of the actual one.
#[derive(Clone, Debug, PartialEq)]
pub struct Mismatch {
    /// Path of the field, `.spec.containers[0].name` style (empty for the root).
    pub path: String,
    /// What differs.
    pub kind: MismatchKind,
}

/// How a field differs.
#[derive(Clone, Debug, PartialEq)]
pub enum MismatchKind {
    /// The expected key is absent from the live map.
    MissingKey,
    /// The lists have different lengths (KUTTL compares lists positionally).
    ListLength {
        /// Elements in the expected list.
        expected: usize,
        /// Elements in the live list.
        actual: usize,
    },
    /// Values (or their types) differ.
    Value {
        /// The expected value.
        expected: Value,
        /// The live value.
        actual: Value,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.path.is_empty() {
            "."
        } else {
            &self.path
        };
        match &self.kind {
            MismatchKind::MissingKey => write!(f, "{path}: key is missing from the live object"),
            MismatchKind::ListLength { expected, actual } => write!(
                f,
                "{path}: list length mismatch: expected {expected} element(s), actual {actual} \
                 (lists are compared element by element, in order)"
            ),
            MismatchKind::Value { expected, actual } => write!(
                f,
                "{path}: expected {}, actual {}",
                compact(expected),
                compact(actual)
            ),
        }
    }
}

/// A value as one line of JSON.
fn compact(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| format!("{value:?}"))
}

/// Whether `expected` is a subset of `actual`; `Err` carries the first difference (map keys in
/// the expected document's order).
pub fn is_subset(expected: &Value, actual: &Value) -> Result<(), Mismatch> {
    let mut path = String::new();
    check(expected, actual, &mut path)
}

fn check(expected: &Value, actual: &Value, path: &mut String) -> Result<(), Mismatch> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                match have.get(key) {
                    None => {
                        return Err(Mismatch {
                            path: path.clone(),
                            kind: MismatchKind::MissingKey,
                        });
                    }
                    Some(live) => check(value, live, path)?,
                }
                path.truncate(len);
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Err(Mismatch {
                    path: path.clone(),
                    kind: MismatchKind::ListLength {
                        expected: want.len(),
                        actual: have.len(),
                    },
                });
            }
            for (index, (value, live)) in want.iter().zip(have).enumerate() {
                let len = path.len();
                let _ = write!(path, "[{index}]");
                check(value, live, path)?;
                path.truncate(len);
            }
            Ok(())
        }
        (Value::Number(a), Value::Number(b)) if a == b || a.as_f64() == b.as_f64() => Ok(()),
        (a, b) if a == b => Ok(()),
        _ => Err(Mismatch {
            path: path.clone(),
            kind: MismatchKind::Value {
                expected: expected.clone(),
                actual: actual.clone(),
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_are_partial() {
        let actual = json!({"a": 1, "b": {"c": "x", "d": [1, 2]}, "e": true});
        assert_eq!(is_subset(&json!({"b": {"c": "x"}}), &actual), Ok(()));
        assert_eq!(is_subset(&json!({}), &actual), Ok(()));
    }

    #[test]
    fn a_missing_key_names_its_path() {
        let err = is_subset(&json!({"spec": {"poolsize": 3}}), &json!({"spec": {}})).unwrap_err();
        assert_eq!(err.path, ".spec.poolsize");
        assert_eq!(err.kind, MismatchKind::MissingKey);
        assert_eq!(
            err.to_string(),
            ".spec.poolsize: key is missing from the live object"
        );
    }

    #[test]
    fn a_wrong_scalar_shows_expected_and_actual() {
        let err = is_subset(
            &json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            &json!({"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "X"}]}}),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#".status.conditions[0].status: expected "True", actual "False""#
        );
    }

    #[test]
    fn lists_match_positionally_with_equal_length() {
        let actual = json!({"l": [{"n": "a", "x": 1}, {"n": "b"}]});
        assert_eq!(
            is_subset(&json!({"l": [{"n": "a"}, {"n": "b"}]}), &actual),
            Ok(())
        );
        // Same elements, other order: KUTTL fails.
        let err = is_subset(&json!({"l": [{"n": "b"}, {"n": "a"}]}), &actual).unwrap_err();
        assert_eq!(err.path, ".l[0].n");
        // A shorter expected list fails too (KUTTL compares lengths).
        let err = is_subset(&json!({"l": [{"n": "a"}]}), &actual).unwrap_err();
        assert_eq!(
            err.kind,
            MismatchKind::ListLength {
                expected: 1,
                actual: 2
            }
        );
        assert!(
            err.to_string()
                .starts_with(".l: list length mismatch: expected 1")
        );
    }

    #[test]
    fn types_must_agree_and_numbers_compare_by_value() {
        assert!(is_subset(&json!({"a": "1"}), &json!({"a": 1})).is_err());
        assert!(is_subset(&json!({"a": {"b": 1}}), &json!({"a": [1]})).is_err());
        assert_eq!(is_subset(&json!({"a": 3}), &json!({"a": 3.0})), Ok(()));
        assert!(is_subset(&json!({"a": null}), &json!({"a": 0})).is_err());
        let err = is_subset(&json!("x"), &json!("y")).unwrap_err();
        assert_eq!(err.to_string(), r#".: expected "x", actual "y""#);
    }
}
