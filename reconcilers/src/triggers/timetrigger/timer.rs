//! One TimeTrigger's timer task: wait for the next scheduled time, invoke, record the outcome.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::http::{HeaderName, HeaderValue, Method};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::ResourceExt;
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::validation::validate_time_trigger;
use rivulet_api::{TimeTrigger, TimeTriggerSpec};
use rivulet_routing::routes::internal_url;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::warn;

use super::reasons;
use super::schedule::Schedule;
use crate::triggers::delivery::{Invocation, Outcome};
use crate::triggers::status::StatusWriter;
use crate::triggers::tasks::{StopSignal, TriggerContext, stopped};
use rivulet_api::conditions::Wanted;

/// Field manager of the timer's status writes.
pub const FIELD_MANAGER: &str = "rivulet-timer";
/// Header naming the trigger, as Fission's timer sends it.
pub const TIMER_NAME_HEADER: HeaderName = HeaderName::from_static("x-fission-timer-name");

/// The call made on each fire (pure): Fission appends `spec.subpath` (default `/`) to the
/// function's internal URL; a subpath without a leading `/` gets one.
pub fn invocation(namespace: &str, name: &str, spec: &TimeTriggerSpec) -> Option<Invocation> {
    let function = spec.functionref.name.as_deref()?;
    let subpath = spec.subpath.as_deref().unwrap_or("/");
    let separator = if subpath.is_empty() || subpath.starts_with('/') {
        ""
    } else {
        "/"
    };
    let method = spec
        .method
        .as_deref()
        .filter(|m| !m.is_empty())
        .unwrap_or("POST");
    Some(Invocation {
        method: Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok()?,
        path: format!("{}{separator}{subpath}", internal_url(namespace, function)),
        headers: vec![(TIMER_NAME_HEADER, HeaderValue::from_str(name).ok()?)],
        body: Bytes::new(),
    })
}

/// The fire after `last` (a scheduled time), skipping any that are already past at `now`.
pub fn next_fire(schedule: &Schedule, last: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let next = schedule.next_after(last)?;
    if next < now {
        schedule.next_after(now)
    } else {
        Some(next)
    }
}

/// What a trigger fires and when, or why it cannot fire (pure).
pub fn plan(trigger: &TimeTrigger) -> Result<(Invocation, Schedule), Wanted<'static>> {
    let errors = validate_time_trigger(trigger);
    if !errors.is_empty() {
        return Err(Wanted::not_ready(REASON_INVALID_SPEC, errors.to_string()));
    }
    let reference = &trigger.spec.functionref;
    let call = (reference.reference_type == "name")
        .then(|| {
            invocation(
                &trigger.namespace().unwrap_or_default(),
                &trigger.name_any(),
                &trigger.spec,
            )
        })
        .flatten()
        .ok_or_else(|| {
            let message = format!(
                "spec.functionref.type: {:?} is not supported by time triggers; use \"name\" with spec.functionref.name",
                reference.reference_type
            );
            Wanted::not_ready(reasons::UNSUPPORTED_FUNCTION_REFERENCE, message)
        })?;
    let schedule = Schedule::parse(&trigger.spec.cron).map_err(|e| {
        let message = format!("spec.cron: invalid cron spec {:?}: {e}", trigger.spec.cron);
        Wanted::not_ready(REASON_INVALID_SPEC, message)
    })?;
    Ok((call, schedule))
}

/// Runs one trigger until `stop`.
pub async fn run(shared: Arc<TriggerContext>, trigger: Arc<TimeTrigger>, mut stop: StopSignal) {
    let mut status = StatusWriter::new(
        shared.client.clone(),
        shared.recorder.clone(),
        FIELD_MANAGER,
        trigger.as_ref(),
        trigger.status.as_ref().map(|s| &s.conditioned),
    );
    let (call, schedule) = match plan(&trigger) {
        Ok(plan) => plan,
        Err(not_ready) => {
            status.ready(not_ready).await;
            return;
        }
    };
    let Some(mut next) = schedule.next_after(Timestamp::now()) else {
        let message = format!(
            "spec.cron: {:?} has no fire time within five years",
            trigger.spec.cron
        );
        status
            .ready(Wanted::not_ready(reasons::NEVER_FIRES, message))
            .await;
        return;
    };
    status
        .ready(Wanted {
            type_: READY,
            status: true,
            reason: reasons::SCHEDULED,
            message: format!(
                "{} {} on schedule {:?}",
                call.method, call.path, trigger.spec.cron
            ),
        })
        .await;
    // Counts continue from the previous task of this trigger, which wrote them before stopping.
    let previous = status.latest(&trigger).await.status.unwrap_or_default();
    let mut record = Record {
        delivered: previous.delivered,
        failed: previous.failed,
        last_fire: None,
        last_result: previous.last_result.clone(),
    };
    if let Err(e) = status.patch(record.status(next)).await {
        warn!(trigger = %trigger.name_any(), "cannot record the next fire time: {e}");
    }

    let (done, mut outcomes) = mpsc::unbounded_channel::<(Timestamp, Outcome)>();
    let mut in_flight = JoinSet::new();
    loop {
        let wait = wall_clock_until(next);
        tokio::select! {
            () = stopped(&mut stop) => break,
            () = tokio::time::sleep(wait) => {
                let (context, call, done, fired) = (shared.clone(), call.clone(), done.clone(), next);
                in_flight.spawn(async move {
                    let outcome = context.deliver(&call).await;
                    let _ = done.send((fired, outcome));
                });
                let Some(after) = next_fire(&schedule, next, Timestamp::now()) else { break };
                next = after;
            }
            Some((fired, outcome)) = outcomes.recv() => {
                if !outcome.is_delivered() {
                    let note = format!("fire of {fired}: {}", outcome.message());
                    status.warn(reasons::INVOCATION_FAILED, &note).await;
                }
                record.add(fired, &outcome);
                if let Err(e) = status.patch(record.status(next)).await {
                    warn!(trigger = %trigger.name_any(), "cannot record a fire: {e}");
                }
            }
            Some(_) = in_flight.join_next() => {}
        }
    }
}

/// Time until `at` on the wall clock (zero when past).
fn wall_clock_until(at: Timestamp) -> Duration {
    Duration::try_from(at.duration_since(Timestamp::now())).unwrap_or(Duration::ZERO)
}

/// Counters and the last fire, as written to status.
struct Record {
    delivered: i64,
    failed: i64,
    last_fire: Option<Timestamp>,
    last_result: Option<String>,
}

impl Record {
    fn add(&mut self, fired: Timestamp, outcome: &Outcome) {
        if outcome.is_delivered() {
            self.delivered += 1;
        } else {
            self.failed += 1;
        }
        self.last_fire = Some(self.last_fire.map_or(fired, |last| last.max(fired)));
        self.last_result = Some(outcome.message());
    }

    fn status(&self, next: Timestamp) -> serde_json::Value {
        let mut status = json!({
            "nextFireTime": Time(next),
            "delivered": self.delivered,
            "failed": self.failed,
        });
        if let Some(last) = self.last_fire {
            status["lastFireTime"] = json!(Time(last));
        }
        if let Some(result) = &self.last_result {
            status["lastResult"] = json!(result);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivulet_api::FunctionReference;

    fn spec(method: Option<&str>, subpath: Option<&str>) -> TimeTriggerSpec {
        TimeTriggerSpec {
            cron: "@every 1s".into(),
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some("hello".into()),
                ..FunctionReference::default()
            },
            method: method.map(Into::into),
            subpath: subpath.map(Into::into),
        }
    }

    #[test]
    fn invocations_follow_fission() {
        let call = invocation("default", "tick", &spec(None, None)).unwrap();
        assert_eq!(call.method, Method::POST);
        assert_eq!(call.path, "/fission-function/hello/");
        assert_eq!(call.headers[0].1, "tick");
        assert!(call.body.is_empty());
        let call = invocation("demo", "tick", &spec(Some("get"), Some("api/x"))).unwrap();
        assert_eq!(call.method, Method::GET);
        assert_eq!(call.path, "/fission-function/demo/hello/api/x");
    }

    #[test]
    fn missed_fires_are_skipped() {
        let every = Schedule::parse("@every 10s").unwrap();
        let t = |s: &str| s.parse::<Timestamp>().unwrap();
        // On time: the next slot after the last one.
        assert_eq!(
            next_fire(
                &every,
                t("2026-01-01T00:00:10Z"),
                t("2026-01-01T00:00:10.2Z")
            ),
            Some(t("2026-01-01T00:00:20Z"))
        );
        // A minute late: no burst of six fires, the next one is after now.
        assert_eq!(
            next_fire(&every, t("2026-01-01T00:00:10Z"), t("2026-01-01T00:01:15Z")),
            Some(t("2026-01-01T00:01:25Z"))
        );
    }
}
