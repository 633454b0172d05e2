//! Deployment → ReplicaSets: one ReplicaSet per template (named `<deployment>-<pod-template-hash>`),
//! rolled with RollingUpdate (maxSurge/maxUnavailable) or Recreate, old ones kept up to
//! `revisionHistoryLimit`, and the Deployment's status from its ReplicaSets.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::replicaset::{controlled_by, controller_ref};
use crate::informer::Informer;

/// Label that tells ReplicaSets of one Deployment apart.
pub const HASH_LABEL: &str = "pod-template-hash";
const REVISION: &str = "deployment.kubernetes.io/revision";

/// Keys sorted recursively, so the hash does not depend on map order.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{:?}:{}", k, canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The `pod-template-hash` of a template: FNV-32a of its canonical JSON, written with
/// upstream's `SafeEncodeString` alphabet (no vowels, no look-alike characters).
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    for b in canonical(template).bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_string()
        .bytes()
        .map(|d| ALPHABET[usize::from(d) % ALPHABET.len()] as char)
        .collect()
}

/// An IntOrString percentage or count of `total` (rounded up for surge, down for unavailable).
pub fn scaled(
    value: Option<&IntOrString>,
    total: i32,
    default_percent: i32,
    round_up: bool,
) -> i32 {
    let percent = |p: i32| {
        let x = i64::from(total) * i64::from(p);
        let v = if round_up { (x + 99) / 100 } else { x / 100 };
        i32::try_from(v).unwrap_or(0)
    };
    match value {
        None => percent(default_percent),
        Some(IntOrString::Int(i)) => *i,
        Some(IntOrString::String(s)) => s.trim_end_matches('%').parse().map_or(0, percent),
    }
}

/// The replica counts a rolling update wants: `(new, [old...])` given current spec replicas
/// and available counts (old ones oldest first).
pub fn rolling_targets(
    replicas: i32,
    max_surge: i32,
    max_unavailable: i32,
    new: (i32, i32),
    old: &[(i32, i32)],
) -> (i32, Vec<i32>) {
    let (new_spec, new_available) = new;
    let total: i32 = new_spec + old.iter().map(|o| o.0).sum::<i32>();
    // Scale up the new ReplicaSet within the surge.
    let room = (replicas + max_surge - total).max(0);
    let new_target = if old.iter().all(|o| o.0 == 0) {
        replicas
    } else {
        (new_spec + room).min(replicas)
    };
    // Scale down old ones while keeping enough available.
    let min_available = replicas - max_unavailable;
    let available: i32 = new_available + old.iter().map(|o| o.1).sum::<i32>();
    let unhealthy_old: i32 = old.iter().map(|o| (o.0 - o.1).max(0)).sum();
    let mut budget = (available - min_available).max(0) + unhealthy_old;
    let olds = old
        .iter()
        .map(|(spec, _)| {
            let cut = (*spec).min(budget);
            budget -= cut;
            spec - cut
        })
        .collect();
    (new_target, olds)
}

/// Runs until `stop`.
pub async fn run(
    client: kube::Client,
    deployments: Informer<Deployment>,
    sets: Informer<ReplicaSet>,
    mut stop: watch::Receiver<bool>,
) {
    let mut d_changes = deployments.subscribe();
    let mut rs_changes = sets.subscribe();
    deployments.ready().await;
    sets.ready().await;
    loop {
        let all_sets = sets.all();
        for d in deployments.all() {
            if let Err(e) = sync(&client, &d, &all_sets).await {
                tracing::debug!(deployment = %d.name_any(), error = %e, "deployment sync failed");
            }
        }
        tokio::select! {
            r = d_changes.changed() => if r.is_err() { return },
            r = rs_changes.changed() => if r.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = crate::stopped(&mut stop) => return,
        }
    }
}

fn revision(rs: &ReplicaSet) -> i64 {
    rs.annotations()
        .get(REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.replicas.unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

async fn scale(api: &Api<ReplicaSet>, rs: &ReplicaSet, replicas: i32) -> Result<(), kube::Error> {
    if spec_replicas(rs) != replicas {
        api.patch(
            &rs.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": replicas}})),
        )
        .await?;
    }
    Ok(())
}

async fn sync(
    client: &kube::Client,
    d: &Arc<Deployment>,
    all_sets: &[Arc<ReplicaSet>],
) -> Result<(), kube::Error> {
    let spec = &d.spec;
    if d.metadata.deletion_timestamp.is_some() {
        return Ok(());
    }
    let ns = d.namespace().unwrap_or_default();
    let uid = d.uid().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let template = serde_json::to_value(&spec.template).unwrap_or_default();
    let hash = template_hash(&template);
    let mut owned: Vec<&Arc<ReplicaSet>> = all_sets
        .iter()
        .filter(|rs| {
            rs.namespace().as_deref() == Some(ns.as_str()) && controlled_by(&rs.metadata, &uid)
        })
        .collect();
    owned.sort_by_key(|rs| revision(rs));
    let replicas = spec.replicas.unwrap_or(1);
    let new = owned
        .iter()
        .find(|rs| rs.labels().get(HASH_LABEL) == Some(&hash))
        .copied();
    let olds: Vec<&Arc<ReplicaSet>> = owned
        .iter()
        .copied()
        .filter(|rs| rs.labels().get(HASH_LABEL) != Some(&hash))
        .collect();
    if spec.paused == Some(true) {
        return write_status(client, d, new, &owned).await;
    }
    let recreate = spec.strategy.as_ref().and_then(|s| s.type_.as_deref()) == Some("Recreate");
    let rolling = spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    let mut surge = scaled(
        rolling.and_then(|r| r.max_surge.as_ref()),
        replicas,
        25,
        true,
    );
    let unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        25,
        false,
    );
    if surge == 0 && unavailable == 0 {
        surge = 1;
    }
    let (new_target, old_targets) = if recreate {
        let old_pods: i32 = olds
            .iter()
            .map(|rs| rs.status.as_ref().map_or(0, |s| s.replicas))
            .sum();
        (
            if old_pods == 0 { replicas } else { 0 },
            vec![0; olds.len()],
        )
    } else {
        let old_counts: Vec<(i32, i32)> = olds
            .iter()
            .map(|rs| (spec_replicas(rs), available(rs)))
            .collect();
        let new_counts = new.map_or((0, 0), |rs| (spec_replicas(rs), available(rs)));
        rolling_targets(replicas, surge, unavailable, new_counts, &old_counts)
    };
    if let Some(rs) = new {
        scale(&api, rs, new_target).await?;
    } else {
        let next_revision = owned.iter().map(|rs| revision(rs)).max().unwrap_or(0) + 1;
        create_replicaset(&api, d, &hash, new_target, next_revision).await?;
    }
    for (rs, target) in olds.iter().zip(old_targets) {
        scale(&api, rs, target).await?;
    }
    // Old ReplicaSets at zero beyond the history limit go.
    let limit = usize::try_from(spec.revision_history_limit.unwrap_or(10).max(0)).unwrap_or(10);
    let idle: Vec<&&Arc<ReplicaSet>> = olds
        .iter()
        .filter(|rs| spec_replicas(rs) == 0 && rs.status.as_ref().is_none_or(|s| s.replicas == 0))
        .collect();
    if idle.len() > limit {
        for rs in &idle[..idle.len() - limit] {
            let _ = api
                .delete(&rs.name_any(), &DeleteParams::background())
                .await;
        }
    }
    write_status(client, d, new, &owned).await
}

async fn create_replicaset(
    api: &Api<ReplicaSet>,
    d: &Deployment,
    hash: &str,
    replicas: i32,
    revision: i64,
) -> Result<(), kube::Error> {
    let spec = d.spec.clone();
    let mut template = spec.template.clone();
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.into());
    let mut selector = spec.selector.clone();
    selector
        .match_labels
        .get_or_insert_with(Default::default)
        .insert(HASH_LABEL.into(), hash.into());
    let rs: ReplicaSet = serde_json::from_value(json!({
        "metadata": {
            "name": format!("{}-{hash}", d.name_any()),
            "labels": meta.labels,
            "annotations": {REVISION: revision.to_string(), "deployment.kubernetes.io/desired-replicas": spec.replicas.unwrap_or(1).to_string()},
            "ownerReferences": [controller_ref(d)],
        },
        "spec": {"replicas": replicas, "minReadySeconds": spec.min_ready_seconds, "selector": selector, "template": template},
    }))
    .map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &rs).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

async fn write_status(
    client: &kube::Client,
    d: &Deployment,
    new: Option<&Arc<ReplicaSet>>,
    owned: &[&Arc<ReplicaSet>],
) -> Result<(), kube::Error> {
    let spec = Some(&d.spec);
    let replicas = d.spec.replicas.unwrap_or(1);
    let sum = |f: &dyn Fn(&ReplicaSet) -> i32| owned.iter().map(|rs| f(rs)).sum::<i32>();
    let status_of = |rs: &ReplicaSet| rs.status.clone().unwrap_or_default();
    let total = sum(&|rs| status_of(rs).replicas);
    let ready = sum(&|rs| status_of(rs).ready_replicas.unwrap_or(0));
    let avail = sum(&|rs| status_of(rs).available_replicas.unwrap_or(0));
    let updated = new.map_or(0, |rs| status_of(rs).replicas);
    let rolling = spec
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let max_unavailable = scaled(
        rolling.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        25,
        false,
    );
    let is_available = avail >= replicas - max_unavailable;
    let complete = updated == replicas && total == replicas && avail == replicas;
    let previous = serde_json::to_value(&d.status).unwrap_or_default();
    let now = crate::time::now_rfc3339();
    let cond = |type_: &str, ok: bool, reason: &str, message: String| {
        let status = if ok { "True" } else { "False" };
        let old = previous["conditions"]
            .as_array()
            .and_then(|l| l.iter().find(|c| c["type"] == type_).cloned());
        let since = old
            .as_ref()
            .filter(|c| c["status"] == status)
            .map_or(json!(now), |c| c["lastTransitionTime"].clone());
        let updated_at = old
            .as_ref()
            .filter(|c| c["status"] == status && c["reason"] == reason)
            .map_or(json!(now), |c| c["lastUpdateTime"].clone());
        json!({"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": since, "lastUpdateTime": updated_at})
    };
    let new_name = new.map(|rs| rs.name_any()).unwrap_or_default();
    let status = json!({
        "observedGeneration": d.metadata.generation,
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": avail,
        "unavailableReplicas": (replicas - avail).max(0),
        "conditions": [
            cond("Available", is_available,
                if is_available { "MinimumReplicasAvailable" } else { "MinimumReplicasUnavailable" },
                if is_available { "Deployment has minimum availability.".into() } else { "Deployment does not have minimum availability.".into() }),
            cond("Progressing", true,
                if complete { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
                if complete { format!("ReplicaSet \"{new_name}\" has successfully progressed.") } else { format!("ReplicaSet \"{new_name}\" is progressing.") }),
        ],
    });
    let keys = [
        "observedGeneration",
        "replicas",
        "updatedReplicas",
        "readyReplicas",
        "availableReplicas",
        "unavailableReplicas",
        "conditions",
    ];
    let norm = |v: &Value, k: &str| {
        if v[k].is_null() && k != "conditions" && k != "observedGeneration" {
            json!(0)
        } else {
            v[k].clone()
        }
    };
    if keys.iter().all(|k| norm(&previous, k) == norm(&status, k)) {
        return Ok(());
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), &d.namespace().unwrap_or_default());
    api.patch_status(
        &d.name_any(),
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_stable_and_changes_with_the_template() {
        let a = json!({"metadata": {"labels": {"app": "x", "b": "1"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let b = json!({"spec": {"containers": [{"image": "i", "name": "c"}]}, "metadata": {"labels": {"b": "1", "app": "x"}}});
        assert_eq!(template_hash(&a), template_hash(&b));
        let c = json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "j"}]}});
        assert_ne!(template_hash(&a), template_hash(&c));
        assert!(
            template_hash(&a)
                .bytes()
                .all(|c| b"bcdfghjklmnpqrstvwxz2456789".contains(&c))
        );
    }

    #[test]
    fn surge_and_unavailable_defaults() {
        assert_eq!(scaled(None, 4, 25, true), 1);
        assert_eq!(scaled(None, 3, 25, true), 1);
        assert_eq!(scaled(None, 3, 25, false), 0);
        assert_eq!(
            scaled(Some(&IntOrString::String("50%".into())), 3, 25, true),
            2
        );
        assert_eq!(scaled(Some(&IntOrString::Int(2)), 3, 25, false), 2);
    }

    #[test]
    fn rolling_update_steps() {
        // 3 replicas, surge 1, unavailable 0: start the new one, keep the old ones.
        assert_eq!(rolling_targets(3, 1, 0, (0, 0), &[(3, 3)]), (1, vec![3]));
        // The new pod is available: one old one may go.
        assert_eq!(rolling_targets(3, 1, 0, (1, 1), &[(3, 3)]), (1, vec![2]));
        // Then the new one grows again.
        assert_eq!(rolling_targets(3, 1, 0, (1, 1), &[(2, 2)]), (2, vec![2]));
        // Finished.
        assert_eq!(rolling_targets(3, 1, 0, (3, 3), &[(0, 0)]), (3, vec![0]));
        // Unhealthy old pods go first, regardless of availability.
        assert_eq!(rolling_targets(3, 1, 0, (1, 0), &[(3, 1)]), (1, vec![1]));
        // Plain scaling without old ReplicaSets.
        assert_eq!(rolling_targets(5, 1, 1, (2, 2), &[]), (5, vec![]));
    }
}
