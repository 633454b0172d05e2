//! Built-in controllers local mode needs (the API server already does GC and namespaces).

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::informer::Informer;

/// Starts the controllers; returns their tasks and their informers' tasks.
pub fn spawn(
    _client: &kube::Client,
    _pods: &Informer<Pod>,
    _stop: &watch::Receiver<bool>,
) -> (Vec<JoinHandle<()>>, Vec<JoinHandle<()>>) {
    (Vec::new(), Vec::new())
}
