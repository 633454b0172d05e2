//! The scheduler: binds pending pods (through `pods/binding`, as kube-scheduler does) to the
//! node chosen by [`placement::place`], or marks them `PodScheduled=False`/`Unschedulable`.

pub mod placement;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use crate::events::Events;
use crate::informer::Informer;
use placement::{Unschedulable, Usage};

const SCHEDULER_NAME: &str = "default-scheduler";
const BIND_CONCURRENCY: usize = 16;

/// Whether the pod waits for this scheduler.
pub fn is_pending(pod: &Pod) -> bool {
    let Some(spec) = &pod.spec else { return false };
    spec.node_name.as_deref().unwrap_or_default().is_empty()
        && pod.metadata.deletion_timestamp.is_none()
        && spec
            .scheduler_name
            .as_deref()
            .is_none_or(|s| s.is_empty() || s == SCHEDULER_NAME)
        && !is_finished(pod)
}

/// Succeeded or Failed.
pub fn is_finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// What is already placed on each node.
pub fn usage_by_node(pods: &[Arc<Pod>]) -> BTreeMap<String, Usage> {
    let mut usage: BTreeMap<String, Usage> = BTreeMap::new();
    for pod in pods {
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref())
            && !node.is_empty()
            && !is_finished(pod)
        {
            usage.entry(node.to_string()).or_default().add(pod);
        }
    }
    usage
}

/// Runs until `stop` turns true.
pub async fn run(
    client: kube::Client,
    pods: Informer<Pod>,
    nodes: Informer<Node>,
    mut stop: watch::Receiver<bool>,
) {
    let events = Events::new(client.clone(), SCHEDULER_NAME, None);
    let mut pod_changes = pods.subscribe();
    let mut node_changes = nodes.subscribe();
    pods.ready().await;
    nodes.ready().await;
    // Pods bound by us that the cache does not show bound yet.
    let mut in_flight: HashSet<String> = HashSet::new();
    loop {
        pass(&client, &events, &pods, &nodes, &mut in_flight).await;
        tokio::select! {
            r = pod_changes.changed() => if r.is_err() { return },
            r = node_changes.changed() => if r.is_err() { return },
            () = crate::stopped(&mut stop) => return,
        }
    }
}

async fn pass(
    client: &kube::Client,
    events: &Events,
    pods: &Informer<Pod>,
    nodes: &Informer<Node>,
    in_flight: &mut HashSet<String>,
) {
    let all_pods = pods.all();
    let all_nodes = nodes.all();
    tracing::debug!(
        pods = all_pods.len(),
        nodes = all_nodes.len(),
        "scheduling pass"
    );
    let mut usage = usage_by_node(&all_pods);
    let mut pending: Vec<Arc<Pod>> = all_pods.iter().filter(|p| is_pending(p)).cloned().collect();
    let pending_uids: HashSet<String> = pending
        .iter()
        .filter_map(|p| p.metadata.uid.clone())
        .collect();
    in_flight.retain(|uid| pending_uids.contains(uid));
    pending.retain(|p| {
        !p.metadata
            .uid
            .as_ref()
            .is_some_and(|u| in_flight.contains(u))
    });
    pending.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .as_ref()
            .map(|t| t.0)
            .cmp(&b.metadata.creation_timestamp.as_ref().map(|t| t.0))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    let mut decisions = Vec::new();
    for pod in pending {
        let views: Vec<(&Node, Usage)> = all_nodes
            .iter()
            .map(|n| {
                let name = n.name_any();
                (n.as_ref(), usage.get(&name).copied().unwrap_or_default())
            })
            .collect();
        let decision = placement::place(&pod, &views);
        if let Ok(node) = &decision {
            usage.entry(node.clone()).or_default().add(&pod);
            if let Some(uid) = &pod.metadata.uid {
                in_flight.insert(uid.clone());
            }
        }
        decisions.push((pod, decision));
    }
    let failed: Vec<String> = futures::stream::iter(decisions)
        .map(|(pod, decision)| async move {
            let ok = match decision {
                Ok(node) => bind(client, events, &pod, &node).await,
                Err(why) => {
                    mark_unschedulable(client, events, &pod, &why).await;
                    true
                }
            };
            (!ok).then(|| pod.metadata.uid.clone().unwrap_or_default())
        })
        .buffer_unordered(BIND_CONCURRENCY)
        .filter_map(futures::future::ready)
        .collect()
        .await;
    for uid in failed {
        in_flight.remove(&uid);
    }
}

async fn bind(client: &kube::Client, events: &Events, pod: &Pod, node: &str) -> bool {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let binding = json!({
        "apiVersion": "v1", "kind": "Binding",
        "metadata": {"name": name, "namespace": ns, "uid": pod.metadata.uid},
        "target": {"apiVersion": "v1", "kind": "Node", "name": node},
    });
    match api
        .create_subresource::<_, serde_json::Value>(
            "binding",
            &name,
            &PostParams::default(),
            &binding,
        )
        .await
    {
        Ok(_) => {
            events
                .publish(
                    &pod.object_ref(&()),
                    false,
                    "Scheduled",
                    "Binding",
                    format!("Successfully assigned {ns}/{name} to {node}"),
                )
                .await;
            true
        }
        Err(e) => {
            tracing::debug!(pod = %name, error = %e, "binding failed");
            false
        }
    }
}

async fn mark_unschedulable(
    client: &kube::Client,
    events: &Events,
    pod: &Pod,
    why: &Unschedulable,
) {
    let current = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "PodScheduled"));
    if current.is_some_and(|c| {
        c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
            && c.message.as_deref() == Some(why.message.as_str())
    }) {
        return;
    }
    let ns = pod.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let status = json!({"status": {"phase": "Pending", "conditions": [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": why.message, "lastProbeTime": null,
        "lastTransitionTime": crate::time::now_rfc3339(),
    }]}});
    match api
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&status),
        )
        .await
    {
        Ok(_) => {
            events
                .publish(
                    &pod.object_ref(&()),
                    true,
                    "FailedScheduling",
                    "Scheduling",
                    why.message.clone(),
                )
                .await;
        }
        Err(e) => tracing::debug!(error = %e, "cannot mark pod unschedulable"),
    }
}
