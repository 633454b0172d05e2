//! PATCH: the four patch types, computed with `rivulet-kube-merge` against the current object.

use serde_json::Value;

use crate::api::status::{ApiError, ApiResult};
use crate::api::write::{Step, WriteOpts, incoming};
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

/// Patch `target` (any JSON document: an object or a Scale view).
pub fn apply_to(
    kind: PatchKind,
    info: &ResourceInfo,
    opts: &WriteOpts,
    sub: Option<&str>,
    target: &Value,
    patch: &Value,
) -> ApiResult<Value> {
    let _ = (opts, sub);
    match kind {
        PatchKind::Merge => Ok(rivulet_kube_merge::merge_patch(target, patch)),
        PatchKind::Json => rivulet_kube_merge::json_patch(target, patch)
            .map_err(|e| ApiError::new(e.http_status(), reason(e.http_status()), e.to_string())),
        PatchKind::Strategic => {
            let schema = rivulet_kube_merge::BuiltinSchema::for_kind(&info.group, &info.kind);
            rivulet_kube_merge::strategic_merge_patch(target, patch, &schema)
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
    let Some(current) = current else {
        return Err(
            ApiError::not_found(&info.group_resource(), name).with_target(&info.group, &info.kind)
        );
    };
    let view = if info.group == "events.k8s.io" {
        crate::api::events::from_core(current)
    } else {
        current.clone()
    };
    let patched = apply_to(kind, info, opts, sub, &view, patch)?;
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
