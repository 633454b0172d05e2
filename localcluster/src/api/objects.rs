//! Per-kind write rules: system fields on create, what an update may change (status
//! subresource, generation), kind-specific defaults and validation.

use serde_json::{Value, json};

use crate::api::status::{ApiError, ApiResult, Cause};
use crate::meta;
use crate::resources::ResourceInfo;
use crate::util;

pub const CRD_CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";
pub const NAMESPACE_FINALIZER: &str = "kubernetes";

/// Metadata fields only the server sets; kept from the stored object on update.
const SYSTEM_FIELDS: &[&str] = &[
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
];

fn meta_mut(obj: &mut Value) -> ApiResult<&mut serde_json::Map<String, Value>> {
    if !obj.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    if obj.get("metadata").is_none_or(Value::is_null) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .ok_or_else(|| ApiError::bad_request("metadata must be an object"))
}

/// Check `apiVersion`/`kind` of a body against the endpoint and fill them in when absent.
pub fn check_type(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let expected = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        Some(v) if v != expected => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
        _ => {}
    }
    match obj.get("kind").and_then(Value::as_str) {
        Some(k) if k != info.kind => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
        _ => {}
    }
    obj["apiVersion"] = Value::String(expected);
    obj["kind"] = Value::String(info.kind.clone());
    Ok(())
}

/// Namespace of the body vs the URL.
pub fn check_namespace(info: &ResourceInfo, obj: &mut Value, namespace: &str) -> ApiResult<()> {
    let meta = meta_mut(obj)?;
    if info.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(ns) if !ns.is_empty() && ns != namespace => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), Value::String(namespace.into()));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Server-set fields and kind defaults of a new object. Returns the generateName prefix, if any.
pub fn prepare_create(info: &ResourceInfo, obj: &mut Value) -> ApiResult<Option<String>> {
    let meta = meta_mut(obj)?;
    let generate = match meta.get("name").and_then(Value::as_str) {
        Some(n) if !n.is_empty() => None,
        _ => meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
            .map(|g| {
                g.chars()
                    .take(meta::GENERATE_NAME_PREFIX_MAX)
                    .collect::<String>()
            }),
    };
    if let Some(prefix) = &generate {
        meta.insert(
            "name".into(),
            Value::String(format!("{prefix}{}", util::name_suffix())),
        );
    }
    meta.insert("uid".into(), Value::String(util::new_uid()));
    meta.insert(
        "creationTimestamp".into(),
        Value::String(util::now_rfc3339()),
    );
    for k in [
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "resourceVersion",
        "selfLink",
    ] {
        meta.remove(k);
    }
    if info.tracks_generation() {
        meta.insert("generation".into(), json!(1));
    } else {
        meta.remove("generation");
    }
    if info.status
        && info.kind != "Node"
        && let Some(o) = obj.as_object_mut()
    {
        o.remove("status");
    }
    match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => {
            let finalizers = obj["spec"]["finalizers"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !finalizers.iter().any(|f| f == NAMESPACE_FINALIZER) {
                let mut f = finalizers;
                f.push(json!(NAMESPACE_FINALIZER));
                obj["spec"]["finalizers"] = Value::Array(f);
            }
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "pods") => {
            obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"});
            if obj["spec"]["terminationGracePeriodSeconds"].is_null() && obj["spec"].is_object() {
                obj["spec"]["terminationGracePeriodSeconds"] = json!(30);
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            obj["status"] = crd_status(obj);
        }
        _ => {}
    }
    Ok(generate)
}

/// CRD status as the naming and establishing controllers leave it: names accepted, established.
pub fn crd_status(crd: &Value) -> Value {
    let now = util::now_rfc3339();
    let stored: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    json!({
        "acceptedNames": crd["spec"]["names"],
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "storedVersions": stored,
    })
}

/// The object an update stores, before validation: system fields from `current`, status rules.
pub fn prepare_update(
    info: &ResourceInfo,
    subresource: Option<&str>,
    current: &Value,
    mut new: Value,
) -> ApiResult<Value> {
    meta_mut(&mut new)?;
    let mut out = if subresource == Some("status") {
        // `/status` takes only `.status` from the request.
        let mut o = current.clone();
        match new.get("status") {
            Some(s) => o["status"] = s.clone(),
            None => {
                if let Some(m) = o.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        if let Some(mf) = new["metadata"].get("managedFields") {
            o["metadata"]["managedFields"] = mf.clone();
        }
        o
    } else {
        if info.status {
            match current.get("status") {
                Some(s) => new["status"] = s.clone(),
                None => {
                    if let Some(m) = new.as_object_mut() {
                        m.remove("status");
                    }
                }
            }
        }
        new
    };
    for field in SYSTEM_FIELDS {
        match current["metadata"].get(*field) {
            Some(v) => out["metadata"][*field] = v.clone(),
            None => {
                if let Some(m) = out["metadata"].as_object_mut() {
                    m.remove(*field);
                }
            }
        }
    }
    for field in ["name", "namespace"] {
        if let Some(v) = current["metadata"].get(field) {
            out["metadata"][field] = v.clone();
        }
    }
    if let Some(m) = out["metadata"].as_object_mut() {
        m.remove("selfLink");
        m.insert(
            "resourceVersion".into(),
            current["metadata"]["resourceVersion"].clone(),
        );
    }
    if info.tracks_generation() && spec_changed(current, &out, info.status) {
        let next_gen = current["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        out["metadata"]["generation"] = json!(next_gen);
    }
    if info.group == "apiextensions.k8s.io" && subresource.is_none() {
        // Keep conditions; refresh accepted names for changed specs.
        let mut st = crd_status(&out);
        if let Some(old) = current.get("status") {
            st["conditions"] = old["conditions"].clone();
        }
        if current["metadata"].get("deletionTimestamp").is_some() {
            st = current["status"].clone();
        }
        out["status"] = st;
    }
    Ok(out)
}

/// Whether anything outside `metadata` (and `status`, for kinds with a status subresource)
/// differs: upstream bumps `generation` on such changes only (AX strategy `PrepareForUpdate`).
fn spec_changed(a: &Value, b: &Value, status_subresource: bool) -> bool {
    let strip = |v: &Value| {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        if status_subresource {
            m.remove("status");
        }
        m
    };
    strip(a) != strip(b)
}

/// Metadata and kind-specific validation, as field causes.
pub fn validate(info: &ResourceInfo, obj: &Value) -> ApiResult<()> {
    let rule = match (info.group.as_str(), info.plural.as_str()) {
        ("", "namespaces") => meta::NameRule::Label,
        ("rbac.authorization.k8s.io", _) => meta::NameRule::PathSegment,
        _ => meta::NameRule::Subdomain,
    };
    let mut causes = meta::validate(&obj["metadata"], rule);
    if info.group == "apiextensions.k8s.io" {
        causes.extend(validate_crd(obj));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        Err(ApiError::invalid(&info.kind_group(), name, causes)
            .with_target(&info.group, &info.kind))
    }
}

/// Upstream's CRD validation (names, scope, versions, structural schemas, subresources,
/// columns), from `rivulet-kube-schema`.
fn validate_crd(crd: &Value) -> Vec<Cause> {
    rivulet_kube_schema::check_crd(crd)
        .into_iter()
        .map(|e| Cause {
            kind: e.reason().into(),
            message: e.body(),
            field: e.field,
        })
        .collect()
}
