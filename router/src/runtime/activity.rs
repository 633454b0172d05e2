//! Activity publishing for idle reaping (docs/reconcilers.md, "activity contract"): the router
//! writes `rivulet.dev/last-activity` (RFC 3339) on each specialized pod it uses, at most once
//! per interval (10 s) per pod, and keeps refreshing it while a request is in flight so a long
//! request is never mistaken for idleness.
//!
//! The request path only sends a message on an unbounded channel (no await, no API call); a
//! background task owns the per-pod bookkeeping and the patches.

use std::collections::HashMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use rivulet_api::keys::rivulet;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use std::sync::Arc;

use super::pods::PodRef;

enum Event {
    Begin(Arc<PodRef>),
    End(Arc<PodRef>),
}

/// The request path's handle on the publisher.
#[derive(Debug, Clone)]
pub struct Activity {
    tx: mpsc::UnboundedSender<Event>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Begin(p) => write!(f, "Begin({}/{})", p.namespace, p.name),
            Self::End(p) => write!(f, "End({}/{})", p.namespace, p.name),
        }
    }
}

/// Marks a request in flight on a pod until dropped.
#[derive(Debug)]
pub struct InFlight {
    tx: mpsc::UnboundedSender<Event>,
    pod: Option<Arc<PodRef>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(pod) = self.pod.take() {
            let _ = self.tx.send(Event::End(pod));
        }
    }
}

impl Activity {
    /// A request starts on `pod`; it ends when the returned guard is dropped.
    pub fn begin(&self, pod: &Arc<PodRef>) -> InFlight {
        let _ = self.tx.send(Event::Begin(pod.clone()));
        InFlight {
            tx: self.tx.clone(),
            pod: Some(pod.clone()),
        }
    }
}

#[derive(Debug, Default)]
struct PodActivity {
    in_flight: u32,
    /// A request began or ended since the last write.
    dirty: bool,
    last_write: Option<Instant>,
}

impl PodActivity {
    /// Whether to write now: something happened (or a request is still running) and the last
    /// write is at least `interval` old.
    fn due(&self, now: Instant, interval: Duration) -> bool {
        (self.dirty || self.in_flight > 0)
            && self
                .last_write
                .is_none_or(|at| now.duration_since(at) >= interval)
    }
}

/// Starts the publisher task; it ends when every [`Activity`] handle and guard is dropped.
pub fn start(client: Client, interval: Duration) -> Activity {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(client, interval, rx));
    Activity { tx }
}

async fn run(client: Client, interval: Duration, mut rx: mpsc::UnboundedReceiver<Event>) {
    let mut pods: HashMap<Arc<PodRef>, PodActivity> = HashMap::new();
    // Check often enough that a first write after a quiet period is prompt, and a refresh while
    // in flight happens close to `interval`.
    let tick = (interval / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut ticker = tokio::time::interval(tick);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = rx.recv() => match event {
                Some(Event::Begin(pod)) => {
                    let entry = pods.entry(pod).or_default();
                    entry.in_flight += 1;
                    entry.dirty = true;
                }
                Some(Event::End(pod)) => {
                    let entry = pods.entry(pod).or_default();
                    entry.in_flight = entry.in_flight.saturating_sub(1);
                    entry.dirty = true;
                }
                None => break,
            },
            _ = ticker.tick() => {
                let now = Instant::now();
                let due: Vec<Arc<PodRef>> = pods
                    .iter()
                    .filter(|(_, a)| a.due(now, interval))
                    .map(|(p, _)| p.clone())
                    .collect();
                for pod in due {
                    let gone = !publish(&client, &pod).await;
                    if gone {
                        pods.remove(&pod);
                    } else if let Some(entry) = pods.get_mut(&pod) {
                        entry.dirty = false;
                        entry.last_write = Some(now);
                    }
                }
                // Forget pods that are quiet and whose last write is old: nothing more to say.
                pods.retain(|_, a| a.in_flight > 0 || a.dirty
                    || a.last_write.is_some_and(|at| now.duration_since(at) < interval));
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
        let mut a = PodActivity {
            in_flight: 1,
            dirty: true,
            last_write: None,
        };
        assert!(a.due(t0, interval), "first activity is written at once");
        a.dirty = false;
        a.last_write = Some(t0);
        assert!(!a.due(t0 + Duration::from_secs(5), interval));
        assert!(
            a.due(t0 + Duration::from_secs(10), interval),
            "a request in flight keeps refreshing"
        );
        a.in_flight = 0;
        assert!(
            !a.due(t0 + Duration::from_secs(20), interval),
            "idle: no write"
        );
        a.dirty = true;
        assert!(a.due(t0 + Duration::from_secs(20), interval));
    }
}
