//! The Environment's `Offloaded` condition (pure): what the namespace's `NamespaceOffloading`
//! does for this pool's remote share — missing, Rivulet's and (not) Ready, or someone else's
//! and whether it covers the clusters this Environment asks for (the offloading reconciler's
//! adoption verdict, [`crate::offloading::decision::effect`]). Absent when the pool places
//! nothing remotely.

use rivulet_api::Environment;
use rivulet_api::keys::liqo;
use rivulet_api::liqo::offloading_phase;

use crate::offloading::MappingStrategy;
use crate::offloading::decision::{Current, effect};
use crate::offloading::desired::desired_offloading;
use crate::placement::Cluster;
use rivulet_api::conditions::Wanted;

/// Condition type.
pub const OFFLOADED: &str = "Offloaded";

/// Reasons of the `Offloaded` condition besides the adoption verdicts
/// ([`crate::offloading::decision::reasons::ADOPTED`], `FOREIGN_MISMATCH`).
pub mod reasons {
    /// The namespace has no `NamespaceOffloading` yet.
    pub const MISSING: &str = "OffloadingMissing";
    /// Rivulet's offloading exists but Liqo does not report it Ready (yet).
    pub const NOT_READY: &str = "OffloadingNotReady";
    /// Rivulet's offloading is Ready.
    pub const READY: &str = "OffloadingReady";
    /// The offloading is being deleted.
    pub const TERMINATING: &str = "OffloadingTerminating";
}

/// Whether Liqo reports the offloading Ready.
pub fn is_ready(current: &Current) -> bool {
    !current.deleting && current.status.offloading_phase.as_deref() == Some(offloading_phase::READY)
}

/// The `Offloaded` condition of `env`, or `None` when it places nothing remotely.
pub fn offloaded_condition(
    env: &Environment,
    current: Option<&Current>,
    ready: &[Cluster],
    known: &[Cluster],
) -> Option<Wanted<'static>> {
    // The mapping strategy does not change what the pool needs from the offloading.
    let desired = desired_offloading(&[env], ready, known, MappingStrategy::default())?;
    let namespace = env.metadata.namespace.as_deref().unwrap_or_default();
    let name = format!("{namespace}/{}", liqo::NAMESPACE_OFFLOADING_NAME);
    let phase = |c: &Current| {
        c.status
            .offloading_phase
            .clone()
            .unwrap_or_else(|| "unknown (no status yet)".into())
    };
    let wanted = match current {
        None => Wanted {
            type_: OFFLOADED,
            status: false,
            reason: reasons::MISSING,
            message: format!(
                "NamespaceOffloading {name} does not exist yet (the offloading reconciler creates \
                 it); remote warm pods for {} wait until Liqo reports it Ready",
                desired.clusters
            ),
        },
        Some(c) if c.deleting => Wanted {
            type_: OFFLOADED,
            status: false,
            reason: reasons::TERMINATING,
            message: format!(
                "NamespaceOffloading {name} is being deleted; a new one is created once it is gone"
            ),
        },
        Some(c) if c.ours => {
            let ready = is_ready(c);
            Wanted {
                type_: OFFLOADED,
                status: ready,
                reason: if ready {
                    reasons::READY
                } else {
                    reasons::NOT_READY
                },
                message: format!(
                    "NamespaceOffloading {name} (created by Rivulet), phase {}; this pool places \
                     pods on {}",
                    phase(c),
                    desired.clusters
                ),
            }
        }
        Some(c) => {
            let verdict = effect(&desired, c, known);
            Wanted {
                type_: OFFLOADED,
                status: verdict.covers() && is_ready(c),
                reason: verdict.reason(),
                message: verdict.message(namespace),
            }
        }
    };
    Some(wanted)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rivulet_api::keys::rivulet;

    use super::*;
    use crate::offloading::decision::reasons as verdicts;

    fn cluster(id: &str, remote: bool) -> Cluster {
        Cluster {
            id: id.into(),
            remote,
            labels: if remote {
                BTreeMap::from([("liqo.io/remote-cluster-id".to_owned(), id.to_owned())])
            } else {
                BTreeMap::new()
            },
            allocatable_cpu_millis: 4000,
        }
    }

    fn clusters() -> Vec<Cluster> {
        vec![
            cluster("local", false),
            cluster("florence", true),
            cluster("naples", true),
        ]
    }

    fn env(poolsize: i32) -> Environment {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": "python", "namespace": "liqo-demo", "uid": "u1"},
            "spec": {"version": 3, "runtime": {"image": "fission/python-env"}, "poolsize": poolsize}
        }))
        .unwrap()
    }

    fn offloading(ours: bool, phase: &str, selects: &[&str]) -> Current {
        let mut object: kube::api::DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "offloading.liqo.io/v1beta1", "kind": "NamespaceOffloading",
            "metadata": {"name": "offloading", "namespace": "liqo-demo", "generation": 1},
            "spec": {"podOffloadingStrategy": "LocalAndRemote", "clusterSelector": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "liqo.io/remote-cluster-id", "operator": "In", "values": selects}]}
            ]}},
            "status": {"offloadingPhase": phase, "observedGeneration": 1}
        }))
        .unwrap();
        if ours {
            object.metadata.labels = Some(BTreeMap::from([(
                rivulet::MANAGED_BY_LABEL.to_owned(),
                rivulet::MANAGED_BY_VALUE.to_owned(),
            )]));
        }
        Current::from_object(&object)
    }

    fn condition(env: &Environment, current: Option<&Current>) -> Option<Wanted<'static>> {
        offloaded_condition(env, current, &clusters(), &clusters())
    }

    #[test]
    fn absent_when_nothing_is_placed_remotely() {
        assert_eq!(condition(&env(1), None), None);
        assert_eq!(condition(&env(0), None), None);
    }

    #[test]
    fn missing_and_rivulets_own_offloading() {
        let missing = condition(&env(9), None).unwrap();
        assert_eq!((missing.status, missing.reason), (false, reasons::MISSING));
        let both = ["florence", "naples"];
        let pending = condition(&env(9), Some(&offloading(true, "InProgress", &both))).unwrap();
        assert_eq!(
            (pending.status, pending.reason),
            (false, reasons::NOT_READY)
        );
        assert!(
            pending.message.contains("phase InProgress"),
            "{}",
            pending.message
        );
        let ready = condition(&env(9), Some(&offloading(true, "Ready", &both))).unwrap();
        assert_eq!((ready.status, ready.reason), (true, reasons::READY));
    }

    #[test]
    fn a_foreign_offloading_reports_the_adoption_verdict() {
        let both = ["florence", "naples"];
        let adopted = condition(&env(9), Some(&offloading(false, "Ready", &both))).unwrap();
        assert_eq!((adopted.status, adopted.reason), (true, verdicts::ADOPTED));
        let partial = condition(&env(9), Some(&offloading(false, "Ready", &["naples"]))).unwrap();
        assert_eq!(
            (partial.status, partial.reason),
            (false, verdicts::FOREIGN_MISMATCH)
        );
        assert!(
            partial.message.contains("[florence]"),
            "{}",
            partial.message
        );
        assert!(partial.message.contains("was not created by Rivulet"));
    }
}
