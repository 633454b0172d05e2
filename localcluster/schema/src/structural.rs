//! The structural-schema check: every rule a kube-apiserver (v1.32) applies to an
//! `apiextensions.k8s.io/v1` `openAPIV3Schema` before it accepts a CustomResourceDefinition.
//!
//! The rules come in three groups, run in upstream's order:
//! 1. per-node OpenAPI rules (`ValidateCustomResourceDefinitionOpenAPISchema`): valid types, no
//!    `uniqueItems`, `additionalProperties` exclusive with `properties`, list/map extensions,
//!    `x-kubernetes-validations` shape, no defaults in top-level metadata, ...;
//! 2. structural invariants (`schema.ValidateStructural`): types everywhere, `items` for arrays,
//!    nothing but value validations inside `allOf/anyOf/oneOf/not`, metadata restricted to
//!    `name`/`generateName`, embedded-resource and int-or-string rules, and completeness (a field
//!    named inside a junctor must be declared outside it);
//! 3. defaults (`defaulting.ValidateDefaults`), only when 2 passed: each `default` must be pruned
//!    (no unknown fields) and valid against its own schema.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::error::FieldError;
use crate::path::FieldPath;
use crate::schema::{AdditionalProperties, Schema};

/// What else is known about the schema's context.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// The CRD version enables the `status` subresource (restricts the root schema's keywords).
    pub status_subresource: bool,
    /// Also apply rules that the Kubernetes documentation states but v1.32 code does not enforce:
    /// `additionalProperties: false` is rejected everywhere (upstream only rejects it next to
    /// `properties`), completeness is checked for junctors at every level (upstream checks only
    /// the root's `allOf/anyOf/oneOf/not`), and `x-kubernetes-int-or-string` may not come with a
    /// `type` (upstream silently replaces it). Use it to prove a schema is portable.
    pub strict: bool,
}

/// A schema that passed the structural check, ready for validation, pruning and defaulting.
#[derive(Debug, Clone)]
pub struct StructuralSchema {
    root: Schema,
}

impl StructuralSchema {
    /// Checks `schema` (an `openAPIV3Schema` value) and returns it typed, or every error found.
    /// Error paths start at `openAPIV3Schema`.
    pub fn parse(schema: &Value) -> Result<Self, Vec<FieldError>> {
        Self::parse_with(
            schema,
            &FieldPath::new("openAPIV3Schema"),
            CheckOptions::default(),
        )
    }

    /// As [`StructuralSchema::parse`], with error paths under `path` and extra context.
    pub fn parse_with(
        schema: &Value,
        path: &FieldPath,
        opts: CheckOptions,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let root = Schema::parse(schema, path, &mut errors);
        errors.extend(check_parsed(&root, path, opts));
        if errors.is_empty() {
            Ok(Self { root })
        } else {
            Err(errors)
        }
    }

    /// Wraps an already-checked typed schema (for callers that ran [`check_parsed`] themselves).
    pub fn from_checked(root: Schema) -> Self {
        Self { root }
    }

    /// The root schema node.
    pub fn root(&self) -> &Schema {
        &self.root
    }

    /// Validates a custom resource (the whole object) as the apiserver does after pruning and
    /// defaulting; CEL rules are not evaluated (see [`StructuralSchema::cel_rules`]).
    pub fn validate(&self, object: &Value) -> Vec<FieldError> {
        crate::validate::validate_object(&self.root, object)
    }

    /// Validates an updated custom resource with upstream's ratcheting: errors inside parts that
    /// are unchanged from `old` are dropped (see [`crate::validate_object_update`]).
    pub fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        crate::validate::validate_object_update(&self.root, new, old)
    }

    /// The `x-kubernetes-validations` rules of this schema, which are not evaluated.
    pub fn cel_rules(&self) -> Vec<crate::validate::CelRule> {
        crate::validate::cel_rules(&self.root)
    }

    /// Prunes unknown fields of a custom resource in place (the top level is a resource root)
    /// and returns their paths, sorted.
    pub fn prune(&self, object: &mut Value) -> Vec<String> {
        crate::prune::prune(object, &self.root, true)
    }

    /// Applies the schema's defaults to a custom resource in place.
    pub fn apply_defaults(&self, object: &mut Value) {
        crate::default::apply_defaults(object, &self.root);
    }

    /// Upstream's write path before validation, in its order: default, prune unknown fields,
    /// drop non-nullable nulls without defaults, rewrite embedded resources' metadata. Returns
    /// the unknown-field paths, sorted (for `fieldValidation=Strict|Warn`). The root's metadata
    /// and validation are left to the caller.
    pub fn coerce(&self, object: &mut Value) -> Vec<String> {
        self.apply_defaults(object);
        let mut unknown = self.prune(object);
        crate::default::prune_non_nullable_nulls(object, &self.root);
        unknown.extend(crate::objectmeta::coerce_embedded(object, &self.root));
        unknown.sort();
        unknown
    }
}

/// Every structural-schema error of `schema` (an `openAPIV3Schema` value), with paths starting
/// at `openAPIV3Schema`. Empty means a kube-apiserver accepts the schema.
pub fn check_structural(schema: &Value) -> Vec<FieldError> {
    check_structural_with(
        schema,
        &FieldPath::new("openAPIV3Schema"),
        CheckOptions::default(),
    )
}

/// As [`check_structural`], with error paths under `path` and extra context.
pub fn check_structural_with(
    schema: &Value,
    path: &FieldPath,
    opts: CheckOptions,
) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let root = Schema::parse(schema, path, &mut errors);
    errors.extend(check_parsed(&root, path, opts));
    errors
}

/// The structural check on an already parsed schema (parse errors are the caller's).
pub fn check_parsed(root: &Schema, path: &FieldPath, opts: CheckOptions) -> Vec<FieldError> {
    let mut openapi = Vec::new();
    if opts.status_subresource {
        check_status_root(root, path, &mut openapi);
    }
    if root.nullable {
        openapi.push(FieldError::forbidden(
            path.child("nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let ctx = NodeContext {
        allow_defaults: true,
        disallow_reason: String::new(),
        inside_meta: false,
    };
    check_node(root, path, &ctx, true, opts, &mut openapi);

    let mut structural = Vec::new();
    invariants(root, Level::Root, path, &mut structural);
    completeness(root, path, opts.strict, &mut structural);
    structural.sort_by_key(ToString::to_string);

    let mut errors = structural;
    if errors.is_empty() {
        errors.extend(crate::default::check_defaults(root, path));
    }
    errors.extend(openapi);
    errors
}

/// Fields allowed at the root when the status subresource is on (upstream `allowedFieldsAtRootSchema`).
fn check_status_root(root: &Schema, path: &FieldPath, errors: &mut Vec<FieldError>) {
    if !root.type_.is_empty() && root.type_ != "object" {
        errors.push(FieldError::invalid(
            path.child("type"),
            Value::from(root.type_.clone()),
            r#"only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#,
        ));
        return;
    }
    let disallowed = root.nullable
        || root.default.is_some()
        || root.enum_values.is_some()
        || root.max_properties.is_some()
        || root.min_properties.is_some()
        || root.additional_properties.is_some()
        || !root.all_of.is_empty()
        || !root.any_of.is_empty()
        || !root.one_of.is_empty()
        || root.not.is_some()
        || root.x_embedded_resource
        || root.x_int_or_string
        || root.x_list_type.is_some()
        || !root.x_list_map_keys.is_empty()
        || root.x_map_type.is_some();
    if disallowed {
        errors.push(FieldError::invalid(
            path,
            Value::String(String::new()),
            "only [Description Type Format Title Maximum ExclusiveMaximum Minimum ExclusiveMinimum MaxLength \
             MinLength Pattern MaxItems MinItems UniqueItems MultipleOf Required Items Properties ExternalDocs \
             Example XPreserveUnknownFields XValidations] fields are allowed at the root of the schema if the \
             status subresource is enabled",
        ));
    }
}

/// Context of the per-node OpenAPI rules (upstream `specStandardValidatorV3`).
#[derive(Debug, Clone)]
struct NodeContext {
    allow_defaults: bool,
    disallow_reason: String,
    inside_meta: bool,
}

impl NodeContext {
    fn forbid_defaults(&self, reason: String) -> Self {
        Self {
            allow_defaults: false,
            disallow_reason: reason,
            inside_meta: self.inside_meta,
        }
    }
}

const OPENAPI_TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

#[allow(clippy::too_many_lines)] // one rule after the other, in upstream's order
fn check_node(
    s: &Schema,
    path: &FieldPath,
    ctx: &NodeContext,
    is_root: bool,
    opts: CheckOptions,
    errs: &mut Vec<FieldError>,
) {
    if !s.type_.is_empty() && !OPENAPI_TYPES.contains(&s.type_.as_str()) {
        let supported: Vec<String> = OPENAPI_TYPES.iter().map(|t| (*t).to_owned()).collect();
        errs.push(FieldError::not_supported(
            path.child("type"),
            Value::from(s.type_.clone()),
            &supported,
        ));
    }
    if s.default.is_some() && !ctx.allow_defaults {
        let mut detail = "must not be set".to_owned();
        if !ctx.disallow_reason.is_empty() {
            detail.push(' ');
            detail.push_str(&ctx.disallow_reason);
        }
        errs.push(FieldError::forbidden(path.child("default"), detail));
    }
    if s.type_ == "null" {
        errs.push(FieldError::forbidden(
            path.child("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if ctx.inside_meta && s.x_embedded_resource {
        errs.push(FieldError::forbidden(
            path.child("x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if opts.strict && s.x_int_or_string && !s.type_.is_empty() {
        errs.push(FieldError::invalid(
            path.child("type"),
            Value::from(s.type_.clone()),
            "must be empty if x-kubernetes-int-or-string is true (strict mode)",
        ));
    }
    if s.unique_items {
        errs.push(FieldError::forbidden(
            path.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }

    if let Some(ap) = &s.additional_properties {
        let conflicts = matches!(
            ap,
            AdditionalProperties::Allows(false) | AdditionalProperties::Schema(_)
        );
        if !s.properties.is_empty() && conflicts {
            errs.push(FieldError::forbidden(
                path.child("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        } else if opts.strict && matches!(ap, AdditionalProperties::Allows(false)) {
            errs.push(FieldError::forbidden(
                path.child("additionalProperties"),
                "additionalProperties cannot be set to false (documented rule, enforced in strict mode)",
            ));
        }
        if let Some(sub) = ap.schema() {
            let sub_ctx = if ctx.inside_meta {
                ctx.forbid_defaults(
                    "inside additionalProperties applying to object metadata".to_owned(),
                )
            } else {
                ctx.clone()
            };
            check_node(
                sub,
                &path.child("additionalProperties"),
                &sub_ctx,
                false,
                opts,
                errs,
            );
        }
    }

    for (name, prop) in &s.properties {
        let mut sub_ctx = ctx.clone();
        if (is_root || s.x_embedded_resource) && META_FIELDS.contains(&name.as_str()) {
            sub_ctx.inside_meta = true;
            if is_root {
                sub_ctx = sub_ctx.forbid_defaults(format!("in top-level {name}"));
            }
        }
        check_node(
            prop,
            &path.child("properties").key(name),
            &sub_ctx,
            false,
            opts,
            errs,
        );
    }
    if let Some(not) = &s.not {
        check_node(not, &path.child("not"), ctx, false, opts, errs);
    }
    for (key, list) in [
        ("allOf", &s.all_of),
        ("oneOf", &s.one_of),
        ("anyOf", &s.any_of),
    ] {
        for (i, sub) in list.iter().enumerate() {
            check_node(sub, &path.child(key).index(i), ctx, false, opts, errs);
        }
    }
    if let Some(items) = &s.items {
        check_node(items, &path.child("items"), ctx, false, opts, errs);
    }

    if s.x_preserve_unknown_fields == Some(false) {
        errs.push(FieldError::invalid(
            path.child("x-kubernetes-preserve-unknown-fields"),
            Value::Bool(false),
            "must be true or undefined",
        ));
    }
    check_map_type(s, path, errs);
    check_list_type(s, path, errs);
    check_list_map_keys(s, path, errs);
    check_validation_rules(s, path, errs);
}

fn type_required_or_invalid(
    s: &Schema,
    path: &FieldPath,
    wanted: &str,
    detail: &str,
    errs: &mut Vec<FieldError>,
) {
    if s.type_ == wanted {
        return;
    }
    if s.type_.is_empty() {
        errs.push(FieldError::required(path.child("type"), detail));
    } else {
        errs.push(FieldError::invalid(
            path.child("type"),
            Value::from(s.type_.clone()),
            detail,
        ));
    }
}

fn check_map_type(s: &Schema, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(map_type) = &s.x_map_type else {
        return;
    };
    type_required_or_invalid(
        s,
        path,
        "object",
        "must be object if x-kubernetes-map-type is specified",
        errs,
    );
    if map_type != "atomic" && map_type != "granular" {
        errs.push(FieldError::not_supported(
            path.child("x-kubernetes-map-type"),
            Value::from(map_type.clone()),
            &["atomic".to_owned(), "granular".to_owned()],
        ));
    }
}

fn check_list_type(s: &Schema, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let Some(list_type) = &s.x_list_type else {
        return;
    };
    if s.type_ == "array" {
        if list_type == "set"
            && let Some(items) = &s.items
        {
            let items_path = path.child("items");
            if items.type_ == "array" && items.x_list_type.as_deref().is_some_and(|t| t != "atomic")
            {
                errs.push(FieldError::invalid(
                    items_path.child("x-kubernetes-list-type"),
                    Value::from(items.x_list_type.clone()),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
            if items.type_ == "object" && items.x_map_type.as_deref() != Some("atomic") {
                // Upstream prints the items' list type here (a copy-paste slip); so do we.
                errs.push(FieldError::invalid(
                    items_path.child("x-kubernetes-map-type"),
                    Value::from(items.x_list_type.clone()),
                    "must be atomic as item of a list with x-kubernetes-list-type=set",
                ));
            }
        }
    } else {
        type_required_or_invalid(
            s,
            path,
            "array",
            "must be array if x-kubernetes-list-type is specified",
            errs,
        );
    }
    if !["atomic", "set", "map"].contains(&list_type.as_str()) {
        errs.push(FieldError::not_supported(
            path.child("x-kubernetes-list-type"),
            Value::from(list_type.clone()),
            &["atomic".to_owned(), "set".to_owned(), "map".to_owned()],
        ));
    }
}

fn check_list_map_keys(s: &Schema, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let keys_value = || Value::from(s.x_list_map_keys.clone());
    if !s.x_list_map_keys.is_empty() {
        match s.x_list_type.as_deref() {
            None => errs.push(FieldError::required(
                path.child("x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(other) => errs.push(FieldError::invalid(
                path.child("x-kubernetes-list-type"),
                Value::from(other),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    let list_type = s.x_list_type.as_deref();
    if list_type == Some("map") {
        if s.x_list_map_keys.is_empty() {
            errs.push(FieldError::required(
                path.child("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match &s.items {
            None => errs.push(FieldError::required(
                path.child("items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(items) if items.type_ != "object" => errs.push(FieldError::invalid(
                path.child("items").child("type"),
                Value::from(items.type_.clone()),
                "must be object if parent array's x-kubernetes-list-type is map",
            )),
            Some(items) => {
                let mut seen = BTreeSet::new();
                for k in &s.x_list_map_keys {
                    match items.properties.get(k) {
                        Some(prop) if prop.type_ == "array" || prop.type_ == "object" => {
                            errs.push(FieldError::invalid(
                                path.child("items").child("properties").key(k).child("type"),
                                Value::from(items.type_.clone()),
                                "must be a scalar type if parent array's x-kubernetes-list-type is map",
                            ));
                        }
                        Some(_) => {}
                        None => errs.push(FieldError::invalid(
                            path.child("x-kubernetes-list-map-keys"),
                            keys_value(),
                            "entries must all be names of item properties",
                        )),
                    }
                    if !seen.insert(k) {
                        errs.push(FieldError::invalid(
                            path.child("x-kubernetes-list-map-keys"),
                            keys_value(),
                            "must not contain duplicate entries",
                        ));
                    }
                }
            }
        }
    }
    // validateMapListKeysMapSet
    let (Some(items), Some(lt @ ("set" | "map"))) = (&s.items, list_type) else {
        return;
    };
    if items.nullable {
        errs.push(FieldError::forbidden(
            path.child("items").child("nullable"),
            format!("cannot be nullable when x-kubernetes-list-type is {lt}"),
        ));
    }
    if lt == "map" {
        for k in &s.x_list_map_keys {
            let Some(prop) = items.properties.get(k) else {
                continue;
            };
            let prop_path = path.child("items").child("properties").key(k);
            if !items.required.contains(k) && prop.default.is_none() {
                errs.push(FieldError::required(
                    prop_path.child("default"),
                    "this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property",
                ));
            }
            if prop.nullable {
                errs.push(FieldError::forbidden(
                    prop_path.child("nullable"),
                    "this property is in x-kubernetes-list-map-keys, so it cannot be nullable",
                ));
            }
        }
    }
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

fn check_validation_rules(s: &Schema, path: &FieldPath, errs: &mut Vec<FieldError>) {
    const REASONS: [&str; 4] = [
        "FieldValueDuplicate",
        "FieldValueForbidden",
        "FieldValueInvalid",
        "FieldValueRequired",
    ];
    for (i, rule) in s.x_validations.iter().enumerate() {
        let p = path.child("x-kubernetes-validations").index(i);
        let trimmed_rule = rule.rule.trim();
        let message = rule.message.as_deref().unwrap_or("");
        let trimmed_msg = message.trim();
        if trimmed_rule.is_empty() {
            errs.push(FieldError::required(
                p.child("rule"),
                "rule is not specified",
            ));
        } else if !message.is_empty() && trimmed_msg.is_empty() {
            errs.push(FieldError::invalid(
                p.child("message"),
                Value::from(message),
                "message must be non-empty if specified",
            ));
        } else if has_newlines(trimmed_msg) {
            errs.push(FieldError::invalid(
                p.child("message"),
                Value::from(message),
                "message must not contain line breaks",
            ));
        } else if has_newlines(trimmed_rule) && trimmed_msg.is_empty() {
            errs.push(FieldError::required(
                p.child("message"),
                "message must be specified if rule contains line breaks",
            ));
        }
        if let Some(expr) = &rule.message_expression
            && !expr.is_empty()
            && expr.trim().is_empty()
        {
            errs.push(FieldError::required(
                p.child("messageExpression"),
                "messageExpression must be non-empty if specified",
            ));
        }
        if let Some(reason) = &rule.reason
            && !REASONS.contains(&reason.as_str())
        {
            let supported: Vec<String> = REASONS.iter().map(|r| (*r).to_owned()).collect();
            errs.push(FieldError::not_supported(
                p.child("reason"),
                Value::from(reason.clone()),
                &supported,
            ));
        }
        if let Some(fp) = &rule.field_path {
            if !fp.is_empty() && fp.trim().is_empty() {
                errs.push(FieldError::invalid(
                    p.child("fieldPath"),
                    Value::from(fp.clone()),
                    "fieldPath must be non-empty if specified",
                ));
            }
            if has_newlines(fp) {
                errs.push(FieldError::invalid(
                    p.child("fieldPath"),
                    Value::from(fp.clone()),
                    "fieldPath must not contain line breaks",
                ));
            } else if !fp.trim().is_empty() && !field_path_resolves(s, fp) {
                errs.push(FieldError::invalid(
                    p.child("fieldPath"),
                    Value::from(fp.clone()),
                    "fieldPath must be a valid path",
                ));
            }
        }
    }
}

/// Whether a rule's `fieldPath` (`.a.b`, `.a['k']`, `.list[0]`) names a field of `s`.
fn field_path_resolves(s: &Schema, path: &str) -> bool {
    let mut node = s;
    let mut rest = path.trim();
    while !rest.is_empty() {
        let next = if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let (name, tail) = r.split_at(end);
            rest = tail;
            property_or_map_value(node, name)
        } else if let Some(r) = rest.strip_prefix("['") {
            let Some(end) = r.find("']") else {
                return false;
            };
            rest = &r[end + 2..];
            property_or_map_value(node, &r[..end])
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { return false };
            if r[..end].parse::<usize>().is_err() {
                return false;
            }
            rest = &r[end + 1..];
            node.items.as_deref()
        } else {
            return false;
        };
        match next {
            Some(n) => node = n,
            None => return false,
        }
    }
    true
}

fn property_or_map_value<'a>(s: &'a Schema, name: &str) -> Option<&'a Schema> {
    if name.is_empty() {
        return None;
    }
    s.properties.get(name).or_else(|| {
        s.additional_properties
            .as_ref()
            .and_then(AdditionalProperties::schema)
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Upstream `validateStructuralInvariants`.
fn invariants(s: &Schema, lvl: Level, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if s.type_ == "array" && s.items.is_none() {
        errs.push(FieldError::required(
            path.child("items"),
            "must be specified",
        ));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &path.child("items"), errs);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &path.child("properties").key(k), errs);
    }
    if let Some(ap) = &s.additional_properties {
        if lvl == Level::Root {
            errs.push(FieldError::forbidden(
                path.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Some(sub) = ap.schema() {
            invariants(sub, Level::Field, &path.child("additionalProperties"), errs);
        }
    }

    if s.x_int_or_string && s.preserves_unknown_fields() {
        errs.push(FieldError::invalid(
            path.child("x-kubernetes-preserve-unknown-fields"),
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.x_int_or_string && s.x_embedded_resource {
        errs.push(FieldError::invalid(
            path.child("x-kubernetes-embedded-resource"),
            Value::Bool(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }

    let skip_any_of = is_int_or_string_any_of(&s.any_of);
    let skip_first_all_of_any_of = s
        .all_of
        .first()
        .is_some_and(|first| is_int_or_string_any_of(&first.any_of));
    junctors(s, skip_any_of, skip_first_all_of_any_of, path, errs);

    if s.x_embedded_resource && s.type_ != "object" {
        type_required_or_invalid(
            s,
            path,
            "object",
            "must be object if x-kubernetes-embedded-resource is true",
            errs,
        );
    } else if s.type_.is_empty() && !s.x_int_or_string && !s.preserves_unknown_fields() {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(FieldError::required(path.child("type"), detail));
    }
    if s.x_embedded_resource && s.additional_properties.is_some() {
        errs.push(FieldError::forbidden(
            path.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.type_.is_empty() && s.type_ != "object" {
        errs.push(FieldError::invalid(
            path.child("type"),
            Value::from(s.type_.clone()),
            "must be object at the root",
        ));
    }

    resource_meta_invariants(s, lvl, path, errs);

    if s.x_embedded_resource && !s.preserves_unknown_fields() && s.properties.is_empty() {
        errs.push(FieldError::required(
            path.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// `kind`/`apiVersion`/`metadata` of the root and of embedded resources.
fn resource_meta_invariants(s: &Schema, lvl: Level, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let check_metadata = lvl == Level::Root || s.x_embedded_resource;
    if check_metadata {
        for field in ["kind", "apiVersion"] {
            if let Some(p) = s.properties.get(field)
                && p.type_ != "string"
            {
                errs.push(FieldError::invalid(
                    path.child("properties").key(field).child("type"),
                    Value::from(p.type_.clone()),
                    "must be string",
                ));
            }
        }
    }
    if let Some(meta) = s.properties.get("metadata") {
        let meta_path = path.child("properties").key("metadata");
        if check_metadata && meta.type_ != "object" {
            errs.push(FieldError::invalid(
                meta_path.child("type"),
                Value::from(meta.type_.clone()),
                "must be object",
            ));
        }
        if lvl == Level::Root && !metadata_only_restricts_names(meta) {
            errs.push(FieldError::forbidden(
                meta_path,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
}

/// Upstream's metadata rule: besides `type` and `default`, root metadata may only declare
/// `properties` that are exactly `name`, `generateName`, or both.
fn metadata_only_restricts_names(m: &Schema) -> bool {
    let names_only = match m.properties.len() {
        0 => true,
        1 => m.properties.contains_key("name") || m.properties.contains_key("generateName"),
        2 => m.properties.contains_key("name") && m.properties.contains_key("generateName"),
        _ => false,
    };
    names_only
        && has_no_constraints(m)
        && m.description.is_empty()
        && m.title.is_empty()
        && !m.nullable
}

/// No value validations, no `items`/`additionalProperties`, no junctors, no extensions.
fn has_no_constraints(s: &Schema) -> bool {
    s.format.is_empty()
        && s.maximum.is_none()
        && !s.exclusive_maximum
        && s.minimum.is_none()
        && !s.exclusive_minimum
        && s.max_length.is_none()
        && s.min_length.is_none()
        && s.pattern.is_none()
        && s.max_items.is_none()
        && s.min_items.is_none()
        && !s.unique_items
        && s.multiple_of.is_none()
        && s.enum_values.is_none()
        && s.max_properties.is_none()
        && s.min_properties.is_none()
        && s.required.is_empty()
        && s.items.is_none()
        && s.additional_properties.is_none()
        && s.all_of.is_empty()
        && s.any_of.is_empty()
        && s.one_of.is_empty()
        && s.not.is_none()
        && s.x_preserve_unknown_fields.is_none()
        && !s.x_embedded_resource
        && !s.x_int_or_string
        && s.x_list_type.is_none()
        && s.x_list_map_keys.is_empty()
        && s.x_map_type.is_none()
        && s.x_validations.is_empty()
}

/// `{type: t}` and nothing else that the structural form keeps.
fn is_bare_type(s: &Schema, t: &str) -> bool {
    s.type_ == t
        && has_no_constraints(s)
        && s.properties.is_empty()
        && s.description.is_empty()
        && s.title.is_empty()
        && !s.nullable
        && s.default.is_none()
}

/// `anyOf: [{type: integer}, {type: string}]`, the one place a junctor may carry `type`.
fn is_int_or_string_any_of(any_of: &[Schema]) -> bool {
    any_of.len() == 2 && is_bare_type(&any_of[0], "integer") && is_bare_type(&any_of[1], "string")
}

/// Upstream `validateValueValidation`: recurse into the junctors and check `pattern`.
fn junctors(
    s: &Schema,
    skip_any_of: bool,
    skip_first_all_of_any_of: bool,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if !skip_any_of {
        for (i, sub) in s.any_of.iter().enumerate() {
            nested(sub, false, false, &path.child("anyOf").index(i), errs);
        }
    }
    for (i, sub) in s.all_of.iter().enumerate() {
        nested(
            sub,
            skip_first_all_of_any_of && i == 0,
            false,
            &path.child("allOf").index(i),
            errs,
        );
    }
    for (i, sub) in s.one_of.iter().enumerate() {
        nested(sub, false, false, &path.child("oneOf").index(i), errs);
    }
    if let Some(not) = &s.not {
        nested(not, false, false, &path.child("not"), errs);
    }
    if let Some(p) = &s.pattern
        && let Err(e) = crate::schema::go_regex(&p.source)
    {
        errs.push(FieldError::invalid(
            path.child("pattern"),
            Value::from(p.source.clone()),
            format!(
                "must be a valid regular expression, but isn't: {}",
                first_line(&e.to_string())
            ),
        ));
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Upstream `validateNestedValueValidation`: inside a junctor only value validations may appear.
fn nested(
    v: &Schema,
    skip_any_of: bool,
    skip_all_of_any_of: bool,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    junctors(v, skip_any_of, skip_all_of_any_of, path, errs);
    if let Some(items) = &v.items {
        nested(items, false, false, &path.child("items"), errs);
    }
    for (k, p) in &v.properties {
        nested(p, false, false, &path.child("properties").key(k), errs);
    }
    let forbidden = |errs: &mut Vec<FieldError>, key: &str, detail: &str| {
        errs.push(FieldError::forbidden(path.child(key), detail));
    };
    if !v.type_.is_empty() {
        forbidden(errs, "type", "must be empty to be structural");
    }
    if v.additional_properties.is_some() {
        forbidden(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if v.default.is_some() {
        forbidden(errs, "default", "must be undefined to be structural");
    }
    if !v.title.is_empty() {
        forbidden(errs, "title", "must be empty to be structural");
    }
    if !v.description.is_empty() {
        forbidden(errs, "description", "must be empty to be structural");
    }
    if v.nullable {
        forbidden(errs, "nullable", "must be false to be structural");
    }
    if v.has_external_docs {
        forbidden(errs, "externalDocs", "must be undefined to be structural");
    }
    if v.preserves_unknown_fields() {
        forbidden(
            errs,
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        );
    }
    if v.x_embedded_resource {
        forbidden(
            errs,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        );
    }
    if v.x_int_or_string {
        forbidden(
            errs,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        );
    }
    if !v.x_list_map_keys.is_empty() {
        forbidden(
            errs,
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        );
    }
    if v.x_list_type.is_some() {
        forbidden(
            errs,
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        );
    }
    if v.x_map_type.is_some() {
        forbidden(
            errs,
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        );
    }
    if !v.x_validations.is_empty() {
        forbidden(
            errs,
            "x-kubernetes-validations",
            "must be empty to be structural",
        );
    }
    if v.properties.contains_key("metadata") {
        errs.push(FieldError::forbidden(
            path.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Upstream `validateStructuralCompleteness`: every field or item named inside a junctor must
/// also be declared by the surrounding (structural) schema. Upstream checks the root's junctors
/// only; `every_level` extends that to every node.
fn completeness(s: &Schema, path: &FieldPath, every_level: bool, errs: &mut Vec<FieldError>) {
    junctor_completeness(s, Some(s), path, path, errs);
    if every_level {
        if let Some(items) = &s.items {
            completeness(items, &path.child("items"), true, errs);
        }
        for (k, p) in &s.properties {
            completeness(p, &path.child("properties").key(k), true, errs);
        }
        if let Some(sub) = s
            .additional_properties
            .as_ref()
            .and_then(AdditionalProperties::schema)
        {
            completeness(sub, &path.child("additionalProperties"), true, errs);
        }
    }
}

fn junctor_completeness(
    v: &Schema,
    s: Option<&Schema>,
    s_path: &FieldPath,
    v_path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let has_junctors =
        v.not.is_some() || !v.all_of.is_empty() || !v.any_of.is_empty() || !v.one_of.is_empty();
    if !has_junctors {
        return;
    }
    let Some(s) = s else {
        errs.push(FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    if let Some(not) = &v.not {
        nested_completeness(not, Some(s), s_path, &v_path.child("not"), errs);
    }
    for (key, list) in [
        ("allOf", &v.all_of),
        ("anyOf", &v.any_of),
        ("oneOf", &v.one_of),
    ] {
        for (i, sub) in list.iter().enumerate() {
            nested_completeness(sub, Some(s), s_path, &v_path.child(key).index(i), errs);
        }
    }
}

fn nested_completeness(
    v: &Schema,
    s: Option<&Schema>,
    s_path: &FieldPath,
    v_path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let Some(s) = s else {
        errs.push(FieldError::required(
            s_path,
            format!("because it is defined in {v_path}"),
        ));
        return;
    };
    junctor_completeness(v, Some(s), s_path, v_path, errs);
    if let Some(items) = &v.items {
        nested_completeness(
            items,
            s.items.as_deref(),
            &s_path.child("items"),
            &v_path.child("items"),
            errs,
        );
    }
    for (k, v_field) in &v.properties {
        let field_s_path = s_path.child("properties").key(k);
        let field_v_path = v_path.child("properties").key(k);
        match s.properties.get(k) {
            None => errs.push(FieldError::required(
                field_s_path,
                format!("because it is defined in {field_v_path}"),
            )),
            Some(s_field) => {
                nested_completeness(v_field, Some(s_field), &field_s_path, &field_v_path, errs);
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
            format!(
                "{p}.x-kubernetes-embedded-resource: Forbidden: must be false to be structural"
            ),
            format!("{p}.x-kubernetes-int-or-string: Forbidden: must be false to be structural"),
            format!("{p}.x-kubernetes-list-type: Forbidden: must be undefined to be structural"),
            format!("{p}.x-kubernetes-list-map-keys: Forbidden: must be empty to be structural"),
            format!("{p}.x-kubernetes-map-type: Forbidden: must be undefined to be structural"),
            format!("{p}.x-kubernetes-validations: Forbidden: must be empty to be structural"),
            format!(
                "{p}.properties[metadata]: Forbidden: must not be specified in a nested context"
            ),
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
            &format!(
                "{p}.type: Required value: must be object if x-kubernetes-map-type is specified"
            ),
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
            &format!(
                "{p}.type: Forbidden: type cannot be set to null, use nullable as an alternative"
            ),
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
            &format!(
                r#"{p}[0].message: Invalid value: " ": message must be non-empty if specified"#
            ),
        );
        assert_error(
            &rules(json!([{"rule": "true", "message": "a\nb"}])),
            &format!(
                r#"{p}[0].message: Invalid value: "a\nb": message must not contain line breaks"#
            ),
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
        let with_enum = json!({"type": "object", "minProperties": 1, "properties": {"spec": {"type": "object"}}});
        let errors = check_structural_with(&with_enum, &path, opts);
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].to_string().starts_with(
            r#"spec.validation.openAPIV3Schema: Invalid value: "": only [Description Type"#
        ));
        assert!(check_structural_with(&json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}), &path, opts).is_empty());
    }

    #[test]
    fn parse_returns_the_typed_schema_or_all_errors() {
        let ok =
            StructuralSchema::parse(&with_spec(&json!({"type": "string"}))).expect("structural");
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
}
