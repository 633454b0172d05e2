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
        &[r#"spec.obj: Invalid value: "array": spec.obj in body must be of type object: "array""#],
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
        &[r#"spec.name: Invalid value: "a": spec.name in body should be at least 2 chars long"#],
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
        &[r#"spec.not: Invalid value: "": spec.not in body must not validate the schema (not)"#],
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
    new["spec"]["ports"] =
        json!([{"name": "b", "port": 1}, {"name": "a", "port": 8080}, {"name": "c", "port": 101}]);
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
