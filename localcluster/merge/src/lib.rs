//! Kubernetes write semantics on `serde_json::Value` objects: JSON merge patch, JSON patch,
//! strategic merge patch, server-side apply and `metadata.managedFields` tracking.
//!
//! Pure functions: no I/O, no clock (callers pass the time as an RFC 3339 string), no kube
//! client. Inputs are never modified; every function returns a new value.
//!
//! # Which function for which request
//!
//! | Request | Call | Errors → HTTP status |
//! | --- | --- | --- |
//! | POST (create), PUT | [`record_update`] (`old: None` for create) | [`ManagedFieldsError`] → 422 (bad client-sent managedFields) |
//! | PATCH `application/merge-patch+json` | [`merge_patch()`], then [`record_update`] | never fails (bad JSON is the caller's 400) |
//! | PATCH `application/json-patch+json` | [`json_patch()`], then [`record_update`] | [`JsonPatchError::http_status`]: 400 / 413 / 422 |
//! | PATCH `application/strategic-merge-patch+json` (built-ins only; 415 for CRs) | [`strategic_merge_patch`] with [`BuiltinSchema`], then [`record_update`] | [`StrategicMergeError::http_status`]: 400 / 422 |
//! | PATCH `application/apply-patch+yaml` | [`apply()`] | [`ApplyError::http_status`]: 409 conflicts / 400 / 422 |
//!
//! # Server-side apply
//!
//! ```
//! use rivulet_kube_merge::{apply, ApplyError, ApplyRequest, BuiltinSchema, Scope};
//! use serde_json::json;
//!
//! let schema = BuiltinSchema::for_kind("", "ConfigMap");
//! let config = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                     "metadata": {"name": "c", "namespace": "default"}, "data": {"key": "v"}});
//! let created = apply(&ApplyRequest { live: None, applied: &config, manager: "kubectl",
//!     force: false, scope: Scope::Whole, now: "2026-11-23T08:00:00Z" }, &schema)?;
//! assert!(created.changed);
//! assert_eq!(created.object["metadata"]["managedFields"][0]["fieldsV1"],
//!            json!({"f:data": {"f:key": {}}}));
//!
//! // Same config again: nothing changes, so the server must not write or bump the RV.
//! let again = apply(&ApplyRequest { live: Some(&created.object), applied: &config,
//!     manager: "kubectl", force: false, scope: Scope::Whole, now: "2026-11-23T09:00:00Z" }, &schema)?;
//! assert!(!again.changed);
//!
//! // Another manager changing an owned field: 409 with one FieldManagerConflict cause each.
//! let other = json!({"apiVersion": "v1", "kind": "ConfigMap",
//!                    "metadata": {"name": "c", "namespace": "default"}, "data": {"key": "x"}});
//! let err = apply(&ApplyRequest { live: Some(&created.object), applied: &other, manager: "ctrl",
//!     force: false, scope: Scope::Whole, now: "2026-11-23T09:00:00Z" }, &schema).unwrap_err();
//! let ApplyError::Conflicts(conflicts) = err else { unreachable!() };
//! assert_eq!(conflicts.to_string(),
//!            r#"Apply failed with 1 conflict: conflict with "kubectl": .data.key"#);
//! assert_eq!(conflicts.conflicts[0].field, ".data.key");
//! assert_eq!(conflicts.conflicts[0].cause_message(), r#"conflict with "kubectl""#);
//! # Ok::<(), ApplyError>(())
//! ```
//!
//! What stays with the caller (the API server): parsing YAML; checking `fieldManager` is
//! present, apiVersion/kind/name match the URL and the body has no `metadata.managedFields`
//! (400); 404 instead of create for `/status`; setting uid/creationTimestamp/resourceVersion/
//! generation on the result; defaulting, pruning and validation of the result; `dryRun`. The
//! 409 body is `reason: Conflict`, `message: ConflictError::to_string()`, and per conflict a
//! cause `{type: FieldManagerConflict, message: Conflict::cause_message(), field: Conflict::field}`.
//!
//! # Merge schemas
//!
//! [`MergeSchema`] says how lists and maps merge at a path. Use
//! [`BuiltinSchema::for_kind`]`(group, kind)` for built-in kinds and
//! [`OpenApiSchema::from_crd`]`(crd, version)` (or [`OpenApiSchema::new`]) for custom resources.
//! Both treat `metadata` as `ObjectMeta` (finalizers are a set, ownerReferences keyed by uid).
//! The schema passed to [`apply()`] and [`record_update`] for one object must stay the same
//! between calls, or ownership of list items will not line up.

//! # Known differences from upstream
//!
//! - `Update` entries do not mark newly created maps with `.` (upstream does for maps that are
//!   absent from the Go zero value, e.g. `f:labels: {".": {}, ...}`); ownership of their
//!   fields is the same.
//! - Apply owns empty maps and lists in the configuration (upstream owns only atomic ones), so
//!   replacing `emptyDir: {}` by `hostPath` prunes the `emptyDir`.
//! - Missing list-map key fields are defaulted only where the schema says so (container and
//!   Service port `protocol: TCP`; OpenAPI `default` on a key field).
//! - No conversion between apiVersions: ownership recorded under one version is compared
//!   as-is with another.
//! - Strategic merge: `$setElementOrder` is honoured for the items it names, others keep
//!   their relative place; `$patch: delete` on a map removes the field.
//! - Numbers compare exactly as JSON values (`1` and `1.0` differ).

pub mod apply;
pub mod fieldset;
pub mod json_patch;
pub mod managed;
pub mod merge_patch;
mod order;
pub mod schema;
pub mod strategic;
mod typed;

pub use apply::{ApplyError, ApplyOutcome, ApplyRequest, Conflict, ConflictError, apply};
pub use fieldset::{FieldPath, FieldSet, FieldsV1Error, PathElement};
pub use json_patch::{JsonPatchError, MAX_OPERATIONS, json_patch};
pub use managed::{
    ANCIENT_CHANGES, MAX_UPDATE_MANAGERS, ManagedFieldsEntry, ManagedFieldsError, Operation, Scope,
    UpdateWrite, drop_empty_metadata, read_managed_fields, record_update, write_managed_fields,
};
pub use merge_patch::{merge_patch, merge_patch_in_place};
pub use schema::{BuiltinSchema, ListMapKey, ListType, MapType, MergeSchema, OpenApiSchema, Seg};
pub use strategic::{StrategicMergeError, strategic_merge_patch};
pub use typed::ItemError;
