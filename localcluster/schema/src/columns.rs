//! Printer columns and Table cells as the apiserver renders them for custom resources (upstream
//! `tableconvertor`): a `Name` column first, then the version's `additionalPrinterColumns`, or
//! a single `Age` column when it declares none.
//!
//! Cells follow `cellForJSONValue`: `string` columns print the first value the JSONPath finds
//! (objects and lists as compact JSON), `integer`/`number`/`boolean` pass values of the right JSON
//! type and drop others (`null`), and `date` columns are rendered by the server as a human
//! duration since the RFC 3339 timestamp (`5m`, `3d4h`; `<unknown>` for an empty time,
//! `<invalid>` for an unparsable one). Since this crate has no clock, callers pass `now`.

use serde_json::{Map, Value, json};

use crate::error::go_number;
use crate::jsonpath::{JsonPath, JsonPathError};

const NAME_DESCRIPTION: &str = "Name must be unique within a namespace. Is required when creating resources, although \
some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily \
intended for creation idempotence and configuration definition. Cannot be updated. More info: \
https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";

const CREATION_TIMESTAMP_DESCRIPTION: &str = "CreationTimestamp is a timestamp representing the server time when this \
object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not \
set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. \
More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

/// One additional printer column of a CRD version, with its parsed JSONPath.
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    /// `name`.
    pub name: String,
    /// `type`: `string`, `integer`, `number`, `boolean` or `date`.
    pub type_: String,
    /// `format`.
    pub format: String,
    /// `description` (upstream fills in a default naming the JSONPath).
    pub description: String,
    /// `priority` (`> 0` shows only with `-o wide`).
    pub priority: i64,
    /// `jsonPath` as written.
    pub json_path: String,
    path: JsonPath,
}

impl PrinterColumn {
    /// Reads one `additionalPrinterColumns` entry.
    pub fn from_definition(col: &Value) -> Result<Self, JsonPathError> {
        let text = |k: &str| col.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let json_path = text("jsonPath");
        let path = JsonPath::parse(&json_path)?;
        let description = match text("description") {
            d if d.is_empty() => {
                format!("Custom resource definition column (in JSONPath format): {json_path}")
            }
            d => d,
        };
        Ok(Self {
            name: text("name"),
            type_: text("type"),
            format: text("format"),
            description,
            priority: col.get("priority").and_then(Value::as_i64).unwrap_or(0),
            json_path,
            path,
        })
    }

    /// The column's `TableColumnDefinition` (`{name, type, format, description, priority}`).
    pub fn definition(&self) -> Value {
        json!({"name": self.name, "type": self.type_, "format": self.format,
               "description": self.description, "priority": self.priority})
    }

    /// The column's cell for `object`, at time `now_unix` (seconds since the epoch).
    pub fn cell(&self, object: &Value, now_unix: i64) -> Value {
        let Some(value) = self.path.find(object).into_iter().next() else {
            return Value::Null;
        };
        if value.is_null() {
            return Value::Null;
        }
        match self.type_.as_str() {
            "string" => Value::String(print_value(value)),
            "integer" => match value {
                #[allow(clippy::cast_possible_truncation)]
                Value::Number(n) => n.as_i64().map_or_else(
                    || n.as_f64().map_or(Value::Null, |f| Value::from(f as i64)),
                    Value::from,
                ),
                _ => Value::Null,
            },
            "number" => match value {
                Value::Number(_) => value.clone(),
                _ => Value::Null,
            },
            "boolean" => match value {
                Value::Bool(_) => value.clone(),
                _ => Value::Null,
            },
            "date" => value
                .as_str()
                .map_or(Value::Null, |s| Value::String(date_cell(s, now_unix))),
            _ => Value::Null,
        }
    }
}

/// How client-go's JSONPath printer prints one value: strings raw, numbers and booleans as Go
/// prints them, objects and lists as compact JSON.
fn print_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => go_number(n),
        Value::Bool(b) => b.to_string(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// The columns a CRD version serves: its `additionalPrinterColumns`, or upstream's default `Age`.
pub fn columns_for_version(version: &Value) -> Result<Vec<PrinterColumn>, JsonPathError> {
    let declared: &[Value] = version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice);
    if declared.is_empty() {
        let age = json!({"name": "Age", "type": "date", "description": CREATION_TIMESTAMP_DESCRIPTION,
                         "jsonPath": ".metadata.creationTimestamp"});
        return Ok(vec![PrinterColumn::from_definition(&age)?]);
    }
    declared
        .iter()
        .map(PrinterColumn::from_definition)
        .collect()
}

/// The Table's `columnDefinitions`: `Name`, then `columns`.
pub fn column_definitions(columns: &[PrinterColumn]) -> Vec<Value> {
    let name = json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESCRIPTION, "priority": 0});
    std::iter::once(name)
        .chain(columns.iter().map(PrinterColumn::definition))
        .collect()
}

/// One Table row's `cells`: the object's name, then one cell per column.
pub fn row_cells(columns: &[PrinterColumn], object: &Value, now_unix: i64) -> Vec<Value> {
    let name = object
        .pointer("/metadata/name")
        .cloned()
        .unwrap_or_else(|| Value::from(""));
    std::iter::once(name)
        .chain(columns.iter().map(|c| c.cell(object, now_unix)))
        .collect()
}

/// A `date` cell: upstream `ConvertToHumanReadableDateType` of the parsed timestamp.
pub fn date_cell(timestamp: &str, now_unix: i64) -> String {
    if timestamp.is_empty() || timestamp == "null" {
        return "<unknown>".to_owned();
    }
    match parse_rfc3339(timestamp) {
        Some(t) => human_duration(now_unix - t),
        None => "<invalid>".to_owned(),
    }
}

/// apimachinery's `duration.HumanDuration`: two or three significant figures (`45s`, `5m3s`,
/// `3h10m`, `2d5h`, `400d`, `3y20d`).
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    } else if seconds < 0 {
        return "0s".to_owned();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    } else if hours < 48 {
        return format!("{hours}h");
    } else if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    } else if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// Seconds since the epoch of an RFC 3339 timestamp (`2024-01-02T03:04:05.5+01:00`), as Go's
/// `time.Parse(time.RFC3339, ...)` accepts it.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let num = |x: &str| -> Option<i64> {
        x.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| x.parse().ok())
            .flatten()
    };
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (num(s.get(0..4)?)?, num(s.get(5..7)?)?, num(s.get(8..10)?)?);
    let (hour, minute, second) = (
        num(s.get(11..13)?)?,
        num(s.get(14..16)?)?,
        num(s.get(17..19)?)?,
    );
    if crate::format::check("date", s.get(0..10)?) != Some(true)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut rest = s.get(19..)?;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" => 0,
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.get(3..4) == Some(":") =>
        {
            let secs = num(z.get(1..3)?)? * 3600 + num(z.get(4..6)?)? * 60;
            if z.starts_with('-') { -secs } else { secs }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// What each Table row carries besides its cells (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `includeObject=None`: cells only.
    None,
    /// `includeObject=Metadata` (the default): a `PartialObjectMetadata`.
    #[default]
    Metadata,
    /// `includeObject=Object`: the whole object.
    Object,
}

/// A Table (`meta.k8s.io/v1`) for `objects`; the caller sets `metadata` (resourceVersion,
/// continue).
pub fn table(
    columns: &[PrinterColumn],
    objects: &[Value],
    now_unix: i64,
    include: IncludeObject,
) -> Value {
    let rows: Vec<Value> = objects
        .iter()
        .map(|o| {
            let mut row = Map::new();
            row.insert("cells".to_owned(), Value::from(row_cells(columns, o, now_unix)));
            match include {
                IncludeObject::None => {}
                IncludeObject::Metadata => {
                    let meta = o.get("metadata").cloned().unwrap_or_else(|| json!({}));
                    row.insert(
                        "object".to_owned(),
                        json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}),
                    );
                }
                IncludeObject::Object => {
                    row.insert("object".to_owned(), o.clone());
                }
            }
            Value::Object(row)
        })
        .collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
           "columnDefinitions": column_definitions(columns), "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000; // 2023-11-14T22:13:20Z

    fn column(v: &Value) -> PrinterColumn {
        PrinterColumn::from_definition(v).expect("valid column")
    }

    #[test]
    fn human_durations_match_apimachinery() {
        for (secs, text) in [
            (-5, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (119, "119s"),
            (120, "2m"),
            (303, "5m3s"),
            (600, "10m"),
            (179 * 60, "179m"),
            (3 * 3600 + 10 * 60, "3h10m"),
            (8 * 3600, "8h"),
            (47 * 3600, "47h"),
            (2 * 86_400 + 5 * 3600, "2d5h"),
            (400 * 86_400, "400d"),
            ((3 * 365 + 20) * 86_400, "3y20d"),
            (9 * 365 * 86_400, "9y"),
        ] {
            assert_eq!(human_duration(secs), text, "{secs}s");
        }
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-11-14T22:13:20Z"), Some(NOW));
        assert_eq!(parse_rfc3339("2023-11-14T23:13:20.123+01:00"), Some(NOW));
        assert_eq!(parse_rfc3339("2023-11-14 22:13:20Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2023-02-30T00:00:00Z"), None, "no such day");
        // Multi-byte characters where digits belong must not panic.
        assert_eq!(parse_rfc3339("2024-01-01T00:00:0é"), None);
        assert_eq!(parse_rfc3339("2024-01-01T00:00:00+0é:0"), None);
        assert_eq!(date_cell("2023-11-14T22:08:20Z", NOW), "5m");
        assert_eq!(date_cell("", NOW), "<unknown>");
        assert_eq!(date_cell("soon", NOW), "<invalid>");
    }

    #[test]
    fn cells_follow_the_column_type() {
        let obj = json!({"metadata": {"name": "f", "creationTimestamp": "2023-11-14T20:13:20Z"},
            "spec": {"replicas": 3, "ratio": 0.5, "on": true, "image": "busybox", "ports": [80, 81], "env": {"a": "b"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}});
        let cell = |t: &str, p: &str| {
            column(&json!({"name": "c", "type": t, "jsonPath": p})).cell(&obj, NOW)
        };
        assert_eq!(cell("string", ".spec.image"), json!("busybox"));
        assert_eq!(cell("string", ".spec.replicas"), json!("3"));
        assert_eq!(cell("string", ".spec.ports"), json!("[80,81]"));
        assert_eq!(cell("string", ".spec.env"), json!(r#"{"a":"b"}"#));
        assert_eq!(
            cell("string", r#".status.conditions[?(@.type=="Ready")].status"#),
            json!("True")
        );
        assert_eq!(cell("string", ".spec.ports[*]"), json!("80"));
        assert_eq!(cell("integer", ".spec.replicas"), json!(3));
        assert_eq!(cell("integer", ".spec.ratio"), json!(0));
        assert_eq!(cell("integer", ".spec.image"), Value::Null);
        assert_eq!(cell("number", ".spec.ratio"), json!(0.5));
        assert_eq!(cell("boolean", ".spec.on"), json!(true));
        assert_eq!(cell("boolean", ".spec.image"), Value::Null);
        assert_eq!(cell("date", ".metadata.creationTimestamp"), json!("120m"));
        assert_eq!(cell("string", ".spec.missing"), Value::Null);
    }

    #[test]
    fn versions_without_columns_get_age_and_tables_start_with_name() {
        let cols = columns_for_version(&json!({"name": "v1"})).expect("default columns");
        assert_eq!(cols.len(), 1);
        assert_eq!(
            (cols[0].name.as_str(), cols[0].type_.as_str()),
            ("Age", "date")
        );
        let declared = columns_for_version(&json!({"additionalPrinterColumns": [
            {"name": "Ready", "type": "string", "jsonPath": ".status.ready", "priority": 1}]}))
        .expect("declared columns");
        let defs = column_definitions(&declared);
        assert_eq!(defs[0]["name"], "Name");
        assert_eq!(defs[0]["format"], "name");
        assert_eq!(
            defs[1],
            json!({"name": "Ready", "type": "string", "format": "", "priority": 1,
            "description": "Custom resource definition column (in JSONPath format): .status.ready"})
        );
        let obj = json!({"metadata": {"name": "a"}, "status": {"ready": "yes"}});
        let t = table(
            &declared,
            std::slice::from_ref(&obj),
            NOW,
            IncludeObject::default(),
        );
        assert_eq!(t["kind"], "Table");
        assert_eq!(t["rows"][0]["cells"], json!(["a", "yes"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["rows"][0]["object"]["metadata"]["name"], "a");
        assert_eq!(
            table(
                &declared,
                std::slice::from_ref(&obj),
                NOW,
                IncludeObject::Object
            )["rows"][0]["object"],
            obj
        );
        assert!(
            table(&declared, &[obj], NOW, IncludeObject::None)["rows"][0]
                .get("object")
                .is_none()
        );
        assert!(
            PrinterColumn::from_definition(
                &json!({"name": "x", "type": "string", "jsonPath": ".a["})
            )
            .is_err()
        );
    }
}
