//! Timestamps in the formats Kubernetes uses.

use k8s_openapi::jiff::Timestamp;

/// Now as `metav1.Time` (RFC 3339, seconds).
pub fn now_rfc3339() -> String {
    Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now as RFC 3339 with nanoseconds (log lines, like the CRI log format).
pub fn now_rfc3339_nano() -> String {
    Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%9fZ")
        .to_string()
}

/// Parses an RFC 3339 timestamp.
pub fn parse(s: &str) -> Option<Timestamp> {
    s.parse().ok()
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp.
pub fn unix_seconds(s: &str) -> Option<i64> {
    parse(s).map(Timestamp::as_second)
}

/// Now, in seconds since the Unix epoch.
pub fn now_unix() -> i64 {
    Timestamp::now().as_second()
}
