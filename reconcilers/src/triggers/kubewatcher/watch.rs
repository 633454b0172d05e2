//! One trigger's watch: list (only for a new subscription), watch from the checkpoint, deliver
//! each event in order, and record progress in the trigger's status so that a restarted
//! controller resumes instead of replaying.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures::TryStreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{DynamicObject, ListParams, WatchEvent, WatchParams};
use kube::{Api, ResourceExt};
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::validation::validate_kubernetes_watch_trigger;
use rivulet_api::{DeliveredEvent, KubernetesWatchTrigger, WatchDelivery};
use rivulet_routing::routes::internal_url;
use tokio::time::Instant;
use tracing::{debug, warn};

use super::reasons;
use super::subscription::{Subscription, invocation, newer_than};
use crate::triggers::delivery::Outcome;
use crate::triggers::status::StatusWriter;
use crate::triggers::tasks::{StopSignal, TriggerContext, stopped};
use rivulet_api::conditions::Wanted;

/// Field manager of the kubewatcher's status writes.
pub const FIELD_MANAGER: &str = "rivulet-kubewatcher";
/// Progress is written at most this often while events flow (and when the watch stops).
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Server-side watch timeout; the watch is then resumed from the checkpoint.
const WATCH_TIMEOUT_SECONDS: u32 = 290;

/// Why one watch cycle ended early.
#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("listing {what}: {source}")]
    List { what: String, source: kube::Error },
    #[error("watching {what}: {source}")]
    Watch { what: String, source: kube::Error },
    #[error("watching {what}: the API server said {message} ({code})")]
    Stream {
        what: String,
        code: u16,
        message: String,
    },
}

/// Runs one trigger until `stop`.
pub async fn run(
    shared: Arc<TriggerContext>,
    trigger: Arc<KubernetesWatchTrigger>,
    mut stop: StopSignal,
) {
    let mut status = StatusWriter::new(
        shared.client.clone(),
        shared.recorder.clone(),
        FIELD_MANAGER,
        trigger.as_ref(),
        trigger.status.as_ref().map(|s| &s.conditioned),
    );
    let errors = validate_kubernetes_watch_trigger(&trigger);
    if !errors.is_empty() {
        status
            .ready(Wanted::not_ready(REASON_INVALID_SPEC, errors.to_string()))
            .await;
        return;
    }
    let reference = &trigger.spec.functionref;
    let Some(function) = reference
        .name
        .clone()
        .filter(|_| reference.reference_type == "name")
    else {
        let message = format!(
            "spec.functionref.type: {:?} is not supported by watch triggers; use \"name\" with spec.functionref.name",
            reference.reference_type
        );
        status
            .ready(Wanted::not_ready(
                reasons::UNSUPPORTED_FUNCTION_REFERENCE,
                message,
            ))
            .await;
        return;
    };
    let Some(subscription) = Subscription::of(&trigger.spec) else {
        return; // unreachable: validation checked spec.type
    };
    let mut watch = Watch {
        objects: Api::namespaced_with(
            shared.client.clone(),
            &subscription.namespace,
            &subscription.kind.api_resource(),
        ),
        path: internal_url(&trigger.namespace().unwrap_or_default(), &function),
        function,
        progress: Progress::default(),
        dirty: false,
        last_flush: Instant::now(),
        subscription,
        status,
        shared,
    };
    // The previous task of this trigger flushed its progress before this one started.
    watch.progress = Progress::resume(
        &watch.subscription.id(),
        watch
            .status
            .latest(&trigger)
            .await
            .status
            .and_then(|s| s.delivery),
    );
    watch.run(&mut stop).await;
}

/// Delivery progress of the current subscription.
#[derive(Clone, Debug, Default, PartialEq)]
struct Progress(WatchDelivery);

impl Progress {
    /// Continues `recorded` when it belongs to `subscription`, else starts afresh (a new
    /// subscription begins with the current objects, as Fission's watches do).
    fn resume(subscription: &str, recorded: Option<WatchDelivery>) -> Self {
        match recorded {
            Some(delivery) if delivery.subscription == subscription => Self(delivery),
            _ => Self(WatchDelivery {
                subscription: subscription.to_owned(),
                ..WatchDelivery::default()
            }),
        }
    }

    fn record(&mut self, event_type: &str, object: &DynamicObject, outcome: &Outcome) {
        if outcome.is_delivered() {
            self.0.delivered += 1;
        } else {
            self.0.failed += 1;
        }
        self.0.last_event = Some(DeliveredEvent {
            event_type: event_type.to_owned(),
            name: object.name_any(),
            resource_version: object.resource_version().unwrap_or_default(),
            time: Some(Time(jiff::Timestamp::now())),
            outcome: if outcome.is_delivered() {
                "Delivered"
            } else {
                "Failed"
            }
            .into(),
            message: outcome.message(),
        });
    }
}

struct Watch {
    shared: Arc<TriggerContext>,
    objects: Api<DynamicObject>,
    subscription: Subscription,
    function: String,
    path: String,
    status: StatusWriter<KubernetesWatchTrigger>,
    progress: Progress,
    dirty: bool,
    last_flush: Instant,
}

impl Watch {
    async fn run(&mut self, stop: &mut StopSignal) {
        let mut delays = retry_delays();
        loop {
            // The cycle watches `stop` itself, between deliveries: a delivery in flight when the
            // stop comes is finished and recorded, so a graceful restart replays nothing.
            let ended = self.cycle(stop).await;
            if *stop.borrow() {
                break;
            }
            let delay = match ended {
                Ok(()) => {
                    delays = retry_delays();
                    continue;
                }
                Err(e) => {
                    warn!(function = %self.function, "{e}");
                    self.status
                        .ready(Wanted::not_ready(reasons::WATCH_FAILED, e.to_string()))
                        .await;
                    delays.next().unwrap_or(Duration::from_secs(30))
                }
            };
            tokio::select! {
                () = stopped(stop) => break,
                () = tokio::time::sleep(delay) => {}
            }
        }
        self.flush().await;
    }

    /// Lists when there is no checkpoint, then watches from it until the server ends the watch.
    async fn cycle(&mut self, stop: &mut StopSignal) -> Result<(), WatchError> {
        if self.progress.0.resource_version.is_empty() {
            // Cut short by a stop, the list is delivered again after the restart (its checkpoint
            // only moves at the end): at-least-once, as after a crash.
            tokio::select! {
                () = stopped(stop) => return Ok(()),
                listed = self.list_and_deliver(None) => listed?,
            }
        }
        let mut params = WatchParams::default().timeout(WATCH_TIMEOUT_SECONDS);
        if let Some(selector) = &self.subscription.selector {
            params = params.labels(selector);
        }
        let checkpoint = self.progress.0.resource_version.clone();
        let watched = tokio::select! {
            () = stopped(stop) => return Ok(()),
            watched = self.objects.watch(&params, &checkpoint) => watched,
        };
        let events = match watched {
            Ok(events) => events,
            Err(kube::Error::Api(status)) if status.code == 410 => {
                return self.expired(&checkpoint).await;
            }
            Err(source) => {
                return Err(WatchError::Watch {
                    what: self.subscription.describe(),
                    source,
                });
            }
        };
        futures::pin_mut!(events);
        self.status
            .ready(Wanted {
                type_: READY,
                status: true,
                reason: reasons::WATCHING,
                message: format!(
                    "delivering events of {} to function {}",
                    self.subscription.describe(),
                    self.function
                ),
            })
            .await;
        loop {
            let flush_at = self.last_flush + FLUSH_EVERY;
            let next = tokio::select! {
                () = stopped(stop) => return Ok(()),
                next = events.try_next() => next,
                () = tokio::time::sleep_until(flush_at), if self.dirty => {
                    self.flush().await;
                    continue;
                }
            };
            let event = next.map_err(|source| WatchError::Watch {
                what: self.subscription.describe(),
                source,
            })?;
            match event {
                None => return Ok(()),
                Some(WatchEvent::Added(object)) => self.deliver("ADDED", &object, true).await,
                Some(WatchEvent::Modified(object)) => self.deliver("MODIFIED", &object, true).await,
                Some(WatchEvent::Deleted(object)) => self.deliver("DELETED", &object, true).await,
                Some(WatchEvent::Bookmark(bookmark)) => {
                    self.advance(Some(bookmark.metadata.resource_version));
                }
                Some(WatchEvent::Error(status)) if status.code == 410 => {
                    return self.expired(&checkpoint_of(&self.progress)).await;
                }
                Some(WatchEvent::Error(status)) => {
                    return Err(WatchError::Stream {
                        what: self.subscription.describe(),
                        code: status.code,
                        message: status.message,
                    });
                }
            }
            if self.last_flush.elapsed() >= FLUSH_EVERY {
                self.flush().await;
            }
        }
    }

    /// The API server no longer has the events after the checkpoint: list, and deliver as
    /// `ADDED` the objects changed since (deletions in the gap cannot be recovered).
    async fn expired(&mut self, checkpoint: &str) -> Result<(), WatchError> {
        let message = format!(
            "the API server no longer holds the events of {} after resourceVersion {checkpoint}; objects changed since are delivered as ADDED, deletions in between are lost",
            self.subscription.describe()
        );
        self.status
            .warn(reasons::WATCH_HISTORY_EXPIRED, &message)
            .await;
        self.list_and_deliver(Some(checkpoint.to_owned())).await
    }

    /// Delivers the current objects as `ADDED` (those changed after `since`, when given), then
    /// moves the checkpoint to the list's resourceVersion.
    async fn list_and_deliver(&mut self, since: Option<String>) -> Result<(), WatchError> {
        let mut params = ListParams::default();
        if let Some(selector) = &self.subscription.selector {
            params = params.labels(selector);
        }
        let list = self
            .objects
            .list(&params)
            .await
            .map_err(|source| WatchError::List {
                what: self.subscription.describe(),
                source,
            })?;
        for object in &list.items {
            let rv = object.resource_version().unwrap_or_default();
            if since.as_deref().is_none_or(|since| newer_than(&rv, since)) {
                self.deliver("ADDED", object, false).await;
            }
        }
        self.advance(list.metadata.resource_version);
        self.flush().await;
        Ok(())
    }

    /// Delivers one event; `in_order` (watch events, which arrive in resourceVersion order)
    /// moves the checkpoint to the object's resourceVersion. List items do not arrive in that
    /// order, so a listing moves the checkpoint only once it is complete.
    async fn deliver(&mut self, event_type: &str, object: &DynamicObject, in_order: bool) {
        let outcome = match invocation(&self.path, event_type, self.subscription.kind, object) {
            Ok(call) => self.shared.deliver(&call).await,
            Err(e) => Outcome::Exhausted {
                attempts: 0,
                last_error: format!("cannot encode the object: {e}"),
            },
        };
        debug!(function = %self.function, event_type, object = %object.name_any(), "{}", outcome.message());
        if !outcome.is_delivered() {
            let note = format!(
                "{event_type} {} {}: {}",
                self.subscription.kind.kind(),
                object.name_any(),
                outcome.message()
            );
            self.status.warn(reasons::DELIVERY_FAILED, &note).await;
        }
        self.progress.record(event_type, object, &outcome);
        if in_order {
            self.advance(object.resource_version());
        }
        self.dirty = true;
    }

    fn advance(&mut self, resource_version: Option<String>) {
        if let Some(rv) = resource_version.filter(|rv| !rv.is_empty())
            && self.progress.0.resource_version != rv
        {
            self.progress.0.resource_version = rv;
            self.dirty = true;
        }
    }

    async fn flush(&mut self) {
        if !self.dirty {
            return;
        }
        let delivery = serde_json::to_value(&self.progress.0).unwrap_or_default();
        match self
            .status
            .patch(serde_json::json!({"delivery": delivery}))
            .await
        {
            Ok(()) => self.dirty = false,
            Err(e) => warn!(function = %self.function, "cannot record delivery progress: {e}"),
        }
        self.last_flush = Instant::now();
    }
}

fn checkpoint_of(progress: &Progress) -> String {
    progress.0.resource_version.clone()
}

fn retry_delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(30))
        .without_max_times()
        .with_jitter()
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_resumes_only_its_own_subscription() {
        let recorded = WatchDelivery {
            subscription: "demo/pod".into(),
            resource_version: "42".into(),
            delivered: 7,
            ..WatchDelivery::default()
        };
        let same = Progress::resume("demo/pod", Some(recorded.clone()));
        assert_eq!(same.0.resource_version, "42");
        assert_eq!(same.0.delivered, 7);
        let other = Progress::resume("demo/pod?app=x", Some(recorded));
        assert_eq!(other.0.resource_version, "");
        assert_eq!(other.0.subscription, "demo/pod?app=x");
        assert_eq!(other.0.delivered, 0);
    }
}
