//! PATCH: the four patch types, computed with `rivulet-kube-merge` against the current object.

use serde_json::Value;

use crate::api::options::WriteOpts;
use crate::api::status::{ApiError, ApiResult};
use crate::api::write::{Step, incoming};
use crate::resources::ResourceInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

const BUILTIN_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const CUSTOM_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
];

impl PatchKind {
    /// The patch type of a Content-Type; 415 for unknown types and for strategic merge on
    /// custom resources (AX customresource_handler.go `supportedTypes`).
    pub fn from_content_type(ct: &str, info: &ResourceInfo) -> ApiResult<PatchKind> {
        let accepted = if info.custom {
            CUSTOM_TYPES
        } else {
            BUILTIN_TYPES
        };
        let kind = match ct {
            "application/json-patch+json" => PatchKind::Json,
            "application/merge-patch+json" => PatchKind::Merge,
            "application/strategic-merge-patch+json" if !info.custom => PatchKind::Strategic,
            "application/apply-patch+yaml" | "application/apply-patch+json" => PatchKind::Apply,
            _ => return Err(ApiError::unsupported_media_type(ct, accepted)),
        };
        Ok(kind)
    }
}

/// Decode the patch document (apply bodies are YAML, of which JSON is a subset).
pub fn parse(kind: PatchKind, body: &[u8]) -> ApiResult<Value> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the patch body is empty"));
    }
    let v: Value = if kind == PatchKind::Apply {
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
        serde_yaml_ng::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    match (kind, &v) {
        (PatchKind::Json, Value::Array(ops)) if ops.len() > rivulet_kube_merge::MAX_OPERATIONS => {
            Err(ApiError::new(
                413,
                "RequestEntityTooLarge",
                format!(
                    "The allowed maximum operations in a JSON patch is {}",
                    rivulet_kube_merge::MAX_OPERATIONS
                ),
            ))
        }
        (PatchKind::Json, Value::Array(_))
        | (PatchKind::Merge | PatchKind::Strategic | PatchKind::Apply, Value::Object(_)) => Ok(v),
        _ => Err(ApiError::bad_request(
            "the patch has the wrong shape for its type",
        )),
    }
}

/// Patch `target` (any JSON document: an object or a Scale view) with a non-apply patch.
pub fn apply_to(
    kind: PatchKind,
    info: &ResourceInfo,
    target: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    match kind {
        PatchKind::Merge => Ok(rivulet_kube_merge::merge_patch(target, patch)),
        PatchKind::Json => rivulet_kube_merge::json_patch(target, patch)
            .map_err(|e| ApiError::new(e.http_status(), reason(e.http_status()), e.to_string())),
        PatchKind::Strategic => {
            rivulet_kube_merge::strategic_merge_patch(target, patch, info.merge.0.as_ref())
                .map_err(|e| ApiError::new(e.http_status(), reason(e.http_status()), e.to_string()))
        }
        PatchKind::Apply => Err(ApiError::unsupported_media_type(
            "application/apply-patch+yaml",
            &[
                "application/json-patch+json",
                "application/merge-patch+json",
            ],
        )),
    }
}

fn reason(code: u16) -> &'static str {
    match code {
        413 => "RequestEntityTooLarge",
        422 => "Invalid",
        409 => "Conflict",
        _ => "BadRequest",
    }
}

/// Check an applied configuration against the endpoint (AM `structuredmerge.go` `Apply`).
fn check_applied(info: &ResourceInfo, name: &str, applied: &mut Value) -> ApiResult<()> {
    let expected = info.api_version();
    match applied["apiVersion"].as_str() {
        Some(v) if v == expected => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {}, expected: {expected}",
                other.unwrap_or_default()
            )));
        }
    }
    if applied["kind"].as_str() != Some(info.kind.as_str()) {
        return Err(ApiError::bad_request(format!(
            "Incorrect kind specified in apply patch. Specified patch kind: {}, expected: {}",
            applied["kind"].as_str().unwrap_or_default(),
            info.kind
        )));
    }
    if applied["metadata"]
        .get("managedFields")
        .is_some_and(|m| !m.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    match applied["metadata"]["name"].as_str() {
        Some(n) if n != name => {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )));
        }
        Some(_) => {}
        None => {
            if !applied["metadata"].is_object() {
                applied["metadata"] = serde_json::json!({});
            }
            applied["metadata"]["name"] = Value::String(name.into());
        }
    }
    Ok(())
}

fn conflict_error(info: &ResourceInfo, name: &str, e: &rivulet_kube_merge::ApplyError) -> ApiError {
    match e {
        rivulet_kube_merge::ApplyError::Conflicts(c) => {
            let mut err = ApiError::new(409, "Conflict", c.to_string());
            err.name = Some(name.to_string());
            err.target = Some(Box::new((info.group.clone(), info.kind.clone())));
            for conflict in &c.conflicts {
                err = err.with_cause(
                    "FieldManagerConflict",
                    &conflict.cause_message(),
                    &conflict.field,
                );
            }
            err
        }
        other => ApiError::new(
            other.http_status(),
            reason(other.http_status()),
            other.to_string(),
        ),
    }
}

/// The update step of a PATCH against the current object.
pub fn step(
    kind: PatchKind,
    info: &ResourceInfo,
    name: &str,
    sub: Option<&str>,
    opts: &WriteOpts,
    current: Option<&Value>,
    patch: &Value,
) -> ApiResult<Step> {
    let view = current.map(|c| {
        if info.group == "events.k8s.io" {
            crate::api::events::from_core(c)
        } else {
            c.clone()
        }
    });
    if kind == PatchKind::Apply {
        let mut applied = patch.clone();
        check_applied(info, name, &mut applied)?;
        if view.is_none() && sub.is_some() {
            return Err(ApiError::not_found(&info.group_resource(), name)
                .with_target(&info.group, &info.kind));
        }
        let now = crate::util::now_rfc3339();
        let request = rivulet_kube_merge::ApplyRequest {
            live: view.as_ref(),
            applied: &applied,
            manager: opts.field_manager.as_deref().unwrap_or_default(),
            force: opts.force,
            scope: crate::api::conform::scope(info, opts),
            now: &now,
        };
        let outcome = rivulet_kube_merge::apply(&request, info.merge.0.as_ref())
            .map_err(|e| conflict_error(info, name, &e))?;
        return match current {
            None => Ok(Step::Create(incoming(info, outcome.object)?)),
            Some(c) if !outcome.changed => Ok(Step::Replace(c.clone())),
            Some(c) => {
                let mut next = incoming(info, outcome.object)?;
                next["metadata"]["resourceVersion"] = c["metadata"]["resourceVersion"].clone();
                Ok(Step::Replace(next))
            }
        };
    }
    let (Some(current), Some(view)) = (current, view) else {
        return Err(
            ApiError::not_found(&info.group_resource(), name).with_target(&info.group, &info.kind)
        );
    };
    let patched = apply_to(kind, info, &view, patch)?;
    let mut next = incoming(info, patched)?;
    if next["metadata"]["name"].as_str() != Some(name) {
        return Err(ApiError::bad_request(
            "metadata.name cannot be changed by a patch",
        ));
    }
    if let Some(m) = next["metadata"].as_object_mut()
        && m.get("resourceVersion").is_none_or(Value::is_null)
    {
        m.insert(
            "resourceVersion".into(),
            current["metadata"]["resourceVersion"].clone(),
        );
    }
    Ok(Step::Replace(next))
}
