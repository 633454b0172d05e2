//! Structural OpenAPI v3 schemas of CustomResourceDefinitions, as a kube-apiserver (v1.32) treats
//! them: the structural-schema check, validation, pruning and defaulting of objects, and printer
//! columns. Pure functions over `serde_json::Value`; no I/O.
//!
//! Errors are [`FieldError`]s shaped like apimachinery's `field.Error`, so an API server can put
//! them into a `Status` unchanged.

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
mod schema;
mod structural;
mod validate;

pub use columns::{
    IncludeObject, PrinterColumn, column_definitions, columns_for_version, date_cell,
    human_duration, parse_rfc3339, row_cells, table,
};
pub use crd::{check_crd, check_crd_with, lint_crd, version_schema};
pub use default::{apply_defaults, check_defaults, prune_non_nullable_nulls};
pub use error::{BadValue, ErrorType, FieldError, aggregate_message};
pub use jsonpath::{JsonPath, JsonPathError};
pub use names::{
    dns1035_label, dns1123_label, dns1123_subdomain, label_value, path_segment_name, qualified_name,
};
pub use objectmeta::{coerce_object_meta, validate_embedded};
pub use path::FieldPath;
pub use prune::{prune, unknown_field_message};
pub use schema::{AdditionalProperties, Pattern, Schema, ValidationRule};
pub use structural::{
    CheckOptions, StructuralSchema, check_parsed, check_structural, check_structural_with,
};
pub use validate::{CelRule, cel_rules, validate_object, validate_value};
