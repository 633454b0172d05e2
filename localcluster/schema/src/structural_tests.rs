use serde_json::{Value, json};

use super::*;

fn errors_of(schema: &Value) -> Vec<String> {
    check_structural(schema)
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn strict_errors_of(schema: &Value) -> Vec<String> {
    let opts = CheckOptions {
        strict: true,
        ..CheckOptions::default()
    };
    check_structural_with(schema, &FieldPath::new("openAPIV3Schema"), opts)
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[track_caller]
fn assert_clean(schema: &Value) {
    let errors = errors_of(schema);
    assert!(errors.is_empty(), "expected no errors, got {errors:#?}");
}

#[track_caller]
fn assert_error(schema: &Value, expected: &str) {
    let errors = errors_of(schema);
    assert!(
        errors.iter().any(|e| e == expected),
        "missing {expected:?} in {errors:#?}"
    );
}

/// The root wrapper every CR schema has, with `spec` as given.
fn with_spec(spec: &Value) -> Value {
    json!({"type": "object", "properties": {"spec": spec}})
}

#[test]
fn a_typical_schema_is_structural() {
    assert_clean(&json!({
        "type": "object",
        "description": "Foo",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["image"],
                "properties": {
                    "image": {"type": "string", "minLength": 1},
                    "replicas": {"type": "integer", "format": "int32", "default": 1, "minimum": 0},
                    "port": {"x-kubernetes-int-or-string": true,
                             "anyOf": [{"type": "integer"}, {"type": "string"}]},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "env": {"type": "array", "x-kubernetes-list-type": "map",
                            "x-kubernetes-list-map-keys": ["name"],
                            "items": {"type": "object", "required": ["name"],
                                      "properties": {"name": {"type": "string"}, "value": {"type": "string"}}}},
                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                                 "x-kubernetes-preserve-unknown-fields": true}
                },
                "x-kubernetes-validations": [{"rule": "self.replicas >= 0", "message": "no negatives",
                                              "fieldPath": ".replicas", "reason": "FieldValueInvalid"}]
            },
            "status": {"type": "object", "nullable": true, "properties": {"ready": {"type": "boolean"}}}
        },
        "anyOf": [{"required": ["spec"]}, {"required": ["status"]}]
    }));
}

#[test]
fn type_is_required_at_every_level_except_int_or_string_and_preserve() {
    assert_error(
        &json!({"properties": {}}),
        "openAPIV3Schema.type: Required value: must not be empty at the root",
    );
    assert_error(
        &with_spec(&json!({"type": "object", "properties": {"x": {"description": "untyped"}}})),
        "openAPIV3Schema.properties[spec].properties[x].type: Required value: must not be empty for specified object fields",
    );
    assert_error(
        &with_spec(&json!({"type": "array", "items": {"minLength": 1}})),
        "openAPIV3Schema.properties[spec].items.type: Required value: must not be empty for specified array items",
    );
    assert_error(
        &json!({"type": "object", "additionalProperties": {"minLength": 1}}),
        "openAPIV3Schema.additionalProperties.type: Required value: must not be empty for specified object fields",
    );
    assert_clean(&with_spec(
        &json!({"x-kubernetes-preserve-unknown-fields": true}),
    ));
    assert_clean(&with_spec(&json!({"x-kubernetes-int-or-string": true})));
}

#[test]
fn root_must_be_an_object() {
    assert_error(
        &json!({"type": "string"}),
        r#"openAPIV3Schema.type: Invalid value: "string": must be object at the root"#,
    );
}

#[test]
fn arrays_need_items() {
    assert_error(
        &with_spec(&json!({"type": "array"})),
        "openAPIV3Schema.properties[spec].items: Required value: must be specified",
    );
}

#[test]
fn additional_properties_rules() {
    assert_error(
        &with_spec(
            &json!({"type": "object", "properties": {"a": {"type": "string"}},
                           "additionalProperties": {"type": "string"}}),
        ),
        "openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
    );
    assert_error(
        &with_spec(
            &json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}),
        ),
        "openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
    );
    // `true` next to properties is accepted by upstream.
    assert_clean(&with_spec(
        &json!({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": true}),
    ));
    assert_error(
        &json!({"type": "object", "additionalProperties": {"type": "string"}}),
        "openAPIV3Schema.additionalProperties: Forbidden: must not be used at the root",
    );
    // `false` alone passes v1.32 code, but not the strict (documented) rule set.
    let lone_false = with_spec(&json!({"type": "object", "additionalProperties": false}));
    assert_clean(&lone_false);
    assert!(strict_errors_of(&lone_false).contains(
        &"openAPIV3Schema.properties[spec].additionalProperties: Forbidden: additionalProperties cannot be set to false (documented rule, enforced in strict mode)".to_owned()
    ));
}

#[test]
fn junctors_hold_value_validations_only() {
    let schema = with_spec(&json!({
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "allOf": [{
            "type": "object", "default": {}, "additionalProperties": {"type": "string"}, "nullable": true,
            "description": "d", "title": "t", "x-kubernetes-preserve-unknown-fields": true,
            "x-kubernetes-embedded-resource": true, "x-kubernetes-int-or-string": true,
            "x-kubernetes-list-type": "atomic", "x-kubernetes-list-map-keys": ["a"],
            "x-kubernetes-map-type": "atomic", "x-kubernetes-validations": [{"rule": "true"}],
            "externalDocs": {"url": "http://x"},
            "properties": {"metadata": {"minProperties": 1}}
        }]
    }));
    let errors = errors_of(&schema);
    let p = "openAPIV3Schema.properties[spec].allOf[0]";
    for expected in [
        format!("{p}.type: Forbidden: must be empty to be structural"),
        format!("{p}.default: Forbidden: must be undefined to be structural"),
        format!("{p}.additionalProperties: Forbidden: must be undefined to be structural"),
        format!("{p}.nullable: Forbidden: must be false to be structural"),
        format!("{p}.description: Forbidden: must be empty to be structural"),
        format!("{p}.title: Forbidden: must be empty to be structural"),
        format!("{p}.externalDocs: Forbidden: must be undefined to be structural"),
        format!(
            "{p}.x-kubernetes-preserve-unknown-fields: Forbidden: must be false to be structural"
        ),
        format!("{p}.x-kubernetes-embedded-resource: Forbidden: must be false to be structural"),
        format!("{p}.x-kubernetes-int-or-string: Forbidden: must be false to be structural"),
        format!("{p}.x-kubernetes-list-type: Forbidden: must be undefined to be structural"),
        format!("{p}.x-kubernetes-list-map-keys: Forbidden: must be empty to be structural"),
        format!("{p}.x-kubernetes-map-type: Forbidden: must be undefined to be structural"),
        format!("{p}.x-kubernetes-validations: Forbidden: must be empty to be structural"),
        format!("{p}.properties[metadata]: Forbidden: must not be specified in a nested context"),
    ] {
        assert!(
            errors.contains(&expected),
            "missing {expected:?} in {errors:#?}"
        );
    }
    // Nested junctors and `not` are checked too.
    assert_error(
        &with_spec(&json!({"type": "string", "not": {"anyOf": [{"type": "string"}]}})),
        "openAPIV3Schema.properties[spec].not.anyOf[0].type: Forbidden: must be empty to be structural",
    );
    assert_error(
        &with_spec(&json!({"type": "string", "oneOf": [{"description": "x"}]})),
        "openAPIV3Schema.properties[spec].oneOf[0].description: Forbidden: must be empty to be structural",
    );
}

#[test]
fn int_or_string_patterns_are_the_only_typed_junctors() {
    assert_clean(&with_spec(&json!({"x-kubernetes-int-or-string": true,
        "allOf": [{"anyOf": [{"type": "integer"}, {"type": "string"}]}, {"pattern": "^[0-9]+%?$"}]})));
    // Any extra keyword breaks the exact pattern, so the types become errors.
    let errors = errors_of(&with_spec(&json!({"x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer", "minimum": 1}, {"type": "string"}]})));
    assert!(errors.contains(&"openAPIV3Schema.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural".to_owned()));
    assert!(errors.contains(&"openAPIV3Schema.properties[spec].anyOf[1].type: Forbidden: must be empty to be structural".to_owned()));
    // Reversed order is not the pattern either.
    assert_error(
        &with_spec(
            &json!({"x-kubernetes-int-or-string": true, "anyOf": [{"type": "string"}, {"type": "integer"}]}),
        ),
        "openAPIV3Schema.properties[spec].anyOf[0].type: Forbidden: must be empty to be structural",
    );
}

#[test]
fn junctor_fields_must_exist_outside() {
    let schema = json!({
        "type": "object",
        "properties": {"a": {"type": "string"}, "list": {"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}}},
        "anyOf": [{"properties": {"b": {"minLength": 1}}}, {"properties": {"list": {"items": {"properties": {"y": {"minLength": 1}}}}}}]
    });
    let errors = errors_of(&schema);
    assert!(errors.contains(&"openAPIV3Schema.properties[b]: Required value: because it is defined in openAPIV3Schema.anyOf[0].properties[b]".to_owned()), "{errors:#?}");
    assert!(errors.contains(&"openAPIV3Schema.properties[list].items.properties[y]: Required value: because it is defined in openAPIV3Schema.anyOf[1].properties[list].items.properties[y]".to_owned()), "{errors:#?}");
    assert_error(
        &json!({"type": "object", "properties": {"s": {"type": "string"}}, "allOf": [{"properties": {"s": {"items": {"minLength": 1}}}}]}),
        "openAPIV3Schema.properties[s].items: Required value: because it is defined in openAPIV3Schema.allOf[0].properties[s].items",
    );
    // Upstream checks completeness of the root's junctors only; strict mode checks every level.
    let nested = with_spec(
        &json!({"type": "object", "oneOf": [{"properties": {"ghost": {"minLength": 1}}}]}),
    );
    assert_clean(&nested);
    assert!(strict_errors_of(&nested).contains(
        &"openAPIV3Schema.properties[spec].properties[ghost]: Required value: because it is defined in openAPIV3Schema.properties[spec].oneOf[0].properties[ghost]".to_owned()
    ));
}

#[test]
fn root_metadata_only_restricts_name_and_generate_name() {
    assert_clean(
        &json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"name": {"type": "string", "maxLength": 20, "pattern": "^a"}, "generateName": {"type": "string"}}}}}),
    );
    let forbidden = "openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified";
    assert_error(
        &json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"labels": {"type": "object", "additionalProperties": {"type": "string"}}}}}}),
        forbidden,
    );
    assert_error(
        &json!({"type": "object", "properties": {"metadata": {"type": "object", "description": "meta"}}}),
        forbidden,
    );
    assert_error(
        &json!({"type": "object", "properties": {"metadata": {"type": "object", "required": ["name"]}}}),
        forbidden,
    );
    assert_error(
        &json!({"type": "object", "properties": {"metadata": {"type": "string"}}}),
        r#"openAPIV3Schema.properties[metadata].type: Invalid value: "string": must be object"#,
    );
    // Below the root, `metadata` is an ordinary field.
    assert_clean(&with_spec(
        &json!({"type": "object", "properties": {"metadata": {"type": "string", "description": "x"}}}),
    ));
}

#[test]
fn type_meta_fields_must_be_strings() {
    assert_error(
        &json!({"type": "object", "properties": {"kind": {"type": "integer"}}}),
        r#"openAPIV3Schema.properties[kind].type: Invalid value: "integer": must be string"#,
    );
    assert_error(
        &with_spec(
            &json!({"type": "object", "x-kubernetes-embedded-resource": true,
                           "properties": {"apiVersion": {"type": "boolean"}}}),
        ),
        r#"openAPIV3Schema.properties[spec].properties[apiVersion].type: Invalid value: "boolean": must be string"#,
    );
}

#[test]
fn metadata_defaults_are_forbidden_at_the_top_level() {
    assert_error(
        &json!({"type": "object", "properties": {"kind": {"type": "string", "default": "Foo"}}}),
        "openAPIV3Schema.properties[kind].default: Forbidden: must not be set in top-level kind",
    );
}

#[test]
fn embedded_resource_rules() {
    assert_error(
        &with_spec(
            &json!({"x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}),
        ),
        "openAPIV3Schema.properties[spec].type: Required value: must be object if x-kubernetes-embedded-resource is true",
    );
    assert_error(
        &with_spec(
            &json!({"type": "string", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}),
        ),
        r#"openAPIV3Schema.properties[spec].type: Invalid value: "string": must be object if x-kubernetes-embedded-resource is true"#,
    );
    assert_error(
        &with_spec(&json!({"type": "object", "x-kubernetes-embedded-resource": true})),
        "openAPIV3Schema.properties[spec].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
    );
    assert_error(
        &with_spec(
            &json!({"type": "object", "x-kubernetes-embedded-resource": true,
                           "x-kubernetes-preserve-unknown-fields": true, "additionalProperties": {"type": "string"}}),
        ),
        "openAPIV3Schema.properties[spec].additionalProperties: Forbidden: must not be used if x-kubernetes-embedded-resource is set",
    );
    assert_error(
        &json!({"type": "object", "properties": {"metadata": {"type": "object", "x-kubernetes-embedded-resource": true,
                "x-kubernetes-preserve-unknown-fields": true}}}),
        "openAPIV3Schema.properties[metadata].x-kubernetes-embedded-resource: Forbidden: must not be used inside of resource meta",
    );
    // An embedded resource's metadata may hold anything, but must be an object.
    assert_clean(&with_spec(
        &json!({"type": "object", "x-kubernetes-embedded-resource": true,
        "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object",
            "additionalProperties": {"type": "string"}}}}, "spec": {"type": "object"}}}),
    ));
}

#[test]
fn strict_mode_rejects_a_type_next_to_int_or_string() {
    let schema = with_spec(&json!({"type": "string", "x-kubernetes-int-or-string": true}));
    assert_clean(&schema);
    assert_eq!(
        strict_errors_of(&schema),
        [
            r#"openAPIV3Schema.properties[spec].type: Invalid value: "string": must be empty if x-kubernetes-int-or-string is true (strict mode)"#
        ]
    );
}

#[test]
fn int_or_string_excludes_other_extensions() {
    assert_error(
        &with_spec(
            &json!({"x-kubernetes-int-or-string": true, "x-kubernetes-preserve-unknown-fields": true}),
        ),
        "openAPIV3Schema.properties[spec].x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true",
    );
    assert_error(
        &with_spec(
            &json!({"type": "object", "x-kubernetes-int-or-string": true, "x-kubernetes-embedded-resource": true,
                           "properties": {"a": {"type": "string"}}}),
        ),
        "openAPIV3Schema.properties[spec].x-kubernetes-embedded-resource: Invalid value: true: must be false if x-kubernetes-int-or-string is true",
    );
}

fn list(extra: &Value, items: &Value) -> Value {
    let mut spec = json!({"type": "array", "items": items});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    with_spec(&spec)
}

#[test]
fn list_map_rules() {
    let item = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"},
        "sub": {"type": "object"}}});
    let p = "openAPIV3Schema.properties[spec]";
    assert_clean(&list(
        &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
        &item,
    ));
    assert_error(
        &list(&json!({"x-kubernetes-list-type": "map"}), &item),
        &format!(
            "{p}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["nope"]}),
            &item,
        ),
        &format!(
            r#"{p}.x-kubernetes-list-map-keys: Invalid value: ["nope"]: entries must all be names of item properties"#
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["sub"]}),
            &item,
        ),
        &format!(
            r#"{p}.items.properties[sub].type: Invalid value: "object": must be a scalar type if parent array's x-kubernetes-list-type is map"#
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port"]}),
            &item,
        ),
        &format!(
            "{p}.items.properties[port].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "name"]}),
            &item,
        ),
        &format!(
            r#"{p}.x-kubernetes-list-map-keys: Invalid value: ["name","name"]: must not contain duplicate entries"#
        ),
    );
    let nullable_key = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "nullable": true}}});
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
            &nullable_key,
        ),
        &format!(
            "{p}.items.properties[name].nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable"
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]}),
            &json!({"type": "string"}),
        ),
        &format!(
            r#"{p}.items.type: Invalid value: "string": must be object if parent array's x-kubernetes-list-type is map"#
        ),
    );
    assert_error(
        &list(&json!({"x-kubernetes-list-map-keys": ["name"]}), &item),
        &format!(
            "{p}.x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "atomic", "x-kubernetes-list-map-keys": ["name"]}),
            &item,
        ),
        &format!(
            r#"{p}.x-kubernetes-list-type: Invalid value: "atomic": must be map if x-kubernetes-list-map-keys is non-empty"#
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "set"}),
            &json!({"type": "string", "nullable": true}),
        ),
        &format!(
            "{p}.items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is set"
        ),
    );
}

#[test]
fn list_and_map_type_values() {
    let p = "openAPIV3Schema.properties[spec]";
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "bag"}),
            &json!({"type": "string"}),
        ),
        &format!(
            r#"{p}.x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map""#
        ),
    );
    assert_error(
        &with_spec(&json!({"type": "string", "x-kubernetes-list-type": "atomic"})),
        &format!(
            r#"{p}.type: Invalid value: "string": must be array if x-kubernetes-list-type is specified"#
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "set"}),
            &json!({"type": "object", "properties": {"a": {"type": "string"}}}),
        ),
        &format!(
            r#"{p}.items.x-kubernetes-map-type: Invalid value: "null": must be atomic as item of a list with x-kubernetes-list-type=set"#
        ),
    );
    assert_error(
        &list(
            &json!({"x-kubernetes-list-type": "set"}),
            &json!({"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}),
        ),
        &format!(
            r#"{p}.items.x-kubernetes-list-type: Invalid value: "set": must be atomic as item of a list with x-kubernetes-list-type=set"#
        ),
    );
    assert_error(
        &with_spec(&json!({"type": "object", "x-kubernetes-map-type": "loose"})),
        &format!(
            r#"{p}.x-kubernetes-map-type: Unsupported value: "loose": supported values: "atomic", "granular""#
        ),
    );
    assert_error(
        &with_spec(
            &json!({"x-kubernetes-map-type": "atomic", "x-kubernetes-preserve-unknown-fields": true}),
        ),
        &format!("{p}.type: Required value: must be object if x-kubernetes-map-type is specified"),
    );
}

#[test]
fn forbidden_keywords_and_types() {
    let p = "openAPIV3Schema.properties[spec]";
    for (keyword, value, message) in [
        ("$ref", json!("#/definitions/x"), "$ref is not supported"),
        (
            "definitions",
            json!({"x": {"type": "string"}}),
            "definitions is not supported",
        ),
        (
            "dependencies",
            json!({"a": ["b"]}),
            "dependencies is not supported",
        ),
        (
            "patternProperties",
            json!({"^a": {"type": "string"}}),
            "patternProperties is not supported",
        ),
        (
            "additionalItems",
            json!(false),
            "additionalItems is not supported",
        ),
        ("id", json!("x"), "id is not supported"),
        (
            "$schema",
            json!("http://json-schema.org/schema#"),
            "$schema is not supported",
        ),
    ] {
        let mut spec = json!({"type": "object"});
        spec[keyword] = value;
        assert_error(
            &with_spec(&spec),
            &format!("{p}.{keyword}: Forbidden: {message}"),
        );
    }
    assert_error(
        &with_spec(&json!({"type": "array", "items": {"type": "string"}, "uniqueItems": true})),
        &format!(
            "{p}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
        ),
    );
    assert_error(
        &with_spec(&json!({"type": "null"})),
        &format!("{p}.type: Forbidden: type cannot be set to null, use nullable as an alternative"),
    );
    assert_error(
        &with_spec(&json!({"type": "float"})),
        &format!(
            r#"{p}.type: Unsupported value: "float": supported values: "array", "boolean", "integer", "number", "object", "string""#
        ),
    );
    assert_error(
        &with_spec(&json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false})),
        &format!(
            "{p}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
        ),
    );
    assert_error(
        &with_spec(&json!({"type": "string", "pattern": "(unclosed"})),
        &format!(
            r#"{p}.pattern: Invalid value: "(unclosed": must be a valid regular expression, but isn't: regex parse error: (unclosed ^ error: unclosed group"#
        ),
    );
    assert_error(
        &json!({"type": "object", "nullable": true}),
        "openAPIV3Schema.nullable: Forbidden: nullable cannot be true at the root",
    );
    assert_error(
        &with_spec(&json!({"type": "object", "readOnly": true})),
        &format!(
            r#"{p}.readOnly: Forbidden: unknown field "readOnly": not a keyword of apiextensions.k8s.io/v1 JSONSchemaProps"#
        ),
    );
}

#[test]
fn validation_rule_shapes() {
    let p = "openAPIV3Schema.properties[spec].x-kubernetes-validations";
    let rules = |r: Value| {
        with_spec(
            &json!({"type": "object", "properties": {"a": {"type": "integer"},
        "m": {"type": "object", "additionalProperties": {"type": "string"}}}, "x-kubernetes-validations": r}),
        )
    };
    assert_error(
        &rules(json!([{"rule": "  "}])),
        &format!("{p}[0].rule: Required value: rule is not specified"),
    );
    assert_error(
        &rules(json!([{"rule": "true", "message": " "}])),
        &format!(r#"{p}[0].message: Invalid value: " ": message must be non-empty if specified"#),
    );
    assert_error(
        &rules(json!([{"rule": "true", "message": "a\nb"}])),
        &format!(r#"{p}[0].message: Invalid value: "a\nb": message must not contain line breaks"#),
    );
    assert_error(
        &rules(json!([{"rule": "true &&\ntrue"}])),
        &format!(
            "{p}[0].message: Required value: message must be specified if rule contains line breaks"
        ),
    );
    assert_error(
        &rules(json!([{"rule": "true", "messageExpression": " "}])),
        &format!(
            "{p}[0].messageExpression: Required value: messageExpression must be non-empty if specified"
        ),
    );
    assert_error(
        &rules(json!([{"rule": "true", "reason": "Because"}])),
        &format!(
            r#"{p}[0].reason: Unsupported value: "Because": supported values: "FieldValueDuplicate", "FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired""#
        ),
    );
    assert_error(
        &rules(json!([{"rule": "true", "fieldPath": ".b"}])),
        &format!(r#"{p}[0].fieldPath: Invalid value: ".b": fieldPath must be a valid path"#),
    );
    assert_clean(&rules(
        json!([{"rule": "true", "fieldPath": ".a"}, {"rule": "true", "fieldPath": ".m['any']"}]),
    ));
}

#[test]
fn status_subresource_restricts_the_root() {
    let opts = CheckOptions {
        status_subresource: true,
        ..CheckOptions::default()
    };
    let path = FieldPath::new("spec.validation.openAPIV3Schema");
    let with_enum =
        json!({"type": "object", "minProperties": 1, "properties": {"spec": {"type": "object"}}});
    let errors = check_structural_with(&with_enum, &path, opts);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].to_string().starts_with(
        r#"spec.validation.openAPIV3Schema: Invalid value: "": only [Description Type"#
    ));
    assert!(check_structural_with(&json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}), &path, opts).is_empty());
}

#[test]
fn parse_returns_the_typed_schema_or_all_errors() {
    let ok = StructuralSchema::parse(&with_spec(&json!({"type": "string"}))).expect("structural");
    assert_eq!(ok.root().properties["spec"].type_, "string");
    let err =
        StructuralSchema::parse(&json!({"properties": {"a": {}}})).expect_err("not structural");
    assert_eq!(err.len(), 2, "{err:#?}");
}

#[test]
fn defaults_are_checked_once_the_schema_is_structural() {
    let bad_default = json!({"type": "integer", "default": "x"});
    assert_error(
        &with_spec(&json!({"type": "object", "properties": {"n": bad_default}})),
        r#"openAPIV3Schema.properties[spec].properties[n].default: Invalid value: "string":  in body must be of type integer: "string""#,
    );
    // Upstream only looks at defaults when the schema is structural.
    let errors = errors_of(&with_spec(
        &json!({"type": "object", "properties": {"n": bad_default, "untyped": {}}}),
    ));
    assert_eq!(errors.len(), 1, "{errors:#?}");
}

#[test]
fn coerce_defaults_then_prunes_then_drops_nulls() {
    let s = StructuralSchema::parse(
        &json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "replicas": {"type": "integer", "default": 1},
        "name": {"type": "string"},
        "image": {"type": "string", "default": "busybox"}}}}}),
    )
    .expect("structural");
    let mut obj = json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"},
        "spec": {"name": null, "image": null, "extra": 1}, "status": {}});
    let pruned = s.coerce(&mut obj);
    assert_eq!(pruned, ["spec.extra", "status"]);
    assert_eq!(
        obj,
        json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"},
        "spec": {"replicas": 1, "image": "busybox"}})
    );
    assert!(s.validate(&obj).is_empty());
}
