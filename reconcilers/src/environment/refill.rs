//! Pool refills wait a moment after a pool runs short.
//!
//! A pod leaves the pool when a router claims it, and the claimant then specializes it, which
//! takes a few milliseconds of the node's CPU. A replacement created at once boots at the same
//! moment (a Python runtime's start takes a core for about half a second), and on a small node
//! the two compete: measured on 2 cores, a specialization next to a booting pod took 49 ms at
//! p50 against 6.5 ms alone (docs/performance.md). So a refill starts [`REFILL_DELAY`] after the
//! shortage is first seen, and claims arriving meanwhile are refilled together. The delay counts
//! from the first sighting, so a stream of pod events cannot postpone a refill further.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::plan::PoolPlan;

/// How long a refill waits after its shortage is first seen.
pub const REFILL_DELAY: Duration = Duration::from_millis(100);

/// When each Environment (by UID) was first seen short of pods.
#[derive(Debug, Default)]
pub struct Refills {
    short_since: Mutex<HashMap<String, Instant>>,
}

impl Refills {
    /// `env` needs pods at `now`: how long its refill must still wait (`None`: refill now).
    pub fn wait(&self, env: &str, now: Instant) -> Option<Duration> {
        let mut short_since = self
            .short_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let since = *short_since.entry(env.to_owned()).or_insert(now);
        let left = REFILL_DELAY
            .checked_sub(now.saturating_duration_since(since))
            .filter(|left| !left.is_zero());
        if left.is_none() {
            short_since.remove(env);
        }
        left
    }

    /// What of `plan` to carry out now for `env`: all of it, or its deletions only while its
    /// creations wait (with how long they still wait).
    pub fn now(&self, env: &str, plan: &PoolPlan, now: Instant) -> (PoolPlan, Option<Duration>) {
        if !plan.create.values().any(|n| *n > 0) {
            self.settled(env);
            return (plan.clone(), None);
        }
        match self.wait(env, now) {
            None => (plan.clone(), None),
            Some(left) => {
                let deletions = PoolPlan {
                    delete: plan.delete.clone(),
                    ..PoolPlan::default()
                };
                (deletions, Some(left))
            }
        }
    }

    /// `env` needs no pods.
    pub fn settled(&self, env: &str) {
        self.short_since
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(env);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refill_waits_the_delay_from_the_first_sighting_only() {
        let refills = Refills::default();
        let t0 = Instant::now();
        assert_eq!(refills.wait("a", t0), Some(REFILL_DELAY));
        // More events meanwhile do not push it out.
        assert_eq!(
            refills.wait("a", t0 + REFILL_DELAY / 2),
            Some(REFILL_DELAY / 2)
        );
        assert_eq!(refills.wait("b", t0 + REFILL_DELAY / 2), Some(REFILL_DELAY));
        assert_eq!(refills.wait("a", t0 + REFILL_DELAY), None);
        // The next shortage waits again.
        assert_eq!(refills.wait("a", t0 + REFILL_DELAY * 2), Some(REFILL_DELAY));
        refills.settled("a");
        assert_eq!(
            refills.wait("a", t0 + REFILL_DELAY * 3),
            Some(REFILL_DELAY),
            "settled forgets the sighting"
        );
    }

    #[test]
    fn deletions_never_wait() {
        let refills = Refills::default();
        let t0 = Instant::now();
        let plan = PoolPlan {
            create: [("local".to_owned(), 1)].into(),
            delete: vec!["old".to_owned()],
            ..PoolPlan::default()
        };
        let (now, left) = refills.now("a", &plan, t0);
        assert_eq!(
            (now.delete, now.create.len(), left),
            (vec!["old".to_owned()], 0, Some(REFILL_DELAY))
        );
        assert_eq!(
            refills.now("a", &plan, t0 + REFILL_DELAY),
            (plan.clone(), None)
        );
        let deletions_only = PoolPlan {
            delete: vec!["old".to_owned()],
            ..PoolPlan::default()
        };
        assert_eq!(
            refills.now("b", &deletions_only, t0),
            (deletions_only.clone(), None)
        );
    }
}
