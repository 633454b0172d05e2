//! Conforming every written object to its kind before it is stored: fields the kind does not
//! have are dropped (or refused under `fieldValidation=Strict`), custom resources are
//! defaulted, pruned and validated against their structural schema (reference/apiserver.md §4)
//! in upstream's order, and non-apply writes are recorded in `metadata.managedFields`.
//!
//! Upstream does this while decoding, in the REST strategy and in the field manager. It is not
//! admission: the only admission here, mutating create hooks (crate::hooks::CreateHook), runs
//! before it.

use serde_json::Value;

use crate::api::options::{FieldValidation, WriteOpts};
use crate::api::status::{ApiError, ApiResult, Cause};
use crate::resources::ResourceInfo;
use crate::util;

/// The managedFields scope of a write.
pub fn scope(info: &ResourceInfo, opts: &WriteOpts) -> rivulet_kube_merge::Scope {
    if opts.status_subresource {
        rivulet_kube_merge::Scope::Status
    } else if info.status {
        rivulet_kube_merge::Scope::Main
    } else {
        rivulet_kube_merge::Scope::Whole
    }
}

/// Drop fields the kind does not have (metadata for every kind, top-level fields for built-ins
/// with a fixed shape), as decoding into Go types does upstream; with `fieldValidation=Strict`
/// they are a 400 instead.
fn prune_unknown(info: &ResourceInfo, obj: &mut Value, opts: &WriteOpts) -> ApiResult<()> {
    let mut unknown = Vec::new();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        let extra: Vec<String> = meta
            .keys()
            .filter(|k| !rivulet_kube_schema::is_object_meta_field(k))
            .cloned()
            .collect();
        for k in extra {
            meta.remove(&k);
            unknown.push(format!("metadata.{k}"));
        }
    }
    if let (Some(fields), Some(map)) = (info.top_level_fields, obj.as_object_mut()) {
        let extra: Vec<String> = map
            .keys()
            .filter(|k| {
                !matches!(k.as_str(), "apiVersion" | "kind" | "metadata")
                    && !fields.contains(&k.as_str())
            })
            .cloned()
            .collect();
        for k in extra {
            map.remove(&k);
            unknown.push(k);
        }
    }
    refuse_unknown_if_strict(opts, &unknown)
}

/// Under `fieldValidation=Strict`, fields the kind does not have are a 400, as upstream's strict
/// decoding; otherwise they were just dropped.
fn refuse_unknown_if_strict(opts: &WriteOpts, unknown: &[String]) -> ApiResult<()> {
    if opts.validation == FieldValidation::Strict && !unknown.is_empty() {
        return Err(ApiError::bad_request(
            rivulet_kube_schema::strict_decoding_message(unknown),
        ));
    }
    Ok(())
}

/// Conform an object about to be stored to its kind. `current` is the stored object for updates.
pub fn to_kind(
    info: &ResourceInfo,
    current: Option<&Value>,
    obj: &mut Value,
    opts: &WriteOpts,
) -> ApiResult<()> {
    prune_unknown(info, obj, opts)?;
    if let Some(schema) = &info.schema {
        let pruned = schema.coerce(obj);
        refuse_unknown_if_strict(opts, &pruned)?;
        let errors = schema.validate(obj);
        if !errors.is_empty() {
            let name = obj["metadata"]["name"].as_str().unwrap_or_default();
            let causes = errors
                .iter()
                .map(|e| Cause {
                    kind: e.reason().into(),
                    message: e.body(),
                    field: e.field.clone(),
                })
                .collect();
            return Err(ApiError::invalid(&info.kind_group(), name, causes)
                .with_target(&info.group, &info.kind));
        }
    }
    if !opts.apply {
        let now = util::now_rfc3339();
        let manager = opts.field_manager.as_deref().unwrap_or("unknown");
        let write = rivulet_kube_merge::UpdateWrite {
            old: current,
            manager,
            scope: scope(info, opts),
            now: &now,
        };
        *obj =
            rivulet_kube_merge::record_update(&write, std::mem::take(obj), info.merge.0.as_ref())
                .map_err(|e| {
                let name = current
                    .and_then(|c| c["metadata"]["name"].as_str())
                    .unwrap_or_default();
                ApiError::invalid(&info.kind_group(), name, Vec::new()).with_cause(
                    "FieldValueInvalid",
                    &e.to_string(),
                    "metadata.managedFields",
                )
            })?;
    }
    Ok(())
}
