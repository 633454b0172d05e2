//! `meta.k8s.io/v1 Table` responses for `kubectl get` (reference/apiserver.md §1.4).

use serde_json::{Value, json};

use crate::resources::{Column, ResourceInfo};
use crate::util;

/// What each row carries in `object` (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Include {
    None,
    Metadata,
    Object,
}

impl Include {
    pub fn parse(v: Option<&str>) -> Include {
        match v {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// Evaluate a printer column's JSONPath on an object.
fn column_value(column: &Column, obj: &Value) -> Option<Value> {
    crate::jsonpath::evaluate(&column.json_path, obj)
}

/// A cell as `kubectl get` prints it; wrong types are omitted (DOC-crd "Additional printer columns").
fn cell(column: &Column, obj: &Value, now: i64) -> Value {
    let Some(v) = column_value(column, obj) else {
        return Value::Null;
    };
    match column.kind.as_str() {
        "integer" => v.as_i64().map_or(Value::Null, |i| json!(i)),
        "number" => v.as_f64().map_or(Value::Null, |f| json!(f)),
        "boolean" => v.as_bool().map_or(Value::Null, Value::Bool),
        "date" => v
            .as_str()
            .and_then(util::parse_rfc3339)
            .map_or(Value::Null, |t| Value::String(util::human_age(now - t))),
        _ => match v {
            Value::String(s) => Value::String(s),
            Value::Null => Value::Null,
            other => Value::String(other.to_string()),
        },
    }
}

pub fn column_definitions(info: &ResourceInfo) -> Vec<Value> {
    let mut defs = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    })];
    for c in &info.columns {
        defs.push(json!({"name": c.name, "type": if c.kind == "date" { "string" } else { c.kind.as_str() }, "format": c.format, "description": c.description, "priority": c.priority}));
    }
    defs
}

/// One row of the table.
pub fn row(info: &ResourceInfo, obj: &Value, include: Include, now: i64) -> Value {
    let mut cells = vec![obj["metadata"]["name"].clone()];
    cells.extend(info.columns.iter().map(|c| cell(c, obj, now)));
    let mut row = json!({"cells": cells});
    match include {
        Include::None => {}
        Include::Metadata => row["object"] = crate::api::read::partial_metadata(obj),
        Include::Object => row["object"] = obj.clone(),
    }
    row
}

/// A Table of `objects` with list metadata.
pub fn table(info: &ResourceInfo, objects: &[Value], list_meta: &Value, include: Include) -> Value {
    let now = util::unix_now();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": column_definitions(info),
        "rows": objects.iter().map(|o| row(info, o, include, now)).collect::<Vec<_>>(),
    })
}
