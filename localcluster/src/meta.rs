//! Object metadata rules shared by every kind: names, labels, annotations, finalizers. The
//! character rules and their messages come from `rivulet-kube-schema` (upstream's wording).

use serde_json::Value;

use crate::api::status::Cause;

const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
/// generateName prefixes are cut so that prefix + 5 random characters fit in a label.
pub const GENERATE_NAME_PREFIX_MAX: usize = 58;

fn invalid(field: &str, value: &str, problems: &[String]) -> Cause {
    Cause {
        kind: "FieldValueInvalid".into(),
        message: format!("Invalid value: {value:?}: {}", problems.join(", ")),
        field: field.into(),
    }
}

/// What a kind's names must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    /// DNS-1123 label (namespaces).
    Label,
    /// DNS-1123 subdomain (most kinds).
    Subdomain,
    /// Any path segment (RBAC kinds, whose names hold `:` as in `system:basic-user`).
    PathSegment,
}

/// Upstream's `path.IsValidPathSegmentName`.
fn path_segment(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name == "." || name == ".." {
        out.push(format!("may not be '{name}'"));
    }
    for c in ["/", "%"] {
        if name.contains(c) {
            out.push(format!("may not contain '{c}'"));
        }
    }
    out
}

/// Check the metadata of an object about to be stored, names under `rule`.
pub fn validate(meta: &Value, rule: NameRule) -> Vec<Cause> {
    let mut causes = Vec::new();
    match meta["name"].as_str() {
        Some(name) => {
            let problems = match rule {
                NameRule::Label => rivulet_kube_schema::dns1123_label(name),
                NameRule::Subdomain => rivulet_kube_schema::dns1123_subdomain(name),
                NameRule::PathSegment => path_segment(name),
            };
            if !problems.is_empty() {
                causes.push(invalid("metadata.name", name, &problems));
            }
        }
        None => causes.push(Cause {
            kind: "FieldValueRequired".into(),
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        }),
    }
    if let Some(labels) = meta.get("labels").filter(|v| !v.is_null()) {
        let Some(map) = labels.as_object() else {
            return vec![invalid(
                "metadata.labels",
                &labels.to_string(),
                &["must be an object".into()],
            )];
        };
        for (k, v) in map {
            let problems = rivulet_kube_schema::qualified_name(k);
            if !problems.is_empty() {
                causes.push(invalid("metadata.labels", k, &problems));
            }
            match v.as_str() {
                Some(s) => {
                    let problems = rivulet_kube_schema::label_value(s);
                    if !problems.is_empty() {
                        causes.push(invalid("metadata.labels", s, &problems));
                    }
                }
                None => causes.push(invalid(
                    "metadata.labels",
                    &v.to_string(),
                    &["must be a string".into()],
                )),
            }
        }
    }
    if let Some(annotations) = meta.get("annotations").filter(|v| !v.is_null()) {
        let Some(map) = annotations.as_object() else {
            return vec![invalid(
                "metadata.annotations",
                &annotations.to_string(),
                &["must be an object".into()],
            )];
        };
        let mut total = 0;
        for (k, v) in map {
            total += k.len() + v.as_str().map_or(0, str::len);
            let problems = rivulet_kube_schema::qualified_name(&k.to_lowercase());
            if !problems.is_empty() {
                causes.push(invalid("metadata.annotations", k, &problems));
            }
            if !v.is_string() {
                causes.push(invalid(
                    "metadata.annotations",
                    &v.to_string(),
                    &["must be a string".into()],
                ));
            }
        }
        if total > ANNOTATIONS_MAX_BYTES {
            causes.push(Cause {
                kind: "FieldValueTooLong".into(),
                message: "Too long: must have at most 262144 bytes".into(),
                field: "metadata.annotations".into(),
            });
        }
    }
    if let Some(finalizers) = meta.get("finalizers").filter(|v| !v.is_null()) {
        for f in finalizers.as_array().into_iter().flatten() {
            let name = f.as_str().unwrap_or_default();
            let problems = rivulet_kube_schema::qualified_name(name);
            if !problems.is_empty() {
                causes.push(invalid("metadata.finalizers", name, &problems));
            }
        }
        if !finalizers.is_array() {
            causes.push(invalid(
                "metadata.finalizers",
                &finalizers.to_string(),
                &["must be a list".into()],
            ));
        }
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names() {
        assert!(validate(&json!({"name": "a.b-c"}), NameRule::Subdomain).is_empty());
        assert_eq!(
            validate(&json!({"name": "Upper"}), NameRule::Subdomain).len(),
            1
        );
        assert_eq!(validate(&json!({"name": "a.b"}), NameRule::Label).len(), 1);
        assert!(validate(&json!({"name": "system:basic-user"}), NameRule::PathSegment).is_empty());
        assert_eq!(
            validate(&json!({"name": "a/b"}), NameRule::PathSegment).len(),
            1
        );
        assert_eq!(
            validate(&json!({}), NameRule::Subdomain)[0].kind,
            "FieldValueRequired"
        );
    }

    #[test]
    fn labels_annotations_finalizers() {
        assert!(validate(&json!({"name": "x", "labels": {"app.kubernetes.io/name": "web"}, "finalizers": ["example.com/f"]}), NameRule::Subdomain).is_empty());
        assert_eq!(
            validate(
                &json!({"name": "x", "labels": {"bad key!": "v"}}),
                NameRule::Subdomain
            )
            .len(),
            1
        );
        assert_eq!(
            validate(
                &json!({"name": "x", "labels": {"k": "bad value!"}}),
                NameRule::Subdomain
            )
            .len(),
            1
        );
        assert_eq!(
            validate(
                &json!({"name": "x", "annotations": {"k": 3}}),
                NameRule::Subdomain
            )
            .len(),
            1
        );
        assert_eq!(
            validate(
                &json!({"name": "x", "finalizers": ["bad finalizer"]}),
                NameRule::Subdomain
            )
            .len(),
            1
        );
    }
}
