//! Structural OpenAPI v3 schemas of CustomResourceDefinitions, as a kube-apiserver (v1.32) treats
//! them: the structural-schema and whole-CRD checks, validation, pruning and defaulting of custom
//! resources, the scale subresource, and printer columns for Table output. Pure functions over
//! `serde_json::Value`; no I/O, no clock (callers pass `now` where time matters).
//!
//! Errors are [`FieldError`]s shaped like apimachinery's `field.Error` (path, cause type, value,
//! detail), so an API server can put them into a `Status` unchanged: `causes[] = {type:
//! reason(), message: body(), field}` and the overall message from [`aggregate_message`].
//!
//! The write path of a custom resource, in upstream's order:
//!
//! ```
//! use rivulet_kube_schema::{StructuralSchema, aggregate_message, check_crd, version_schema};
//! use serde_json::json;
//!
//! let crd = json!({
//!     "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
//!     "metadata": {"name": "widgets.example.com"},
//!     "spec": {"group": "example.com", "scope": "Namespaced",
//!              "names": {"plural": "widgets", "kind": "Widget"},
//!              "versions": [{"name": "v1", "served": true, "storage": true,
//!                  "schema": {"openAPIV3Schema": {"type": "object", "properties": {
//!                      "spec": {"type": "object", "properties": {
//!                          "replicas": {"type": "integer", "maximum": 10, "default": 1}}}}}}}]}
//! });
//! assert!(check_crd(&crd).is_empty()); // a kube-apiserver would accept this CRD
//!
//! let schema = StructuralSchema::parse(version_schema(&crd, "v1").unwrap()).unwrap();
//! let mut widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
//!                         "metadata": {"name": "w"}, "spec": {"color": "red"}});
//! let unknown = schema.coerce(&mut widget); // default, prune, drop non-nullable nulls
//! assert_eq!(unknown, ["spec.color"]);      // fieldValidation=Strict|Warn report these
//! assert_eq!(widget["spec"], json!({"replicas": 1}));
//! assert!(schema.validate(&widget).is_empty());
//!
//! widget["spec"]["replicas"] = json!(11);
//! assert_eq!(
//!     aggregate_message(&schema.validate(&widget)),
//!     "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10"
//! );
//! ```
//!
//! Not covered: CEL (`x-kubernetes-validations` rules are listed by
//! [`StructuralSchema::cel_rules`], never evaluated), validation ratcheting on update, and the
//! root object's own `metadata` (the server's `ObjectMeta` rules).

mod columns;
mod crd;
mod default;
mod error;
mod format;
mod jsonpath;
mod names;
mod objectmeta;
mod path;
mod prune;
mod scale;
mod schema;
mod structural;
mod validate;

pub use columns::{
    IncludeObject, PrinterColumn, column_definitions, columns_for_version, date_cell,
    human_duration, parse_rfc3339, row_cells, table,
};
pub use crd::{check_crd, check_crd_update, check_crd_with, lint_crd, version_schema};
pub use default::{apply_defaults, check_defaults, prune_non_nullable_nulls};
pub use error::{BadValue, ErrorType, FieldError, aggregate_message};
pub use jsonpath::{JsonPath, JsonPathError};
pub use names::{
    dns1035_label, dns1123_label, dns1123_subdomain, label_value, path_segment_name, qualified_name,
};
pub use objectmeta::{coerce_object_meta, is_object_meta_field, validate_embedded};
pub use path::FieldPath;
pub use prune::{prune, strict_decoding_message, unknown_field_message};
pub use scale::{ScaleError, ScaleSubresource, ScaleValues};
pub use schema::go_regex;
pub use schema::{AdditionalProperties, Pattern, Schema, ValidationRule};
pub use structural::{
    CheckOptions, StructuralSchema, check_parsed, check_structural, check_structural_with,
};
pub use validate::{CelRule, cel_rules, validate_object, validate_object_update, validate_value};
