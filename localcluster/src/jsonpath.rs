//! Printer-column JSONPath evaluation (adapter over the schema crate's evaluator).

use serde_json::Value;

/// The value at `path` in `obj`, if any.
pub fn evaluate(path: &str, obj: &Value) -> Option<Value> {
    // TODO(issue 3): switch to rivulet-kube-schema's JSONPath evaluator once it lands; simple
    // dotted paths (all built-in columns) are resolved here meanwhile.
    crate::selectors::get_path(obj, path).cloned()
}
