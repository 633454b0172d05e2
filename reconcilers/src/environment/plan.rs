//! What to create and delete so a warm pool matches its desired per-cluster counts (pure).
//!
//! Only warm pods (`managed=true`) are considered: claimed pods left the pool when they were
//! relabelled and are never touched here, so a spec change or an operator restart cannot cut a
//! specialized pod that is serving (Fission kills them: issue #1862).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use rivulet_api::keys::rivulet;

/// What the plan needs to know about one warm pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WarmPod {
    /// Pod name.
    pub name: String,
    /// Value of the cluster label.
    pub cluster: Option<String>,
    /// Value of the spec-hash label.
    pub spec_hash: Option<String>,
    /// `status.phase`.
    pub phase: Option<String>,
    /// Whether deletion has begun (then it no longer counts).
    pub terminating: bool,
    /// Whether the pod is Ready.
    pub ready: bool,
}

impl WarmPod {
    /// Reads the fields the plan uses from a pod.
    pub fn from_pod(pod: &Pod) -> Self {
        let labels = pod.metadata.labels.as_ref();
        let status = pod.status.as_ref();
        Self {
            name: pod.metadata.name.clone().unwrap_or_default(),
            cluster: labels.and_then(|l| l.get(rivulet::CLUSTER_LABEL)).cloned(),
            spec_hash: labels
                .and_then(|l| l.get(rivulet::POOL_SPEC_HASH_LABEL))
                .cloned(),
            phase: status.and_then(|s| s.phase.clone()),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            ready: status
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|c| c.type_ == "Ready"))
                .is_some_and(|c| c.status == "True"),
        }
    }

    fn finished(&self) -> bool {
        matches!(self.phase.as_deref(), Some("Failed" | "Succeeded"))
    }
}

/// Creations per cluster and deletions by name; empty when the pool has converged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolPlan {
    /// Pods to create, per cluster.
    pub create: BTreeMap<String, i32>,
    /// Warm pods to delete.
    pub delete: Vec<String>,
    /// Remote pods held back because the namespace is not offloaded yet, per cluster.
    pub deferred: BTreeMap<String, i32>,
}

impl PoolPlan {
    /// Whether nothing needs to change.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// Desired and ready warm pods of one cluster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterCount {
    /// Warm pods wanted.
    pub desired: i32,
    /// Warm pods of the current spec that are Ready.
    pub ready: i32,
}

/// Plans the pool. `remote_ready` says whether remote clusters may receive pods yet (the
/// namespace's `NamespaceOffloading` is Ready); local pods never wait for it.
pub fn plan_pool(
    desired: &BTreeMap<String, i32>,
    spec_hash: &str,
    pods: &[WarmPod],
    remote_ready: impl Fn(&str) -> bool,
) -> PoolPlan {
    let mut plan = PoolPlan::default();
    let mut current: BTreeMap<&str, Vec<&WarmPod>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| !p.terminating) {
        let wanted_cluster = pod
            .cluster
            .as_deref()
            .filter(|c| desired.get(*c).is_some_and(|n| *n > 0));
        match wanted_cluster {
            Some(cluster) if pod.spec_hash.as_deref() == Some(spec_hash) && !pod.finished() => {
                current.entry(cluster).or_default().push(pod);
            }
            _ => plan.delete.push(pod.name.clone()),
        }
    }
    for (cluster, &want) in desired {
        let mut have = current.remove(cluster.as_str()).unwrap_or_default();
        let count = i32::try_from(have.len()).unwrap_or(i32::MAX);
        if count > want {
            // Drop not-ready pods first, then the newest names, so the plan is deterministic.
            have.sort_by(|a, b| a.ready.cmp(&b.ready).then(b.name.cmp(&a.name)));
            let surplus = usize::try_from(count - want).unwrap_or(0);
            plan.delete
                .extend(have.iter().take(surplus).map(|p| p.name.clone()));
        } else if count < want {
            let missing = want - count;
            let target = if crate::placement::LOCAL_CLUSTER == cluster || remote_ready(cluster) {
                &mut plan.create
            } else {
                &mut plan.deferred
            };
            target.insert(cluster.clone(), missing);
        }
    }
    plan.delete.sort();
    plan
}

/// Desired and Ready counts per cluster, for the Environment's status.
pub fn cluster_counts(
    desired: &BTreeMap<String, i32>,
    spec_hash: &str,
    pods: &[WarmPod],
) -> BTreeMap<String, ClusterCount> {
    let mut counts: BTreeMap<String, ClusterCount> = desired
        .iter()
        .map(|(c, n)| {
            (
                c.clone(),
                ClusterCount {
                    desired: *n,
                    ready: 0,
                },
            )
        })
        .collect();
    for pod in pods {
        if pod.ready
            && !pod.terminating
            && pod.spec_hash.as_deref() == Some(spec_hash)
            && let Some(count) = pod.cluster.as_ref().and_then(|c| counts.get_mut(c))
        {
            count.ready += 1;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, cluster: &str, hash: &str, ready: bool) -> WarmPod {
        WarmPod {
            name: name.into(),
            cluster: Some(cluster.into()),
            spec_hash: Some(hash.into()),
            phase: Some("Running".into()),
            terminating: false,
            ready,
        }
    }

    fn desired(pairs: &[(&str, i32)]) -> BTreeMap<String, i32> {
        pairs.iter().map(|(c, n)| ((*c).to_owned(), *n)).collect()
    }

    fn always(_: &str) -> bool {
        true
    }

    #[test]
    fn empty_pool_creates_everything() {
        let plan = plan_pool(&desired(&[("local", 3), ("naples", 3)]), "h", &[], always);
        assert_eq!(plan.create, desired(&[("local", 3), ("naples", 3)]));
        assert!(plan.delete.is_empty());
    }

    #[test]
    fn converged_pool_plans_nothing() {
        let pods = [pod("a", "local", "h", true), pod("b", "local", "h", false)];
        let plan = plan_pool(&desired(&[("local", 2)]), "h", &pods, always);
        assert!(plan.is_empty(), "{plan:?}");
    }

    #[test]
    fn spec_change_replaces_warm_pods() {
        let pods = [
            pod("a", "local", "old", true),
            pod("b", "local", "old", true),
        ];
        let plan = plan_pool(&desired(&[("local", 2)]), "new", &pods, always);
        assert_eq!(plan.delete, ["a", "b"]);
        assert_eq!(plan.create, desired(&[("local", 2)]));
    }

    #[test]
    fn surplus_deletes_not_ready_first() {
        let pods = [
            pod("a", "local", "h", true),
            pod("b", "local", "h", false),
            pod("c", "local", "h", true),
        ];
        let plan = plan_pool(&desired(&[("local", 1)]), "h", &pods, always);
        assert_eq!(plan.delete, ["b", "c"]);
        assert!(plan.create.is_empty());
    }

    #[test]
    fn pods_of_dropped_clusters_and_finished_pods_go() {
        let mut failed = pod("f", "local", "h", false);
        failed.phase = Some("Failed".into());
        let mut gone = pod("t", "local", "h", false);
        gone.terminating = true;
        let pods = [
            pod("x", "florence", "h", true),
            failed,
            gone,
            pod("a", "local", "h", true),
        ];
        let plan = plan_pool(
            &desired(&[("local", 2), ("florence", 0)]),
            "h",
            &pods,
            always,
        );
        assert_eq!(
            plan.delete,
            ["f", "x"],
            "terminating pods are neither counted nor deleted again"
        );
        assert_eq!(plan.create, desired(&[("local", 1)]));
    }

    #[test]
    fn remote_pods_wait_for_offloading() {
        let plan = plan_pool(&desired(&[("local", 2), ("naples", 2)]), "h", &[], |_| {
            false
        });
        assert_eq!(plan.create, desired(&[("local", 2)]));
        assert_eq!(plan.deferred, desired(&[("naples", 2)]));
    }

    #[test]
    fn counts_report_ready_pods_of_the_current_spec() {
        let pods = [
            pod("a", "local", "h", true),
            pod("b", "local", "old", true),
            pod("c", "naples", "h", false),
        ];
        let counts = cluster_counts(&desired(&[("local", 2), ("naples", 1)]), "h", &pods);
        assert_eq!(
            counts["local"],
            ClusterCount {
                desired: 2,
                ready: 1
            }
        );
        assert_eq!(
            counts["naples"],
            ClusterCount {
                desired: 1,
                ready: 0
            }
        );
    }
}
