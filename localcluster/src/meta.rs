//! Object metadata rules shared by every kind: names, generateName, labels, annotations.

use serde_json::Value;

use crate::api::status::Cause;

const DNS1123_LABEL_MAX: usize = 63;
const DNS1123_SUBDOMAIN_MAX: usize = 253;
const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;
/// generateName prefixes are cut so that prefix + 5 random characters fit in a label.
pub const GENERATE_NAME_PREFIX_MAX: usize = 58;

fn is_alnum_lower(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= DNS1123_LABEL_MAX
        && s.chars().all(|c| is_alnum_lower(c) || c == '-')
        && s.starts_with(is_alnum_lower)
        && s.ends_with(is_alnum_lower)
}

pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= DNS1123_SUBDOMAIN_MAX && s.split('.').all(is_dns1123_label)
}

/// The `name` part of a qualified name (label keys, label values when non-empty).
fn is_qualified_part(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= 63
        && s.chars().all(|c| alnum(c) || "-_.".contains(c))
        && s.starts_with(alnum)
        && s.ends_with(alnum)
}

pub fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns1123_subdomain(prefix) && is_qualified_part(name),
        None => is_qualified_part(key),
    }
}

pub fn is_label_value(v: &str) -> bool {
    v.is_empty() || is_qualified_part(v)
}

fn cause(field: &str, message: String) -> Cause {
    Cause {
        kind: "FieldValueInvalid".into(),
        message,
        field: field.into(),
    }
}

/// Check the metadata of an object about to be stored. `label_names` selects DNS-1123 label
/// rules for the name (namespaces) instead of subdomain rules.
pub fn validate(meta: &Value, label_names: bool) -> Vec<Cause> {
    let mut causes = Vec::new();
    match meta["name"].as_str() {
        Some(name) => {
            let ok = if label_names {
                is_dns1123_label(name)
            } else {
                is_dns1123_subdomain(name)
            };
            if !ok {
                let rule = if label_names {
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character"
                } else {
                    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
                };
                causes.push(cause(
                    "metadata.name",
                    format!("Invalid value: \"{name}\": {rule}"),
                ));
            }
        }
        None => causes.push(Cause {
            kind: "FieldValueRequired".into(),
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        }),
    }
    if let Some(labels) = meta.get("labels").filter(|v| !v.is_null()) {
        match labels.as_object() {
            Some(map) => {
                for (k, v) in map {
                    if !is_qualified_name(k) {
                        causes.push(cause("metadata.labels", format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
                    }
                    match v.as_str() {
                        Some(s) if is_label_value(s) => {}
                        _ => causes.push(cause("metadata.labels", format!("Invalid value: {v}: a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"))),
                    }
                }
            }
            None => causes.push(cause(
                "metadata.labels",
                "Invalid value: must be an object".into(),
            )),
        }
    }
    if let Some(annotations) = meta.get("annotations").filter(|v| !v.is_null()) {
        match annotations.as_object() {
            Some(map) => {
                let mut total = 0;
                for (k, v) in map {
                    total += k.len() + v.as_str().map_or(0, str::len);
                    if !is_qualified_name(&k.to_lowercase()) {
                        causes.push(cause("metadata.annotations", format!("Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character")));
                    }
                    if !v.is_string() {
                        causes.push(cause(
                            "metadata.annotations",
                            format!("Invalid value: {v}: must be a string"),
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
            None => causes.push(cause(
                "metadata.annotations",
                "Invalid value: must be an object".into(),
            )),
        }
    }
    if let Some(finalizers) = meta.get("finalizers").filter(|v| !v.is_null()) {
        let ok = finalizers
            .as_array()
            .is_some_and(|a| a.iter().all(|f| f.as_str().is_some_and(is_qualified_name)));
        if !ok {
            causes.push(cause(
                "metadata.finalizers",
                "Invalid value: each finalizer must be a qualified name".into(),
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
        assert!(is_dns1123_subdomain("a.b-c"));
        assert!(!is_dns1123_subdomain("Upper"));
        assert!(!is_dns1123_subdomain("-x"));
        assert!(!is_dns1123_label("a.b"));
    }

    #[test]
    fn labels_and_annotations() {
        assert!(
            validate(
                &json!({"name": "x", "labels": {"app.kubernetes.io/name": "web"}}),
                false
            )
            .is_empty()
        );
        assert_eq!(
            validate(&json!({"name": "x", "labels": {"bad key!": "v"}}), false).len(),
            1
        );
        assert_eq!(
            validate(&json!({"name": "x", "labels": {"k": "bad value!"}}), false).len(),
            1
        );
        assert_eq!(
            validate(&json!({"name": "x", "annotations": {"k": 3}}), false).len(),
            1
        );
    }
}
