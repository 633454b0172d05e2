// Counts in these tests are tiny; `as` casts between usize and u32 cannot truncate.
#![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

use std::collections::HashMap;

use super::*;
use crate::rng::{SplitMix64, WeightRng};

fn limits(requests_per_pod: u32, concurrency: u32) -> Limits {
    Limits {
        requests_per_pod,
        concurrency,
        once_only: false,
    }
}

fn ticket_of(d: &Decision<&'static str>) -> (TicketId, WaiterId) {
    match d {
        Decision::Specialize { ticket, waiter } => (*ticket, *waiter),
        other => panic!("expected Specialize, got {other:?}"),
    }
}

#[test]
fn limits_follow_fission_defaults() {
    let spec = rivulet_api::FunctionSpec::default();
    assert_eq!(
        Limits::of(&spec),
        Limits {
            requests_per_pod: 1,
            concurrency: 500,
            once_only: false
        }
    );
    let spec = rivulet_api::FunctionSpec {
        requests_per_pod: Some(4),
        concurrency: Some(5),
        once_only: Some(true),
        ..Default::default()
    };
    assert_eq!(
        Limits::of(&spec),
        Limits {
            requests_per_pod: 4,
            concurrency: 5,
            once_only: true
        }
    );
}

#[test]
fn cold_start_specializes_once_then_reuses_the_pod() {
    let mut s = AdmissionState::new(limits(1, 5));
    let (ticket, waiter) = ticket_of(&s.acquire());
    assert_eq!(s.specializing(), 1);
    let done = s.specialization_succeeded(ticket, "pod-a");
    assert_eq!(
        done.grants,
        vec![Grant {
            waiter,
            pod: "pod-a"
        }]
    );
    assert_eq!(done.retired, None);
    assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&"pod-a", 1)]);
    assert_eq!(s.release(&"pod-a"), None);
    assert_eq!(s.acquire(), Decision::Use("pod-a"));
}

#[test]
fn waiters_share_a_specialization_up_to_requests_per_pod() {
    let mut s = AdmissionState::new(limits(3, 5));
    let (t1, w1) = ticket_of(&s.acquire());
    let Decision::Wait(w2) = s.acquire() else {
        panic!()
    };
    let Decision::Wait(w3) = s.acquire() else {
        panic!()
    };
    // The first ticket is full (3 slots): the 4th request needs another pod.
    let (t2, w4) = ticket_of(&s.acquire());
    assert_ne!(t1, t2);
    assert_eq!((s.specializing(), s.waiting()), (2, 4));
    let grants = s.specialization_succeeded(t1, "a").grants;
    assert_eq!(
        grants.iter().map(|g| g.waiter).collect::<Vec<_>>(),
        vec![w1, w2, w3]
    );
    assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&"a", 3)]);
    assert_eq!(
        s.specialization_succeeded(t2, "b").grants,
        vec![Grant {
            waiter: w4,
            pod: "b"
        }]
    );
}

#[test]
fn burst_of_200_with_concurrency_5_specializes_5_and_rejects_the_rest() {
    let mut s: AdmissionState<&str> = AdmissionState::new(limits(1, 5));
    let decisions: Vec<_> = (0..200).map(|_| s.acquire()).collect();
    let specialize = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Specialize { .. }))
        .count();
    let rejected = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Reject { .. }))
        .count();
    assert_eq!((specialize, rejected), (5, 195));
    assert!(decisions.iter().all(|d| !matches!(d, Decision::Wait(_))));
    assert!(decisions.contains(&Decision::Reject {
        retry_after: Duration::from_secs(1)
    }));
}

#[test]
fn burst_with_requests_per_pod_waits_instead_of_specializing() {
    let mut s: AdmissionState<&str> = AdmissionState::new(limits(50, 5));
    let decisions: Vec<_> = (0..200).map(|_| s.acquire()).collect();
    let specialize = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Specialize { .. }))
        .count();
    let waiting = decisions
        .iter()
        .filter(|d| matches!(d, Decision::Wait(_)))
        .count();
    assert_eq!(
        (specialize, waiting),
        (4, 196),
        "ceil(200 / 50) pods, never one per request"
    );
}

#[test]
fn the_fullest_pod_with_room_is_used() {
    let mut s = AdmissionState::new(limits(3, 5));
    let (t1, _) = ticket_of(&s.acquire());
    assert!(matches!(s.acquire(), Decision::Wait(_)));
    assert!(matches!(s.acquire(), Decision::Wait(_)));
    let (t2, _) = ticket_of(&s.acquire());
    s.specialization_succeeded(t1, "a");
    s.specialization_succeeded(t2, "b");
    for _ in 0..3 {
        s.release(&"a");
    }
    // a: 0, b: 1 → b (fullest with room) until it is full, then a.
    assert_eq!(s.acquire(), Decision::Use("b"));
    assert_eq!(s.acquire(), Decision::Use("b"));
    assert_eq!(s.acquire(), Decision::Use("a"));
    assert_eq!(s.idle_pods().count(), 0);
    // Ties go to the oldest pod.
    for _ in 0..3 {
        s.release(&"b");
    }
    s.release(&"a");
    assert_eq!(s.idle_pods().copied().collect::<Vec<_>>(), vec!["a", "b"]);
    assert_eq!(s.acquire(), Decision::Use("a"));
}

#[test]
fn failure_fails_only_the_tickets_waiters() {
    let mut s = AdmissionState::new(limits(2, 5));
    let (t1, w1) = ticket_of(&s.acquire());
    let Decision::Wait(w2) = s.acquire() else {
        panic!()
    };
    let (t2, w3) = ticket_of(&s.acquire());
    assert_eq!(s.specialization_failed(t1), vec![w1, w2]);
    assert_eq!(s.specializing(), 1);
    assert_eq!(s.waiting(), 1);
    assert_eq!(
        s.specialization_succeeded(t2, "b").grants,
        vec![Grant {
            waiter: w3,
            pod: "b"
        }]
    );
    assert!(
        s.specialization_failed(t1).is_empty(),
        "a ticket resolves once"
    );
}

#[test]
fn cancelled_waiters_get_nothing_and_free_their_slot() {
    let mut s = AdmissionState::new(limits(2, 1));
    let (t, w1) = ticket_of(&s.acquire());
    let Decision::Wait(w2) = s.acquire() else {
        panic!()
    };
    assert!(matches!(s.acquire(), Decision::Reject { .. }));
    assert!(s.cancel_wait(w2));
    assert!(!s.cancel_wait(w2));
    let Decision::Wait(w3) = s.acquire() else {
        panic!("the freed slot is reusable")
    };
    assert!(s.cancel_wait(w1), "even the initiator may leave");
    let done = s.specialization_succeeded(t, "a");
    assert_eq!(
        done.grants,
        vec![Grant {
            waiter: w3,
            pod: "a"
        }]
    );
    assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&"a", 1)]);
}

#[test]
fn removed_pods_free_concurrency_and_ignore_late_releases() {
    let mut s = AdmissionState::new(limits(1, 1));
    let (t, _) = ticket_of(&s.acquire());
    s.specialization_succeeded(t, "a");
    assert!(matches!(s.acquire(), Decision::Reject { .. }));
    assert!(s.remove_pod(&"a"));
    assert!(!s.remove_pod(&"a"));
    assert_eq!(s.release(&"a"), None);
    assert!(matches!(s.acquire(), Decision::Specialize { .. }));
}

#[test]
fn once_only_specializes_every_request_and_retires_pods() {
    let mut s = AdmissionState::new(Limits {
        requests_per_pod: 5,
        concurrency: 3,
        once_only: true,
    });
    let (t1, _) = ticket_of(&s.acquire());
    let (t2, _) = ticket_of(&s.acquire());
    s.specialization_succeeded(t1, "a");
    assert!(
        matches!(s.acquire(), Decision::Specialize { .. }),
        "never reuses a pod"
    );
    assert!(matches!(s.acquire(), Decision::Reject { .. }));
    assert_eq!(s.release(&"a"), Some("a"));
    assert_eq!(s.pods().count(), 0);
    // Initiator gone before the pod was ready: nobody will use it.
    let waiters = s
        .tickets
        .iter()
        .find(|t| t.id == t2)
        .unwrap()
        .waiters
        .clone();
    assert!(s.cancel_wait(waiters[0]));
    let done = s.specialization_succeeded(t2, "b");
    assert!(done.grants.is_empty());
    assert_eq!(done.retired, Some("b"));
}

#[test]
fn unknown_tickets_return_the_pod_for_retirement() {
    let mut s: AdmissionState<&str> = AdmissionState::new(limits(1, 1));
    let done = s.specialization_succeeded(TicketId(99), "x");
    assert_eq!(done.retired, Some("x"));
    assert_eq!(s.pods().count(), 0);
}

/// A model of every request's fate, checked against the state after each random step.
#[derive(Default)]
struct Model {
    /// Outstanding leases per pod.
    leases: HashMap<u64, u32>,
    /// Waiter → ticket.
    waiting: HashMap<WaiterId, TicketId>,
    tickets: Vec<TicketId>,
    next_pod: u64,
    started: u32,
    retired: u32,
}

fn check(s: &AdmissionState<u64>, m: &Model, l: Limits) {
    let pods: Vec<(u64, u32)> = s.pods().map(|(p, n)| (*p, n)).collect();
    assert!(
        pods.len() + s.specializing() <= l.concurrency as usize,
        "concurrency cap"
    );
    assert_eq!(s.specializing(), m.tickets.len());
    assert_eq!(s.waiting(), m.waiting.len());
    for (pod, n) in &pods {
        assert!(*n <= l.requests_per_pod, "requestsPerPod cap on {pod}");
        assert_eq!(
            *n,
            m.leases.get(pod).copied().unwrap_or(0),
            "in-flight of {pod}"
        );
    }
    for t in &s.tickets {
        assert!(t.waiters.len() as u32 <= l.requests_per_pod, "ticket slots");
    }
}

/// A random schedule of arrivals, completions, releases, cancellations and pod losses.
struct Sim {
    s: AdmissionState<u64>,
    m: Model,
    l: Limits,
    rng: SplitMix64,
}

impl Sim {
    fn pick(&mut self, len: usize) -> usize {
        self.rng.below(len.max(1) as u32) as usize
    }

    /// A new request; the decision must follow the rules given the state before it.
    fn arrive(&mut self) {
        let (s, m, l) = (&mut self.s, &mut self.m, self.l);
        let pod_room = !l.once_only && s.pods().any(|(_, n)| n < l.requests_per_pod);
        let ticket_room = !l.once_only
            && s.tickets
                .iter()
                .any(|t| (t.waiters.len() as u32) < l.requests_per_pod);
        let headroom = s.pods().count() + s.specializing() < l.concurrency as usize;
        match s.acquire() {
            Decision::Use(pod) => {
                assert!(pod_room);
                *m.leases.entry(pod).or_default() += 1;
            }
            Decision::Wait(w) => {
                assert!(
                    !pod_room && ticket_room,
                    "waits only when a ticket has room"
                );
                let t = s
                    .tickets
                    .iter()
                    .find(|t| t.waiters.contains(&w))
                    .unwrap()
                    .id;
                m.waiting.insert(w, t);
            }
            Decision::Specialize { ticket, waiter } => {
                assert!(!pod_room && !ticket_room && headroom, "single flight");
                m.tickets.push(ticket);
                m.waiting.insert(waiter, ticket);
                m.started += 1;
            }
            Decision::Reject { retry_after } => {
                assert!(
                    !pod_room && !ticket_room && !headroom,
                    "rejects only at the cap"
                );
                assert_eq!(retry_after, RETRY_AFTER);
            }
        }
    }

    /// A specialization finishes, mostly successfully; exactly its waiters are answered.
    fn finish(&mut self) {
        if self.m.tickets.is_empty() {
            return;
        }
        let i = self.pick(self.m.tickets.len());
        let t = self.m.tickets.swap_remove(i);
        let mut expected: Vec<WaiterId> = self
            .m
            .waiting
            .iter()
            .filter(|(_, tt)| **tt == t)
            .map(|(w, _)| *w)
            .collect();
        expected.sort();
        if self.rng.below(4) == 0 {
            let mut failed = self.s.specialization_failed(t);
            failed.sort();
            assert_eq!(failed, expected);
        } else {
            self.m.next_pod += 1;
            let pod = self.m.next_pod;
            let done = self.s.specialization_succeeded(t, pod);
            let mut granted: Vec<_> = done.grants.iter().map(|g| g.waiter).collect();
            granted.sort();
            assert_eq!(granted, expected);
            assert!(done.grants.iter().all(|g| g.pod == pod));
            if done.retired.is_some() {
                self.m.retired += 1;
            } else if !expected.is_empty() {
                self.m.leases.insert(pod, expected.len() as u32);
            }
        }
        for w in expected {
            self.m.waiting.remove(&w);
        }
    }

    /// A request finishes (or its client disconnects: the same release).
    fn release(&mut self) {
        let mut busy: Vec<u64> = self
            .m
            .leases
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(p, _)| *p)
            .collect();
        busy.sort_unstable();
        let i = self.pick(busy.len());
        if let Some(&pod) = busy.get(i) {
            *self.m.leases.get_mut(&pod).unwrap() -= 1;
            if self.s.release(&pod).is_some() {
                assert!(self.l.once_only);
                self.m.retired += 1;
            }
        }
    }

    /// A waiter gives up.
    fn cancel(&mut self) {
        let mut ids: Vec<WaiterId> = self.m.waiting.keys().copied().collect();
        ids.sort();
        let i = self.pick(ids.len());
        if let Some(&w) = ids.get(i) {
            assert!(self.s.cancel_wait(w));
            self.m.waiting.remove(&w);
        }
    }

    /// A pod disappears; its outstanding leases release later, harmlessly.
    fn lose_pod(&mut self) {
        let pods: Vec<u64> = self.s.pods().map(|(p, _)| *p).collect();
        let i = self.pick(pods.len());
        if let Some(&pod) = pods.get(i) {
            assert!(self.s.remove_pod(&pod));
            self.m.leases.remove(&pod);
        }
    }

    /// Every waiter ends granted or failed, never forgotten.
    fn drain(&mut self) {
        while let Some(t) = self.m.tickets.pop() {
            self.m.next_pod += 1;
            let done = self.s.specialization_succeeded(t, self.m.next_pod);
            for g in done.grants {
                assert_eq!(self.m.waiting.remove(&g.waiter), Some(t));
            }
        }
        assert!(self.m.waiting.is_empty());
        assert_eq!(self.s.waiting(), 0);
    }
}

fn run_random(seed: u64, l: Limits, steps: usize) -> Model {
    let mut sim = Sim {
        s: AdmissionState::new(l),
        m: Model::default(),
        l,
        rng: SplitMix64::seeded(seed),
    };
    for _ in 0..steps {
        match sim.rng.below(10) {
            0..=4 => sim.arrive(),
            5 | 6 => sim.finish(),
            7 => sim.release(),
            8 => sim.cancel(),
            _ => sim.lose_pod(),
        }
        check(&sim.s, &sim.m, l);
    }
    sim.drain();
    sim.m
}

#[test]
fn invariants_hold_under_random_interleavings() {
    let mut cases = 0;
    for seed in 0..300u64 {
        let mut pick = SplitMix64::seeded(seed ^ 0xA5A5);
        let l = Limits {
            requests_per_pod: 1 + pick.below(4),
            concurrency: 1 + pick.below(6),
            once_only: pick.below(5) == 0,
        };
        run_random(seed, l, 400);
        cases += 1;
    }
    assert_eq!(cases, 300);
}

#[test]
fn bursts_without_failures_never_start_more_than_concurrency() {
    for seed in 0..50u64 {
        let l = limits(1 + (seed % 3) as u32, 5);
        let mut s: AdmissionState<u64> = AdmissionState::new(l);
        let mut rng = SplitMix64::seeded(seed);
        let mut started = 0;
        // Bursts of arrivals, with some completions in between, never releasing pods: the total
        // number of pods ever specialized stays within the cap.
        let mut open = Vec::new();
        for i in 0..500u64 {
            match s.acquire() {
                Decision::Specialize { ticket, .. } => {
                    started += 1;
                    open.push(ticket);
                }
                Decision::Use(_) | Decision::Wait(_) | Decision::Reject { .. } => {}
            }
            if rng.below(10) == 0
                && let Some(t) = open.pop()
            {
                s.specialization_succeeded(t, i);
            }
        }
        assert!(started <= 5, "seed {seed}: {started} specializations");
    }
}

#[test]
fn adopted_pods_serve_at_once_and_count_once() {
    let mut s: AdmissionState<u64> = AdmissionState::new(limits(1, 2));
    assert!(s.adopt(7));
    assert!(!s.adopt(7), "a pod is adopted once");
    assert_eq!(s.acquire(), Decision::Use(7));
    // The adopted pod counts under concurrency: one more specialization, then 429.
    assert!(matches!(s.acquire(), Decision::Specialize { .. }));
    assert!(matches!(s.acquire(), Decision::Reject { .. }));
}
