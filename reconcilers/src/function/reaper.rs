//! Which specialized `poolmgr` pods are idle long enough to delete (pure).
//!
//! Activity contract (written by the router, read here): annotation
//! `rivulet.dev/last-activity` = RFC 3339 time of the pod's last request, refreshed at most every
//! 10 s and continuously while a request is in flight; `rivulet.dev/function-generation` = the
//! Function's generation the pod was specialized for. Without activity the pod's creation time
//! counts. A pod is reaped when idle for `idletimeout` plus the router's refresh period (the
//! annotation may lag the last request by that much); the `retainPods` most recently active pods
//! of the function's current generation are kept; pods of an older generation or of a deleted
//! function are not retained.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use rivulet_api::keys::{fission_labels, rivulet};

/// How much older than the last request the activity annotation can be.
const ACTIVITY_LAG: Duration = Duration::from_secs(rivulet::LAST_ACTIVITY_REFRESH_SECONDS);

/// Idle window after which pods of a deleted function go (Fission's 5 s activity guard).
pub const DELETED_FUNCTION_GRACE: Duration = Duration::from_secs(5);

/// What the reaper needs to know about a specialized pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecializedPod {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID of the Function it serves.
    pub function_uid: String,
    /// Generation of the Function it was specialized for.
    pub generation: Option<i64>,
    /// Last request (or creation) time.
    pub last_active: Option<Timestamp>,
}

impl SpecializedPod {
    /// Reads the reaper's view of a pod; `None` for pods not claimed by a function or terminating.
    pub fn from_pod(pod: &Pod) -> Option<Self> {
        if pod.metadata.deletion_timestamp.is_some() {
            return None;
        }
        let labels = pod.metadata.labels.as_ref()?;
        let annotations = pod.metadata.annotations.clone().unwrap_or_default();
        Some(Self {
            namespace: pod.metadata.namespace.clone().unwrap_or_default(),
            name: pod.metadata.name.clone()?,
            function_uid: labels.get(fission_labels::FUNCTION_UID)?.clone(),
            generation: annotations
                .get(rivulet::FUNCTION_GENERATION_ANNOTATION)
                .and_then(|g| g.parse().ok()),
            last_active: annotations
                .get(rivulet::LAST_ACTIVITY_ANNOTATION)
                .and_then(|t| t.parse().ok())
                .or_else(|| pod.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        })
    }
}

/// Reaping policy of one live function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// `idletimeout` (defaulted).
    pub idle_timeout: Duration,
    /// `retainPods`.
    pub retain: usize,
    /// The function's current `metadata.generation`.
    pub generation: Option<i64>,
}

/// Pods to delete now, as `(namespace, name)`.
pub fn pods_to_reap(
    pods: &[SpecializedPod],
    functions: &BTreeMap<String, Policy>,
    now: Timestamp,
) -> Vec<(String, String)> {
    let idle_for = |pod: &SpecializedPod| {
        pod.last_active.map_or(Duration::MAX, |t| {
            now.duration_since(t).try_into().unwrap_or(Duration::ZERO)
        })
    };
    let mut by_function: BTreeMap<&str, Vec<&SpecializedPod>> = BTreeMap::new();
    for pod in pods {
        by_function
            .entry(pod.function_uid.as_str())
            .or_default()
            .push(pod);
    }
    let mut reap = Vec::new();
    for (uid, mut group) in by_function {
        let Some(policy) = functions.get(uid) else {
            reap.extend(
                group
                    .iter()
                    .filter(|p| idle_for(p) >= DELETED_FUNCTION_GRACE)
                    .map(|p| (p.namespace.clone(), p.name.clone())),
            );
            continue;
        };
        // Most recently active first, so the retained ones are the warmest.
        group.sort_by(|a, b| b.last_active.cmp(&a.last_active).then(a.name.cmp(&b.name)));
        let mut retained = 0;
        for pod in group {
            let current = pod.generation.is_none() || pod.generation == policy.generation;
            if current && retained < policy.retain {
                retained += 1;
                continue;
            }
            if idle_for(pod) >= policy.idle_timeout + ACTIVITY_LAG {
                reap.push((pod.namespace.clone(), pod.name.clone()));
            }
        }
    }
    reap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + secs).unwrap()
    }

    fn pod(name: &str, uid: &str, generation: i64, active: i64) -> SpecializedPod {
        SpecializedPod {
            namespace: "ns".into(),
            name: name.into(),
            function_uid: uid.into(),
            generation: Some(generation),
            last_active: Some(at(active)),
        }
    }

    fn names(reaped: &[(String, String)]) -> Vec<&str> {
        reaped.iter().map(|(_, n)| n.as_str()).collect()
    }

    fn policy(idle: u64, retain: usize, generation: i64) -> Policy {
        Policy {
            idle_timeout: Duration::from_secs(idle),
            retain,
            generation: Some(generation),
        }
    }

    #[test]
    fn idle_pods_are_reaped_busy_ones_kept() {
        let pods = [pod("old", "f", 1, 0), pod("fresh", "f", 1, 100)];
        let functions = BTreeMap::from([("f".to_owned(), policy(120, 0, 1))]);
        assert_eq!(names(&pods_to_reap(&pods, &functions, at(150))), ["old"]);
        assert!(pods_to_reap(&pods, &functions, at(119)).is_empty());
    }

    #[test]
    fn activity_may_lag_by_the_refresh_period() {
        // A pod busy until just now may carry an annotation from up to 10 s earlier.
        let pods = [pod("busy", "f", 1, 0)];
        let functions = BTreeMap::from([("f".to_owned(), policy(3, 0, 1))]);
        assert!(pods_to_reap(&pods, &functions, at(12)).is_empty());
        assert_eq!(names(&pods_to_reap(&pods, &functions, at(13))), ["busy"]);
    }

    #[test]
    fn retain_keeps_the_warmest_pods_of_the_current_generation() {
        let pods = [
            pod("a", "f", 2, 0),
            pod("b", "f", 2, 10),
            pod("c", "f", 2, 5),
            pod("stale", "f", 1, 20),
        ];
        let functions = BTreeMap::from([("f".to_owned(), policy(60, 2, 2))]);
        // b and c are the two most recent of generation 2; a goes; the old generation is not retained.
        assert_eq!(
            names(&pods_to_reap(&pods, &functions, at(1000))),
            ["stale", "a"]
        );
    }

    #[test]
    fn deleted_functions_lose_their_pods_after_a_short_guard() {
        let pods = [pod("orphan", "gone", 1, 100)];
        assert!(pods_to_reap(&pods, &BTreeMap::new(), at(103)).is_empty());
        assert_eq!(
            names(&pods_to_reap(&pods, &BTreeMap::new(), at(106))),
            ["orphan"]
        );
    }

    #[test]
    fn reads_the_activity_annotation_contract() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": "p", "namespace": "ns", "creationTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"functionUid": "u", "managed": "false"},
                "annotations": {"rivulet.dev/last-activity": "2026-01-01T00:10:00Z", "rivulet.dev/function-generation": "3"}
            }
        }))
        .unwrap();
        let view = SpecializedPod::from_pod(&pod).unwrap();
        assert_eq!(view.generation, Some(3));
        assert_eq!(
            view.last_active,
            Some("2026-01-01T00:10:00Z".parse().unwrap())
        );
        let unannotated: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "q", "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"functionUid": "u"}}
        }))
        .unwrap();
        assert_eq!(
            SpecializedPod::from_pod(&unannotated).unwrap().last_active,
            Some("2026-01-01T00:00:00Z".parse().unwrap())
        );
    }
}
