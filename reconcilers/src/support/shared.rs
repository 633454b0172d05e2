//! Caches shared by every reconciler: one watch per kind, one store, and a fan-out of its events
//! to each controller that reacts to them (issue 17.2: Environments were watched 4 times,
//! Functions 3, HTTPTriggers 3, Nodes 2, and references were read with a GET per reconcile).
//!
//! [`Shared`] drives one watch into a reflector store and, after the store is updated, hands
//! every event to its subscribers, so a reconcile triggered by an event always finds that
//! event's object in the store. kube-runtime's own shared streams (`reflector::store_shared`)
//! leave deletions out, and a Function must hear that its Environment was deleted: hence the
//! fan-out here, feeding kube's `Controller::for_shared_stream` / `watches_shared_stream`.
//!
//! A cache nobody uses (no [`Shared::store`], no [`Shared::subscribe`]) does not watch.

use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::reflector::{self, Lookup, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Api, Client, Resource};
use rivulet_api::{Environment, Function, HTTPTrigger, Package};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;

/// Label selector of the Deployments the function reconciler owns.
pub const FUNCTION_DEPLOYMENTS: &str = "executorType in (newdeploy,container)";

/// Events buffered per subscriber before the watch waits for it (back-pressure, not loss).
const SUBSCRIBER_BUFFER: usize = 1024;

/// What a subscriber receives: every watch event but `Init`, with the object shared.
pub type Change<K> = watcher::Event<Arc<K>>;

/// The object an event touched (applied, listed or deleted); `None` for `InitDone`.
pub fn touched<K>(change: Change<K>) -> Option<Arc<K>> {
    match change {
        watcher::Event::Apply(o) | watcher::Event::InitApply(o) | watcher::Event::Delete(o) => {
            Some(o)
        }
        watcher::Event::Init | watcher::Event::InitDone => None,
    }
}

/// The objects a subscription touches: the trigger stream kube's shared-stream controllers take.
pub fn objects<K: Send + Sync + 'static>(
    changes: impl Stream<Item = Change<K>> + Send + 'static,
) -> impl Stream<Item = Arc<K>> + Send + 'static {
    changes.filter_map(|change| std::future::ready(touched(change)))
}

/// The objects of a subscription whose `key` changed (new objects and deletions included):
/// for a reconciler that reads only part of a related object, so that the rest of its changes
/// (status writes, above all) trigger nothing.
pub fn changed_by<K, Key>(
    changes: impl Stream<Item = Change<K>> + Send + 'static,
    key: impl Fn(&K) -> Key + Send + 'static,
) -> impl Stream<Item = Arc<K>> + Send + 'static
where
    K: Resource + Send + Sync + 'static,
    Key: PartialEq + Send + 'static,
{
    let mut seen: std::collections::HashMap<String, Key> = std::collections::HashMap::new();
    changes.filter_map(move |change| {
        let object = match change {
            watcher::Event::Apply(o) | watcher::Event::InitApply(o) => {
                let uid = o.meta().uid.clone().unwrap_or_default();
                let new = key(&o);
                let changed = seen.get(&uid) != Some(&new);
                seen.insert(uid, new);
                changed.then_some(o)
            }
            watcher::Event::Delete(o) => {
                seen.remove(o.meta().uid.as_deref().unwrap_or_default());
                Some(o)
            }
            watcher::Event::Init | watcher::Event::InitDone => None,
        };
        std::future::ready(object)
    })
}

/// One watch of `K`, its store, and the controllers subscribed to its events.
pub struct Shared<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    store: Store<K>,
    used: AtomicBool,
    subscribers: Mutex<Vec<mpsc::Sender<Change<K>>>>,
    driver: Mutex<Option<Driver<K>>>,
}

struct Driver<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    writer: reflector::store::Writer<K>,
    events: BoxStream<'static, watcher::Result<watcher::Event<K>>>,
}

impl<K> Debug for Shared<K>
where
    K: Lookup + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("kind", &std::any::type_name::<K>())
            .finish_non_exhaustive()
    }
}

impl<K> Shared<K>
where
    K: Resource<DynamicType = ()> + Lookup<DynamicType = ()> + Clone + Debug + Send + Sync,
    K: DeserializeOwned + 'static,
{
    /// A cache of every `K` in the cluster; of their metadata only for an
    /// `Api<PartialObjectMeta<_>>` (kube then asks for metadata alone).
    pub fn watch(api: Api<K>, config: watcher::Config) -> Self {
        Self::from_events(watcher(api, config).default_backoff().boxed())
    }
}

impl<K> Shared<K>
where
    K: Lookup<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    fn from_events(events: BoxStream<'static, watcher::Result<watcher::Event<K>>>) -> Self {
        let writer = reflector::store::Writer::<K>::new(());
        Self {
            store: writer.as_reader(),
            used: AtomicBool::new(false),
            subscribers: Mutex::new(Vec::new()),
            driver: Mutex::new(Some(Driver { writer, events })),
        }
    }

    /// A read handle on the store (ready once the initial list is in: [`crate::support::cache::wait_ready`]).
    pub fn store(&self) -> Store<K> {
        self.used.store(true, Ordering::Relaxed);
        self.store.clone()
    }

    /// Every event from now on, after the store has applied it. Subscribe before
    /// [`Shared::run`] starts, and keep polling: a full subscriber holds the watch back.
    pub fn subscribe(&self) -> impl Stream<Item = Change<K>> + Send + 'static {
        self.used.store(true, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SUBSCRIBER_BUFFER);
        if let Ok(mut subscribers) = self.subscribers.lock() {
            subscribers.push(tx);
        }
        futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|change| (change, rx))
        })
    }

    /// Drives the watch (forever; drop the future to stop it). Does nothing when the cache is
    /// unused or already running.
    pub fn run(&self) -> BoxFuture<'static, ()> {
        let driver = self.driver.lock().ok().and_then(|mut d| d.take());
        let subscribers = self
            .subscribers
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default();
        match driver {
            Some(driver) if self.used.load(Ordering::Relaxed) => drive(driver, subscribers).boxed(),
            _ => futures::future::pending().boxed(),
        }
    }
}

async fn drive<K>(driver: Driver<K>, mut subscribers: Vec<mpsc::Sender<Change<K>>>)
where
    K: Lookup<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let Driver { writer, events } = driver;
    let events = kube::runtime::reflector::reflector(writer, events);
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        let change = match event {
            Ok(watcher::Event::Init) => continue,
            Ok(watcher::Event::Apply(o)) => watcher::Event::Apply(Arc::new(o)),
            Ok(watcher::Event::InitApply(o)) => watcher::Event::InitApply(Arc::new(o)),
            Ok(watcher::Event::Delete(o)) => watcher::Event::Delete(Arc::new(o)),
            Ok(watcher::Event::InitDone) => watcher::Event::InitDone,
            Err(e) => {
                tracing::warn!(
                    kind = std::any::type_name::<K>(),
                    "shared watch failed (retrying with back-off): {e}"
                );
                continue;
            }
        };
        let mut gone = Vec::new();
        for (i, subscriber) in subscribers.iter().enumerate() {
            if subscriber.send(change.clone()).await.is_err() {
                gone.push(i);
            }
        }
        // A stopped controller dropped its subscription.
        for i in gone.into_iter().rev() {
            subscribers.swap_remove(i);
        }
    }
}

/// The caches of the reconciler set, built once (`crate::all::start`): each kind is watched
/// once, whatever number of reconcilers read or react to it.
#[derive(Debug)]
pub struct Caches {
    /// Every Environment.
    pub environments: Shared<Environment>,
    /// Every Function.
    pub functions: Shared<Function>,
    /// Every Package.
    pub packages: Shared<Package>,
    /// Every HTTPTrigger.
    pub http_triggers: Shared<HTTPTrigger>,
    /// Every Node (clusters are derived from them).
    pub nodes: Shared<Node>,
    /// Metadata of every Secret (Functions and MessageQueueTriggers reference them).
    pub secrets: Shared<PartialObjectMeta<Secret>>,
    /// Metadata of every ConfigMap (Functions reference them).
    pub configmaps: Shared<PartialObjectMeta<ConfigMap>>,
    /// The Deployments of `newdeploy` and `container` Functions.
    pub function_deployments: Shared<Deployment>,
}

impl Caches {
    /// The caches, not yet watching: reconcilers take stores and subscriptions, then
    /// [`Caches::serve`] runs the watches they use.
    pub fn new(client: &Client) -> Self {
        let all = || watcher::Config::default().any_semantic();
        Self {
            environments: Shared::watch(Api::all(client.clone()), all()),
            functions: Shared::watch(Api::all(client.clone()), all()),
            packages: Shared::watch(Api::all(client.clone()), all()),
            http_triggers: Shared::watch(Api::all(client.clone()), all()),
            nodes: Shared::watch(Api::all(client.clone()), all()),
            // Metadata only: enough to know that an object exists and at which version, without
            // holding (or decoding) Secret data.
            secrets: Shared::watch(Api::all(client.clone()), all()),
            configmaps: Shared::watch(Api::all(client.clone()), all()),
            function_deployments: Shared::watch(
                Api::all(client.clone()),
                all().labels(FUNCTION_DEPLOYMENTS),
            ),
        }
    }

    /// Runs the used watches until `until` (the reconcilers) completes, and returns its output.
    pub async fn serve<F: Future>(self, until: F) -> F::Output {
        let watches = futures::future::join_all([
            self.environments.run(),
            self.functions.run(),
            self.packages.run(),
            self.http_triggers.run(),
            self.nodes.run(),
            self.secrets.run(),
            self.configmaps.run(),
            self.function_deployments.run(),
        ]);
        let mut until = std::pin::pin!(until);
        tokio::select! {
            output = &mut until => output,
            // The watches run forever (errors are retried with back-off); should they end, the
            // reconcilers still run to their own end.
            _ = watches => until.await,
        }
    }
}
