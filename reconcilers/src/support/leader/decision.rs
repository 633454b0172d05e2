//! The pure rule of leader election: from what the Lease says and how long it has stayed
//! unchanged on this replica's clock, decide whether to renew, acquire or follow.
//!
//! Expiry is judged on the local monotonic clock ("the record has not changed for a whole lease
//! duration"), not by comparing `renewTime` with the wall clock, so clock skew between replicas
//! cannot make two of them lead at once (client-go's rule).

use std::time::Duration;

/// What to do with the Lease in this round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// We hold it: write a new `renewTime`.
    Renew,
    /// It is free (no holder) or expired: take it.
    Acquire,
    /// Someone else holds it and renews it: stand by.
    Follow,
}

/// The Lease as one replica sees it.
#[derive(Clone, Copy, Debug)]
pub struct View<'a> {
    /// `spec.holderIdentity` (`None` or empty = free).
    pub holder: Option<&'a str>,
    /// `spec.leaseDurationSeconds` of the record (falls back to ours when absent).
    pub lease_duration: Option<Duration>,
    /// How long the record (its resourceVersion) has been unchanged on our clock.
    pub unchanged_for: Duration,
}

/// Decides this round's action for the replica `identity`.
pub fn decide(view: View<'_>, identity: &str, our_lease_duration: Duration) -> Decision {
    match view.holder {
        None | Some("") => Decision::Acquire,
        Some(holder) if holder == identity => Decision::Renew,
        Some(_) if view.unchanged_for >= view.lease_duration.unwrap_or(our_lease_duration) => {
            Decision::Acquire
        }
        Some(_) => Decision::Follow,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Duration = Duration::from_secs(15);

    fn view(holder: Option<&str>, unchanged_for: u64) -> View<'_> {
        View {
            holder,
            lease_duration: Some(D),
            unchanged_for: Duration::from_secs(unchanged_for),
        }
    }

    #[test]
    fn a_free_lease_is_acquired() {
        assert_eq!(decide(view(None, 0), "me", D), Decision::Acquire);
        assert_eq!(decide(view(Some(""), 0), "me", D), Decision::Acquire);
    }

    #[test]
    fn our_own_lease_is_renewed_even_when_old() {
        assert_eq!(decide(view(Some("me"), 100), "me", D), Decision::Renew);
    }

    #[test]
    fn another_holder_is_followed_until_its_record_is_stale_for_a_lease_duration() {
        assert_eq!(decide(view(Some("other"), 0), "me", D), Decision::Follow);
        assert_eq!(decide(view(Some("other"), 14), "me", D), Decision::Follow);
        assert_eq!(decide(view(Some("other"), 15), "me", D), Decision::Acquire);
    }

    #[test]
    fn the_records_own_duration_wins_over_ours() {
        let long = View {
            holder: Some("other"),
            lease_duration: Some(Duration::from_mins(1)),
            unchanged_for: Duration::from_secs(30),
        };
        assert_eq!(decide(long, "me", D), Decision::Follow);
        let unset = View {
            lease_duration: None,
            ..long
        };
        assert_eq!(decide(unset, "me", D), Decision::Acquire);
    }
}
