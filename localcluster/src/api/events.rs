//! events.k8s.io/v1 Events are stored as core/v1 Events (one store, as upstream) and converted
//! on the way in and out (KK `pkg/apis/events/v1/conversion.go`).

use serde_json::{Map, Value};

/// (events.k8s.io/v1 field, core/v1 field) pairs that only differ by name.
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

fn rename(obj: &Value, api_version: &str, from_new: bool) -> Value {
    let Some(map) = obj.as_object() else {
        return obj.clone();
    };
    let mut out = Map::new();
    for (k, v) in map {
        let renamed = RENAMES
            .iter()
            .find(|(new, old)| if from_new { new == k } else { old == k })
            .map_or(k.as_str(), |(new, old)| if from_new { old } else { new });
        out.insert(renamed.to_string(), v.clone());
    }
    out.insert("apiVersion".into(), Value::String(api_version.into()));
    out.insert("kind".into(), Value::String("Event".into()));
    Value::Object(out)
}

/// events.k8s.io/v1 → core/v1 (storage form). The core view's `firstTimestamp`,
/// `lastTimestamp` and `count` are filled from `eventTime` and `series` when the writer left
/// them out, so `kubectl get events --sort-by=.lastTimestamp` and the default columns work for
/// events written through events.k8s.io/v1 (as kube-apiserver's events show them).
pub fn to_core(event: &Value) -> Value {
    let mut core = rename(event, "v1", true);
    if let Some(map) = core.as_object_mut() {
        fill_legacy_times(map);
    }
    core
}

fn fill_legacy_times(map: &mut Map<String, Value>) {
    let present = |map: &Map<String, Value>, k: &str| map.get(k).is_some_and(|v| !v.is_null());
    let series = map.get("series").and_then(Value::as_object);
    let last_observed = series
        .and_then(|s| s.get("lastObservedTime"))
        .and_then(Value::as_str)
        .map(seconds);
    let series_count = series.and_then(|s| s.get("count")).cloned();
    let Some(event_time) = map.get("eventTime").and_then(Value::as_str).map(seconds) else {
        return;
    };
    if !present(map, "firstTimestamp") {
        map.insert("firstTimestamp".into(), Value::String(event_time.clone()));
    }
    if let Some(last) = last_observed {
        map.insert("lastTimestamp".into(), Value::String(last));
    } else if !present(map, "lastTimestamp") {
        map.insert("lastTimestamp".into(), Value::String(event_time));
    }
    if let Some(count) = series_count {
        map.insert("count".into(), count);
    } else if !present(map, "count") {
        map.insert("count".into(), Value::from(1));
    }
}

/// A MicroTime (`2026-01-02T03:04:05.123456Z`) as a Time (`2026-01-02T03:04:05Z`).
fn seconds(micro: &str) -> String {
    match (micro.find('.'), micro.rfind(['Z', '+', '-'])) {
        (Some(dot), Some(zone)) if zone > dot => format!("{}{}", &micro[..dot], &micro[zone..]),
        _ => micro.to_string(),
    }
}

/// core/v1 (storage form) → events.k8s.io/v1.
pub fn from_core(event: &Value) -> Value {
    rename(event, "events.k8s.io/v1", false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip() {
        let e = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "regarding": {"name": "p"}, "note": "hi", "reason": "R"});
        let core = to_core(&e);
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hi");
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(from_core(&core), e);
    }

    #[test]
    fn legacy_times_come_from_event_time_and_series() {
        let single = to_core(&json!({"eventTime": "2026-12-06T10:00:01.250000Z", "reason": "R"}));
        assert_eq!(single["firstTimestamp"], "2026-12-06T10:00:01Z");
        assert_eq!(single["lastTimestamp"], "2026-12-06T10:00:01Z");
        assert_eq!(single["count"], 1);
        let series = to_core(&json!({
            "eventTime": "2026-12-06T10:00:01.000000Z",
            "series": {"count": 7, "lastObservedTime": "2026-12-06T10:05:00.999999Z"},
            "deprecatedFirstTimestamp": "2026-12-06T09:59:00Z"
        }));
        assert_eq!(series["firstTimestamp"], "2026-12-06T09:59:00Z");
        assert_eq!(series["lastTimestamp"], "2026-12-06T10:05:00Z");
        assert_eq!(series["count"], 7);
        // A core/v1 writer's own values stay.
        let legacy = to_core(&json!({"lastTimestamp": "2020-01-01T00:00:00Z", "count": 3}));
        assert_eq!(legacy["lastTimestamp"], "2020-01-01T00:00:00Z");
        assert_eq!(legacy["count"], 3);
    }
}
