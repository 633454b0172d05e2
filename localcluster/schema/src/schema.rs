//! The typed form of an `apiextensions.k8s.io/v1` `JSONSchemaProps` tree.
//!
//! [`Schema::parse`] reads a `serde_json::Value` leniently: every keyword of the wrong JSON type,
//! every unknown keyword and every keyword the apiserver never accepts (`$ref`, `definitions`, ...)
//! is reported as a [`FieldError`] with its schema path, and parsing goes on so one pass finds all
//! problems. The typed tree is what validation, pruning and defaulting walk.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::path::FieldPath;

/// `additionalProperties`: a boolean or a schema for every map value.
#[derive(Debug, Clone)]
pub enum AdditionalProperties {
    /// `additionalProperties: true|false`.
    Allows(bool),
    /// `additionalProperties: {schema}`.
    Schema(Box<Schema>),
}

impl AdditionalProperties {
    /// The value schema, if one is given.
    pub fn schema(&self) -> Option<&Schema> {
        match self {
            Self::Allows(_) => None,
            Self::Schema(s) => Some(s),
        }
    }
}

/// A `pattern` with its compiled form (`None` when it does not compile; the structural check
/// reports that).
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as written.
    pub source: String,
    /// The compiled regular expression.
    pub regex: Option<Regex>,
}

/// One `x-kubernetes-validations` entry (a CEL rule; never evaluated by this crate).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ValidationRule {
    /// The CEL expression.
    pub rule: String,
    /// The fixed message, if any.
    pub message: Option<String>,
    /// The CEL message expression, if any.
    pub message_expression: Option<String>,
    /// The cause reason, if any.
    pub reason: Option<String>,
    /// The field path the failure is reported at, if any.
    pub field_path: Option<String>,
    /// `optionalOldSelf`, if set.
    pub optional_old_self: Option<bool>,
}

/// One schema node. Absent strings are empty, as in the Go types.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// `type` (`""` when absent).
    pub type_: String,
    /// `format`.
    pub format: String,
    /// `title`.
    pub title: String,
    /// `description`.
    pub description: String,
    /// `nullable`.
    pub nullable: bool,
    /// `default` (`default: null` counts as absent, as upstream).
    pub default: Option<Value>,
    /// `maximum`.
    pub maximum: Option<f64>,
    /// `exclusiveMaximum`.
    pub exclusive_maximum: bool,
    /// `minimum`.
    pub minimum: Option<f64>,
    /// `exclusiveMinimum`.
    pub exclusive_minimum: bool,
    /// `maxLength`.
    pub max_length: Option<i64>,
    /// `minLength`.
    pub min_length: Option<i64>,
    /// `pattern`.
    pub pattern: Option<Pattern>,
    /// `maxItems`.
    pub max_items: Option<i64>,
    /// `minItems`.
    pub min_items: Option<i64>,
    /// `uniqueItems`.
    pub unique_items: bool,
    /// `multipleOf`.
    pub multiple_of: Option<f64>,
    /// `enum`.
    pub enum_values: Option<Vec<Value>>,
    /// `maxProperties`.
    pub max_properties: Option<i64>,
    /// `minProperties`.
    pub min_properties: Option<i64>,
    /// `required`.
    pub required: Vec<String>,
    /// `items` (a single schema; the array form is reported as an error and dropped).
    pub items: Option<Box<Schema>>,
    /// `properties`.
    pub properties: BTreeMap<String, Schema>,
    /// `additionalProperties`.
    pub additional_properties: Option<AdditionalProperties>,
    /// `allOf`.
    pub all_of: Vec<Schema>,
    /// `anyOf`.
    pub any_of: Vec<Schema>,
    /// `oneOf`.
    pub one_of: Vec<Schema>,
    /// `not`.
    pub not: Option<Box<Schema>>,
    /// Whether `externalDocs` is set.
    pub has_external_docs: bool,
    /// `example`.
    pub example: Option<Value>,
    /// `x-kubernetes-preserve-unknown-fields` as written (`Some(false)` is an error).
    pub x_preserve_unknown_fields: Option<bool>,
    /// `x-kubernetes-embedded-resource`.
    pub x_embedded_resource: bool,
    /// `x-kubernetes-int-or-string`.
    pub x_int_or_string: bool,
    /// `x-kubernetes-list-type`.
    pub x_list_type: Option<String>,
    /// `x-kubernetes-list-map-keys`.
    pub x_list_map_keys: Vec<String>,
    /// `x-kubernetes-map-type`.
    pub x_map_type: Option<String>,
    /// `x-kubernetes-validations`.
    pub x_validations: Vec<ValidationRule>,
}

/// Keywords the v1 API decodes but the apiserver rejects, with upstream's words.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("id", "id is not supported"),
    ("$schema", "$schema is not supported"),
    ("$ref", "$ref is not supported"),
    ("additionalItems", "additionalItems is not supported"),
    ("patternProperties", "patternProperties is not supported"),
    ("definitions", "definitions is not supported"),
    ("dependencies", "dependencies is not supported"),
];

impl Schema {
    /// Whether `x-kubernetes-preserve-unknown-fields: true` is set.
    pub fn preserves_unknown_fields(&self) -> bool {
        self.x_preserve_unknown_fields == Some(true)
    }

    /// Parses a schema node and everything below it, appending every shape problem to `errors`.
    pub fn parse(value: &Value, path: &FieldPath, errors: &mut Vec<FieldError>) -> Schema {
        let Some(map) = value.as_object() else {
            errors.push(FieldError::invalid(
                path,
                value.clone(),
                "must be a JSON object (a schema)",
            ));
            return Schema::default();
        };
        let mut p = Parser { map, path, errors };
        p.schema()
    }
}

/// Compiles a `pattern` with Go's `regexp` meaning of the Perl classes: `\d`, `\w`, `\s` and
/// `\b` are ASCII-only in Go (RE2) but Unicode-aware in Rust's `regex`, so they are rewritten to
/// their ASCII forms first.
pub fn go_regex(pattern: &str) -> Result<Regex, regex::Error> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut in_class = false;
    let mut class_start = false;
    while let Some(c) = chars.next() {
        let at_class_start = std::mem::take(&mut class_start);
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    out.push(c);
                    break;
                };
                let ascii = match (in_class, e) {
                    (false, 'd') => Some("[0-9]"),
                    (false, 'D') => Some("[^0-9]"),
                    (false, 'w') => Some("[0-9A-Za-z_]"),
                    (false, 'W') => Some("[^0-9A-Za-z_]"),
                    (false, 's') => Some(r"[\t\n\f\r ]"),
                    (false, 'S') => Some(r"[^\t\n\f\r ]"),
                    (false, 'b') => Some(r"(?-u:\b)"),
                    (false, 'B') => Some(r"(?-u:\B)"),
                    (true, 'd') => Some("0-9"),
                    (true, 'w') => Some("0-9A-Za-z_"),
                    (true, 's') => Some(r"\t\n\f\r "),
                    _ => None,
                };
                if let Some(a) = ascii {
                    out.push_str(a);
                } else {
                    out.push('\\');
                    out.push(e);
                }
            }
            '[' if !in_class => {
                in_class = true;
                out.push(c);
                if chars.peek() == Some(&'^') {
                    out.push('^');
                    chars.next();
                }
                class_start = true;
            }
            '[' if chars.peek() == Some(&':') => {
                // A POSIX class such as [:alpha:], copied through.
                out.push(c);
                for p in chars.by_ref() {
                    out.push(p);
                    if p == ']' {
                        break;
                    }
                }
            }
            ']' if in_class && !at_class_start => {
                in_class = false;
                out.push(c);
            }
            c => out.push(c),
        }
    }
    Regex::new(&out)
}

struct Parser<'a> {
    map: &'a Map<String, Value>,
    path: &'a FieldPath,
    errors: &'a mut Vec<FieldError>,
}

impl Parser<'_> {
    fn schema(&mut self) -> Schema {
        let mut s = Schema {
            type_: self.string("type"),
            format: self.string("format"),
            title: self.string("title"),
            description: self.string("description"),
            nullable: self.boolean("nullable"),
            default: self.map.get("default").filter(|v| !v.is_null()).cloned(),
            maximum: self.number("maximum"),
            exclusive_maximum: self.boolean("exclusiveMaximum"),
            minimum: self.number("minimum"),
            exclusive_minimum: self.boolean("exclusiveMinimum"),
            max_length: self.integer("maxLength"),
            min_length: self.integer("minLength"),
            max_items: self.integer("maxItems"),
            min_items: self.integer("minItems"),
            unique_items: self.boolean("uniqueItems"),
            multiple_of: self.number("multipleOf"),
            max_properties: self.integer("maxProperties"),
            min_properties: self.integer("minProperties"),
            required: self.strings("required"),
            has_external_docs: self.map.get("externalDocs").is_some_and(|v| !v.is_null()),
            example: self.map.get("example").filter(|v| !v.is_null()).cloned(),
            x_embedded_resource: self.boolean("x-kubernetes-embedded-resource"),
            x_int_or_string: self.boolean("x-kubernetes-int-or-string"),
            x_list_map_keys: self.strings("x-kubernetes-list-map-keys"),
            ..Schema::default()
        };
        let pattern = self.string("pattern");
        if !pattern.is_empty() {
            s.pattern = Some(Pattern {
                regex: go_regex(&pattern).ok(),
                source: pattern,
            });
        }
        s.enum_values = match self.map.get("enum") {
            None | Some(Value::Null) => None,
            Some(Value::Array(a)) => Some(a.clone()),
            Some(other) => {
                self.wrong("enum", other, "must be an array");
                None
            }
        };
        s.x_preserve_unknown_fields = self.opt_bool("x-kubernetes-preserve-unknown-fields");
        s.x_list_type = self.opt_string("x-kubernetes-list-type");
        s.x_map_type = self.opt_string("x-kubernetes-map-type");
        s.items = self.items();
        s.properties = self.properties();
        s.additional_properties = self.additional_properties();
        s.all_of = self.schema_list("allOf");
        s.any_of = self.schema_list("anyOf");
        s.one_of = self.schema_list("oneOf");
        s.not = self.sub_schema("not").map(Box::new);
        s.x_validations = self.validations();
        self.unsupported_and_unknown();
        s
    }

    fn wrong(&mut self, key: &str, value: &Value, detail: &str) {
        self.errors.push(FieldError::invalid(
            self.path.child(key),
            value.clone(),
            detail,
        ));
    }

    fn opt_string(&mut self, key: &str) -> Option<String> {
        match self.map.get(key)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => {
                self.wrong(key, other, "must be a string");
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> String {
        self.opt_string(key).unwrap_or_default()
    }

    fn opt_bool(&mut self, key: &str) -> Option<bool> {
        match self.map.get(key)? {
            Value::Bool(b) => Some(*b),
            Value::Null => None,
            other => {
                self.wrong(key, other, "must be a boolean");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        self.opt_bool(key).unwrap_or(false)
    }

    fn number(&mut self, key: &str) -> Option<f64> {
        match self.map.get(key)? {
            Value::Number(n) => n.as_f64(),
            Value::Null => None,
            other => {
                self.wrong(key, other, "must be a number");
                None
            }
        }
    }

    fn integer(&mut self, key: &str) -> Option<i64> {
        match self.map.get(key)? {
            Value::Number(n) if n.as_i64().is_some() => n.as_i64(),
            Value::Null => None,
            other => {
                self.wrong(key, other, "must be an integer");
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            Some(other) => {
                self.wrong(key, other, "must be an array of strings");
                Vec::new()
            }
        }
    }

    fn sub_schema(&mut self, key: &str) -> Option<Schema> {
        match self.map.get(key)? {
            Value::Null => None,
            v => Some(Schema::parse(v, &self.path.child(key), self.errors)),
        }
    }

    fn items(&mut self) -> Option<Box<Schema>> {
        match self.map.get("items")? {
            Value::Null => None,
            Value::Array(_) => {
                self.errors.push(FieldError::forbidden(
                    self.path.child("items"),
                    "items must be a schema object and not an array",
                ));
                None
            }
            v => Some(Box::new(Schema::parse(
                v,
                &self.path.child("items"),
                self.errors,
            ))),
        }
    }

    fn properties(&mut self) -> BTreeMap<String, Schema> {
        let mut out = BTreeMap::new();
        match self.map.get("properties") {
            None | Some(Value::Null) => {}
            Some(Value::Object(props)) => {
                let base = self.path.child("properties");
                for (k, v) in props {
                    out.insert(k.clone(), Schema::parse(v, &base.key(k), self.errors));
                }
            }
            Some(other) => self.wrong("properties", other, "must be an object of schemas"),
        }
        out
    }

    fn additional_properties(&mut self) -> Option<AdditionalProperties> {
        match self.map.get("additionalProperties")? {
            Value::Null => None,
            Value::Bool(b) => Some(AdditionalProperties::Allows(*b)),
            v => {
                let s = Schema::parse(v, &self.path.child("additionalProperties"), self.errors);
                Some(AdditionalProperties::Schema(Box::new(s)))
            }
        }
    }

    fn schema_list(&mut self, key: &str) -> Vec<Schema> {
        match self.map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => {
                let base = self.path.child(key);
                a.iter()
                    .enumerate()
                    .map(|(i, v)| Schema::parse(v, &base.index(i), self.errors))
                    .collect()
            }
            Some(other) => {
                self.wrong(key, other, "must be an array of schemas");
                Vec::new()
            }
        }
    }

    fn validations(&mut self) -> Vec<ValidationRule> {
        let key = "x-kubernetes-validations";
        let Some(v) = self.map.get(key) else {
            return Vec::new();
        };
        let Some(list) = v.as_array() else {
            if !v.is_null() {
                self.wrong(key, v, "must be an array of validation rules");
            }
            return Vec::new();
        };
        let base = self.path.child(key);
        let mut out = Vec::new();
        for (i, item) in list.iter().enumerate() {
            let Some(obj) = item.as_object() else {
                self.errors.push(FieldError::invalid(
                    base.index(i),
                    item.clone(),
                    "must be an object",
                ));
                continue;
            };
            let item_path = base.index(i);
            let mut p = Parser {
                map: obj,
                path: &item_path,
                errors: self.errors,
            };
            out.push(ValidationRule {
                rule: p.string("rule"),
                message: p.opt_string("message"),
                message_expression: p.opt_string("messageExpression"),
                reason: p.opt_string("reason"),
                field_path: p.opt_string("fieldPath"),
                optional_old_self: p.opt_bool("optionalOldSelf"),
            });
            for k in obj.keys() {
                let known = [
                    "rule",
                    "message",
                    "messageExpression",
                    "reason",
                    "fieldPath",
                    "optionalOldSelf",
                ];
                if !known.contains(&k.as_str()) {
                    self.errors.push(unknown_field(&item_path, k));
                }
            }
        }
        out
    }

    fn unsupported_and_unknown(&mut self) {
        for (k, v) in self.map {
            if let Some((_, why)) = UNSUPPORTED.iter().find(|(name, _)| name == k) {
                if !is_empty_value(v) {
                    self.errors
                        .push(FieldError::forbidden(self.path.child(k), *why));
                }
            } else if !KNOWN_KEYWORDS.contains(&k.as_str()) {
                self.errors.push(unknown_field(self.path, k));
            }
        }
    }
}

/// Keywords of `JSONSchemaProps` in apiextensions.k8s.io/v1 (besides [`UNSUPPORTED`]).
const KNOWN_KEYWORDS: &[&str] = &[
    "description",
    "type",
    "format",
    "title",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "multipleOf",
    "enum",
    "maxProperties",
    "minProperties",
    "required",
    "items",
    "allOf",
    "oneOf",
    "anyOf",
    "not",
    "properties",
    "additionalProperties",
    "externalDocs",
    "example",
    "nullable",
    "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-embedded-resource",
    "x-kubernetes-int-or-string",
    "x-kubernetes-list-map-keys",
    "x-kubernetes-list-type",
    "x-kubernetes-map-type",
    "x-kubernetes-validations",
];

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// A keyword that `JSONSchemaProps` does not have: a real apiserver drops it silently, or rejects
/// the CRD under `fieldValidation=Strict` (kubectl's default), so it is reported.
fn unknown_field(path: &FieldPath, key: &str) -> FieldError {
    FieldError::forbidden(
        path.child(key),
        format!("unknown field {key:?}: not a keyword of apiextensions.k8s.io/v1 JSONSchemaProps"),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn parse(v: &Value) -> (Schema, Vec<FieldError>) {
        let mut errors = Vec::new();
        let s = Schema::parse(v, &FieldPath::new("s"), &mut errors);
        (s, errors)
    }

    #[test]
    fn reads_every_keyword() {
        let (s, errors) = parse(&json!({
            "type": "object", "description": "d", "nullable": true, "default": {"a": 1},
            "required": ["a"], "minProperties": 1, "maxProperties": 3,
            "properties": {"a": {"type": "integer", "minimum": 1, "maximum": 5, "exclusiveMaximum": true,
                                  "multipleOf": 2, "format": "int32", "enum": [2, 4]},
                           "b": {"type": "string", "pattern": "^a+$", "minLength": 1, "maxLength": 3},
                           "c": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 2,
                                  "x-kubernetes-list-type": "set"},
                           "m": {"type": "object", "additionalProperties": {"type": "string"},
                                  "x-kubernetes-map-type": "granular"},
                           "i": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                           "p": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                                  "x-kubernetes-embedded-resource": true}},
            "x-kubernetes-validations": [{"rule": "self.a > 0", "message": "m"}]
        }));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(s.type_, "object");
        assert!(s.nullable);
        assert_eq!(s.default, Some(json!({"a": 1})));
        assert_eq!(s.required, vec!["a"]);
        let a = &s.properties["a"];
        assert_eq!(
            (a.minimum, a.maximum, a.exclusive_maximum),
            (Some(1.0), Some(5.0), true)
        );
        assert_eq!(a.enum_values.as_deref(), Some(&[json!(2), json!(4)][..]));
        let b = &s.properties["b"];
        assert!(b.pattern.as_ref().is_some_and(|p| p.regex.is_some()));
        assert_eq!(s.properties["c"].x_list_type.as_deref(), Some("set"));
        assert!(
            s.properties["m"]
                .additional_properties
                .as_ref()
                .is_some_and(|a| a.schema().is_some())
        );
        assert_eq!(s.properties["i"].any_of.len(), 2);
        assert!(s.properties["p"].preserves_unknown_fields());
        assert_eq!(s.x_validations[0].rule, "self.a > 0");
    }

    #[test]
    fn reports_wrong_shapes_unsupported_and_unknown_keywords() {
        let (_, errors) = parse(&json!({
            "type": 1, "maxLength": 1.5, "required": "a", "$ref": "#/x", "readOnly": true,
            "items": [{"type": "string"}], "definitions": {"a": {}}
        }));
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        for expected in [
            "s.type: Invalid value: 1: must be a string",
            "s.maxLength: Invalid value: 1.5: must be an integer",
            r#"s.required: Invalid value: "a": must be an array of strings"#,
            "s.$ref: Forbidden: $ref is not supported",
            "s.definitions: Forbidden: definitions is not supported",
            "s.items: Forbidden: items must be a schema object and not an array",
            r#"s.readOnly: Forbidden: unknown field "readOnly": not a keyword of apiextensions.k8s.io/v1 JSONSchemaProps"#,
        ] {
            assert!(
                text.contains(&expected.to_owned()),
                "missing {expected:?} in {text:#?}"
            );
        }
    }

    #[test]
    fn patterns_use_go_ascii_perl_classes() {
        let re = |p: &str| go_regex(p).expect("compiles");
        assert!(re(r"^\d+$").is_match("123"));
        assert!(
            !re(r"^\d+$").is_match("١٢٣"),
            "Arabic-Indic digits are not \\d in Go"
        );
        assert!(!re(r"^\w+$").is_match("é"));
        assert!(re(r"^[\w.-]+$").is_match("a.b-c_1"));
        assert!(!re(r"^[\d]+$").is_match("٣"));
        assert!(re(r"^\s$").is_match("\t"));
        assert!(!re(r"^\s$").is_match("\u{a0}"));
        assert!(re(r"\bword\b").is_match("a word here"));
        assert!(re(r"^[]a]+$").is_match("]a"));
        assert!(re(r"^[[:alpha:]]+$").is_match("abc"));
        assert!(re(r"^\.\\$").is_match(".\\"));
        assert!(go_regex("(").is_err());
    }

    #[test]
    fn default_null_is_no_default_and_bad_pattern_keeps_source() {
        let (s, errors) = parse(&json!({"type": "string", "default": null, "pattern": "("}));
        assert!(errors.is_empty());
        assert!(s.default.is_none());
        let p = s.pattern.expect("pattern kept");
        assert_eq!(p.source, "(");
        assert!(p.regex.is_none());
    }
}
