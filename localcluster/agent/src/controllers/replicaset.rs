//! ReplicaSet → Pods: keeps `spec.replicas` pods from the template, owned by the ReplicaSet, and
//! reports replicas/ready/available counts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde_json::json;
use tokio::sync::watch;

use super::selector;
use crate::informer::Informer;

/// How long a create we made may stay unseen in the cache before we stop counting it.
const EXPECTATION_TTL: Duration = Duration::from_secs(30);

/// The controller owner reference of `owner`'s children.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> OwnerReference {
    OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: owner.meta().name.clone().unwrap_or_default(),
        uid: owner.meta().uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// Whether `obj` is controlled by the object with `uid`.
pub fn controlled_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    uid: &str,
) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// Ready condition True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Ready for at least `min_ready` seconds.
pub fn is_available(pod: &Pod, min_ready: i32, now: i64) -> bool {
    let Some(cond) = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|c| c.iter().find(|c| c.type_ == "Ready" && c.status == "True"))
    else {
        return false;
    };
    min_ready <= 0
        || cond
            .last_transition_time
            .as_ref()
            .is_some_and(|t| now - t.0.as_second() >= i64::from(min_ready))
}

fn active(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none() && !crate::scheduler::is_finished(pod)
}

/// Order of deletion when scaling down: unscheduled, then pending, then not ready, then newest.
fn deletion_rank(pod: &Pod) -> (u8, std::cmp::Reverse<Option<i64>>) {
    let scheduled = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.as_ref())
        .is_some();
    let running = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
    let rank = if !scheduled {
        0
    } else if !running {
        1
    } else if !is_ready(pod) {
        2
    } else {
        3
    };
    (
        rank,
        std::cmp::Reverse(
            pod.metadata
                .creation_timestamp
                .as_ref()
                .map(|t| t.0.as_second()),
        ),
    )
}

/// Runs until `stop`.
pub async fn run(
    client: kube::Client,
    sets: Informer<ReplicaSet>,
    pods: Informer<Pod>,
    mut stop: watch::Receiver<bool>,
) {
    let mut set_changes = sets.subscribe();
    let mut pod_changes = pods.subscribe();
    sets.ready().await;
    pods.ready().await;
    // Pods we created that the cache may not show yet, per ReplicaSet uid.
    let mut expected: HashMap<String, Vec<(String, Instant)>> = HashMap::new();
    loop {
        let all_pods = pods.all();
        for rs in sets.all() {
            sync(&client, &rs, &all_pods, &mut expected).await;
        }
        tokio::select! {
            r = set_changes.changed() => if r.is_err() { return },
            r = pod_changes.changed() => if r.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = crate::stopped(&mut stop) => return,
        }
    }
}

async fn sync(
    client: &kube::Client,
    rs: &Arc<ReplicaSet>,
    all_pods: &[Arc<Pod>],
    expected: &mut HashMap<String, Vec<(String, Instant)>>,
) {
    if rs.metadata.deletion_timestamp.is_some() {
        return;
    }
    let ns = rs.namespace().unwrap_or_default();
    let uid = rs.uid().unwrap_or_default();
    let spec = &rs.spec;
    let owned: Vec<&Arc<Pod>> = all_pods
        .iter()
        .filter(|p| {
            p.namespace().as_deref() == Some(ns.as_str()) && controlled_by(&p.metadata, &uid)
        })
        .collect();
    let mut live: Vec<&Arc<Pod>> = owned.iter().copied().filter(|p| active(p)).collect();
    let pending = expected.entry(uid.clone()).or_default();
    pending.retain(|(name, at)| {
        at.elapsed() < EXPECTATION_TTL && !owned.iter().any(|p| p.name_any() == *name)
    });
    let want = usize::try_from(spec.replicas.unwrap_or(1).max(0)).unwrap_or(0);
    let have = live.len() + pending.len();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    if have < want {
        for _ in have..want {
            let mut pod: Pod = Pod {
                metadata: spec
                    .template
                    .as_ref()
                    .and_then(|t| t.metadata.clone())
                    .unwrap_or_default(),
                spec: spec.template.as_ref().and_then(|t| t.spec.clone()),
                status: None,
            };
            pod.metadata.name = None;
            pod.metadata.generate_name = Some(format!("{}-", rs.name_any()));
            pod.metadata.namespace = Some(ns.clone());
            pod.metadata.owner_references = Some(vec![controller_ref(rs.as_ref())]);
            match api.create(&PostParams::default(), &pod).await {
                Ok(created) => pending.push((created.name_any(), Instant::now())),
                Err(e) => {
                    tracing::debug!(replicaset = %rs.name_any(), error = %e, "cannot create pod");
                    break;
                }
            }
        }
    } else if live.len() > want {
        live.sort_by_key(|p| deletion_rank(p));
        for p in &live[..live.len() - want] {
            let _ = api.delete(&p.name_any(), &DeleteParams::default()).await;
        }
    }
    write_status(client, rs, &owned).await;
}

async fn write_status(client: &kube::Client, rs: &ReplicaSet, owned: &[&Arc<Pod>]) {
    let min_ready = rs.spec.min_ready_seconds.unwrap_or(0);
    let now = crate::time::now_unix();
    let live: Vec<&&Arc<Pod>> = owned.iter().filter(|p| active(p)).collect();
    let template_labels = rs
        .spec
        .template
        .as_ref()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    let count = |f: &dyn Fn(&Pod) -> bool| {
        i32::try_from(live.iter().filter(|p| f(p)).count()).unwrap_or(i32::MAX)
    };
    let status = json!({
        "replicas": count(&|_| true),
        "fullyLabeledReplicas": count(&|p| selector::map_matches(&template_labels, p.metadata.labels.as_ref().unwrap_or(&std::collections::BTreeMap::default()))),
        "readyReplicas": count(&is_ready),
        "availableReplicas": count(&|p| is_available(p, min_ready, now)),
        "observedGeneration": rs.metadata.generation,
    });
    let current = serde_json::to_value(&rs.status).unwrap_or_default();
    let same = [
        "replicas",
        "fullyLabeledReplicas",
        "readyReplicas",
        "availableReplicas",
        "observedGeneration",
    ]
    .iter()
    .all(|k| current[k] == status[k] || (current[k].is_null() && status[k] == 0));
    if same {
        return;
    }
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &rs.namespace().unwrap_or_default());
    if let Err(e) = api
        .patch_status(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
    {
        tracing::debug!(replicaset = %rs.name_any(), error = %e, "cannot write status");
    }
}
