//! Checks of a whole `apiextensions.k8s.io/v1` CustomResourceDefinition, as a kube-apiserver
//! (v1.32) validates one on create: name = `<plural>.<group>`, group, scope, names, versions
//! (unique, exactly one storage, schemas present and structural), subresources, printer
//! columns, selectable fields, conversion, `preserveUnknownFields`.
//!
//! Error paths follow upstream, which validates the internal form of the CRD: when every version
//! carries the same schema (always so with one version) the schema is checked at
//! `spec.validation.openAPIV3Schema`, otherwise at `spec.versions[i].schema.openAPIV3Schema`; the
//! same holds for `spec.subresources` and `spec.additionalPrinterColumns`.
//!
//! [`lint_crd`] adds checks upstream does not make but which catch CRDs that would misbehave
//! (status or scale paths missing from the schema, columns pointing nowhere).

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::FieldError;
use crate::jsonpath::JsonPath;
use crate::names::{dns1035_label, dns1123_subdomain};
use crate::path::FieldPath;
use crate::schema::{AdditionalProperties, Schema};
use crate::structural::{CheckOptions, check_structural_with};

const PRINTER_COLUMN_TYPES: &str = "boolean,date,integer,number,string";
const PRINTER_COLUMN_FORMATS: &str = "byte,date,date-time,double,float,int32,int64,password";
const MAX_SELECTABLE_FIELDS: usize = 8;

/// Every error a kube-apiserver reports when this CustomResourceDefinition is created.
pub fn check_crd(crd: &Value) -> Vec<FieldError> {
    check_crd_with(crd, false)
}

/// As [`check_crd`]; `strict` also applies the documented-only schema rules (see
/// [`CheckOptions::strict`]).
pub fn check_crd_with(crd: &Value, strict: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let group = str_at(spec, "group");
    let names = spec.get("names").unwrap_or(&Value::Null);
    let plural = str_at(names, "plural");
    check_metadata_name(crd, plural, group, &mut errs);

    let sp = FieldPath::new("spec");
    check_group(group, &sp, &mut errs);
    match str_at(spec, "scope") {
        "" => errs.push(FieldError::required(sp.child("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            sp.child("scope"),
            Value::from(other),
            &["Cluster".to_owned(), "Namespaced".to_owned()],
        )),
    }
    if spec.get("preserveUnknownFields").and_then(Value::as_bool) == Some(true) {
        errs.push(FieldError::invalid(
            sp.child("preserveUnknownFields"),
            Value::Bool(true),
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    check_versions(spec, &sp, strict, &mut errs);
    check_names(names, &sp.child("names"), &mut errs);
    check_conversion(spec.get("conversion"), &sp.child("conversion"), &mut errs);
    errs
}

/// Every error a kube-apiserver reports when `old` is updated to `new`: the create rules on
/// `new`, then `spec.group` and `spec.names.plural` are immutable, `spec.scope` and
/// `spec.names.kind` too once `old` is `Established`, and every version in `old`'s
/// `status.storedVersions` must stay in `spec.versions`. Upstream relaxes some create rules for
/// CRDs that already broke them before the update; this does not.
pub fn check_crd_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = check_crd(new);
    let (ns, os) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let established = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c["type"] == "Established" && c["status"] == "True")
        });
    let mut immutable = vec![
        ("/group", "spec.group"),
        ("/names/plural", "spec.names.plural"),
    ];
    if established {
        immutable.extend([("/scope", "spec.scope"), ("/names/kind", "spec.names.kind")]);
    }
    for (pointer, path) in immutable {
        let (n, o) = (
            ns.pointer(pointer).unwrap_or(&Value::Null),
            os.pointer(pointer).unwrap_or(&Value::Null),
        );
        if n != o {
            errs.push(FieldError::invalid(
                FieldPath::new(path),
                n.clone(),
                "field is immutable",
            ));
        }
    }
    let names: BTreeSet<&str> = ns
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| str_at(v, "name"))
        .collect();
    let stored = old
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for (i, v) in stored.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        if !names.contains(v) {
            errs.push(FieldError::invalid(
                FieldPath::new("status.storedVersions").index(i),
                Value::from(v),
                format!(
                    "missing from spec.versions; {v} was previously a storage version, and must remain in \
                     spec.versions until a storage migration ensures no data remains persisted in {v} and \
                     removes {v} from status.storedVersions"
                ),
            ));
        }
    }
    errs
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn check_metadata_name(crd: &Value, plural: &str, group: &str, errs: &mut Vec<FieldError>) {
    let meta = crd.get("metadata").unwrap_or(&Value::Null);
    let name = str_at(meta, "name");
    let path = FieldPath::new("metadata").child("name");
    if name.is_empty() {
        if str_at(meta, "generateName").is_empty() {
            errs.push(FieldError::required(
                path,
                "name or generateName is required",
            ));
        }
        return;
    }
    let mut problems = dns1123_subdomain(name);
    if name != format!("{plural}.{group}") {
        problems.push(r#"must be spec.names.plural+"."+spec.group"#.to_owned());
    }
    for p in problems {
        errs.push(FieldError::invalid(&path, Value::from(name), p));
    }
}

fn check_group(group: &str, sp: &FieldPath, errs: &mut Vec<FieldError>) {
    let path = sp.child("group");
    if group.is_empty() {
        errs.push(FieldError::required(path, ""));
    } else if let problems @ [_, ..] = dns1123_subdomain(group).as_slice() {
        errs.push(FieldError::invalid(
            path,
            Value::from(group),
            problems.join(","),
        ));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            path,
            Value::from(group),
            "should be a domain with at least one dot",
        ));
    }
}

/// Whether every version has the same (present) value under `key`; upstream then validates it
/// once at the top level. `non_empty_array` mirrors upstream's columns rule (empty lists differ).
fn identical_across_versions(versions: &[Value], key: &str, non_empty_array: bool) -> bool {
    let Some(first) = versions.first().and_then(|v| v.get(key)) else {
        return false;
    };
    versions.iter().all(|v| {
        v.get(key).is_some_and(|x| {
            !x.is_null()
                && x == first
                && (!non_empty_array || x.as_array().is_some_and(|a| !a.is_empty()))
        })
    })
}

fn has_status(subresources: Option<&Value>) -> bool {
    subresources
        .and_then(|s| s.get("status"))
        .is_some_and(|s| !s.is_null())
}

fn check_versions(spec: &Value, sp: &FieldPath, strict: bool, errs: &mut Vec<FieldError>) {
    let versions: &[Value] = spec
        .get("versions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    let vp = sp.child("versions");
    let shared_schema = identical_across_versions(versions, "schema", false);
    let shared_subresources = identical_across_versions(versions, "subresources", false);
    let shared_columns = identical_across_versions(versions, "additionalPrinterColumns", true);
    let any_status = versions.iter().any(|v| has_status(v.get("subresources")));

    let mut storage = 0;
    let mut seen = BTreeSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let p = vp.index(i);
        let name = str_at(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        unique &= seen.insert(name);
        let problems = dns1035_label(name);
        if !problems.is_empty() {
            errs.push(FieldError::invalid(
                p.child("name"),
                Value::from(name),
                problems.join(","),
            ));
        }
        check_deprecation(v, &p, errs);

        let schema = v
            .get("schema")
            .and_then(|s| s.get("openAPIV3Schema"))
            .filter(|s| !s.is_null());
        let status = if shared_schema {
            any_status
        } else {
            has_status(v.get("subresources"))
        };
        match schema {
            None => errs.push(FieldError::required(
                p.child("schema").child("openAPIV3Schema"),
                "schemas are required",
            )),
            Some(_) if shared_schema && i > 0 => {}
            Some(s) => {
                let at = if shared_schema {
                    sp.child("validation").child("openAPIV3Schema")
                } else {
                    p.child("schema").child("openAPIV3Schema")
                };
                errs.extend(check_structural_with(
                    s,
                    &at,
                    CheckOptions {
                        status_subresource: status,
                        strict,
                    },
                ));
            }
        }
        if !(shared_subresources && i > 0) {
            let at = if shared_subresources {
                sp.child("subresources")
            } else {
                p.child("subresources")
            };
            check_subresources(v.get("subresources"), &at, errs);
        }
        if !(shared_columns && i > 0) {
            let at = if shared_columns {
                sp.child("additionalPrinterColumns")
            } else {
                p.child("additionalPrinterColumns")
            };
            for (j, col) in v
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                check_column(col, &at.index(j), errs);
            }
        }
        check_selectable_fields(v, schema, &p, errs);
    }
    if !unique {
        errs.push(FieldError::invalid(
            &vp,
            Value::from(versions.to_vec()),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        errs.push(FieldError::invalid(
            &vp,
            Value::from(versions.to_vec()),
            "must have exactly one version marked as storage version",
        ));
    }
}

fn check_deprecation(v: &Value, p: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(warning) = v.get("deprecationWarning").and_then(Value::as_str) else {
        return;
    };
    let deprecated = v.get("deprecated").and_then(Value::as_bool) == Some(true);
    let path = p.child("deprecationWarning");
    let mut problems = Vec::new();
    if deprecated {
        if warning.len() > 256 {
            problems.push("must be <= 256 characters long".to_owned());
        }
        if warning.is_empty() {
            problems.push("must not be an empty string".to_owned());
        }
        if let Some((i, _)) = warning.char_indices().find(|(_, c)| c.is_control()) {
            problems.push(format!(
                "must only contain printable UTF-8 characters; control character found at index {i}"
            ));
        }
    } else {
        problems.push("can only be set for deprecated versions".to_owned());
    }
    for problem in problems {
        errs.push(FieldError::invalid(&path, Value::from(warning), problem));
    }
}

/// Upstream `validateSimpleJSONPath`.
fn simple_json_path(s: &str, path: &FieldPath, errs: &mut Vec<FieldError>) -> bool {
    let problem = if s.is_empty() {
        "must not be empty"
    } else if !s.starts_with('.') {
        "must be a simple json path starting with ."
    } else {
        return true;
    };
    errs.push(FieldError::invalid(path, Value::from(s), problem));
    false
}

fn check_subresources(sub: Option<&Value>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(scale) = sub.and_then(|s| s.get("scale")).filter(|s| !s.is_null()) else {
        return;
    };
    for (key, prefixes, words) in [
        (
            "specReplicasPath",
            &[".spec."][..],
            "should be a json path under .spec",
        ),
        (
            "statusReplicasPath",
            &[".status."][..],
            "should be a json path under .status",
        ),
    ] {
        let p = path.child(&format!("scale.{key}"));
        let value = str_at(scale, key);
        if value.is_empty() {
            errs.push(FieldError::required(p, ""));
        } else if simple_json_path(value, &p, errs)
            && !prefixes.iter().any(|pre| value.starts_with(pre))
        {
            errs.push(FieldError::invalid(p, Value::from(value), words));
        }
    }
    let selector = str_at(scale, "labelSelectorPath");
    let p = path.child("scale.labelSelectorPath");
    if !selector.is_empty()
        && simple_json_path(selector, &p, errs)
        && !selector.starts_with(".spec.")
        && !selector.starts_with(".status.")
    {
        errs.push(FieldError::invalid(
            p,
            Value::from(selector),
            "should be a json path under either .spec or .status",
        ));
    }
}

fn check_column(col: &Value, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if str_at(col, "name").is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    }
    let must_be = format!("must be one of {PRINTER_COLUMN_TYPES}");
    match str_at(col, "type") {
        "" => errs.push(FieldError::required(path.child("type"), must_be)),
        t if !PRINTER_COLUMN_TYPES.split(',').any(|x| x == t) => {
            errs.push(FieldError::invalid(
                path.child("type"),
                Value::from(t),
                must_be,
            ));
        }
        _ => {}
    }
    let format = str_at(col, "format");
    if !format.is_empty() && !PRINTER_COLUMN_FORMATS.split(',').any(|x| x == format) {
        errs.push(FieldError::invalid(
            path.child("format"),
            Value::from(format),
            format!("must be one of {PRINTER_COLUMN_FORMATS}"),
        ));
    }
    let json_path = str_at(col, "jsonPath");
    if json_path.is_empty() {
        errs.push(FieldError::required(path.child("JSONPath"), ""));
    } else {
        simple_json_path(json_path, &path.child("JSONPath"), errs);
    }
}

/// The schema node a dotted path (`.spec.a.b`) leads to, if the schema declares it.
fn resolve_dotted<'a>(root: &'a Schema, dotted: &str) -> Option<&'a Schema> {
    let mut node = root;
    for part in dotted.trim_start_matches('.').split('.') {
        node = node.properties.get(part).or_else(|| {
            node.additional_properties
                .as_ref()
                .and_then(AdditionalProperties::schema)
        })?;
    }
    Some(node)
}

fn parse_quietly(schema: &Value) -> Schema {
    Schema::parse(schema, &FieldPath::root(), &mut Vec::new())
}

fn check_selectable_fields(
    v: &Value,
    schema: Option<&Value>,
    p: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let Some(fields) = v
        .get("selectableFields")
        .and_then(Value::as_array)
        .filter(|f| !f.is_empty())
    else {
        return;
    };
    let path = p.child("selectableFields");
    let Some(schema) = schema else {
        errs.push(FieldError::invalid(
            path,
            Value::from(""),
            "selectableFields may only be set when version.schema.openAPIV3Schema is not included",
        ));
        return;
    };
    let root = parse_quietly(schema);
    let mut unique = BTreeSet::new();
    for (i, f) in fields.iter().enumerate() {
        let fp = path.index(i).child("jsonPath");
        let json_path = str_at(f, "jsonPath");
        if json_path.is_empty() {
            errs.push(FieldError::required(fp, ""));
            continue;
        }
        let Some(target) = resolve_dotted(&root, json_path) else {
            errs.push(FieldError::invalid(
                fp,
                Value::from(json_path),
                "is an invalid path: does not refer to a valid field",
            ));
            continue;
        };
        if json_path.trim_start_matches('.').split('.').next() == Some("metadata") {
            errs.push(FieldError::invalid(
                &fp,
                Value::from(json_path),
                "must not point to fields in metadata",
            ));
        }
        if !matches!(target.type_.as_str(), "string" | "boolean" | "integer") {
            errs.push(FieldError::invalid(
                &fp,
                Value::from(json_path),
                "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed.",
            ));
        }
        if !unique.insert(json_path.trim_start_matches('.').to_owned()) {
            errs.push(FieldError::duplicate(&fp, Value::from(json_path)));
        }
    }
    if unique.len() > MAX_SELECTABLE_FIELDS {
        let n = i64::try_from(unique.len()).unwrap_or(i64::MAX);
        errs.push(FieldError::too_many(
            path,
            n,
            i64::try_from(MAX_SELECTABLE_FIELDS).unwrap_or(8),
        ));
    }
}

fn check_names(names: &Value, np: &FieldPath, errs: &mut Vec<FieldError>) {
    let kind = str_at(names, "kind");
    // v1 defaulting fills singular and listKind before validation.
    let singular = match str_at(names, "singular") {
        "" => kind.to_lowercase(),
        s => s.to_owned(),
    };
    let list_kind = match str_at(names, "listKind") {
        "" if !kind.is_empty() => format!("{kind}List"),
        s => s.to_owned(),
    };
    let plural = str_at(names, "plural");
    for (key, value) in [
        ("plural", plural),
        ("singular", singular.as_str()),
        ("kind", kind),
        ("listKind", list_kind.as_str()),
    ] {
        if value.is_empty() {
            errs.push(FieldError::required(np.child(key), ""));
        }
    }
    let label = |key: &str, value: &str, mixed_case: bool, errs: &mut Vec<FieldError>| {
        if value.is_empty() {
            return;
        }
        let problems = dns1035_label(&if mixed_case {
            value.to_lowercase()
        } else {
            value.to_owned()
        });
        if !problems.is_empty() {
            let prefix = if mixed_case {
                "may have mixed case, but should otherwise match: "
            } else {
                ""
            };
            errs.push(FieldError::invalid(
                np.child(key),
                Value::from(value),
                format!("{prefix}{}", problems.join(",")),
            ));
        }
    };
    label("plural", plural, false, errs);
    label("singular", &singular, false, errs);
    label("kind", kind, true, errs);
    label("listKind", &list_kind, true, errs);
    for key in ["shortNames", "categories"] {
        for (i, item) in names
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let s = item.as_str().unwrap_or("");
            let problems = dns1035_label(s);
            if !problems.is_empty() {
                errs.push(FieldError::invalid(
                    np.child(key).index(i),
                    Value::from(s),
                    problems.join(","),
                ));
            }
        }
    }
    if !kind.is_empty() && kind == list_kind {
        errs.push(FieldError::invalid(
            np.child("listKind"),
            Value::from(list_kind),
            "kind and listKind may not be the same",
        ));
    }
}

fn check_conversion(conversion: Option<&Value>, cp: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(conversion) = conversion.filter(|c| !c.is_null()) else {
        return;
    };
    let webhook = conversion.get("webhook").filter(|w| !w.is_null());
    let client_config = webhook
        .and_then(|w| w.get("clientConfig"))
        .filter(|c| !c.is_null());
    let review_versions: Vec<&str> = webhook
        .and_then(|w| w.get("conversionReviewVersions"))
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or("")).collect())
        .unwrap_or_default();
    match str_at(conversion, "strategy") {
        // v1 defaulting sets None.
        "" | "None" => {
            if client_config.is_some() {
                errs.push(FieldError::forbidden(
                    cp.child("webhookClientConfig"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
            if !review_versions.is_empty() {
                errs.push(FieldError::forbidden(
                    cp.child("conversionReviewVersions"),
                    "should not be set when strategy is not set to Webhook",
                ));
            }
        }
        "Webhook" => {
            check_webhook_client(client_config, &cp.child("webhookClientConfig"), errs);
            check_review_versions(
                &review_versions,
                &cp.child("conversionReviewVersions"),
                errs,
            );
        }
        other => errs.push(FieldError::not_supported(
            cp.child("strategy"),
            Value::from(other),
            &["None".to_owned(), "Webhook".to_owned()],
        )),
    }
}

fn check_webhook_client(config: Option<&Value>, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(config) = config else {
        errs.push(FieldError::required(
            path,
            "required when strategy is set to Webhook",
        ));
        return;
    };
    let url = config.get("url").and_then(Value::as_str);
    let service = config.get("service").filter(|s| !s.is_null());
    match (url, service) {
        (Some(url), None) => {
            if !url.starts_with("https://") {
                errs.push(FieldError::invalid(
                    path.child("url"),
                    Value::from(url),
                    "'https' is the only allowed URL scheme",
                ));
            }
            if url.contains(['?', '#']) {
                errs.push(FieldError::invalid(
                    path.child("url"),
                    Value::from(url),
                    "query and fragment parameters are not allowed",
                ));
            }
        }
        (None, Some(service)) => {
            let sp = path.child("service");
            for key in ["name", "namespace"] {
                if str_at(service, key).is_empty() {
                    errs.push(FieldError::required(
                        sp.child(key),
                        format!("service {key} is required"),
                    ));
                }
            }
            if let Some(port) = service.get("port").and_then(Value::as_i64)
                && !(1..=65535).contains(&port)
            {
                errs.push(FieldError::invalid(
                    sp.child("port"),
                    Value::from(port),
                    "port is not valid: must be between 1 and 65535, inclusive",
                ));
            }
            if let Some(p) = service.get("path").and_then(Value::as_str)
                && !p.starts_with('/')
            {
                errs.push(FieldError::invalid(
                    sp.child("path"),
                    Value::from(p),
                    "must start with a '/'",
                ));
            }
        }
        _ => errs.push(FieldError::required(
            path,
            "exactly one of url or service is required",
        )),
    }
}

fn check_review_versions(versions: &[&str], path: &FieldPath, errs: &mut Vec<FieldError>) {
    if versions.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut seen = BTreeSet::new();
    for (i, v) in versions.iter().enumerate() {
        if !seen.insert(*v) {
            errs.push(FieldError::invalid(
                path.index(i),
                Value::from(*v),
                "duplicate version",
            ));
            continue;
        }
        for problem in dns1035_label(v) {
            errs.push(FieldError::invalid(path.index(i), Value::from(*v), problem));
        }
    }
    if !versions.iter().any(|v| *v == "v1" || *v == "v1beta1") {
        errs.push(FieldError::invalid(
            path,
            Value::from(versions.to_vec()),
            "must include at least one of v1, v1beta1",
        ));
    }
}

/// Checks upstream does not make, for CRDs that a real apiserver accepts but that misbehave:
/// a `status` subresource whose schema declares no `status` (every status write is pruned),
/// scale paths not declared as integers (replicas) or strings (selector), printer columns and
/// paths that do not parse or point at undeclared fields, and CRDs with no served version.
pub fn lint_crd(crd: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = crd.get("spec").unwrap_or(&Value::Null);
    let versions: &[Value] = spec
        .get("versions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if !versions.is_empty()
        && !versions
            .iter()
            .any(|v| v.get("served").and_then(Value::as_bool) == Some(true))
    {
        errs.push(FieldError::invalid(
            FieldPath::new("spec.versions"),
            Value::from(""),
            "no version is served",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        let p = FieldPath::new("spec.versions").index(i);
        let Some(schema) = v.get("schema").and_then(|s| s.get("openAPIV3Schema")) else {
            continue;
        };
        let root = parse_quietly(schema);
        let declared = |dotted: &str| {
            resolve_dotted(&root, dotted).is_some() || declared_by_preserve(&root, dotted)
        };
        if has_status(v.get("subresources")) && !declared(".status") {
            errs.push(FieldError::invalid(
                p.child("subresources").child("status"),
                Value::from(""),
                "the status subresource is enabled but the schema declares no status: status writes are pruned",
            ));
        }
        if let Some(scale) = v.get("subresources").and_then(|s| s.get("scale")) {
            for (key, wanted) in [
                ("specReplicasPath", "integer"),
                ("statusReplicasPath", "integer"),
                ("labelSelectorPath", "string"),
            ] {
                let path = str_at(scale, key);
                if path.is_empty() {
                    continue;
                }
                let ok = resolve_dotted(&root, path)
                    .map_or_else(|| declared_by_preserve(&root, path), |s| s.type_ == wanted);
                if !ok {
                    errs.push(FieldError::invalid(
                        p.child("subresources").child("scale").child(key),
                        Value::from(path),
                        format!("should name a field of type {wanted} declared in the schema"),
                    ));
                }
            }
        }
        for (j, col) in v
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let json_path = str_at(col, "jsonPath");
            let cp = p
                .child("additionalPrinterColumns")
                .index(j)
                .child("jsonPath");
            if let Err(e) = JsonPath::parse(json_path) {
                errs.push(FieldError::invalid(
                    cp,
                    Value::from(json_path),
                    format!("does not parse: {e}"),
                ));
            } else if is_dotted(json_path)
                && !json_path.starts_with(".metadata.")
                && !declared(json_path)
            {
                errs.push(FieldError::invalid(
                    cp,
                    Value::from(json_path),
                    "does not name a field declared in the schema",
                ));
            }
        }
    }
    errs
}

fn is_dotted(path: &str) -> bool {
    path.starts_with('.')
        && path[1..].split('.').all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
}

/// Whether a node on the way to `dotted` keeps unknown fields (so the path may hold data).
fn declared_by_preserve(root: &Schema, dotted: &str) -> bool {
    let mut node = root;
    for part in dotted.trim_start_matches('.').split('.') {
        if node.preserves_unknown_fields() {
            return true;
        }
        match node.properties.get(part).or_else(|| {
            node.additional_properties
                .as_ref()
                .and_then(AdditionalProperties::schema)
        }) {
            Some(next) => node = next,
            None => return false,
        }
    }
    true
}

/// The `openAPIV3Schema` of a CRD version, if present.
pub fn version_schema<'a>(crd: &'a Value, version: &str) -> Option<&'a Value> {
    crd.get("spec")?
        .get("versions")?
        .as_array()?
        .iter()
        .find(|v| str_at(v, "name") == version)?
        .get("schema")?
        .get("openAPIV3Schema")
        .filter(|s| !s.is_null())
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn crd() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList",
                          "shortNames": ["wd"], "categories": ["all"]},
                "versions": [{
                    "name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}},
                        "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                    "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas",
                                     "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".spec.selector"}},
                    "additionalPrinterColumns": [{"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}]
                }]
            }
        })
    }

    fn remove(v: &mut Value, key: &str) {
        if let Some(o) = v.as_object_mut() {
            o.remove(key);
        }
    }

    fn messages(v: &Value) -> Vec<String> {
        check_crd(v).iter().map(ToString::to_string).collect()
    }

    #[track_caller]
    fn assert_error(v: &Value, expected: &str) {
        let errors = messages(v);
        assert!(
            errors.iter().any(|e| e == expected),
            "missing {expected:?} in {errors:#?}"
        );
    }

    #[test]
    fn a_valid_crd_passes() {
        assert_eq!(messages(&crd()), Vec::<String>::new());
        assert!(lint_crd(&crd()).is_empty(), "{:#?}", lint_crd(&crd()));
    }

    #[test]
    fn name_must_be_plural_dot_group() {
        let mut c = crd();
        c["metadata"]["name"] = json!("widget.example.com");
        assert_error(
            &c,
            r#"metadata.name: Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group"#,
        );
        c["metadata"] = json!({});
        assert_error(
            &c,
            "metadata.name: Required value: name or generateName is required",
        );
    }

    #[test]
    fn group_and_scope() {
        let mut c = crd();
        c["spec"]["group"] = json!("example");
        c["metadata"]["name"] = json!("widgets.example");
        assert_error(
            &c,
            r#"spec.group: Invalid value: "example": should be a domain with at least one dot"#,
        );
        c["spec"]["group"] = json!("");
        assert_error(&c, "spec.group: Required value");
        let mut s = crd();
        s["spec"]["scope"] = json!("Global");
        assert_error(
            &s,
            r#"spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced""#,
        );
        s["spec"]["scope"] = Value::Null;
        assert_error(&s, "spec.scope: Required value");
    }

    #[test]
    fn names_rules() {
        let mut c = crd();
        c["spec"]["names"]["kind"] = json!("WidgetList");
        assert_error(
            &c,
            r#"spec.names.listKind: Invalid value: "WidgetList": kind and listKind may not be the same"#,
        );
        let mut c = crd();
        c["spec"]["names"]["shortNames"] = json!(["w_d"]);
        assert!(messages(&c).iter().any(|e| {
            e.starts_with(r#"spec.names.shortNames[0]: Invalid value: "w_d": a DNS-1035 label"#)
        }));
        let mut c = crd();
        c["spec"]["names"]["kind"] = json!("Wid get");
        assert!(messages(&c).iter().any(|e| e.starts_with(r#"spec.names.kind: Invalid value: "Wid get": may have mixed case, but should otherwise match: a DNS-1035 label"#)));
        // singular and listKind are defaulted from kind.
        let mut c = crd();
        remove(&mut c["spec"]["names"], "singular");
        remove(&mut c["spec"]["names"], "listKind");
        assert_eq!(messages(&c), Vec::<String>::new());
        c["spec"]["names"]["plural"] = json!("");
        assert_error(&c, "spec.names.plural: Required value");
    }

    #[test]
    fn versions_storage_uniqueness_and_schemas() {
        let mut c = crd();
        let v1 = c["spec"]["versions"][0].clone();
        let mut v2 = v1.clone();
        v2["name"] = json!("v1");
        c["spec"]["versions"] = json!([v1, v2]);
        let errors = messages(&c);
        assert!(
            errors
                .iter()
                .any(|e| e.starts_with("spec.versions: Invalid value: [")
                    && e.ends_with("must contain unique version names")),
            "{errors:#?}"
        );
        assert!(
            errors
                .iter()
                .any(|e| e.ends_with("must have exactly one version marked as storage version")),
            "{errors:#?}"
        );

        let mut c = crd();
        c["spec"]["versions"][0]["name"] = json!("V1");
        assert!(messages(&c).iter().any(|e| {
            e.starts_with(r#"spec.versions[0].name: Invalid value: "V1": a DNS-1035 label"#)
        }));

        let mut c = crd();
        remove(&mut c["spec"]["versions"][0], "schema");
        assert_error(
            &c,
            "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        );
    }

    #[test]
    fn schema_errors_use_the_internal_paths() {
        // One version (identical schemas): the apiserver reports spec.validation.openAPIV3Schema.
        let mut c = crd();
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
            ["x"] = json!({"description": "untyped"});
        assert_error(
            &c,
            "spec.validation.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
        );
        // Two versions with different schemas: per-version paths.
        let mut v2 = c["spec"]["versions"][0].clone();
        v2["name"] = json!("v2");
        v2["storage"] = json!(false);
        v2["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["x"] =
            json!({"type": "string"});
        if let Some(a) = c["spec"]["versions"].as_array_mut() {
            a.push(v2);
        }
        assert_error(
            &c,
            "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
        );
        assert!(
            !messages(&c)
                .iter()
                .any(|e| e.starts_with("spec.versions[1].schema"))
        );
    }

    #[test]
    fn status_subresource_restricts_root_keywords() {
        let mut c = crd();
        c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["minProperties"] = json!(1);
        assert!(messages(&c).iter().any(|e| {
            e.starts_with("spec.validation.openAPIV3Schema: Invalid value: \"\": only [Description")
        }));
        remove(&mut c["spec"]["versions"][0], "subresources");
        assert_eq!(messages(&c), Vec::<String>::new());
    }

    #[test]
    fn scale_paths() {
        let mut c = crd();
        c["spec"]["versions"][0]["subresources"]["scale"] = json!({"specReplicasPath": "spec.replicas", "statusReplicasPath": ".spec.replicas",
            "labelSelectorPath": ".metadata.labels"});
        let errors = messages(&c);
        for expected in [
            r#"spec.subresources.scale.specReplicasPath: Invalid value: "spec.replicas": must be a simple json path starting with ."#,
            r#"spec.subresources.scale.statusReplicasPath: Invalid value: ".spec.replicas": should be a json path under .status"#,
            r#"spec.subresources.scale.labelSelectorPath: Invalid value: ".metadata.labels": should be a json path under either .spec or .status"#,
        ] {
            assert!(
                errors.contains(&expected.to_owned()),
                "missing {expected:?} in {errors:#?}"
            );
        }
        c["spec"]["versions"][0]["subresources"]["scale"] = json!({});
        assert_error(
            &c,
            "spec.subresources.scale.specReplicasPath: Required value",
        );
    }

    #[test]
    fn printer_columns() {
        let mut c = crd();
        c["spec"]["versions"][0]["additionalPrinterColumns"] = json!([
            {"name": "", "type": "text", "format": "hex", "jsonPath": "spec.x"}, {"name": "B", "jsonPath": ""}]);
        let errors = messages(&c);
        for expected in [
            "spec.additionalPrinterColumns[0].name: Required value",
            r#"spec.additionalPrinterColumns[0].type: Invalid value: "text": must be one of boolean,date,integer,number,string"#,
            r#"spec.additionalPrinterColumns[0].format: Invalid value: "hex": must be one of byte,date,date-time,double,float,int32,int64,password"#,
            r#"spec.additionalPrinterColumns[0].JSONPath: Invalid value: "spec.x": must be a simple json path starting with ."#,
            "spec.additionalPrinterColumns[1].type: Required value: must be one of boolean,date,integer,number,string",
            "spec.additionalPrinterColumns[1].JSONPath: Required value",
        ] {
            assert!(
                errors.contains(&expected.to_owned()),
                "missing {expected:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn selectable_fields() {
        let mut c = crd();
        c["spec"]["versions"][0]["selectableFields"] = json!([{"jsonPath": ".spec.selector"}, {"jsonPath": ".spec.nope"},
            {"jsonPath": ".spec"}, {"jsonPath": ".spec.selector"}]);
        let errors = messages(&c);
        for expected in [
            r#"spec.versions[0].selectableFields[1].jsonPath: Invalid value: ".spec.nope": is an invalid path: does not refer to a valid field"#,
            r#"spec.versions[0].selectableFields[2].jsonPath: Invalid value: ".spec": must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."#,
            r#"spec.versions[0].selectableFields[3].jsonPath: Duplicate value: ".spec.selector""#,
        ] {
            assert!(
                errors.contains(&expected.to_owned()),
                "missing {expected:?} in {errors:#?}"
            );
        }
    }

    #[test]
    fn conversion_and_preserve_unknown_fields() {
        let mut c = crd();
        c["spec"]["conversion"] = json!({"strategy": "Webhook"});
        assert_error(
            &c,
            "spec.conversion.webhookClientConfig: Required value: required when strategy is set to Webhook",
        );
        assert_error(
            &c,
            "spec.conversion.conversionReviewVersions: Required value",
        );
        c["spec"]["conversion"] = json!({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "http://x/convert"},
            "conversionReviewVersions": ["v2"]}});
        assert_error(
            &c,
            r#"spec.conversion.webhookClientConfig.url: Invalid value: "http://x/convert": 'https' is the only allowed URL scheme"#,
        );
        assert_error(
            &c,
            r#"spec.conversion.conversionReviewVersions: Invalid value: ["v2"]: must include at least one of v1, v1beta1"#,
        );
        c["spec"]["conversion"] =
            json!({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x"}}});
        assert_error(
            &c,
            "spec.conversion.webhookClientConfig: Forbidden: should not be set when strategy is not set to Webhook",
        );
        c["spec"]["conversion"] = json!({"strategy": "Magic"});
        assert_error(
            &c,
            r#"spec.conversion.strategy: Unsupported value: "Magic": supported values: "None", "Webhook""#,
        );
        let mut p = crd();
        p["spec"]["preserveUnknownFields"] = json!(true);
        assert_error(
            &p,
            "spec.preserveUnknownFields: Invalid value: true: cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        );
    }

    #[test]
    fn deprecation_warning() {
        let mut c = crd();
        c["spec"]["versions"][0]["deprecationWarning"] = json!("old");
        assert_error(
            &c,
            r#"spec.versions[0].deprecationWarning: Invalid value: "old": can only be set for deprecated versions"#,
        );
        c["spec"]["versions"][0]["deprecated"] = json!(true);
        assert_eq!(messages(&c), Vec::<String>::new());
    }

    #[test]
    fn lint_finds_paths_the_schema_does_not_declare() {
        let mut c = crd();
        remove(
            &mut c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"],
            "status",
        );
        c["spec"]["versions"][0]["served"] = json!(false);
        c["spec"]["versions"][0]["additionalPrinterColumns"] = json!([{"name": "X", "type": "string", "jsonPath": ".spec.ghost"},
            {"name": "Y", "type": "string", "jsonPath": ".spec.a["}]);
        let lint: Vec<String> = lint_crd(&c).iter().map(ToString::to_string).collect();
        for expected in [
            r#"spec.versions: Invalid value: "": no version is served"#,
            r#"spec.versions[0].subresources.status: Invalid value: "": the status subresource is enabled but the schema declares no status: status writes are pruned"#,
            r#"spec.versions[0].subresources.scale.statusReplicasPath: Invalid value: ".status.replicas": should name a field of type integer declared in the schema"#,
            r#"spec.versions[0].additionalPrinterColumns[0].jsonPath: Invalid value: ".spec.ghost": does not name a field declared in the schema"#,
        ] {
            assert!(
                lint.contains(&expected.to_owned()),
                "missing {expected:?} in {lint:#?}"
            );
        }
        assert!(lint.iter().any(|e| e.starts_with("spec.versions[0].additionalPrinterColumns[1].jsonPath: Invalid value: \".spec.a[\": does not parse")));
        // Upstream accepts all of this.
        assert!(
            !messages(&c)
                .iter()
                .any(|e| e.contains("ghost") || e.contains("served"))
        );
    }

    #[test]
    fn version_schema_finds_a_version() {
        let c = crd();
        assert_eq!(
            version_schema(&c, "v1").and_then(|s| s.get("type")),
            Some(&json!("object"))
        );
        assert!(version_schema(&c, "v2").is_none());
    }

    #[test]
    fn updates_keep_identity_and_stored_versions() {
        let mut old = crd();
        old["status"] = json!({"conditions": [{"type": "Established", "status": "True"}], "storedVersions": ["v1", "v1alpha1"]});
        let mut new = crd();
        new["spec"]["versions"][0]["name"] = json!("v1");
        new["spec"]["scope"] = json!("Cluster");
        new["spec"]["names"]["kind"] = json!("Gadget");
        new["spec"]["group"] = json!("other.com");
        new["metadata"]["name"] = json!("widgets.other.com");
        let errors: Vec<String> = check_crd_update(&new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        for expected in [
            r#"spec.group: Invalid value: "other.com": field is immutable"#,
            r#"spec.scope: Invalid value: "Cluster": field is immutable"#,
            r#"spec.names.kind: Invalid value: "Gadget": field is immutable"#,
            r#"status.storedVersions[1]: Invalid value: "v1alpha1": missing from spec.versions; v1alpha1 was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in v1alpha1 and removes v1alpha1 from status.storedVersions"#,
        ] {
            assert!(
                errors.contains(&expected.to_owned()),
                "missing {expected:?} in {errors:#?}"
            );
        }
        // Before Established, scope and kind may still change.
        old["status"]["conditions"] = json!([]);
        old["status"]["storedVersions"] = json!(["v1"]);
        let mut renamed = crd();
        renamed["spec"]["names"]["kind"] = json!("Gadget");
        assert_eq!(check_crd_update(&renamed, &old), vec![]);
    }
}
