//! Kubernetes write semantics on `serde_json::Value` objects: JSON merge patch, JSON patch,
//! strategic merge patch, server-side apply and `metadata.managedFields` tracking.
//!
//! Pure functions: no I/O, no clock (callers pass the time), no kube client.
//!
//! # Which function for which request
//!
//! | Request | Call | Errors → HTTP status |
//! | --- | --- | --- |
//! | PATCH `application/merge-patch+json` | [`merge_patch`] | never fails (bad JSON is the caller's 400) |
//! | PATCH `application/json-patch+json` | [`json_patch`] | [`JsonPatchError::http_status`]: 400 / 413 / 422 |
//! | PATCH `application/strategic-merge-patch+json` (built-ins only; 415 for CRs) | [`strategic_merge_patch`] with [`BuiltinSchema`] | [`StrategicMergeError::http_status`]: 400 / 422 |
//!
//! # Merge schemas
//!
//! [`MergeSchema`] says how lists and maps merge at a path. Use
//! [`BuiltinSchema::for_kind`]`(group, kind)` for built-in kinds and
//! [`OpenApiSchema::from_crd`]`(crd, version)` (or [`OpenApiSchema::new`]) for custom resources.
//! Both treat `metadata` as `ObjectMeta` (finalizers are a set, ownerReferences keyed by uid).

pub mod fieldset;
pub mod json_patch;
pub mod merge_patch;
mod order;
pub mod schema;
pub mod strategic;

pub use fieldset::{FieldPath, FieldSet, FieldsV1Error, PathElement};
pub use json_patch::{JsonPatchError, MAX_OPERATIONS, json_patch};
pub use merge_patch::{merge_patch, merge_patch_in_place};
pub use schema::{BuiltinSchema, ListMapKey, ListType, MapType, MergeSchema, OpenApiSchema, Seg};
pub use strategic::{StrategicMergeError, strategic_merge_patch};
