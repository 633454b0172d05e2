//! Validation of an object against a structural schema, as the apiserver validates custom
//! resources: kube-openapi's schema validator (types, junctors, string, format, number, array,
//! enum and object rules, in that order per node) followed by the `x-kubernetes-list-type`
//! set/map uniqueness check. Errors carry upstream's paths (`spec.containers[0].name`), cause
//! types and messages (`spec.replicas in body should be less than or equal to 10`).
//!
//! `x-kubernetes-validations` (CEL) rules are not evaluated; [`cel_rules`] lists them so a server
//! can say so.

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::error::{FieldError, go_float, go_quote};
use crate::format;
use crate::path::FieldPath;
use crate::schema::{AdditionalProperties, Schema};

/// Validates `value` against `schema` like kube-openapi does. `base` prefixes every error path
/// (upstream passes none for objects, and `<schema path>.default` for defaults).
pub fn validate_value(schema: &Schema, value: &Value, base: Option<&FieldPath>) -> Vec<FieldError> {
    let v = Validator { base };
    let mut out = Vec::new();
    v.node(schema, value, None, "", &mut out);
    out
}

/// As [`validate_object`] for an update from `old`, with upstream's validation ratcheting
/// (`CRDValidationRatcheting`, on by default since 1.30): schema errors inside any part of the
/// object that is unchanged from `old` are dropped, so an object stored under an older, looser
/// schema can still be updated elsewhere. Parts are matched by field name, by map key, and by
/// key for `x-kubernetes-list-type: map` items; items of other lists only match as a whole list.
pub fn validate_object_update(schema: &Schema, new: &Value, old: &Value) -> Vec<FieldError> {
    let v = Validator { base: None };
    let mut errors = Vec::new();
    v.node(schema, new, Some(old), "", &mut errors);
    list_sets_and_maps(schema, new, &FieldPath::root(), &mut errors);
    errors.extend(crate::objectmeta::validate_embedded(schema, new));
    errors
}

/// Validates a whole object as the apiserver's custom resource strategy does (root metadata
/// aside): [`validate_value`], then list-type set/map uniqueness, then the type and object
/// metadata of embedded resources.
pub fn validate_object(schema: &Schema, value: &Value) -> Vec<FieldError> {
    let mut errors = validate_value(schema, value, None);
    list_sets_and_maps(schema, value, &FieldPath::root(), &mut errors);
    errors.extend(crate::objectmeta::validate_embedded(schema, value));
    errors
}

/// One `x-kubernetes-validations` rule of a schema, which this crate does not evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelRule {
    /// Where in the object the rule applies, e.g. `spec.containers[*]`.
    pub object_path: String,
    /// The CEL expression.
    pub rule: String,
    /// Its message, if any.
    pub message: Option<String>,
}

/// Every CEL rule of `schema`, with the object path it applies to (`[*]` for list items, `{*}`
/// for map values).
pub fn cel_rules(schema: &Schema) -> Vec<CelRule> {
    fn walk(s: &Schema, path: &str, out: &mut Vec<CelRule>) {
        for r in &s.x_validations {
            out.push(CelRule {
                object_path: path.to_owned(),
                rule: r.rule.clone(),
                message: r.message.clone(),
            });
        }
        for (k, p) in &s.properties {
            walk(p, &join(path, k), out);
        }
        if let Some(items) = &s.items {
            walk(items, &format!("{path}[*]"), out);
        }
        if let Some(ap) = s
            .additional_properties
            .as_ref()
            .and_then(AdditionalProperties::schema)
        {
            walk(ap, &join(path, "{*}"), out);
        }
    }
    let mut out = Vec::new();
    walk(schema, "", &mut out);
    out
}

/// kube-openapi's `path + "." + key`, without the leading dot at the root.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

const IN: &str = "body";

struct Validator<'a> {
    base: Option<&'a FieldPath>,
}

/// The JSON type name kube-openapi reports for a value.
fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integral(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64()
                || n.is_u64()
                || n.as_f64()
                    .is_some_and(|f| f.is_finite() && f.fract() == 0.0)
        }
        _ => false,
    }
}

impl Validator<'_> {
    /// The error field for a kube-openapi name (`""` is the value itself).
    fn field(&self, name: &str) -> String {
        match (self.base, name.is_empty()) {
            (Some(b), true) => b.to_string(),
            (Some(b), false) => b.child(name).to_string(),
            (None, true) => "<nil>".to_owned(),
            (None, false) => name.to_owned(),
        }
    }

    fn invalid(&self, name: &str, value: Value, message: String) -> FieldError {
        FieldError::invalid(self.field(name), value, message)
    }

    /// Validates `v`; `old` is the correlated value of the previous object on updates.
    fn node(
        &self,
        s: &Schema,
        v: &Value,
        old: Option<&Value>,
        name: &str,
        out: &mut Vec<FieldError>,
    ) {
        if old == Some(v) {
            return; // ratcheting: an unchanged value keeps whatever it was
        }
        let types: Vec<&str> = if s.x_int_or_string {
            vec!["integer", "string"]
        } else if s.type_.is_empty() {
            Vec::new()
        } else {
            vec![s.type_.as_str()]
        };
        if v.is_null() {
            if !types.is_empty() && !s.nullable {
                let t = types.join(",");
                let msg = format!("{name} in {IN} must be of type {t}: \"null\"");
                out.push(FieldError::type_invalid(
                    self.field(name),
                    Value::from("null"),
                    msg,
                ));
            }
            if !s.nullable {
                self.enumeration(s, v, name, out);
            }
            return;
        }
        let actual = type_of(v);
        let type_ok = types.is_empty()
            || types.contains(&actual)
            || (actual == "integer" && types.contains(&"number"))
            || (actual == "number" && types.contains(&"integer") && is_integral(v));
        if !type_ok {
            let msg = format!(
                "{name} in {IN} must be of type {}: {}",
                types.join(","),
                go_quote(actual)
            );
            out.push(FieldError::type_invalid(
                self.field(name),
                Value::from(actual),
                msg,
            ));
        }
        self.junctors(s, v, old, name, out);
        match v {
            Value::String(text) => self.string(s, text, name, out),
            Value::Number(_) => self.number(s, v, name, out),
            Value::Array(items) => self.array(s, items, old, name, out),
            _ => {}
        }
        self.enumeration(s, v, name, out);
        if let Value::Object(map) = v {
            self.object(s, map, old, name, out);
        }
    }

    fn sub(&self, s: &Schema, v: &Value, old: Option<&Value>, name: &str) -> Vec<FieldError> {
        let mut out = Vec::new();
        self.node(s, v, old, name, &mut out);
        out
    }

    fn junctors(
        &self,
        s: &Schema,
        v: &Value,
        old: Option<&Value>,
        name: &str,
        out: &mut Vec<FieldError>,
    ) {
        if !s.any_of.is_empty() {
            let mut best: Option<Vec<FieldError>> = None;
            let mut succeeded = false;
            for alt in &s.any_of {
                let r = self.sub(alt, v, old, name);
                if r.is_empty() {
                    succeeded = true;
                    best = None;
                    break;
                }
                if best.as_ref().is_none_or(|b| r.len() < b.len()) {
                    best = Some(r);
                }
            }
            if !succeeded {
                let msg = format!("{name} in {IN} must validate at least one schema (anyOf)");
                out.push(self.invalid(name, Value::from(""), msg));
            }
            out.extend(best.unwrap_or_default());
        }
        if !s.one_of.is_empty() {
            let mut valid = 0;
            let mut best: Option<Vec<FieldError>> = None;
            for alt in &s.one_of {
                let r = self.sub(alt, v, old, name);
                if r.is_empty() {
                    valid += 1;
                } else if best.as_ref().is_none_or(|b| r.len() < b.len()) {
                    best = Some(r);
                }
            }
            if valid != 1 {
                let found = if valid == 0 {
                    "Found none valid".to_owned()
                } else {
                    format!("Found {valid} valid alternatives")
                };
                let msg = format!(
                    "{name} in {IN} must validate one and only one schema (oneOf). {found}"
                );
                out.push(self.invalid(name, Value::from(""), msg));
                if valid == 0 {
                    out.extend(best.unwrap_or_default());
                }
            }
        }
        if !s.all_of.is_empty() {
            let mut valid = 0;
            for part in &s.all_of {
                let r = self.sub(part, v, old, name);
                if r.is_empty() {
                    valid += 1;
                }
                out.extend(r);
            }
            if valid != s.all_of.len() {
                let none = if valid == 0 { ". None validated" } else { "" };
                let msg = format!("{name} in {IN} must validate all the schemas (allOf){none}");
                out.push(self.invalid(name, Value::from(""), msg));
            }
        }
        if let Some(not) = &s.not
            && self.sub(not, v, old, name).is_empty()
        {
            let msg = format!("{name} in {IN} must not validate the schema (not)");
            out.push(self.invalid(name, Value::from(""), msg));
        }
    }

    fn string(&self, s: &Schema, text: &str, name: &str, out: &mut Vec<FieldError>) {
        let len = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
        if let Some(max) = s.max_length
            && len > max
        {
            out.push(FieldError::too_long(self.field(name), max));
        }
        if let Some(min) = s.min_length
            && len < min
        {
            let msg = format!("{name} in {IN} should be at least {min} chars long");
            out.push(self.invalid(name, Value::from(text), msg));
        }
        if let Some(p) = &s.pattern
            && p.regex.as_ref().is_some_and(|re| !re.is_match(text))
        {
            let msg = format!("{name} in {IN} should match '{}'", p.source);
            out.push(self.invalid(name, Value::from(text), msg));
        }
        if !s.format.is_empty() && format::check(&s.format, text) == Some(false) {
            let msg = format!(
                "{name} in {IN} must be of type {}: {}",
                s.format,
                go_quote(text)
            );
            out.push(FieldError::type_invalid(
                self.field(name),
                Value::from(text),
                msg,
            ));
        }
    }

    fn number(&self, s: &Schema, v: &Value, name: &str, out: &mut Vec<FieldError>) {
        let Some(x) = v.as_f64() else { return };
        let int_data = matches!(v, Value::Number(n) if n.is_i64() || n.is_u64());
        // Upstream prints bounds with the data's native type: `10` for integers, `%v` for floats.
        #[allow(clippy::cast_possible_truncation)]
        let bound = |b: f64| {
            if int_data {
                format!("{}", b.trunc() as i64)
            } else {
                go_float(b)
            }
        };
        if let Some(factor) = s.multiple_of {
            if factor <= 0.0 {
                let msg = format!(
                    "factor MultipleOf declared for {name} must be positive: {}",
                    bound(factor)
                );
                out.push(self.invalid(name, v.clone(), msg));
            } else {
                let mult = if factor < 1.0 {
                    1.0 / factor * x
                } else {
                    x / factor
                };
                if (mult - mult.round()).abs() > 1e-9 * mult.abs().max(1.0) {
                    let msg = format!("{name} in {IN} should be a multiple of {}", bound(factor));
                    out.push(self.invalid(name, v.clone(), msg));
                }
            }
        }
        if let Some(max) = s.maximum {
            let (bad, words) = if s.exclusive_maximum {
                (x >= max, "less than")
            } else {
                (x > max, "less than or equal to")
            };
            if bad {
                let msg = format!("{name} in {IN} should be {words} {}", bound(max));
                out.push(self.invalid(name, v.clone(), msg));
            }
        }
        if let Some(min) = s.minimum {
            let (bad, words) = if s.exclusive_minimum {
                (x <= min, "greater than")
            } else {
                (x < min, "greater than or equal to")
            };
            if bad {
                let msg = format!("{name} in {IN} should be {words} {}", bound(min));
                out.push(self.invalid(name, v.clone(), msg));
            }
        }
    }

    fn array(
        &self,
        s: &Schema,
        items: &[Value],
        old: Option<&Value>,
        name: &str,
        out: &mut Vec<FieldError>,
    ) {
        if let Some(item_schema) = &s.items {
            let old_items = old
                .and_then(Value::as_array)
                .filter(|_| s.x_list_type.as_deref() == Some("map"));
            for (i, item) in items.iter().enumerate() {
                let old_item = old_items.and_then(|olds| {
                    olds.iter()
                        .find(|o| same_map_keys(&s.x_list_map_keys, o, item))
                });
                self.node(item_schema, item, old_item, &format!("{name}[{i}]"), out);
            }
        }
        let size = i64::try_from(items.len()).unwrap_or(i64::MAX);
        if let Some(min) = s.min_items
            && size < min
        {
            let msg = format!("{name} in {IN} should have at least {min} items");
            out.push(self.invalid(name, Value::from(size), msg));
        }
        if let Some(max) = s.max_items
            && size > max
        {
            out.push(FieldError::too_many(self.field(name), size, max));
        }
        if s.unique_items
            && items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].contains(a))
        {
            let msg = format!("{name} in {IN} shouldn't contain duplicates");
            out.push(self.invalid(name, Value::Array(items.to_vec()), msg));
        }
    }

    fn enumeration(&self, s: &Schema, v: &Value, name: &str, out: &mut Vec<FieldError>) {
        let Some(allowed) = &s.enum_values else {
            return;
        };
        if allowed.is_empty() || allowed.contains(v) {
            return;
        }
        let supported: Vec<String> = allowed
            .iter()
            .map(|a| match a {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        out.push(FieldError::not_supported(
            self.field(name),
            v.clone(),
            &supported,
        ));
    }

    fn object(
        &self,
        s: &Schema,
        map: &Map<String, Value>,
        old: Option<&Value>,
        name: &str,
        out: &mut Vec<FieldError>,
    ) {
        let old_child = |k: &str| old.and_then(|o| o.get(k));
        let n = i64::try_from(map.len()).unwrap_or(i64::MAX);
        if let Some(min) = s.min_properties
            && n < min
        {
            let msg = format!("{name} in {IN} should have at least {min} properties");
            out.push(self.invalid(name, Value::from(""), msg));
            return;
        }
        if let Some(max) = s.max_properties
            && n > max
        {
            out.push(FieldError::too_many(self.field(name), n, max));
            return;
        }
        match &s.additional_properties {
            Some(AdditionalProperties::Allows(false)) => {
                for k in map.keys() {
                    if !s.properties.contains_key(k) && k != "$schema" && k != "id" {
                        let child = join(name, k);
                        let msg = format!("{child} in {IN} is a forbidden property");
                        out.push(self.invalid(&child, Value::from(""), msg));
                    }
                }
            }
            Some(AdditionalProperties::Schema(ap)) => {
                for (k, v) in map {
                    if !s.properties.contains_key(k) {
                        self.node(ap, v, old_child(k), &join(name, k), out);
                    }
                }
            }
            Some(AdditionalProperties::Allows(true)) | None => {}
        }
        for k in &s.required {
            if !map.contains_key(k) {
                out.push(FieldError::required(self.field(&join(name, k)), ""));
            }
        }
        for (k, prop) in &s.properties {
            if let Some(v) = map.get(k) {
                self.node(prop, v, old_child(k), &join(name, k), out);
            }
        }
    }
}

/// Whether two items of a `map` list have the same key values.
fn same_map_keys(keys: &[String], a: &Value, b: &Value) -> bool {
    a.is_object() && b.is_object() && keys.iter().all(|k| a.get(k) == b.get(k))
}

/// Upstream `listtype.ValidateListSetsAndMaps`: items of `set` lists and keys of `map` lists
/// must be unique.
fn list_sets_and_maps(s: &Schema, v: &Value, path: &FieldPath, out: &mut Vec<FieldError>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let sub = s.properties.get(k).or_else(|| {
                    s.additional_properties
                        .as_ref()
                        .and_then(AdditionalProperties::schema)
                });
                if let Some(sub) = sub {
                    list_sets_and_maps(sub, child, &path.child(k), out);
                }
            }
        }
        Value::Array(items) => {
            match s.x_list_type.as_deref() {
                Some("set") => list_set(items, path, out),
                Some("map") => list_map(s, items, path, out),
                _ => {}
            }
            if let Some(item_schema) = &s.items {
                for (i, item) in items.iter().enumerate() {
                    list_sets_and_maps(item_schema, item, &path.index(i), out);
                }
            }
        }
        _ => {}
    }
}

/// Reports each repeated value once, at its second occurrence.
fn report_duplicates(
    keys: impl Iterator<Item = (usize, String, Value)>,
    path: &FieldPath,
    out: &mut Vec<FieldError>,
) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, key, shown) in keys {
        let count = seen.entry(key).or_insert(0);
        *count += 1;
        if *count == 2 {
            out.push(FieldError::duplicate(path.index(i), shown));
        }
    }
}

fn list_set(items: &[Value], path: &FieldPath, out: &mut Vec<FieldError>) {
    report_duplicates(
        items
            .iter()
            .enumerate()
            .map(|(i, x)| (i, x.to_string(), x.clone())),
        path,
        out,
    );
}

fn list_map(s: &Schema, items: &[Value], path: &FieldPath, out: &mut Vec<FieldError>) {
    for (i, x) in items.iter().enumerate() {
        if !x.is_null() && !x.is_object() {
            out.push(FieldError::invalid(
                path.index(i),
                x.clone(),
                "must be an object for an array of list-type map",
            ));
            return;
        }
    }
    let keys = items.iter().enumerate().filter_map(|(i, x)| {
        let obj = x.as_object()?;
        let mut shown = Map::new();
        let mut key = Vec::new();
        for k in &s.x_list_map_keys {
            let value = obj.get(k);
            // A missing key counts as its own value, distinct from any given one.
            key.push(value.map_or_else(|| "\u{0}unspecified".to_owned(), Value::to_string));
            if let Some(value) = value {
                shown.insert(k.clone(), value.clone());
            }
        }
        Some((i, key.join("\u{0}"), Value::Object(shown)))
    });
    report_duplicates(keys, path, out);
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn schema(v: &Value) -> Schema {
        let mut errors = Vec::new();
        let s = Schema::parse(v, &FieldPath::new("openAPIV3Schema"), &mut errors);
        assert!(errors.is_empty(), "{errors:?}");
        s
    }

    fn messages(s: &Value, obj: &Value) -> Vec<String> {
        validate_object(&schema(s), obj)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[track_caller]
    fn assert_only(s: &Value, obj: &Value, expected: &[&str]) {
        assert_eq!(messages(s, obj), expected, "object {obj}");
    }

    fn spec(props: &Value) -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props}}})
    }

    #[test]
    fn types_including_integer_number_and_int_or_string() {
        let s = spec(&json!({
            "replicas": {"type": "integer"}, "ratio": {"type": "number"}, "on": {"type": "boolean"},
            "name": {"type": "string"}, "list": {"type": "array", "items": {"type": "string"}},
            "port": {"x-kubernetes-int-or-string": true}, "obj": {"type": "object"}
        }));
        assert_only(
            &s,
            &json!({"spec": {"replicas": 3, "ratio": 2, "on": true, "name": "a", "list": ["x"],
            "port": "http", "obj": {}}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"replicas": 3.0, "ratio": 0.5, "port": 8080}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"replicas": "3"}}),
            &[
                r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"replicas": 1.5}}),
            &[
                r#"spec.replicas: Invalid value: "number": spec.replicas in body must be of type integer: "number""#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"port": true}}),
            &[
                r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"obj": []}}),
            &[
                r#"spec.obj: Invalid value: "array": spec.obj in body must be of type object: "array""#,
            ],
        );
        let e = validate_object(&schema(&s), &json!({"spec": {"name": 1}}));
        assert_eq!(e[0].reason(), "FieldValueTypeInvalid");
    }

    #[test]
    fn nullable() {
        let s = spec(&json!({"a": {"type": "string", "nullable": true}, "b": {"type": "string"}}));
        assert_only(&s, &json!({"spec": {"a": null}}), &[]);
        assert_only(
            &s,
            &json!({"spec": {"b": null}}),
            &[r#"spec.b: Invalid value: "null": spec.b in body must be of type string: "null""#],
        );
    }

    #[test]
    fn required_enum_and_strings() {
        let s = json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object",
            "required": ["mode"], "properties": {
                "mode": {"type": "string", "enum": ["a", "b"]},
                "level": {"type": "integer", "enum": [1, 2]},
                "name": {"type": "string", "minLength": 2, "maxLength": 4, "pattern": "^[a-z]+$"}}}}});
        assert_only(&s, &json!({}), &["spec: Required value"]);
        assert_only(&s, &json!({"spec": {}}), &["spec.mode: Required value"]);
        assert_only(
            &s,
            &json!({"spec": {"mode": "x"}}),
            &[r#"spec.mode: Unsupported value: "x": supported values: "a", "b""#],
        );
        assert_only(
            &s,
            &json!({"spec": {"mode": "a", "level": 3}}),
            &[r#"spec.level: Unsupported value: 3: supported values: "1", "2""#],
        );
        assert_only(
            &s,
            &json!({"spec": {"mode": "a", "name": "abcdef"}}),
            &["spec.name: Too long: may not be more than 4 bytes"],
        );
        assert_only(
            &s,
            &json!({"spec": {"mode": "a", "name": "a"}}),
            &[
                r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"mode": "a", "name": "AB"}}),
            &[r#"spec.name: Invalid value: "AB": spec.name in body should match '^[a-z]+$'"#],
        );
        // Length counts characters, not bytes.
        assert_only(
            &s,
            &json!({"spec": {"mode": "a", "name": "ééé"}}),
            &[r#"spec.name: Invalid value: "ééé": spec.name in body should match '^[a-z]+$'"#],
        );
        let reasons: Vec<&str> = validate_object(
            &schema(&s),
            &json!({"spec": {"mode": "x", "name": "abcdef"}}),
        )
        .iter()
        .map(FieldError::reason)
        .collect();
        assert_eq!(reasons, ["FieldValueNotSupported", "FieldValueTooLong"]);
    }

    #[test]
    fn numbers() {
        let s = spec(&json!({
            "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
            "ex": {"type": "number", "minimum": 0, "exclusiveMinimum": true, "maximum": 1, "exclusiveMaximum": true},
            "step": {"type": "integer", "multipleOf": 5},
            "frac": {"type": "number", "multipleOf": 0.1},
            "big": {"type": "number", "maximum": 1_000_000}
        }));
        assert_only(
            &s,
            &json!({"spec": {"replicas": 10, "ex": 0.5, "step": 15, "frac": 0.3, "big": 5}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"replicas": 11}}),
            &[
                "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"replicas": 0}}),
            &[
                "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"ex": 1}}),
            &["spec.ex: Invalid value: 1: spec.ex in body should be less than 1"],
        );
        assert_only(
            &s,
            &json!({"spec": {"ex": 0.0}}),
            &["spec.ex: Invalid value: 0: spec.ex in body should be greater than 0"],
        );
        assert_only(
            &s,
            &json!({"spec": {"step": 7}}),
            &["spec.step: Invalid value: 7: spec.step in body should be a multiple of 5"],
        );
        assert_only(
            &s,
            &json!({"spec": {"frac": 0.35}}),
            &["spec.frac: Invalid value: 0.35: spec.frac in body should be a multiple of 0.1"],
        );
        assert_only(
            &s,
            &json!({"spec": {"big": 2_000_000.5}}),
            &[
                "spec.big: Invalid value: 2.0000005e+06: spec.big in body should be less than or equal to 1e+06",
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"big": 2_000_000}}),
            &[
                "spec.big: Invalid value: 2000000: spec.big in body should be less than or equal to 1000000",
            ],
        );
    }

    #[test]
    fn arrays_and_objects() {
        let s = spec(&json!({
            "list": {"type": "array", "minItems": 1, "maxItems": 2, "items": {"type": "object", "required": ["name"],
                     "properties": {"name": {"type": "string"}}}},
            "labels": {"type": "object", "minProperties": 1, "maxProperties": 2, "additionalProperties": {"type": "string"}},
            "closed": {"type": "object", "additionalProperties": false}
        }));
        assert_only(
            &s,
            &json!({"spec": {"list": [{"name": "a"}], "labels": {"a": "b"}, "closed": {}}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"list": []}}),
            &["spec.list: Invalid value: 0: spec.list in body should have at least 1 items"],
        );
        assert_only(
            &s,
            &json!({"spec": {"list": [{"name": "a"}, {}, {"name": 1}]}}),
            &[
                "spec.list[1].name: Required value",
                r#"spec.list[2].name: Invalid value: "integer": spec.list[2].name in body must be of type string: "integer""#,
                "spec.list: Too many: 3: must have at most 2 items",
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"labels": {"a": 1}}}),
            &[
                r#"spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer""#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"labels": {}}}),
            &[
                r#"spec.labels: Invalid value: "": spec.labels in body should have at least 1 properties"#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"labels": {"a": "1", "b": "2", "c": "3"}}}),
            &["spec.labels: Too many: 3: must have at most 2 items"],
        );
        assert_only(
            &s,
            &json!({"spec": {"closed": {"x": 1}}}),
            &[r#"spec.closed.x: Invalid value: "": spec.closed.x in body is a forbidden property"#],
        );
    }

    #[test]
    fn formats() {
        let s = spec(
            &json!({"data": {"type": "string", "format": "byte"}, "at": {"type": "string", "format": "date-time"},
            "n": {"type": "integer", "format": "int32"}}),
        );
        assert_only(
            &s,
            &json!({"spec": {"data": "aGk=", "at": "2024-01-01T00:00:00Z", "n": 9_999_999_999_i64}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"data": "hi!", "at": "noon"}}),
            &[
                r#"spec.at: Invalid value: "noon": spec.at in body must be of type date-time: "noon""#,
                r#"spec.data: Invalid value: "hi!": spec.data in body must be of type byte: "hi!""#,
            ],
        );
    }

    #[test]
    fn junctors() {
        let s = spec(&json!({
            "any": {"type": "string", "anyOf": [{"minLength": 3}, {"enum": ["x"]}]},
            "one": {"type": "integer", "oneOf": [{"minimum": 5}, {"maximum": 10}]},
            "all": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 3}]},
            "not": {"type": "string", "not": {"enum": ["forbidden"]}}
        }));
        assert_only(
            &s,
            &json!({"spec": {"any": "x", "one": 20, "all": 2, "not": "ok"}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"any": "ab"}}),
            &[
                r#"spec.any: Invalid value: "": spec.any in body must validate at least one schema (anyOf)"#,
                r#"spec.any: Invalid value: "ab": spec.any in body should be at least 3 chars long"#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"one": 7}}),
            &[
                r#"spec.one: Invalid value: "": spec.one in body must validate one and only one schema (oneOf). Found 2 valid alternatives"#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"all": 5}}),
            &[
                "spec.all: Invalid value: 5: spec.all in body should be less than or equal to 3",
                r#"spec.all: Invalid value: "": spec.all in body must validate all the schemas (allOf)"#,
            ],
        );
        assert_only(
            &s,
            &json!({"spec": {"not": "forbidden"}}),
            &[
                r#"spec.not: Invalid value: "": spec.not in body must not validate the schema (not)"#,
            ],
        );
        // A junctor at the root naming required fields.
        let root = json!({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
            "oneOf": [{"required": ["a"]}, {"required": ["b"]}]});
        assert_only(&root, &json!({"a": "x"}), &[]);
        assert_only(
            &root,
            &json!({}),
            &[
                r#"<nil>: Invalid value: "":  in body must validate one and only one schema (oneOf). Found none valid"#,
                "a: Required value",
            ],
        );
    }

    #[test]
    fn list_type_uniqueness() {
        let s = spec(&json!({
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "protocol"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}, "protocol": {"type": "string"},
                                                                "port": {"type": "integer"}}}}
        }));
        assert_only(
            &s,
            &json!({"spec": {"tags": ["a", "b"], "ports": [{"name": "a", "protocol": "TCP"}, {"name": "a", "protocol": "UDP"}]}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"spec": {"tags": ["a", "b", "a", "a"]}}),
            &[r#"spec.tags[2]: Duplicate value: "a""#],
        );
        let e = validate_object(
            &schema(&s),
            &json!({"spec": {"ports": [
            {"name": "a", "protocol": "TCP", "port": 1}, {"name": "a", "protocol": "TCP", "port": 2}]}}),
        );
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].to_string(),
            r#"spec.ports[1]: Duplicate value: {"name":"a","protocol":"TCP"}"#
        );
        assert_eq!(e[0].reason(), "FieldValueDuplicate");
        assert_only(
            &s,
            &json!({"spec": {"ports": [{"name": "a", "protocol": "TCP"}, "x"]}}),
            &[
                r#"spec.ports[1]: Invalid value: "string": spec.ports[1] in body must be of type object: "string""#,
                r#"spec.ports[1]: Invalid value: "x": must be an object for an array of list-type map"#,
            ],
        );
    }

    #[test]
    fn metadata_is_only_checked_as_declared() {
        let s = json!({"type": "object", "properties": {"metadata": {"type": "object",
            "properties": {"name": {"type": "string", "maxLength": 5}}}}});
        assert_only(
            &s,
            &json!({"metadata": {"name": "abc", "labels": {"x": "y"}, "anything": [1]}}),
            &[],
        );
        assert_only(
            &s,
            &json!({"metadata": {"name": "abcdefg"}}),
            &["metadata.name: Too long: may not be more than 5 bytes"],
        );
    }

    #[test]
    fn base_path_prefixes_errors() {
        let s = schema(&json!({"type": "object", "properties": {"a": {"type": "integer"}}}));
        let base = FieldPath::new("x").child("default");
        let e = validate_value(&s, &json!({"a": "no"}), Some(&base));
        assert_eq!(
            e[0].to_string(),
            r#"x.default.a: Invalid value: "string": a in body must be of type integer: "string""#
        );
    }

    #[test]
    fn cel_rules_are_listed_not_evaluated() {
        let s = schema(
            &json!({"type": "object", "x-kubernetes-validations": [{"rule": "has(self.spec)"}],
            "properties": {"spec": {"type": "object", "properties": {"list": {"type": "array", "items": {"type": "object",
                "x-kubernetes-validations": [{"rule": "self.a > 0", "message": "positive"}]}}}}}}),
        );
        assert!(validate_object(&s, &json!({"spec": {"list": [{"a": -1}]}})).is_empty());
        assert_eq!(
            cel_rules(&s),
            vec![
                CelRule {
                    object_path: String::new(),
                    rule: "has(self.spec)".into(),
                    message: None
                },
                CelRule {
                    object_path: "spec.list[*]".into(),
                    rule: "self.a > 0".into(),
                    message: Some("positive".into())
                },
            ]
        );
    }

    #[test]
    fn updates_ratchet_unchanged_values() {
        // The schema got stricter after `old` was stored.
        let s = schema(&spec(&json!({
            "mode": {"type": "string", "enum": ["a", "b"]},
            "name": {"type": "string", "maxLength": 3},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                      "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer", "maximum": 100}}}},
            "args": {"type": "array", "items": {"type": "string", "maxLength": 2}}
        })));
        let old = json!({"spec": {"mode": "legacy", "name": "toolong", "ports": [{"name": "a", "port": 8080}, {"name": "b", "port": 1}],
            "args": ["long", "x"]}});
        // Unchanged: nothing to report, although `old` breaks today's rules everywhere.
        assert!(validate_object_update(&s, &old, &old).is_empty());
        // Changing one field re-validates only what changed.
        let mut new = old.clone();
        new["spec"]["name"] = json!("stilltoolong");
        new["spec"]["ports"] = json!([{"name": "b", "port": 1}, {"name": "a", "port": 8080}, {"name": "c", "port": 101}]);
        new["spec"]["args"] = json!(["long", "x", "y"]);
        let messages: Vec<String> = validate_object_update(&s, &new, &old)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            messages,
            [
                // atomic lists only match as a whole, so every item is validated again
                "spec.args[0]: Too long: may not be more than 2 bytes",
                "spec.name: Too long: may not be more than 3 bytes",
                // map-list items are matched by key: "a" kept its invalid port, "c" is new
                "spec.ports[2].port: Invalid value: 101: spec.ports[2].port in body should be less than or equal to 100",
            ]
        );
        // Creating the same object reports everything.
        assert_eq!(validate_object(&s, &new).len(), 5);
    }
}
