//! One [`Admission`] per poolmgr function version, keyed by the Function's UID and
//! `metadata.generation` (what the reaper compares, and what status writes do not change).
//! A new generation gets a fresh set of pods; the old version's requests finish on their leases
//! and its pods are reaped by the function reconciler.
//!
//! Pods already specialized for a version that an admission does not hold (a restarted router's,
//! or any after a restart of `rivulet up`) are recovered on demand: the next specialization of
//! that version waits for such a pod and specializes it again with the same claim instead of
//! claiming a warm pod (`PoolSpecializer::recover`). Adopting them unchecked is not safe: a pod
//! stopped with SIGTERM comes back with an empty runtime (Fission removes `state.json`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::Pod;
use rivulet_api::Function;
use rivulet_api::defaults::RUNTIME_PORT;

use crate::admission::{Admission, Limits, Timing};
use crate::pods;
use crate::poolmgr::{PoolContext, PoolSpecializer};

/// A function version.
pub type VersionKey = (String, i64);

/// The key of a function's current version.
pub fn version_key(function: &Function) -> VersionKey {
    (
        function.metadata.uid.clone().unwrap_or_default(),
        function.metadata.generation.unwrap_or(0),
    )
}

/// Admissions by function version.
#[derive(Debug)]
pub struct Admissions {
    ctx: Arc<PoolContext>,
    admissions: Mutex<HashMap<VersionKey, Admission<PoolSpecializer>>>,
}

impl Admissions {
    /// No admissions yet.
    pub fn new(ctx: Arc<PoolContext>) -> Self {
        Self {
            ctx,
            admissions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<VersionKey, Admission<PoolSpecializer>>> {
        self.admissions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The admission of `function`'s current version, created on first use.
    pub fn admission(&self, function: &Arc<Function>) -> Admission<PoolSpecializer> {
        let key = version_key(function);
        if let Some(admission) = self.lock().get(&key) {
            return admission.clone();
        }
        let timeout = rivulet_api::defaults::specialization_timeout(
            function
                .spec
                .invoke_strategy
                .execution_strategy
                .specialization_timeout,
        );
        let overload = self.ctx.overload;
        let created = Admission::new(
            Limits::of(&function.spec).with_overload(&overload),
            PoolSpecializer::new(self.ctx.clone(), function.clone()),
            Timing {
                specialization: timeout,
                patience: overload.patience,
            },
        );
        self.lock().entry(key).or_insert(created).clone()
    }

    /// A pod changed: if it is gone, terminating or not ready, no new request goes to it.
    pub fn pod_changed(&self, pod: &Pod, deleted: bool) {
        if !deleted && pods::is_ready(pod) {
            return;
        }
        let Some(pod_ref) = pods::pod_ref(pod, RUNTIME_PORT) else {
            return;
        };
        let pod_ref = Arc::new(pod_ref);
        let admissions: Vec<_> = self.lock().values().cloned().collect();
        for admission in admissions {
            admission.remove_pod(&pod_ref);
            admission.specializer().forget(&pod_ref.name);
        }
    }

    /// After a (re)list: pods that vanished while the watch was down never get a delete event,
    /// so every pod an admission holds must still be in the cache and ready.
    pub fn prune(&self, store: &kube::runtime::reflector::Store<Pod>) {
        let admissions: Vec<_> = self.lock().values().cloned().collect();
        for admission in admissions {
            for (pod, _) in admission.stats().pods {
                let key =
                    kube::runtime::reflector::ObjectRef::new(&pod.name).within(&pod.namespace);
                let alive = store.get(&key).is_some_and(|p| {
                    pods::is_ready(&p) && pods::pod_ip(&p) == Some(pod.address.ip())
                });
                if !alive {
                    admission.remove_pod(&pod);
                    admission.specializer().forget(&pod.name);
                }
            }
        }
    }

    /// Drops the admissions of versions that are no longer current (in-flight leases keep theirs
    /// alive until they end).
    pub fn retain(&self, current: &HashSet<VersionKey>) {
        self.lock().retain(|key, _| current.contains(key));
    }
}
