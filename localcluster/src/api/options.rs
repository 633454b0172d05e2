//! Options of a write request, from its query (and, for deletes, its DeleteOptions body): what
//! the write itself (crate::api::write) and conforming the object to its kind
//! (crate::api::conform) need to know.

use serde_json::Value;

use crate::api::Query;
use crate::api::status::{ApiError, ApiResult};

/// `fieldValidation`: what a write does with fields the kind does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options every write accepts.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub validation: FieldValidation,
    pub force: bool,
    /// A server-side apply: managed fields come from the apply itself.
    pub apply: bool,
    /// The write goes through the `/status` subresource.
    pub status_subresource: bool,
}

impl WriteOpts {
    pub fn from_query(q: &Query) -> ApiResult<WriteOpts> {
        let dry_run = match q.get("dryRun") {
            None => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported dryRun value {other:?}: only \"All\""
                )));
            }
        };
        let validation = match q.get("fieldValidation") {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation parameter unsupported: {other}; valid values are Ignore, Warn, Strict"
                )));
            }
        };
        let field_manager = q.get("fieldManager").map(str::to_string);
        if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
            return Err(
                ApiError::invalid("PatchOptions", "", Vec::new()).with_cause(
                    "FieldValueTooLong",
                    "Too long: may not be more than 128 bytes",
                    "fieldManager",
                ),
            );
        }
        Ok(WriteOpts {
            dry_run,
            field_manager,
            validation,
            force: q.flag("force"),
            apply: false,
            status_subresource: false,
        })
    }
}

/// Parsed DeleteOptions (body or query).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace: Option<i64>,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

impl DeleteOpts {
    pub fn parse(q: &Query, body: Option<&Value>) -> ApiResult<DeleteOpts> {
        let mut o = DeleteOpts {
            propagation: q.get("propagationPolicy").map(str::to_string),
            grace: q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
            dry_run: q.get("dryRun") == Some("All"),
            ..DeleteOpts::default()
        };
        if q.get("orphanDependents") == Some("true") {
            o.propagation = Some("Orphan".into());
        }
        if let Some(b) = body.filter(|b| b.is_object()) {
            if let Some(p) = b["propagationPolicy"].as_str() {
                o.propagation = Some(p.into());
            }
            if b["orphanDependents"].as_bool() == Some(true) {
                o.propagation = Some("Orphan".into());
            }
            if let Some(g) = b["gracePeriodSeconds"].as_i64() {
                o.grace = Some(g);
            }
            if b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"))
            {
                o.dry_run = true;
            }
            o.precondition_uid = b["preconditions"]["uid"].as_str().map(str::to_string);
            o.precondition_rv = b["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
        }
        match o.propagation.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(o),
            Some(p) => Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {p:?}"
            ))),
        }
    }
}
