//! Fission's validation rules (reference/fission.md §1), as pure functions.
//!
//! Each rule that fails yields a [`FieldError`] naming the JSON path of the field (`spec.poolsize`)
//! and the rule it breaks. Rules the OpenAPI schema can express are also in the CRD schema, so a
//! real API server rejects those objects first; this module is the single source of truth the
//! reconcilers use to report the rest (status condition + Event).

mod cron;
mod errors;
mod kinds;
mod names;

pub use cron::{CronError, CronSchedule, parse_cron};
pub use errors::{FieldError, ValidationErrors};
pub use kinds::{
    validate_canary_config, validate_environment, validate_function, validate_http_trigger,
    validate_kubernetes_watch_trigger, validate_message_queue_trigger, validate_package,
    validate_time_trigger,
};
pub use names::{
    DNS1123_LABEL_PATTERN, is_dns1123_label, is_dns1123_subdomain, is_label_value,
    is_qualified_name, is_wildcard_dns1123_subdomain,
};
