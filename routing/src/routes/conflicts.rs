//! Route conflicts between HTTPTriggers, decided on the specs alone.
//!
//! Fission checks duplicates only in its CLI (`CheckHTTPTriggerDuplicates`: same host, same
//! `relativeurl` or same non-empty `prefix`, same methods) and otherwise lets gorilla/mux pick
//! whichever trigger the informer listed first. Rivulet decides: triggers are taken oldest first
//! (creationTimestamp, then name, then namespace); a trigger that has the same host and the same
//! route as an already accepted trigger, with at least one method in common, loses to it. Losers
//! are not routed at all, so accepted triggers never overlap and a reported conflict means "not
//! serving" (the httptrigger reconciler reports it in status).

use std::cmp::Ordering;

use rivulet_api::HTTPTrigger;

use super::ObjectKey;

/// A trigger that is not routed because an older trigger already owns its route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConflict {
    /// The newer trigger, not routed.
    pub trigger: ObjectKey,
    /// The older trigger that owns the route.
    pub conflicts_with: ObjectKey,
}

/// The route a trigger claims: a non-empty `prefix` wins over `relativeurl` (as in Fission).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RouteClaim<'a> {
    Exact(&'a str),
    Prefix(&'a str),
}

pub(crate) fn route_claim(trigger: &HTTPTrigger) -> Option<RouteClaim<'_>> {
    if let Some(prefix) = trigger.spec.effective_prefix() {
        return Some(RouteClaim::Prefix(prefix));
    }
    trigger
        .spec
        .relativeurl
        .as_deref()
        .filter(|u| !u.is_empty())
        .map(RouteClaim::Exact)
}

/// The host a trigger is restricted to, if any (empty means any host).
pub(crate) fn trigger_host(trigger: &HTTPTrigger) -> Option<&str> {
    trigger.spec.host.as_deref().filter(|h| !h.is_empty())
}

/// Oldest first: creationTimestamp, then name, then namespace. Objects without a timestamp
/// (never the case for objects read from an API server) sort first.
pub(crate) fn age_order(a: &HTTPTrigger, b: &HTTPTrigger) -> Ordering {
    a.metadata
        .creation_timestamp
        .cmp(&b.metadata.creation_timestamp)
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
        .then_with(|| a.metadata.namespace.cmp(&b.metadata.namespace))
}

fn methods_overlap(a: &[String], b: &[String]) -> bool {
    // No methods means every method (Rivulet's reading; see docs/router.md).
    a.is_empty() || b.is_empty() || a.iter().any(|m| b.contains(m))
}

fn hosts_equal(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

/// Which triggers lose a route conflict, each with the older trigger that owns the route.
/// Returned in age order of the losers. Pure: the reconciler reports these in status and
/// [`RouteTable::build`](super::RouteTable::build) leaves them out.
pub fn detect_conflicts(triggers: &[HTTPTrigger]) -> Vec<RouteConflict> {
    let mut ordered: Vec<&HTTPTrigger> = triggers.iter().collect();
    ordered.sort_by(|a, b| age_order(a, b));
    let mut accepted: Vec<(&HTTPTrigger, RouteClaim<'_>, Vec<String>)> = Vec::new();
    let mut conflicts = Vec::new();
    for trigger in ordered {
        let Some(claim) = route_claim(trigger) else {
            continue;
        };
        let methods = trigger.spec.effective_methods();
        let owner = accepted.iter().find(|(other, other_claim, other_methods)| {
            *other_claim == claim
                && hosts_equal(trigger_host(other), trigger_host(trigger))
                && methods_overlap(other_methods, &methods)
        });
        if let Some((owner, _, _)) = owner {
            conflicts.push(RouteConflict {
                trigger: ObjectKey::of(&trigger.metadata),
                conflicts_with: ObjectKey::of(&owner.metadata),
            });
        } else {
            accepted.push((trigger, claim, methods));
        }
    }
    conflicts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::test_support::trigger;

    fn keys(conflicts: &[RouteConflict]) -> Vec<(String, String)> {
        conflicts
            .iter()
            .map(|c| (c.trigger.to_string(), c.conflicts_with.to_string()))
            .collect()
    }

    #[test]
    fn same_url_and_method_conflicts_with_the_oldest() {
        let a = trigger("a", 1).url("/x").methods(&["GET"]).build();
        let b = trigger("b", 2).url("/x").methods(&["GET", "POST"]).build();
        let c = trigger("c", 3).url("/x").methods(&["GET"]).build();
        let got = detect_conflicts(&[c, b, a]);
        assert_eq!(
            keys(&got),
            vec![
                ("default/b".into(), "default/a".into()),
                ("default/c".into(), "default/a".into())
            ]
        );
    }

    #[test]
    fn disjoint_methods_hosts_or_routes_do_not_conflict() {
        let triggers = [
            trigger("a", 1).url("/x").methods(&["GET"]).build(),
            trigger("b", 2).url("/x").methods(&["POST"]).build(),
            trigger("c", 3)
                .url("/x")
                .methods(&["GET"])
                .host("other.example")
                .build(),
            trigger("d", 4).url("/y").methods(&["GET"]).build(),
            // Same text, but a prefix route is not the same route as an exact one.
            trigger("e", 5).prefix("/x").methods(&["GET"]).build(),
        ];
        assert!(detect_conflicts(&triggers).is_empty());
    }

    #[test]
    fn no_methods_means_all_methods() {
        let a = trigger("a", 1).prefix("/api").build();
        let b = trigger("b", 2).prefix("/api").methods(&["DELETE"]).build();
        assert_eq!(
            keys(&detect_conflicts(&[a, b])),
            vec![("default/b".into(), "default/a".into())]
        );
    }

    #[test]
    fn deprecated_method_counts_and_hosts_compare_case_insensitively() {
        let a = trigger("a", 1)
            .url("/x")
            .method("PUT")
            .host("Example.com")
            .build();
        let b = trigger("b", 2)
            .url("/x")
            .methods(&["PUT"])
            .host("example.com")
            .build();
        assert_eq!(
            keys(&detect_conflicts(&[b, a])),
            vec![("default/b".into(), "default/a".into())]
        );
    }

    #[test]
    fn losers_do_not_own_routes() {
        // b loses to a on GET; c overlaps only b (POST), and b is not routed, so c is fine.
        let a = trigger("a", 1).url("/x").methods(&["GET"]).build();
        let b = trigger("b", 2).url("/x").methods(&["GET", "POST"]).build();
        let c = trigger("c", 3).url("/x").methods(&["POST"]).build();
        assert_eq!(
            keys(&detect_conflicts(&[a, b, c])),
            vec![("default/b".into(), "default/a".into())]
        );
    }

    #[test]
    fn equal_timestamps_fall_back_to_name_then_namespace() {
        let a = trigger("same", 1).namespace("b-ns").url("/x").build();
        let b = trigger("same", 1).namespace("a-ns").url("/x").build();
        let c = trigger("aaa", 1).namespace("z-ns").url("/x").build();
        assert_eq!(
            keys(&detect_conflicts(&[a, b, c])),
            vec![
                ("a-ns/same".into(), "z-ns/aaa".into()),
                ("b-ns/same".into(), "z-ns/aaa".into())
            ]
        );
    }
}
