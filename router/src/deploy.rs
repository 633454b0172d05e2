//! newdeploy and container functions: their ready pods' addresses, kept up to date from the pod
//! cache, with round-robin choice per request. No API call on the request path.
//!
//! The port is the runtime's 8888 for newdeploy, and the one container port of the pod spec for
//! container functions (what their Service targets).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::Store;
use rivulet_api::defaults::RUNTIME_PORT;
use rivulet_api::{ExecutorType, Function};

use crate::pods;

#[derive(Debug, Default)]
struct Endpoints {
    ips: Vec<IpAddr>,
    next: AtomicUsize,
}

/// Ready pod IPs of newdeploy/container functions, by function UID.
#[derive(Debug, Default)]
pub struct DeployIndex {
    by_uid: RwLock<HashMap<String, Arc<Endpoints>>>,
}

impl DeployIndex {
    /// Recomputes the endpoints of the function that owns `pod` from the pod cache.
    pub fn pod_changed(&self, pod: &Pod, store: &Store<Pod>) {
        if let Some(uid) = pods::deployment_function_uid(pod) {
            self.refresh(uid, &store.state());
        }
    }

    /// Recomputes every function's endpoints (after the initial list).
    pub fn rebuild(&self, store: &Store<Pod>) {
        let all = store.state();
        let mut uids: Vec<&str> = all
            .iter()
            .filter_map(|p| pods::deployment_function_uid(p))
            .collect();
        uids.sort_unstable();
        uids.dedup();
        self.write().clear();
        for uid in uids {
            self.refresh(uid, &all);
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<Endpoints>>> {
        self.by_uid
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn refresh(&self, uid: &str, all: &[Arc<Pod>]) {
        let mut ips: Vec<IpAddr> = all
            .iter()
            .filter(|p| pods::deployment_function_uid(p) == Some(uid) && pods::is_ready(p))
            .filter_map(|p| pods::pod_ip(p))
            .collect();
        ips.sort_unstable();
        ips.dedup();
        let mut map = self.write();
        if ips.is_empty() {
            map.remove(uid);
            return;
        }
        let next = map.get(uid).map_or(0, |e| e.next.load(Ordering::Relaxed));
        map.insert(
            uid.to_owned(),
            Arc::new(Endpoints {
                ips,
                next: AtomicUsize::new(next),
            }),
        );
    }

    /// The next ready pod of `function` (round robin), or `None` when none is ready.
    pub fn pick(&self, function: &Function) -> Option<SocketAddr> {
        let uid = function.metadata.uid.as_deref()?;
        let endpoints = self
            .by_uid
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(uid)?
            .clone();
        let i = endpoints.next.fetch_add(1, Ordering::Relaxed) % endpoints.ips.len();
        Some(SocketAddr::new(endpoints.ips[i], port_of(function)))
    }
}

/// The port a function's pods serve on.
pub fn port_of(function: &Function) -> u16 {
    if function.spec.executor_type() != Some(ExecutorType::Container) {
        return RUNTIME_PORT;
    }
    function
        .spec
        .podspec
        .as_ref()
        .and_then(|spec| spec.containers.first())
        .and_then(|c| c.ports.as_ref()?.first())
        .and_then(|p| u16::try_from(p.container_port).ok())
        .unwrap_or(RUNTIME_PORT)
}
