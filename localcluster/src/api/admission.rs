//! Admission of every write: custom resources are defaulted, pruned and validated against their
//! structural schema (reference/apiserver.md §4), in upstream's order.

use serde_json::Value;

use crate::api::status::{ApiError, ApiResult, Cause};
use crate::api::write::{FieldValidation, WriteOpts};
use crate::resources::ResourceInfo;

/// Finish an object about to be stored. `current` is the stored object for updates.
pub fn admit(
    info: &ResourceInfo,
    current: Option<&Value>,
    obj: &mut Value,
    opts: &WriteOpts,
) -> ApiResult<()> {
    let _ = current;
    if let Some(schema) = &info.schema {
        let pruned = schema.coerce(obj);
        if opts.validation == FieldValidation::Strict && !pruned.is_empty() {
            let fields: Vec<String> = pruned
                .iter()
                .map(|p| rivulet_kube_schema::unknown_field_message(p))
                .collect();
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {}",
                fields.join(", ")
            )));
        }
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
    Ok(())
}
