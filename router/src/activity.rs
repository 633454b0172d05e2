//! Activity publishing for idle reaping (docs/reconcilers.md, "activity contract"): the router
//! writes `rivulet.dev/last-activity` (RFC 3339) on each specialized pod it uses, at most once
//! per interval (10 s) per pod, and keeps refreshing it while a request is in flight so a long
//! request is never mistaken for idleness.
//!
//! The request path only counts, with atomics on the pod's [`Usage`](crate::pods::Usage); it
//! sends the pod to the background task once, when the task is not following it yet. The task
//! reads the counters on its ticks and writes the annotations. So a request costs no message, no lock and no wake-up
//! of another thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use rivulet_api::keys::rivulet;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::pods::PodRef;

/// The request path's handle on the publisher.
#[derive(Debug, Clone)]
pub struct Activity {
    tx: mpsc::UnboundedSender<Arc<PodRef>>,
}

/// Marks a request in flight on a pod until dropped.
#[derive(Debug)]
pub struct InFlight {
    pod: Arc<PodRef>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let usage = &self.pod.usage;
        usage.in_flight.fetch_sub(1, Ordering::SeqCst);
        usage.changes.fetch_add(1, Ordering::SeqCst);
    }
}

impl Activity {
    /// A request starts on `pod`; it ends when the returned guard is dropped.
    pub fn begin(&self, pod: &Arc<PodRef>) -> InFlight {
        let usage = &pod.usage;
        usage.in_flight.fetch_add(1, Ordering::SeqCst);
        usage.changes.fetch_add(1, Ordering::SeqCst);
        // Counted before this check: if the publisher is forgetting the pod right now, either it
        // sees the new count and keeps it, or this sees `followed` false and sends it again.
        if !usage.followed.load(Ordering::SeqCst) && !usage.followed.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(pod.clone());
        }
        InFlight { pod: pod.clone() }
    }
}

/// What the publisher knows of one pod.
#[derive(Debug, Default)]
struct Published {
    /// `Usage::changes` at the last write.
    changes: u64,
    last_write: Option<Instant>,
}

/// Whether to write now: something happened since the last write (or a request is still
/// running) and the last write is at least `interval` old.
fn due(
    changed: bool,
    in_flight: u32,
    last_write: Option<Instant>,
    now: Instant,
    interval: Duration,
) -> bool {
    (changed || in_flight > 0) && last_write.is_none_or(|at| now.duration_since(at) >= interval)
}

/// Starts the publisher task; it ends when every [`Activity`] handle is dropped.
pub fn start(client: Client, interval: Duration) -> Activity {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(client, interval, rx));
    Activity { tx }
}

#[allow(
    clippy::mutable_key_type,
    reason = "PodRef hashes and compares its identity only, never its Usage counters"
)]
async fn run(client: Client, interval: Duration, mut rx: mpsc::UnboundedReceiver<Arc<PodRef>>) {
    let mut pods: HashMap<Arc<PodRef>, Published> = HashMap::new();
    // Check often enough that a first write after a quiet period is prompt, and a refresh while
    // in flight happens close to `interval`.
    let tick = (interval / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            pod = rx.recv() => match pod {
                Some(pod) => {
                    pods.entry(pod).or_default();
                }
                None => break,
            },
            _ = ticker.tick() => {
                let now = Instant::now();
                let due: Vec<(Arc<PodRef>, u64)> = pods
                    .iter()
                    .filter_map(|(pod, published)| {
                        let changes = pod.usage.changes();
                        due(changes != published.changes, pod.usage.in_flight(),
                            published.last_write, now, interval)
                            .then(|| (pod.clone(), changes))
                    })
                    .collect();
                for (pod, changes) in due {
                    if publish(&client, &pod).await {
                        pods.insert(pod, Published { changes, last_write: Some(now) });
                    } else {
                        pods.remove(&pod);
                    }
                }
                // Forget pods that are quiet and whose last write is old: nothing more to say.
                pods.retain(|pod, published| {
                    let quiet = |p: &PodRef, published: &Published| {
                        p.usage.in_flight() == 0
                            && p.usage.changes() == published.changes
                            && published.last_write.is_none_or(|at| now.duration_since(at) >= interval)
                    };
                    if !quiet(pod, published) {
                        return true;
                    }
                    pod.usage.followed.store(false, Ordering::SeqCst);
                    // A request that began meanwhile either shows here or sends the pod again.
                    !quiet(pod, published) && !pod.usage.followed.swap(true, Ordering::SeqCst)
                });
            }
        }
    }
}

/// Writes the annotation; `false` when the pod is gone.
async fn publish(client: &Client, pod: &PodRef) -> bool {
    let api: Api<Pod> = Api::namespaced(client.clone(), &pod.namespace);
    let now = k8s_openapi::jiff::Timestamp::now().to_string();
    let patch = json!({"metadata": {"annotations": {rivulet::LAST_ACTIVITY_ANNOTATION: now}}});
    match api
        .patch(&pod.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Ok(_) => true,
        Err(kube::Error::Api(status)) if status.is_not_found() => false,
        Err(error) => {
            tracing::warn!(pod = %pod.name, %error, "cannot publish pod activity");
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_throttled_but_continue_while_in_flight() {
        let interval = Duration::from_secs(10);
        let t0 = Instant::now();
        assert!(
            due(true, 1, None, t0, interval),
            "first activity is written at once"
        );
        assert!(!due(
            false,
            1,
            Some(t0),
            t0 + Duration::from_secs(5),
            interval
        ));
        assert!(
            due(false, 1, Some(t0), t0 + Duration::from_secs(10), interval),
            "a request in flight keeps refreshing"
        );
        assert!(
            !due(false, 0, Some(t0), t0 + Duration::from_secs(20), interval),
            "idle: no write"
        );
        assert!(due(
            true,
            0,
            Some(t0),
            t0 + Duration::from_secs(20),
            interval
        ));
    }

    #[tokio::test]
    async fn requests_are_counted_and_the_pod_is_sent_once() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let activity = Activity { tx };
        let pod = Arc::new(PodRef::new(
            "ns".into(),
            "p".into(),
            "127.0.0.1:8888".parse().unwrap(),
        ));
        let first = activity.begin(&pod);
        let second = activity.begin(&pod);
        assert_eq!((pod.usage.in_flight(), pod.usage.changes()), (2, 2));
        drop(first);
        drop(second);
        assert_eq!((pod.usage.in_flight(), pod.usage.changes()), (0, 4));
        assert!(Arc::ptr_eq(&rx.try_recv().unwrap(), &pod));
        assert!(rx.try_recv().is_err(), "sent once while followed");
        pod.usage.followed.store(false, Ordering::SeqCst);
        drop(activity.begin(&pod));
        assert!(rx.try_recv().is_ok(), "sent again once forgotten");
    }
}
