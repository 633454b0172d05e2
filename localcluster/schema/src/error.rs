//! Field errors shaped like apimachinery's `field.Error`, so the API server can put them into a
//! `Status` (`details.causes[] = {type: reason(), message: body(), field}`) unchanged.

use std::fmt::{self, Write as _};

use serde_json::Value;

/// The kind of a field error; each maps to a `metav1.CauseType` via [`ErrorType::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    /// A referenced value was not found.
    NotFound,
    /// A required field is missing.
    Required,
    /// A value that must be unique is repeated.
    Duplicate,
    /// A value is malformed or out of range.
    Invalid,
    /// A value is not one of a fixed set.
    NotSupported,
    /// A value is not allowed here.
    Forbidden,
    /// A string is too long.
    TooLong,
    /// A list or map has too many entries.
    TooMany,
    /// Something went wrong that the user cannot fix.
    Internal,
    /// A value has the wrong JSON type.
    TypeInvalid,
}

impl ErrorType {
    /// The `metav1.CauseType` string (`FieldValueRequired`, ...), used as `causes[].type`.
    pub fn reason(self) -> &'static str {
        match self {
            Self::NotFound => "FieldValueNotFound",
            Self::Required => "FieldValueRequired",
            Self::Duplicate => "FieldValueDuplicate",
            Self::Invalid => "FieldValueInvalid",
            Self::NotSupported => "FieldValueNotSupported",
            Self::Forbidden => "FieldValueForbidden",
            Self::TooLong => "FieldValueTooLong",
            Self::TooMany => "FieldValueTooMany",
            Self::Internal => "InternalError",
            Self::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human prefix of the message (`Required value`, `Unsupported value`, ...).
    pub fn label(self) -> &'static str {
        match self {
            Self::NotFound => "Not found",
            Self::Required => "Required value",
            Self::Duplicate => "Duplicate value",
            Self::Invalid | Self::TypeInvalid => "Invalid value",
            Self::NotSupported => "Unsupported value",
            Self::Forbidden => "Forbidden",
            Self::TooLong => "Too long",
            Self::TooMany => "Too many",
            Self::Internal => "Internal error",
        }
    }
}

/// The offending value of a field error, or none when upstream omits it from the message.
#[derive(Debug, Clone, PartialEq)]
pub enum BadValue {
    /// Not printed (upstream's `omitValue`).
    Omitted,
    /// Printed: strings quoted, numbers and booleans bare, `null` as `"null"`, the rest as JSON.
    Value(Value),
}

/// One field error: where, what kind, the value, and the rule in words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {}", self.body())]
pub struct FieldError {
    /// The kind of error.
    pub error_type: ErrorType,
    /// The field path, e.g. `spec.replicas` or `spec.validation.openAPIV3Schema.properties[spec].type`.
    pub field: String,
    /// The offending value.
    pub bad_value: BadValue,
    /// The rule in words (may be empty).
    pub detail: String,
}

impl FieldError {
    /// An error with every part given.
    pub fn new(
        error_type: ErrorType,
        field: impl fmt::Display,
        bad_value: BadValue,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            error_type,
            field: field.to_string(),
            bad_value,
            detail: detail.into(),
        }
    }

    /// `Required value: <detail>`.
    pub fn required(field: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Required, field, BadValue::Omitted, detail)
    }

    /// `Forbidden: <detail>`.
    pub fn forbidden(field: impl fmt::Display, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Forbidden, field, BadValue::Omitted, detail)
    }

    /// `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl fmt::Display, value: Value, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Invalid, field, BadValue::Value(value), detail)
    }

    /// `Invalid value: <value>: <detail>` with cause type `FieldValueTypeInvalid`.
    pub fn type_invalid(field: impl fmt::Display, value: Value, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::TypeInvalid,
            field,
            BadValue::Value(value),
            detail,
        )
    }

    /// `Duplicate value: <value>`.
    pub fn duplicate(field: impl fmt::Display, value: Value) -> Self {
        Self::new(ErrorType::Duplicate, field, BadValue::Value(value), "")
    }

    /// `Unsupported value: <value>: supported values: "a", "b"` (upstream `field.NotSupported`).
    pub fn not_supported(field: impl fmt::Display, value: Value, supported: &[String]) -> Self {
        let detail = if supported.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(
            ErrorType::NotSupported,
            field,
            BadValue::Value(value),
            detail,
        )
    }

    /// `Too long: may not be more than <n> bytes` (upstream `field.TooLong`, value omitted).
    pub fn too_long(field: impl fmt::Display, max: i64) -> Self {
        let detail = match max {
            1 => "may not be more than 1 byte".to_owned(),
            n if n >= 0 => format!("may not be more than {n} bytes"),
            _ => "value is too long".to_owned(),
        };
        Self::new(ErrorType::TooLong, field, BadValue::Omitted, detail)
    }

    /// `Too many: <actual>: must have at most <max> items` (upstream `field.TooMany`).
    pub fn too_many(field: impl fmt::Display, actual: i64, max: i64) -> Self {
        let detail = match max {
            1 => "must have at most 1 item".to_owned(),
            n if n >= 0 => format!("must have at most {n} items"),
            _ => "has too many items".to_owned(),
        };
        let bad = if actual >= 0 {
            BadValue::Value(Value::from(actual))
        } else {
            BadValue::Omitted
        };
        Self::new(ErrorType::TooMany, field, bad, detail)
    }

    /// The cause type string, e.g. `FieldValueRequired`.
    pub fn reason(&self) -> &'static str {
        self.error_type.reason()
    }

    /// The message without the field, as upstream's `ErrorBody()`: `Invalid value: "x": detail`.
    pub fn body(&self) -> String {
        let mut s = self.error_type.label().to_owned();
        let prints_value = !matches!(
            self.error_type,
            ErrorType::Required | ErrorType::Forbidden | ErrorType::TooLong | ErrorType::Internal
        );
        if let (true, BadValue::Value(v)) = (prints_value, &self.bad_value) {
            s.push_str(": ");
            s.push_str(&go_value(v));
        }
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

/// The message of a list of errors as upstream's `ErrorList.ToAggregate().Error()`: one message
/// alone, several as `[a, b]`, duplicates dropped.
pub fn aggregate_message(errors: &[FieldError]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        let m = e.to_string();
        if !seen.contains(&m) {
            seen.push(m);
        }
    }
    match seen.len() {
        1 => seen.swap_remove(0),
        _ => format!("[{}]", seen.join(", ")),
    }
}

/// A value printed as Go's `field.Error` prints a bad value.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::Null => go_quote("null"),
        Value::String(s) => go_quote(s),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        other => other.to_string(),
    }
}

/// A JSON number printed as Go's `%v` prints an `int64` or a `float64`.
pub(crate) fn go_number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        n.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// A float printed as Go's `%v` (`strconv.FormatFloat(f, 'g', -1, 64)`): shortest digits, and
/// the `1e+06` form when the decimal exponent is below -4 or at least 6.
pub(crate) fn go_float(f: f64) -> String {
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_owned()
        } else if f > 0.0 {
            "+Inf".to_owned()
        } else {
            "-Inf".to_owned()
        };
    }
    if f == 0.0 {
        return "0".to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// A string quoted as Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_match_upstream_shapes() {
        let e = FieldError::not_supported("spec.mode", json!("x"), &["a".into(), "b".into()]);
        assert_eq!(
            e.to_string(),
            r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#
        );
        assert_eq!(e.reason(), "FieldValueNotSupported");
        let r = FieldError::required("spec.name", "");
        assert_eq!(r.to_string(), "spec.name: Required value");
        let t = FieldError::type_invalid(
            "spec.replicas",
            json!("string"),
            "spec.replicas in body must be of type integer: \"string\"",
        );
        assert_eq!(
            t.to_string(),
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        );
        assert_eq!(t.reason(), "FieldValueTypeInvalid");
        assert_eq!(
            FieldError::too_long("a", 5).body(),
            "Too long: may not be more than 5 bytes"
        );
        assert_eq!(
            FieldError::too_many("a", 4, 3).body(),
            "Too many: 4: must have at most 3 items"
        );
        assert_eq!(
            FieldError::invalid("a", Value::Null, "x").body(),
            r#"Invalid value: "null": x"#
        );
        assert_eq!(
            FieldError::invalid("a", json!({"k": 1}), "x").body(),
            r#"Invalid value: {"k":1}: x"#
        );
        assert_eq!(
            FieldError::duplicate("a[1]", json!(3)).body(),
            "Duplicate value: 3"
        );
    }

    #[test]
    fn aggregate_dedupes_and_brackets() {
        let a = FieldError::required("a", "");
        let b = FieldError::required("b", "");
        assert_eq!(
            aggregate_message(std::slice::from_ref(&a)),
            "a: Required value"
        );
        assert_eq!(
            aggregate_message(&[a.clone(), b, a]),
            "[a: Required value, b: Required value]"
        );
    }

    #[test]
    fn go_number_formatting() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(123_456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1_234_567.0), "1.234567e+06");
        assert_eq!(go_quote("a\"b\n"), r#""a\"b\n""#);
    }
}
