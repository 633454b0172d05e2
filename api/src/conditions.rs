//! Standard `metav1.Condition` bookkeeping shared by the reconcilers and the router (pure).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// A condition to report, without timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wanted<'a> {
    /// Condition type, for example `Ready`.
    pub type_: &'a str,
    /// `true` → `"True"`, `false` → `"False"`.
    pub status: bool,
    /// CamelCase reason.
    pub reason: &'a str,
    /// Human-readable message naming the field and the fix when something is wrong.
    pub message: String,
}

impl Wanted<'_> {
    /// `Ready=False` for `reason`, with a message naming the field and the fix.
    pub fn not_ready(reason: &str, message: String) -> Wanted<'_> {
        Wanted {
            type_: crate::keys::conditions::READY,
            status: false,
            reason,
            message,
        }
    }
}

/// Sets `wanted` in `conditions`, keeping `lastTransitionTime` when the status did not change,
/// so an unchanged object produces an identical status (and no write).
pub fn set(
    conditions: &mut Vec<Condition>,
    wanted: Wanted<'_>,
    generation: Option<i64>,
    now: &Time,
) {
    let status = if wanted.status { "True" } else { "False" }.to_owned();
    let last_transition_time = conditions
        .iter()
        .find(|c| c.type_ == wanted.type_ && c.status == status)
        .map_or_else(|| now.clone(), |c| c.last_transition_time.clone());
    let condition = Condition {
        type_: wanted.type_.to_owned(),
        status,
        reason: wanted.reason.to_owned(),
        // The API server rejects condition messages over 32 KiB.
        message: truncate(wanted.message, 32 * 1024),
        observed_generation: generation,
        last_transition_time,
    };
    match conditions.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => *existing = condition,
        None => conditions.push(condition),
    }
}

fn truncate(mut message: String, max: usize) -> String {
    if message.len() > max {
        let mut cut = max;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        serde_json::from_value(serde_json::Value::String(s.into())).unwrap()
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let t1 = time("2026-01-01T00:00:00Z");
        let t2 = time("2026-01-01T00:05:00Z");
        let mut conditions = Vec::new();
        let ready = |status, reason: &'static str| Wanted {
            type_: "Ready",
            status,
            reason,
            message: "m".into(),
        };
        set(&mut conditions, ready(false, "PoolNotReady"), Some(1), &t1);
        set(&mut conditions, ready(false, "PoolScaling"), Some(2), &t2);
        assert_eq!(conditions.len(), 1);
        assert_eq!(
            conditions[0].last_transition_time, t1,
            "same status keeps the time"
        );
        assert_eq!(conditions[0].reason, "PoolScaling");
        set(&mut conditions, ready(true, "PoolReady"), Some(2), &t2);
        assert_eq!(conditions[0].last_transition_time, t2);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("aé".repeat(3), 4), "aéa");
    }
}
