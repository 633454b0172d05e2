//! How lists and maps merge, per field path: the [`MergeSchema`] trait and its two
//! implementations, [`BuiltinSchema`] (a data table for built-in kinds, from the upstream Go
//! struct tags) and [`OpenApiSchema`] (read from a CRD's OpenAPI v3 schema).
//!
//! Unknown paths get the unstructured defaults that upstream uses for custom resources:
//! maps are granular and lists are atomic.

mod builtin;
mod openapi;
mod types;

pub use builtin::BuiltinSchema;
pub use openapi::OpenApiSchema;
pub use types::{ListMapKey, ListType, MapType, MergeSchema, Seg};
