//! The package reconciler: Fission's `buildstatus` defaulting (its mutating webhook, applied
//! after the fact), validation, and a `Ready` condition saying whether the package can be
//! deployed. Package has no status subresource (as in Fission), so status is merged into the
//! object itself, and only when it changed.

pub mod reconciler;
pub mod status;
