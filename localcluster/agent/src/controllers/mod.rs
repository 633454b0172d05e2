//! Built-in controllers local mode needs. Garbage collection by ownerReferences and namespace
//! termination are the API server's own (rivulet-localcluster `controllers.rs`); these add
//! Deployments → ReplicaSets → Pods and EndpointSlices/Endpoints for Services.
//! HorizontalPodAutoscalers are stored by the server but nothing acts on them.

pub mod deployment;
pub mod endpoints;
pub mod replicaset;
pub mod selector;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::Api;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::informer::Informer;

/// Starts the controllers; returns their tasks and their informers' tasks.
pub fn spawn(
    client: &kube::Client,
    pods: &Informer<Pod>,
    stop: &watch::Receiver<bool>,
) -> (Vec<JoinHandle<()>>, Vec<JoinHandle<()>>) {
    let (deployments, d_task) = Informer::spawn(
        Api::<Deployment>::all(client.clone()),
        watcher::Config::default(),
    );
    let (sets, rs_task) = Informer::spawn(
        Api::<ReplicaSet>::all(client.clone()),
        watcher::Config::default(),
    );
    let (services, s_task) = Informer::spawn(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    );
    let tasks = vec![
        tokio::spawn(deployment::run(
            client.clone(),
            deployments,
            sets.clone(),
            stop.clone(),
        )),
        tokio::spawn(replicaset::run(
            client.clone(),
            sets,
            pods.clone(),
            stop.clone(),
        )),
        tokio::spawn(endpoints::run(
            client.clone(),
            services,
            pods.clone(),
            stop.clone(),
        )),
    ];
    (tasks, vec![d_task, rs_task, s_task])
}
