//! The Environment's status from what the reconciler observed (pure).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rivulet_api::keys::conditions::{READY, REASON_INVALID_SPEC};
use rivulet_api::validation::ValidationErrors;
use rivulet_api::{ClusterPoolStatus, Environment, EnvironmentStatus};

use super::plan::{ClusterCount, PoolPlan};
use crate::placement::Selection;
use rivulet_api::conditions::{Wanted, set};

/// Condition type reporting which clusters hold the pool.
pub const PLACED: &str = "Placed";

/// Reasons of the `Ready` condition.
pub mod reasons {
    /// Every desired warm pod is Ready.
    pub const POOL_READY: &str = "PoolReady";
    /// `poolsize` is 0.
    pub const NO_POOL: &str = "PoolSizeZero";
    /// Warm pods are being created or are not Ready yet.
    pub const POOL_NOT_READY: &str = "PoolNotReady";
    /// No warm pod can become Ready without a change: the runtime does not start (unmapped
    /// image, crash loop); the message says why.
    pub const RUNTIME_NOT_STARTING: &str = "RuntimeNotStarting";
}

/// What the reconcile saw, for the status.
#[derive(Debug)]
pub struct Observed<'a> {
    /// Validation result of the spec.
    pub errors: &'a ValidationErrors,
    /// Clusters selected for the pool (absent when the spec is invalid).
    pub selection: Option<&'a Selection>,
    /// Desired and ready warm pods per cluster.
    pub counts: &'a BTreeMap<String, ClusterCount>,
    /// The plan being carried out.
    pub plan: &'a PoolPlan,
    /// The `Offloaded` condition (`None`: nothing is placed remotely, the condition is removed).
    pub offloaded: Option<Wanted<'static>>,
    /// Why every warm pod is stuck (`rivulet_api::pod_status::pool_stuck`), if it is.
    pub stuck: Option<String>,
}

/// The new status, starting from the current one so unchanged conditions keep their times.
pub fn build_status(env: &Environment, observed: &Observed<'_>, now: &Time) -> EnvironmentStatus {
    let generation = env.metadata.generation;
    let current = env.status.clone().unwrap_or_default();
    let mut conditions = current.conditions;
    if !observed.errors.is_empty() {
        set(
            &mut conditions,
            Wanted {
                type_: READY,
                status: false,
                reason: REASON_INVALID_SPEC,
                message: observed.errors.to_string(),
            },
            generation,
            now,
        );
        // Invalid specs leave the pool as it was: report the last known pool, not a new plan.
        return EnvironmentStatus {
            observed_generation: generation,
            conditions,
            ..current_pool(env)
        };
    }
    if let Some(selection) = observed.selection {
        set(
            &mut conditions,
            Wanted {
                type_: PLACED,
                status: !selection.clusters.is_empty(),
                reason: selection.reason,
                message: selection.message.clone(),
            },
            generation,
            now,
        );
    }
    match &observed.offloaded {
        Some(wanted) => set(&mut conditions, wanted.clone(), generation, now),
        None => conditions.retain(|c| c.type_ != super::offloaded::OFFLOADED),
    }
    let desired: i32 = observed.counts.values().map(|c| c.desired).sum();
    let ready: i32 = observed.counts.values().map(|c| c.ready).sum();
    let pool_size = env.spec.pool_size();
    let ready_condition = if pool_size == 0 {
        Wanted {
            type_: READY,
            status: true,
            reason: reasons::NO_POOL,
            message: "spec.poolsize is 0: no warm pods are kept, so poolmgr functions of this environment cannot run".into(),
        }
    } else if desired == pool_size && ready == desired && observed.plan.is_empty() {
        Wanted {
            type_: READY,
            status: true,
            reason: reasons::POOL_READY,
            message: format!("{ready}/{desired} warm pods ready"),
        }
    } else if let Some(why) = &observed.stuck {
        Wanted {
            type_: READY,
            status: false,
            reason: reasons::RUNTIME_NOT_STARTING,
            message: format!("{}; {why}", not_ready_message(observed, pool_size, ready)),
        }
    } else {
        Wanted {
            type_: READY,
            status: false,
            reason: reasons::POOL_NOT_READY,
            message: not_ready_message(observed, pool_size, ready),
        }
    };
    set(&mut conditions, ready_condition, generation, now);
    EnvironmentStatus {
        observed_generation: generation,
        conditions,
        pool_size: Some(pool_size),
        ready_pods: Some(ready),
        clusters: observed
            .counts
            .iter()
            .map(|(name, c)| ClusterPoolStatus {
                name: name.clone(),
                desired: c.desired,
                ready: c.ready,
            })
            .collect(),
    }
}

fn current_pool(env: &Environment) -> EnvironmentStatus {
    env.status.clone().unwrap_or_default()
}

fn not_ready_message(observed: &Observed<'_>, pool_size: i32, ready: i32) -> String {
    let mut message = format!("{ready}/{pool_size} warm pods ready");
    let per_cluster: Vec<String> = observed
        .counts
        .iter()
        .map(|(name, c)| format!("{name} {}/{}", c.ready, c.desired))
        .collect();
    if !per_cluster.is_empty() {
        let _ = write!(message, " ({})", per_cluster.join(", "));
    }
    if !observed.plan.deferred.is_empty() {
        let waiting: Vec<&str> = observed.plan.deferred.keys().map(String::as_str).collect();
        let _ = write!(
            message,
            "; pods for [{}] wait until the namespace's NamespaceOffloading is Ready",
            waiting.join(", ")
        );
    }
    if let Some(selection) = observed.selection.filter(|s| s.clusters.is_empty()) {
        let _ = write!(message, "; {}", selection.message);
    }
    message
}
