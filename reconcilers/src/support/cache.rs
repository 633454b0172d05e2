//! Waiting for a reflector cache's initial list, safely from many reconciles at once.
//!
//! kube-runtime 5's `Store::wait_until_ready` polls one shared oneshot receiver, which keeps only
//! the waker of the last task that polled it: when several reconciles wait at the same time
//! (every Namespace or Environment reconciled at start-up, before the Node cache has listed),
//! only one is woken and the others hang forever — and the controller never retries an object
//! whose reconcile has not returned. [`wait_ready`] polls again every [`REPOLL`], so every waiter
//! sees the cache ready within that delay.

use std::time::Duration;

use kube::Resource;
use kube::runtime::reflector::Store;

/// How often a waiting reconcile looks at the cache again.
pub const REPOLL: Duration = Duration::from_millis(100);

/// Waits until `store` holds its initial list; `false` when its writer was dropped (the cache
/// will never be ready).
pub async fn wait_ready<K>(store: &Store<K>) -> bool
where
    K: Resource + Clone + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash,
{
    loop {
        match tokio::time::timeout(REPOLL, store.wait_until_ready()).await {
            Ok(result) => return result.is_ok(),
            Err(_elapsed) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Node;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;

    /// The case kube's own wait gets wrong: many waiters before the initial list.
    #[tokio::test]
    async fn every_concurrent_waiter_wakes_when_the_initial_list_completes() {
        let (store, mut writer) = reflector::store::<Node>();
        let waiters: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                tokio::spawn(async move { wait_ready(&store).await })
            })
            .collect();
        tokio::task::yield_now().await;
        writer.apply_watcher_event(&Event::Init);
        writer.apply_watcher_event(&Event::InitDone);
        for waiter in waiters {
            let woke = tokio::time::timeout(Duration::from_secs(5), waiter)
                .await
                .expect("every waiter wakes")
                .unwrap();
            assert!(woke);
        }
    }
}
