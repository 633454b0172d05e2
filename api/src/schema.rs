//! Schema helpers for fields whose OpenAPI shape schemars cannot infer from the Rust type.

use schemars::{Schema, SchemaGenerator, json_schema};

/// `conditions`: a list of standard `metav1.Condition`, merged by `type` (as upstream declares it),
/// so server-side apply from several managers keeps each other's conditions.
pub fn conditions(generator: &mut SchemaGenerator) -> Schema {
    let item =
        generator.subschema_for::<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>();
    json_schema!({
        "type": "array",
        "description": "Standard Kubernetes conditions; `Ready` is always present once reconciled.",
        "items": item,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
    })
}

/// Base64 length of the largest literal archive (256 KiB decoded, padded).
const LITERAL_BASE64_MAX: usize = crate::defaults::ARCHIVE_LITERAL_SIZE_LIMIT.div_ceil(3) * 4;

/// `literal`: base64 bytes (`format: byte`), at most 256 KiB once decoded.
pub fn literal_bytes(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "format": "byte",
        "maxLength": LITERAL_BASE64_MAX,
    })
}

/// `methods`: a list of HTTP methods Fission accepts.
pub fn http_methods(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "nullable": true,
        "items": { "type": "string", "enum": crate::defaults::HTTP_METHODS },
    })
}

/// Container transform for structs whose fields carry `#[serde(default)]` so that absent keys
/// deserialize: schemars turns those into schema `default`s, which an API server would inject into
/// every stored object (changing what users wrote). Removes them from the direct properties.
pub fn without_property_defaults(schema: &mut Schema) {
    if let Some(properties) = schema
        .get_mut("properties")
        .and_then(serde_json::Value::as_object_mut)
    {
        for property in properties.values_mut() {
            if let Some(property) = property.as_object_mut() {
                property.remove("default");
            }
        }
    }
}
