//! One long-running task per trigger object (a watch subscription, a timer), kept in step with
//! the objects: started when an object appears, restarted when its spec changes, stopped when it
//! is deleted, and all stopped on shutdown.
//!
//! Triggers are not level-triggered reconciles: their work is an endless loop per object. The
//! supervisor follows a raw watcher stream, so a relist (`Init`…`InitDone`) also stops the tasks
//! of objects deleted while the watch was down.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::support::Metrics;
use crate::triggers::delivery::{Deliverer, DeliveryConfig, Invocation, Outcome};

/// What every task of one trigger kind shares.
#[derive(Clone)]
pub struct TriggerContext {
    /// API client.
    pub client: Client,
    /// Delivery to the router.
    pub deliverer: Deliverer,
    /// Event recorder (reporting as the kind's field manager).
    pub recorder: Recorder,
    /// Where deliveries are counted.
    pub metrics: Metrics,
    /// Metrics label of the trigger kind (`kubewatcher`, `timer`).
    pub trigger: &'static str,
}

impl TriggerContext {
    /// A context whose Events report as `controller`, whose calls go to `calls.router_url`
    /// and are counted under `trigger`.
    pub fn new(
        client: Client,
        calls: &TriggerCalls,
        controller: &str,
        trigger: &'static str,
    ) -> Self {
        let reporter = Reporter {
            controller: controller.into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            deliverer: Deliverer::new(&calls.router_url, calls.delivery.clone())
                .with_authorization(calls.authorization.clone()),
            metrics: calls.metrics.clone(),
            trigger,
            client,
        }
    }

    /// Delivers one call and counts its outcome.
    pub async fn deliver(&self, call: &Invocation) -> Outcome {
        let started = std::time::Instant::now();
        let outcome = self.deliverer.deliver(call).await;
        self.metrics
            .record_delivery(self.trigger, outcome.metric_label(), started.elapsed());
        outcome
    }
}

impl Debug for TriggerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TriggerContext")
            .field("deliverer", &self.deliverer)
            .finish_non_exhaustive()
    }
}

/// Time a stopped task gets to write its last progress before it is aborted.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A task's stop signal: `true` once the task should finish.
pub type StopSignal = watch::Receiver<bool>;

/// Resolves once `signal` says stop (or its supervisor is gone).
pub async fn stopped(signal: &mut StopSignal) {
    let _ = signal.wait_for(|stop| *stop).await;
}

struct Running {
    /// What the task was started from (the serialized spec): a change restarts it.
    key: String,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl Running {
    /// Signals the task and waits (bounded) for it to finish its last write.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut handle = self.handle;
        if tokio::time::timeout(STOP_GRACE, &mut handle).await.is_err() {
            handle.abort();
        }
    }
}

/// How triggers call functions: where, with which retries, counted where.
#[derive(Clone, Debug)]
pub struct TriggerCalls {
    /// Base URL of the router's internal listener.
    pub router_url: String,
    /// Retries.
    pub delivery: DeliveryConfig,
    /// `Authorization` of every delivery ([`crate::triggers::delivery::bearer`] of the router
    /// internal token), or `None` for a router without one.
    pub authorization: Option<hyper::http::HeaderValue>,
    /// Where deliveries are counted.
    pub metrics: Metrics,
}

/// Runs `task(context, object, stop)` for every trigger of kind `K`, with one shared
/// [`TriggerContext`] (Events reported as `controller`, deliveries counted as `trigger`); a
/// change of an object's `spec` restarts its task.
pub fn run_triggers<K, Task, Fut>(
    client: Client,
    calls: &TriggerCalls,
    (controller, trigger): (&str, &'static str),
    task: Task,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = ()> + Send + 'static
where
    K: Resource<DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Serialize
        + Send
        + Sync
        + 'static,
    Task: Fn(Arc<TriggerContext>, Arc<K>, StopSignal) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let context = Arc::new(TriggerContext::new(
        client.clone(),
        calls,
        controller,
        trigger,
    ));
    supervise(
        Api::<K>::all(client),
        spec_key::<K>,
        move |object, stop| task(context.clone(), object, stop),
        shutdown,
    )
}

/// The serialized `spec` of an object: what a trigger's task is started from.
fn spec_key<K: Serialize>(object: &K) -> String {
    serde_json::to_value(object)
        .map(|value| value["spec"].to_string())
        .unwrap_or_default()
}

/// Runs `start(object, stop)` for every object of `api`, keyed by uid, until `shutdown`
/// resolves. `key_of` decides which changes restart a task (typically the serialized spec);
/// the task sees `true` on its [`StopSignal`] when it must finish.
pub async fn supervise<K, Key, Start, Task>(
    api: Api<K>,
    key_of: Key,
    start: Start,
    shutdown: impl Future<Output = ()>,
) where
    K: Resource + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    Key: Fn(&K) -> String,
    Start: Fn(Arc<K>, StopSignal) -> Task,
    Task: Future<Output = ()> + Send + 'static,
{
    let mut tasks: HashMap<String, Running> = HashMap::new();
    let mut seen: HashSet<String> = HashSet::new();
    let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    futures::pin_mut!(events);
    futures::pin_mut!(shutdown);
    loop {
        let event = tokio::select! {
            () = &mut shutdown => break,
            event = events.next() => event,
        };
        let event = match event {
            None => break,
            Some(Err(e)) => {
                tracing::warn!("trigger watch failed (retrying with back-off): {e}");
                continue;
            }
            Some(Ok(event)) => event,
        };
        match event {
            watcher::Event::Init => seen.clear(),
            watcher::Event::InitApply(object) | watcher::Event::Apply(object) => {
                let uid = object.uid().unwrap_or_default();
                seen.insert(uid.clone());
                if object.meta().deletion_timestamp.is_some() {
                    if let Some(running) = tasks.remove(&uid) {
                        running.stop().await;
                    }
                    continue;
                }
                let key = key_of(&object);
                let current = tasks.get(&uid).is_some_and(|r| r.key == key);
                if current {
                    continue;
                }
                if let Some(running) = tasks.remove(&uid) {
                    running.stop().await;
                }
                let (stop, signal) = watch::channel(false);
                let handle = tokio::spawn(start(Arc::new(object), signal));
                tasks.insert(uid, Running { key, stop, handle });
            }
            watcher::Event::Delete(object) => {
                if let Some(running) = tasks.remove(&object.uid().unwrap_or_default()) {
                    running.stop().await;
                }
            }
            watcher::Event::InitDone => {
                let gone: Vec<String> = tasks
                    .keys()
                    .filter(|uid| !seen.contains(*uid))
                    .cloned()
                    .collect();
                for uid in gone {
                    if let Some(running) = tasks.remove(&uid) {
                        running.stop().await;
                    }
                }
            }
        }
    }
    futures::future::join_all(tasks.into_values().map(Running::stop)).await;
}
