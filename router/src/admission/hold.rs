//! The hold after a failed specialization (issue 15.6): pure, the clock is passed in.
//!
//! A package that cannot be fetched or loaded fails the same way on every pod, so specializing
//! another warm pod per request only burns the pool. After such a failure the function version
//! answers the recorded error until either the code changes (the Package or Environment the
//! specializer reports as its *revision*) or the hold's time is up; then one request tries
//! again. Each failure in a row doubles the hold, from [`FIRST_HOLD`] up to [`MAX_HOLD`].

use std::time::Duration;

use tokio::time::Instant;

use super::SpecializeError;

/// The hold after the first failure.
pub const FIRST_HOLD: Duration = Duration::from_secs(5);
/// The longest hold (after 7 failures in a row).
pub const MAX_HOLD: Duration = Duration::from_mins(5);

/// A recorded specialization failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// What the failed specialization said; every held request gets it.
    pub error: SpecializeError,
    /// The code it failed on.
    pub revision: String,
    /// Failures in a row on this revision.
    pub failures: u32,
    /// When one request may try again.
    pub until: Instant,
}

/// Whether `error` comes from the code (and would recur on any pod), so it is worth a hold.
/// "No warm pod" is capacity, not code: no hold.
pub fn holds(error: &SpecializeError) -> bool {
    matches!(
        error,
        SpecializeError::Failed(_) | SpecializeError::Timeout(_)
    )
}

/// How long the `failures`-th failure in a row holds.
pub fn hold_for(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_HOLD.saturating_mul(1 << doublings).min(MAX_HOLD)
}

impl Hold {
    /// The hold after `error` on `revision` at `now`, counting on from `previous` when it was
    /// for the same revision.
    pub fn after(
        previous: Option<&Hold>,
        error: SpecializeError,
        revision: String,
        now: Instant,
    ) -> Hold {
        let failures = match previous {
            Some(p) if p.revision == revision => p.failures.saturating_add(1),
            _ => 1,
        };
        Hold {
            error,
            revision,
            failures,
            until: now + hold_for(failures),
        }
    }

    /// Whether a request at `now`, for code at `revision`, may specialize again.
    pub fn lifted(&self, revision: &str, now: Instant) -> bool {
        self.revision != revision || now >= self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_double_up_to_the_cap() {
        assert_eq!(hold_for(1), Duration::from_secs(5));
        assert_eq!(hold_for(2), Duration::from_secs(10));
        assert_eq!(hold_for(4), Duration::from_secs(40));
        assert_eq!(hold_for(7), Duration::from_mins(5));
        assert_eq!(hold_for(1000), Duration::from_mins(5));
    }

    #[test]
    fn a_new_revision_or_the_time_lifts_the_hold() {
        let now = Instant::now();
        let error = SpecializeError::Failed("SyntaxError".into());
        let first = Hold::after(None, error.clone(), "pkg/1".into(), now);
        assert_eq!((first.failures, first.until), (1, now + FIRST_HOLD));
        assert!(!first.lifted("pkg/1", now + Duration::from_secs(4)));
        assert!(first.lifted("pkg/1", now + FIRST_HOLD));
        assert!(first.lifted("pkg/2", now), "changed code is tried at once");

        let second = Hold::after(Some(&first), error.clone(), "pkg/1".into(), now);
        assert_eq!(second.failures, 2);
        let other = Hold::after(Some(&second), error, "pkg/2".into(), now);
        assert_eq!(other.failures, 1, "a new revision counts from one");
    }

    #[test]
    fn only_code_failures_hold() {
        assert!(holds(&SpecializeError::Failed("bad checksum".into())));
        assert!(holds(&SpecializeError::Timeout(Duration::from_mins(2))));
        assert!(!holds(&SpecializeError::Unavailable("no warm pod".into())));
    }
}
