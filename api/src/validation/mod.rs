//! Fission's validation rules (reference/fission.md §1), as pure functions.
//!
//! Each rule that fails yields a [`FieldError`] naming the JSON path of the field (`spec.poolsize`)
//! and the rule it breaks. Rules the OpenAPI schema can express are also in the CRD schema, so a
//! real API server rejects those objects first; this module is the single source of truth the
//! reconcilers use to report the rest (status condition + Event).

mod cron;
mod kinds;
mod names;

use std::fmt;

pub use cron::{CronError, CronSchedule, parse_cron};
pub use kinds::{
    validate_canary_config, validate_environment, validate_function, validate_http_trigger,
    validate_kubernetes_watch_trigger, validate_message_queue_trigger, validate_package,
    validate_time_trigger,
};
pub use names::{
    DNS1123_LABEL_PATTERN, is_dns1123_label, is_dns1123_subdomain, is_label_value,
    is_qualified_name, is_wildcard_dns1123_subdomain,
};

/// One broken rule: which field, and what the rule is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, for example `spec.InvokeStrategy.ExecutionStrategy.ExecutorType`.
    pub field: String,
    /// The rule, in words, including the offending value where it helps.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// All rules an object breaks (empty when valid).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ValidationErrors(pub Vec<FieldError>);

impl ValidationErrors {
    /// Whether no rule is broken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The offending field paths, in order.
    pub fn fields(&self) -> Vec<&str> {
        self.0.iter().map(|e| e.field.as_str()).collect()
    }

    /// `Ok(())` when valid, else `Err(self)`.
    pub fn into_result(self) -> Result<(), Self> {
        if self.is_empty() { Ok(()) } else { Err(self) }
    }

    pub(crate) fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }
}

impl fmt::Display for ValidationErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ValidationErrors {}
