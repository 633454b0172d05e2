//! A shared cache of one kind (kube-rs reflector) plus a change counter, so several loops can
//! wake on changes and do a full pass over the cache. Passes coalesce bursts of events.

use std::fmt::Debug;
use std::sync::Arc;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A cache of one kind and a counter that moves on every change.
#[derive(Clone)]
pub struct Informer<K: Resource<DynamicType = ()> + Clone + 'static> {
    /// The cached objects.
    pub store: Store<K>,
    changed: watch::Receiver<u64>,
    ready: watch::Receiver<bool>,
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> Debug for Informer<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Informer")
            .field("len", &self.store.len())
            .finish_non_exhaustive()
    }
}

impl<K> Informer<K>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Starts watching `api`; the task ends when the returned handle is aborted.
    pub fn spawn(api: Api<K>, config: watcher::Config) -> (Self, JoinHandle<()>) {
        let (store, writer) = reflector::store();
        let (tx, changed) = watch::channel(0u64);
        let (ready_tx, ready) = watch::channel(false);
        let task = tokio::spawn(async move {
            let stream =
                reflector::reflector(writer, watcher::watcher(api, config).default_backoff());
            futures::pin_mut!(stream);
            while let Some(event) = stream.next().await {
                match event {
                    Ok(Event::InitDone) => {
                        ready_tx.send_replace(true);
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(Event::Apply(_) | Event::Delete(_)) => {
                        tx.send_modify(|n| *n += 1);
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, "watch error (retrying)"),
                }
            }
        });
        (
            Self {
                store,
                changed,
                ready,
            },
            task,
        )
    }

    /// Waits for the first complete list.
    pub async fn ready(&self) {
        // One flag per informer: kube's `Store::wait_until_ready` wakes only some clones.
        let mut ready = self.ready.clone();
        let _ = ready.wait_for(|r| *r).await;
    }

    /// A receiver that sees every later change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.clone()
    }

    /// Every cached object.
    pub fn all(&self) -> Vec<Arc<K>> {
        self.store.state()
    }
}
