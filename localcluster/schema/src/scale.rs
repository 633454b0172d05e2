//! The `scale` subresource of a CRD version: reading and writing the replica and selector
//! fields it names, and upstream's checks of those fields on every write of the custom resource
//! (`ValidateScaleSpec`/`ValidateScaleStatus`: non-negative int32 replicas, a string selector).

use serde_json::{Map, Value};

use crate::error::{FieldError, go_value};

/// `subresources.scale` of a CRD version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleSubresource {
    /// `specReplicasPath`, e.g. `.spec.replicas`.
    pub spec_replicas_path: String,
    /// `statusReplicasPath`, e.g. `.status.replicas`.
    pub status_replicas_path: String,
    /// `labelSelectorPath`, e.g. `.status.selector`.
    pub label_selector_path: Option<String>,
}

/// The values behind a scale subresource (missing fields read as zero or empty, as upstream).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScaleValues {
    /// Desired replicas.
    pub spec_replicas: i64,
    /// Observed replicas.
    pub status_replicas: i64,
    /// The label selector in its string form.
    pub selector: String,
}

/// Why a scale write failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaleError {
    /// A field on the way to the replicas path holds something other than an object.
    #[error("value cannot be set because {path} is not a map[string]interface{{}}")]
    NotAnObject {
        /// The path of the offending field, e.g. `.spec`.
        path: String,
    },
}

/// Go's `%T` of a decoded JSON value.
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// Go's `%v` of a decoded JSON value.
fn go_plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".to_owned(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
        other => go_value(other),
    }
}

fn fields(path: &str) -> Vec<&str> {
    path.trim_start_matches('.').split('.').collect()
}

/// Upstream `unstructured.NestedFieldNoCopy` + type check: `Ok(None)` when missing.
fn nested<'a>(obj: &'a Value, path: &str, expected: &str) -> Result<Option<&'a Value>, String> {
    let parts = fields(path);
    let mut cur = obj;
    for (i, part) in parts.iter().enumerate() {
        if cur.is_null() {
            return Ok(None);
        }
        let Some(map) = cur.as_object() else {
            let so_far = format!(".{}", parts[..=i].join("."));
            return Err(format!(
                "{so_far} accessor error: {} is of the type {}, expected map[string]interface{{}}",
                go_plain(cur),
                go_type(cur)
            ));
        };
        match map.get(*part) {
            Some(next) => cur = next,
            None => return Ok(None),
        }
    }
    let ok = match expected {
        "int64" => cur.as_i64().is_some(),
        _ => cur.is_string(),
    };
    if ok {
        Ok(Some(cur))
    } else {
        Err(format!(
            ".{} accessor error: {} is of the type {}, expected {expected}",
            parts.join("."),
            go_plain(cur),
            go_type(cur)
        ))
    }
}

impl ScaleSubresource {
    /// Reads `subresources.scale` of a CRD version object, if it declares one.
    pub fn from_version(version: &Value) -> Option<Self> {
        let scale = version
            .get("subresources")?
            .get("scale")
            .filter(|s| s.is_object())?;
        let text = |k: &str| scale.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(Self {
            spec_replicas_path: text("specReplicasPath").unwrap_or_default(),
            status_replicas_path: text("statusReplicasPath").unwrap_or_default(),
            label_selector_path: text("labelSelectorPath").filter(|p| !p.is_empty()),
        })
    }

    fn replicas_errors(path: &str, obj: &Value, errs: &mut Vec<FieldError>) {
        match nested(obj, path, "int64") {
            Err(e) => errs.push(FieldError::invalid(path, Value::from(0), e)),
            Ok(Some(v)) => {
                let n = v.as_i64().unwrap_or(0);
                if n < 0 {
                    errs.push(FieldError::invalid(
                        path,
                        Value::from(n),
                        "should be a non-negative integer",
                    ));
                } else if n > i64::from(i32::MAX) {
                    errs.push(FieldError::invalid(
                        path,
                        Value::from(n),
                        format!("should be less than or equal to {}", i32::MAX),
                    ));
                }
            }
            Ok(None) => {}
        }
    }

    /// Upstream `ValidateScaleSpec`: the desired replicas are a non-negative int32.
    pub fn validate_spec(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        Self::replicas_errors(&self.spec_replicas_path, obj, &mut errs);
        errs
    }

    /// Upstream `ValidateScaleStatus`: observed replicas a non-negative int32, selector a string.
    pub fn validate_status(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        Self::replicas_errors(&self.status_replicas_path, obj, &mut errs);
        if let Some(p) = &self.label_selector_path
            && let Err(e) = nested(obj, p, "string")
        {
            errs.push(FieldError::invalid(p, Value::from(""), e));
        }
        errs
    }

    /// The values behind the scale subresource (what `GET .../scale` reports).
    pub fn read(&self, obj: &Value) -> ScaleValues {
        let int = |p: &str| {
            nested(obj, p, "int64")
                .ok()
                .flatten()
                .and_then(Value::as_i64)
                .unwrap_or(0)
        };
        ScaleValues {
            spec_replicas: int(&self.spec_replicas_path),
            status_replicas: int(&self.status_replicas_path),
            selector: self
                .label_selector_path
                .as_deref()
                .and_then(|p| nested(obj, p, "string").ok().flatten())
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        }
    }

    /// Sets the desired replicas (what `PUT .../scale` writes), creating missing objects on the way.
    pub fn set_spec_replicas(&self, obj: &mut Value, replicas: i64) -> Result<(), ScaleError> {
        let parts = fields(&self.spec_replicas_path);
        let mut cur = obj;
        for (i, part) in parts.iter().enumerate() {
            if cur.is_null() {
                *cur = Value::Object(Map::new());
            }
            let Some(map) = cur.as_object_mut() else {
                return Err(ScaleError::NotAnObject {
                    path: format!(".{}", parts[..i].join(".")),
                });
            };
            if i + 1 == parts.len() {
                map.insert((*part).to_owned(), Value::from(replicas));
                return Ok(());
            }
            cur = map.entry((*part).to_owned()).or_insert(Value::Null);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn scale() -> ScaleSubresource {
        ScaleSubresource::from_version(&json!({"subresources": {"scale": {
            "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}}}))
        .expect("declared")
    }

    #[test]
    fn reads_and_writes_the_named_fields() {
        let s = scale();
        let mut obj =
            json!({"spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=x"}});
        assert_eq!(
            s.read(&obj),
            ScaleValues {
                spec_replicas: 3,
                status_replicas: 2,
                selector: "app=x".into()
            }
        );
        s.set_spec_replicas(&mut obj, 5).expect("writable");
        assert_eq!(obj["spec"]["replicas"], 5);
        let mut empty = json!({});
        assert_eq!(s.read(&empty), ScaleValues::default());
        s.set_spec_replicas(&mut empty, 1).expect("creates spec");
        assert_eq!(empty, json!({"spec": {"replicas": 1}}));
        let mut bad = json!({"spec": "x"});
        assert_eq!(
            s.set_spec_replicas(&mut bad, 1)
                .expect_err("spec is a string")
                .to_string(),
            "value cannot be set because .spec is not a map[string]interface{}"
        );
        assert_eq!(s.read(&bad).spec_replicas, 0);
        assert_eq!(
            s.validate_spec(&bad)[0].to_string(),
            ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: x is of the type string, expected map[string]interface{}"
        );
        assert!(ScaleSubresource::from_version(&json!({"subresources": {"status": {}}})).is_none());
    }

    #[test]
    fn validates_like_upstream() {
        let s = scale();
        assert!(
            s.validate_spec(&json!({"spec": {"replicas": 1}}))
                .is_empty()
        );
        assert!(s.validate_spec(&json!({})).is_empty());
        let msg = |errs: Vec<FieldError>| errs.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            msg(s.validate_spec(&json!({"spec": {"replicas": -1}}))),
            [".spec.replicas: Invalid value: -1: should be a non-negative integer"]
        );
        assert_eq!(
            msg(s.validate_spec(&json!({"spec": {"replicas": 3_000_000_000_i64}}))),
            [
                ".spec.replicas: Invalid value: 3000000000: should be less than or equal to 2147483647"
            ]
        );
        assert_eq!(
            msg(s.validate_spec(&json!({"spec": {"replicas": "two"}}))),
            [
                ".spec.replicas: Invalid value: 0: .spec.replicas accessor error: two is of the type string, expected int64"
            ]
        );
        assert_eq!(
            msg(s.validate_status(&json!({"status": {"replicas": 1, "selector": 7}}))),
            [
                r#".status.selector: Invalid value: "": .status.selector accessor error: 7 is of the type int64, expected string"#
            ]
        );
    }
}
