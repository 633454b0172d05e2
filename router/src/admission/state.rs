//! The admission state machine of one function version: pure, synchronous, no clock.
//!
//! It holds the specialized pods with their in-flight counts, the specializations in flight
//! ("tickets"), each with the requests waiting for it, and a first-in first-out queue of requests
//! waiting for whichever slot frees first. [`AdmissionState::acquire`] decides, in this order:
//!
//! 1. a specialized pod has room (`in_flight < requestsPerPod`): **use** it — the fullest such
//!    pod, oldest first on ties, so extra pods go idle and can be reaped;
//! 2. a specialization in flight still has a free slot (it will serve `requestsPerPod` requests,
//!    its initiator included): **wait** for it instead of specializing another pod;
//! 3. nobody is queued, fewer than `max_specializing` specializations are in flight,
//!    specialized + specializing pods are below `concurrency`, and the pods keep their pace (or
//!    there are none): **specialize** a new pod;
//! 4. specializing is on **hold** (the last specialization failed, see `hold.rs`) and no pod
//!    exists or is coming: answer the recorded failure without touching a pod;
//! 5. the queue is shorter than `max_queued`: **queue** for the next free slot;
//! 6. otherwise **reject** (429 with `Retry-After`).
//!
//! A queued request is served by the first slot that frees: a finished request's, a new pod's
//! spare ones, a specialization's spare one. One that has waited its patience (the wrapper owns
//! the clock) is **escalated**: it starts a specialization of its own as soon as the caps allow
//! and the pods keep their pace (`pace.rs`: while each request takes more than twice its best
//! time, another pod would compete for what is saturated instead of adding capacity, so the
//! queue waits for the pods there are). `onceOnly` requests never reuse a pod, so they are
//! impatient from the start and never wait on the pace.
//!
//! So a burst of N requests against a cold function starts at most `max_specializing`
//! specializations at once, each sharing its pod with `requestsPerPod` requests, and queues the
//! rest behind them — where Fission specializes a pod per request up to `concurrency` and then
//! retries 429s (issues #2452, #1939). Under sustained overload pods are added only when
//! requests wait longer than the patience while the pods keep their pace, so a fast function on
//! a small machine is served by a few busy pods instead of one booting pod per connection
//! (issue 15.10).

use std::collections::VecDeque;
use std::time::Duration;

use super::Overload;
pub use super::pace::DEFAULT_MAX_SLOWDOWN;
use super::pace::Pace;

/// How long a rejected client should wait before retrying. A specialization takes hundreds of
/// milliseconds and a typical function call less than a second; `Retry-After` counts whole
/// seconds and 1 is the smallest useful value.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Specializations in flight per function version when the router is not told otherwise. Each
/// one claims a warm pod and makes the pool boot a replacement; on the 2-core reference machine
/// more than two at once only slow each other down (docs/router.md, "Overload").
pub const DEFAULT_MAX_SPECIALIZING: u32 = 2;

/// Requests queued per function version when the router is not told otherwise: above Fission's
/// default `concurrency` (500), so a burst that size queues instead of failing.
pub const DEFAULT_MAX_QUEUED: u32 = 1024;

/// Per-function limits: Fission's `requestsPerPod`, `concurrency` and `onceOnly`, and the
/// router's overload bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent requests one specialized pod serves (≥ 1).
    pub requests_per_pod: u32,
    /// Maximum specialized plus specializing pods (≥ 1).
    pub concurrency: u32,
    /// Every request gets a freshly specialized pod that is retired after it.
    pub once_only: bool,
    /// Maximum specializations in flight (≥ 1).
    pub max_specializing: u32,
    /// Maximum requests queued for a free slot (0: none, reject at once).
    pub max_queued: u32,
    /// Requests taking more than this many times their best time: no new pod (0: no such gate;
    /// see `pace.rs`).
    pub max_slowdown: u32,
}

impl Limits {
    /// The limits of a function spec, with Fission's defaults (0 or absent: 1 request per pod,
    /// concurrency 500) and the router's default overload bounds.
    pub fn of(spec: &rivulet_api::FunctionSpec) -> Self {
        let positive = |v: i32| u32::try_from(v).unwrap_or(1).max(1);
        Self {
            requests_per_pod: positive(rivulet_api::defaults::requests_per_pod(
                spec.requests_per_pod,
            )),
            concurrency: positive(rivulet_api::defaults::concurrency(spec.concurrency)),
            once_only: spec.once_only.unwrap_or(false),
            max_specializing: DEFAULT_MAX_SPECIALIZING,
            max_queued: DEFAULT_MAX_QUEUED,
            max_slowdown: DEFAULT_MAX_SLOWDOWN,
        }
    }

    /// The same limits with the router's overload bounds.
    #[must_use]
    pub fn with_overload(self, overload: &Overload) -> Self {
        Self {
            max_specializing: overload.max_specializing,
            max_queued: overload.max_queued,
            max_slowdown: overload.max_slowdown,
            ..self
        }
    }
}

#[cfg(test)]
impl Limits {
    /// Test limits: `requestsPerPod` and `concurrency`, specializations in flight up to
    /// `concurrency`, a queue of 100.
    pub(crate) fn for_tests(requests_per_pod: u32, concurrency: u32) -> Self {
        Self {
            requests_per_pod,
            concurrency,
            once_only: false,
            max_specializing: concurrency,
            max_queued: 100,
            max_slowdown: DEFAULT_MAX_SLOWDOWN,
        }
    }
}

/// Identifies a specialization in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketId(u64);

/// Identifies a request waiting for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WaiterId(u64);

/// What a request should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision<P> {
    /// Send the request to this pod now; call [`AdmissionState::release`] when done.
    Use(P),
    /// Start a specialization for `ticket`, then wait as `waiter`; report the outcome with
    /// [`AdmissionState::specialization_succeeded`] or [`AdmissionState::specialization_failed`].
    Specialize {
        /// The specialization to start.
        ticket: TicketId,
        /// The caller's own place among the ticket's waiters.
        waiter: WaiterId,
    },
    /// Wait as `waiter` for a specialization in flight.
    Wait(WaiterId),
    /// Wait as `waiter` in the queue for the next free slot; escalate after the patience.
    Queue(WaiterId),
    /// Specializing is on hold and nothing can serve: answer the recorded failure.
    Held,
    /// Over the `concurrency` cap with a full queue: answer 429 with `Retry-After`.
    Reject {
        /// `Retry-After`.
        retry_after: Duration,
    },
}

/// A waiter that now holds one in-flight slot on `pod`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<P> {
    /// The waiter.
    pub waiter: WaiterId,
    /// Its pod.
    pub pod: P,
}

/// What an event asks the caller to do, besides its own answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects<P> {
    /// Waiters that now hold a slot (deliver the pod).
    pub grants: Vec<Grant<P>>,
    /// Waiters that fail with the specialization's error.
    pub failed: Vec<WaiterId>,
    /// Specializations to start (each already has its waiter).
    pub started: Vec<TicketId>,
    /// A pod nobody will use (delete it).
    pub retired: Option<P>,
}

impl<P> Default for Effects<P> {
    fn default() -> Self {
        Self {
            grants: Vec::new(),
            failed: Vec::new(),
            started: Vec::new(),
            retired: None,
        }
    }
}

#[derive(Debug, Clone)]
struct PodSlot<P> {
    pod: P,
    in_flight: u32,
}

#[derive(Debug, Clone)]
struct Ticket {
    id: TicketId,
    waiters: Vec<WaiterId>,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    waiter: WaiterId,
    impatient: bool,
}

/// Admission state of one function version. `P` identifies a specialized pod (its address).
#[derive(Debug, Clone)]
pub struct AdmissionState<P> {
    limits: Limits,
    pods: Vec<PodSlot<P>>,
    tickets: Vec<Ticket>,
    queue: VecDeque<Queued>,
    held: bool,
    pace: Pace,
    next_id: u64,
}

impl<P: Clone + PartialEq> AdmissionState<P> {
    /// Empty state: no pod, nothing in flight.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            requests_per_pod: limits.requests_per_pod.max(1),
            concurrency: limits.concurrency.max(1),
            max_specializing: limits.max_specializing.max(1),
            ..limits
        };
        Self {
            limits,
            pods: Vec::new(),
            tickets: Vec::new(),
            queue: VecDeque::new(),
            held: false,
            pace: Pace::default(),
            next_id: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// The fullest pod with room, oldest first on ties (never for `onceOnly`).
    fn best_pod(&mut self) -> Option<&mut PodSlot<P>> {
        if self.limits.once_only {
            return None;
        }
        let rpp = self.limits.requests_per_pod;
        self.pods
            .iter_mut()
            .filter(|slot| slot.in_flight < rpp)
            .reduce(|best, slot| {
                if slot.in_flight > best.in_flight {
                    slot
                } else {
                    best
                }
            })
    }

    /// A specialization in flight with a free slot (never for `onceOnly`).
    fn ticket_with_room(&mut self) -> Option<&mut Ticket> {
        if self.limits.once_only {
            return None;
        }
        let rpp = self.limits.requests_per_pod;
        self.tickets.iter_mut().find(|t| slot_count(t) < rpp)
    }

    /// Whether one more specialization may start now.
    fn may_specialize(&self) -> bool {
        !self.held
            && self.tickets.len() < self.limits.max_specializing as usize
            && self.pods.len() + self.tickets.len() < self.limits.concurrency as usize
    }

    /// Whether a request may start a specialization now (a new one nobody queues before, or an
    /// escalated one): the caps allow it and the pods keep their pace — unless no pod could
    /// serve it otherwise (none left, or `onceOnly`, whose pods serve one request each).
    fn may_add_pod(&self) -> bool {
        self.may_specialize()
            && (self.limits.once_only
                || self.pods.is_empty()
                || !self.pace.slowed(self.limits.max_slowdown))
    }

    fn open_ticket(&mut self, waiter: WaiterId) -> TicketId {
        let ticket = TicketId(self.next());
        self.tickets.push(Ticket {
            id: ticket,
            waiters: vec![waiter],
        });
        ticket
    }

    /// Admits one request (see the module documentation for the order of the rules).
    pub fn acquire(&mut self) -> Decision<P> {
        if let Some(slot) = self.best_pod() {
            slot.in_flight += 1;
            return Decision::Use(slot.pod.clone());
        }
        let waiter = WaiterId(self.next());
        if let Some(ticket) = self.ticket_with_room() {
            ticket.waiters.push(waiter);
            return Decision::Wait(waiter);
        }
        if self.queue.is_empty() && self.may_add_pod() {
            let ticket = self.open_ticket(waiter);
            return Decision::Specialize { ticket, waiter };
        }
        if self.held && self.pods.is_empty() && self.tickets.is_empty() {
            return Decision::Held;
        }
        if self.queue.len() < self.limits.max_queued as usize {
            self.queue.push_back(Queued {
                waiter,
                impatient: self.limits.once_only,
            });
            return Decision::Queue(waiter);
        }
        Decision::Reject {
            retry_after: RETRY_AFTER,
        }
    }

    /// Serves the queue from whatever is free, then starts the specializations escalated
    /// waiters are owed. Every event that frees a slot or lifts a cap ends here.
    fn rebalance(&mut self, effects: &mut Effects<P>) {
        while !self.queue.is_empty() {
            let Some(slot) = self.best_pod() else { break };
            slot.in_flight += 1;
            let pod = slot.pod.clone();
            if let Some(queued) = self.queue.pop_front() {
                effects.grants.push(Grant {
                    waiter: queued.waiter,
                    pod,
                });
            }
        }
        self.fill_tickets();
        while self.may_add_pod() {
            let Some(index) = self.queue.iter().position(|q| q.impatient) else {
                break;
            };
            if let Some(queued) = self.queue.remove(index) {
                let ticket = self.open_ticket(queued.waiter);
                effects.started.push(ticket);
                // The new pod's other slots go to the queue's head.
                self.fill_tickets();
            }
        }
    }

    /// Moves queued waiters into the free slots of specializations in flight.
    fn fill_tickets(&mut self) {
        if self.limits.once_only {
            return;
        }
        let rpp = self.limits.requests_per_pod;
        for ticket in &mut self.tickets {
            while slot_count(ticket) < rpp {
                let Some(queued) = self.queue.pop_front() else {
                    return;
                };
                ticket.waiters.push(queued.waiter);
            }
        }
    }

    /// A queued waiter has waited its patience: it may start a specialization of its own, now
    /// or as soon as the caps allow. No effect on a waiter that is not queued.
    pub fn escalate(&mut self, waiter: WaiterId) -> Effects<P> {
        if let Some(queued) = self.queue.iter_mut().find(|q| q.waiter == waiter) {
            queued.impatient = true;
        }
        let mut effects = Effects::default();
        self.rebalance(&mut effects);
        effects
    }

    /// A specialization finished: the pod joins the set and the ticket's waiters get it (each
    /// holding one in-flight slot), then its spare slots serve the queue. Success lifts a hold.
    /// An unknown ticket, or an `onceOnly` pod nobody waits for, yields the pod back as
    /// `retired` (the caller deletes it).
    pub fn specialization_succeeded(&mut self, ticket: TicketId, pod: P) -> Effects<P> {
        let mut effects = Effects::default();
        let Some(index) = self.tickets.iter().position(|t| t.id == ticket) else {
            effects.retired = Some(pod);
            return effects;
        };
        self.held = false;
        let mut waiters = self.tickets.swap_remove(index).waiters;
        if self.limits.once_only
            && waiters.is_empty()
            && let Some(queued) = self.queue.pop_front()
        {
            // Its requester left; the next `onceOnly` request in line takes it instead.
            waiters.push(queued.waiter);
        }
        let in_flight = u32::try_from(waiters.len()).unwrap_or(u32::MAX);
        effects.grants = waiters
            .into_iter()
            .map(|waiter| Grant {
                waiter,
                pod: pod.clone(),
            })
            .collect();
        if self.limits.once_only && in_flight == 0 {
            effects.retired = Some(pod);
        } else if let Some(slot) = self.pods.iter_mut().find(|slot| slot.pod == pod) {
            // The specializer handed back a pod the set already holds (one adopted after a
            // restart): one slot, never two.
            slot.in_flight += in_flight;
        } else {
            self.pods.push(PodSlot { pod, in_flight });
        }
        self.rebalance(&mut effects);
        effects
    }

    /// A specialization failed: its waiters fail with it (one failed specialization costs one
    /// pod, never a retry storm). With `hold`, no specialization starts until
    /// [`AdmissionState::resume`], and if nothing is left to serve the queue, the queue fails
    /// too.
    pub fn specialization_failed(&mut self, ticket: TicketId, hold: bool) -> Effects<P> {
        let mut effects = Effects::default();
        if let Some(index) = self.tickets.iter().position(|t| t.id == ticket) {
            effects.failed = self.tickets.swap_remove(index).waiters;
        }
        if hold {
            self.held = true;
            if self.pods.is_empty() && self.tickets.is_empty() {
                effects
                    .failed
                    .extend(self.queue.drain(..).map(|q| q.waiter));
            }
        }
        self.rebalance(&mut effects);
        effects
    }

    /// Lifts a hold (its time is up, or the code changed): specializations may start again.
    pub fn resume(&mut self) -> Effects<P> {
        self.held = false;
        let mut effects = Effects::default();
        self.rebalance(&mut effects);
        effects
    }

    /// Whether specializing is on hold.
    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Whether the pods are slowed down (see `pace.rs`).
    pub fn is_slowed(&self) -> bool {
        self.pace.slowed(self.limits.max_slowdown)
    }

    /// A waiter gave up (deadline, client gone). `false` when it is not waiting any more
    /// (already granted or failed).
    pub fn cancel_wait(&mut self, waiter: WaiterId) -> bool {
        for ticket in &mut self.tickets {
            if let Some(i) = ticket.waiters.iter().position(|w| *w == waiter) {
                ticket.waiters.remove(i);
                // The freed slot goes to the queue's head; nothing else changed.
                self.fill_tickets();
                return true;
            }
        }
        if let Some(i) = self.queue.iter().position(|q| q.waiter == waiter) {
            self.queue.remove(i);
            return true;
        }
        false
    }

    /// A request on `pod` finished after `took` (its pace): its slot serves the queue's head, or
    /// the pod is retired (`onceOnly`). Releasing a pod that was removed is a no-op.
    pub fn release(&mut self, pod: &P, took: Duration) -> Effects<P> {
        let mut effects = Effects::default();
        let Some(index) = self.pods.iter().position(|slot| slot.pod == *pod) else {
            return effects;
        };
        self.pace.record(took);
        let slot = &mut self.pods[index];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if self.limits.once_only && slot.in_flight == 0 {
            effects.retired = Some(self.pods.swap_remove(index).pod);
        }
        self.rebalance(&mut effects);
        effects
    }

    /// Adds a pod that is already specialized for this function version (found again after a
    /// router restart) as idle capacity, which serves the queue at once. `None` when it is
    /// already known.
    pub fn adopt(&mut self, pod: P) -> Option<Effects<P>> {
        if self.pods.iter().any(|slot| slot.pod == pod) {
            return None;
        }
        self.pods.push(PodSlot { pod, in_flight: 0 });
        let mut effects = Effects::default();
        self.rebalance(&mut effects);
        Some(effects)
    }

    /// The pod is gone (deleted, crashed, reaped): it takes no more requests and frees its place
    /// under `concurrency`. In-flight requests on it release harmlessly. `None` when unknown.
    pub fn remove_pod(&mut self, pod: &P) -> Option<Effects<P>> {
        let before = self.pods.len();
        self.pods.retain(|slot| slot.pod != *pod);
        if self.pods.len() == before {
            return None;
        }
        let mut effects = Effects::default();
        self.rebalance(&mut effects);
        Some(effects)
    }

    /// Specialized pods and their in-flight counts, oldest first.
    pub fn pods(&self) -> impl Iterator<Item = (&P, u32)> {
        self.pods.iter().map(|slot| (&slot.pod, slot.in_flight))
    }

    /// Specializations in flight.
    pub fn specializing(&self) -> usize {
        self.tickets.len()
    }

    /// Requests waiting for a specialization or in the queue.
    pub fn waiting(&self) -> usize {
        self.tickets.iter().map(|t| t.waiters.len()).sum::<usize>() + self.queue.len()
    }

    /// Requests in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Pods with no request in flight (candidates for idle reaping).
    pub fn idle_pods(&self) -> impl Iterator<Item = &P> {
        self.pods
            .iter()
            .filter(|slot| slot.in_flight == 0)
            .map(|slot| &slot.pod)
    }
}

fn slot_count(ticket: &Ticket) -> u32 {
    u32::try_from(ticket.waiters.len()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    // Counts in these tests are tiny; `as` casts between usize and u32 cannot truncate.
    #![allow(clippy::cast_possible_truncation, clippy::many_single_char_names)]

    use std::collections::{HashMap, HashSet};

    use super::*;
    use rivulet_routing::rng::{SplitMix64, WeightRng};

    /// The service time of a call in tests that do not exercise the pace.
    const QUICK: Duration = Duration::from_millis(1);

    fn limits(requests_per_pod: u32, concurrency: u32) -> Limits {
        Limits::for_tests(requests_per_pod, concurrency)
    }

    fn ticket_of<P: std::fmt::Debug>(d: &Decision<P>) -> (TicketId, WaiterId) {
        match d {
            Decision::Specialize { ticket, waiter } => (*ticket, *waiter),
            other => panic!("expected Specialize, got {other:?}"),
        }
    }

    fn queued_of<P: std::fmt::Debug>(d: &Decision<P>) -> WaiterId {
        match d {
            Decision::Queue(waiter) => *waiter,
            other => panic!("expected Queue, got {other:?}"),
        }
    }

    fn grant<P>(waiter: WaiterId, pod: P) -> Grant<P> {
        Grant { waiter, pod }
    }

    #[test]
    fn limits_follow_fission_defaults() {
        let spec = rivulet_api::FunctionSpec::default();
        assert_eq!(
            Limits::of(&spec),
            Limits {
                requests_per_pod: 1,
                concurrency: 500,
                once_only: false,
                max_specializing: DEFAULT_MAX_SPECIALIZING,
                max_queued: DEFAULT_MAX_QUEUED,
                max_slowdown: DEFAULT_MAX_SLOWDOWN,
            }
        );
        let spec = rivulet_api::FunctionSpec {
            requests_per_pod: Some(4),
            concurrency: Some(5),
            once_only: Some(true),
            ..Default::default()
        };
        let l = Limits::of(&spec).with_overload(&Overload {
            max_specializing: 3,
            max_queued: 7,
            max_slowdown: 5,
            ..Overload::default()
        });
        assert_eq!(
            (l.requests_per_pod, l.concurrency, l.once_only),
            (4, 5, true)
        );
        assert_eq!(
            (l.max_specializing, l.max_queued, l.max_slowdown),
            (3, 7, 5)
        );
    }

    #[test]
    fn cold_start_specializes_once_then_reuses_the_pod() {
        let mut s = AdmissionState::new(limits(1, 5));
        let (ticket, waiter) = ticket_of(&s.acquire());
        assert_eq!(s.specializing(), 1);
        let done = s.specialization_succeeded(ticket, "pod-a");
        assert_eq!(done.grants, vec![grant(waiter, "pod-a")]);
        assert_eq!(done.retired, None);
        assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&"pod-a", 1)]);
        assert_eq!(s.release(&"pod-a", QUICK), Effects::default());
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
            vec![grant(w4, "b")]
        );
    }

    #[test]
    fn a_burst_starts_at_most_max_specializing_and_queues_the_rest() {
        let l = Limits {
            max_specializing: 2,
            ..limits(1, 5)
        };
        let mut s: AdmissionState<&str> = AdmissionState::new(l);
        let decisions: Vec<_> = (0..200).map(|_| s.acquire()).collect();
        let count = |f: fn(&Decision<&str>) -> bool| decisions.iter().filter(|d| f(d)).count();
        assert_eq!(count(|d| matches!(d, Decision::Specialize { .. })), 2);
        assert_eq!(count(|d| matches!(d, Decision::Queue(_))), 100);
        assert_eq!(count(|d| matches!(d, Decision::Reject { .. })), 98);
        assert!(decisions.contains(&Decision::Reject {
            retry_after: Duration::from_secs(1)
        }));
        assert_eq!((s.specializing(), s.queued(), s.waiting()), (2, 100, 102));
    }

    #[test]
    fn a_burst_with_requests_per_pod_fills_each_pod_before_queueing() {
        let l = Limits {
            max_specializing: 2,
            max_queued: 1000,
            ..limits(50, 5)
        };
        let mut s: AdmissionState<&str> = AdmissionState::new(l);
        let decisions: Vec<_> = (0..200).map(|_| s.acquire()).collect();
        let specialize = decisions
            .iter()
            .filter(|d| matches!(d, Decision::Specialize { .. }))
            .count();
        let waiting = decisions
            .iter()
            .filter(|d| matches!(d, Decision::Wait(_)))
            .count();
        assert_eq!((specialize, waiting, s.queued()), (2, 98, 100));
        // The first queued request runs out of patience: no room for a third specialization yet,
        // so it starts one when the first ends, and that one takes 49 more from the queue.
        let first_queued = queued_of(&decisions[100]);
        assert!(s.escalate(first_queued).started.is_empty());
        let (t1, _) = ticket_of(&decisions[0]);
        let done = s.specialization_succeeded(t1, "a");
        assert_eq!(done.grants.len(), 50);
        assert_eq!(done.started.len(), 1);
        assert_eq!((s.specializing(), s.queued()), (2, 50));
    }

    #[test]
    fn released_slots_serve_the_queue_first_in_first_out() {
        let l = Limits {
            max_specializing: 1,
            ..limits(1, 1)
        };
        let mut s = AdmissionState::new(l);
        let (t, w1) = ticket_of(&s.acquire());
        let w2 = queued_of(&s.acquire());
        let w3 = queued_of(&s.acquire());
        assert_eq!(
            s.specialization_succeeded(t, "a").grants,
            vec![grant(w1, "a")]
        );
        assert_eq!(s.release(&"a", QUICK).grants, vec![grant(w2, "a")]);
        assert_eq!(s.release(&"a", QUICK).grants, vec![grant(w3, "a")]);
        assert!(s.release(&"a", QUICK).grants.is_empty());
        assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&"a", 0)]);
    }

    #[test]
    fn a_patient_queue_adds_no_pod_an_impatient_one_does() {
        let l = Limits {
            max_specializing: 1,
            ..limits(1, 3)
        };
        let mut s = AdmissionState::new(l);
        let (t, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t, "a");
        // The pod is busy: the next request specializes (nobody queued), the one after queues.
        let (t2, _) = ticket_of(&s.acquire());
        let w = queued_of(&s.acquire());
        assert!(s.escalate(w).started.is_empty(), "one in flight at most");
        let done = s.specialization_succeeded(t2, "b");
        assert_eq!(done.started.len(), 1, "the escalated waiter's own pod");
        assert_eq!(s.queued(), 0);
        assert_eq!(s.specializing(), 1);
        // A busy pod and a queued patient request: nothing starts until it escalates.
        let w4 = queued_of(&s.acquire());
        assert_eq!(s.specializing(), 1);
        assert!(s.cancel_wait(w4));
    }

    #[test]
    fn slowed_pods_serve_the_escalated_and_start_none_until_back_at_pace() {
        let mut s = AdmissionState::new(limits(1, 10));
        let (t, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t, "a");
        // Its unloaded pace: 1 ms calls.
        for _ in 0..40 {
            s.release(&"a", QUICK);
            assert_eq!(s.acquire(), Decision::Use("a"));
        }
        // Saturated: calls now take 5 ms.
        for _ in 0..40 {
            s.release(&"a", 5 * QUICK);
            assert_eq!(s.acquire(), Decision::Use("a"));
        }
        assert!(s.is_slowed());
        let w = queued_of(&s.acquire()); // slowed: even with nobody queued, no new pod
        assert!(
            s.escalate(w).started.is_empty(),
            "slowed: the escalated waiter waits for a slot"
        );
        let served = s.release(&"a", 5 * QUICK);
        assert_eq!(served.grants, vec![grant(w, "a")], "and gets the next one");
        assert!(served.started.is_empty());

        // Back at pace, a request that finds the pod busy starts another one.
        for _ in 0..40 {
            s.release(&"a", QUICK);
            assert_eq!(s.acquire(), Decision::Use("a"));
        }
        assert!(!s.is_slowed());
        ticket_of(&s.acquire());
    }

    /// One pod "a", kept busy by back-to-back calls: 20 of 1 ms, then 40 of 10 ms.
    fn busy_pod_slowing_down(s: &mut AdmissionState<&'static str>) {
        let (t, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t, "a");
        for took in [QUICK; 20].into_iter().chain([10 * QUICK; 40]) {
            s.release(&"a", took);
            assert_eq!(s.acquire(), Decision::Use("a"));
        }
    }

    #[test]
    fn with_max_slowdown_0_slowed_pods_still_get_company() {
        let mut s = AdmissionState::new(Limits {
            max_slowdown: 0,
            ..limits(1, 10)
        });
        busy_pod_slowing_down(&mut s);
        assert!(!s.is_slowed());
        ticket_of(&s.acquire());
    }

    #[test]
    fn a_slowed_function_whose_pods_are_gone_specializes_again() {
        let mut s = AdmissionState::new(limits(1, 10));
        busy_pod_slowing_down(&mut s);
        assert!(s.is_slowed());
        let w = queued_of(&s.acquire());
        assert!(s.escalate(w).started.is_empty());
        let gone = s.remove_pod(&"a").unwrap();
        assert_eq!(gone.started.len(), 1, "no pod left to wait for: start one");
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
            s.release(&"a", QUICK);
        }
        // a: 0, b: 1 → b (fullest with room) until it is full, then a.
        assert_eq!(s.acquire(), Decision::Use("b"));
        assert_eq!(s.acquire(), Decision::Use("b"));
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
        assert_eq!(s.specialization_failed(t1, false).failed, vec![w1, w2]);
        assert_eq!(s.specializing(), 1);
        assert_eq!(s.waiting(), 1);
        assert_eq!(
            s.specialization_succeeded(t2, "b").grants,
            vec![grant(w3, "b")]
        );
        assert!(
            s.specialization_failed(t1, false).failed.is_empty(),
            "a ticket resolves once"
        );
    }

    #[test]
    fn a_held_function_answers_without_a_pod_until_resumed() {
        let l = Limits {
            max_specializing: 1,
            ..limits(1, 5)
        };
        let mut s: AdmissionState<&str> = AdmissionState::new(l);
        let (t, w1) = ticket_of(&s.acquire());
        let w2 = queued_of(&s.acquire());
        let failed = s.specialization_failed(t, true);
        assert_eq!(
            failed.failed,
            vec![w1, w2],
            "nothing left to serve the queue"
        );
        assert!(failed.started.is_empty());
        assert!(s.is_held());
        assert_eq!(s.acquire(), Decision::Held);
        assert_eq!(s.acquire(), Decision::Held);
        assert_eq!(s.specializing(), 0, "no pod burned while held");
        assert!(s.resume().started.is_empty());
        let (t, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t, "a");
        assert!(!s.is_held());
    }

    #[test]
    fn a_hold_keeps_existing_pods_serving() {
        let l = Limits {
            max_specializing: 1,
            ..limits(1, 5)
        };
        let mut s = AdmissionState::new(l);
        let (t, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t, "a");
        let (t2, w2) = ticket_of(&s.acquire());
        let w3 = queued_of(&s.acquire());
        assert_eq!(s.specialization_failed(t2, true).failed, vec![w2]);
        // Held, but "a" will free up: new requests queue behind it instead of failing.
        let w4 = queued_of(&s.acquire());
        assert_eq!(
            s.escalate(w3).started,
            vec![],
            "no specialization while held"
        );
        assert_eq!(s.release(&"a", QUICK).grants, vec![grant(w3, "a")]);
        assert_eq!(s.release(&"a", QUICK).grants, vec![grant(w4, "a")]);
    }

    #[test]
    fn cancelled_waiters_get_nothing_and_free_their_slot() {
        let l = Limits {
            max_queued: 0,
            ..limits(2, 1)
        };
        let mut s = AdmissionState::new(l);
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
        assert_eq!(done.grants, vec![grant(w3, "a")]);
        assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&"a", 1)]);
    }

    #[test]
    fn a_cancelled_ticket_slot_goes_to_the_queue() {
        let l = Limits {
            max_specializing: 1,
            ..limits(2, 1)
        };
        let mut s = AdmissionState::new(l);
        let (t, _) = ticket_of(&s.acquire());
        let Decision::Wait(w2) = s.acquire() else {
            panic!()
        };
        let w3 = queued_of(&s.acquire());
        assert!(s.cancel_wait(w2));
        assert_eq!(s.queued(), 0, "w3 moved into the ticket");
        let grants = s.specialization_succeeded(t, "a").grants;
        assert!(grants.contains(&grant(w3, "a")));
    }

    #[test]
    fn removed_pods_free_concurrency_and_ignore_late_releases() {
        let l = Limits {
            max_queued: 0,
            ..limits(1, 1)
        };
        let mut s = AdmissionState::new(l);
        let (t, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t, "a");
        assert!(matches!(s.acquire(), Decision::Reject { .. }));
        assert!(s.remove_pod(&"a").is_some());
        assert!(s.remove_pod(&"a").is_none());
        assert_eq!(s.release(&"a", QUICK), Effects::default());
        assert!(matches!(s.acquire(), Decision::Specialize { .. }));
    }

    #[test]
    fn once_only_specializes_every_request_and_retires_pods() {
        let mut s = AdmissionState::new(Limits {
            once_only: true,
            ..limits(5, 3)
        });
        let (t1, _) = ticket_of(&s.acquire());
        let (t2, _) = ticket_of(&s.acquire());
        s.specialization_succeeded(t1, "a");
        assert!(
            matches!(s.acquire(), Decision::Specialize { .. }),
            "never reuses a pod"
        );
        // At the cap, an `onceOnly` request queues impatient: the next free place specializes it.
        let w = queued_of(&s.acquire());
        let released = s.release(&"a", QUICK);
        assert_eq!(released.retired, Some("a"));
        assert_eq!(released.started.len(), 1, "the queued request's own pod");
        assert_eq!(s.pods().count(), 0);
        assert!(s.tickets.iter().any(|t| t.waiters == vec![w]));
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

    #[test]
    fn adopted_pods_serve_at_once_and_count_once() {
        let l = Limits {
            max_queued: 0,
            ..limits(1, 2)
        };
        let mut s: AdmissionState<u64> = AdmissionState::new(l);
        assert!(s.adopt(7).is_some());
        assert!(s.adopt(7).is_none(), "a pod is adopted once");
        assert_eq!(s.acquire(), Decision::Use(7));
        // The adopted pod counts under concurrency: one more specialization, then 429.
        let (t, _) = ticket_of(&s.acquire());
        assert!(matches!(s.acquire(), Decision::Reject { .. }));
        // The specializer may hand back a pod the set already holds: it stays one slot.
        s.specialization_succeeded(t, 7);
        assert_eq!(s.pods().collect::<Vec<_>>(), vec![(&7, 2)]);
    }

    #[test]
    fn an_adopted_pod_serves_the_queue() {
        let l = Limits {
            max_specializing: 1,
            ..limits(1, 5)
        };
        let mut s: AdmissionState<u64> = AdmissionState::new(l);
        let _ = ticket_of(&s.acquire());
        let w = queued_of(&s.acquire());
        assert_eq!(s.adopt(3).unwrap().grants, vec![grant(w, 3)]);
    }

    /// A model of every request's fate, checked against the state after each random step.
    #[derive(Default)]
    struct Model {
        /// Outstanding leases per pod.
        leases: HashMap<u64, u32>,
        /// Every waiter not answered yet.
        waiting: HashSet<WaiterId>,
        /// Queued waiters (escalation candidates).
        queued: Vec<WaiterId>,
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
        assert!(
            s.specializing() <= l.max_specializing as usize,
            "in-flight cap"
        );
        assert!(s.queued() <= l.max_queued as usize, "queue bound");
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
        if s.queued() > 0 && !l.once_only {
            assert!(
                pods.iter().all(|(_, n)| *n == l.requests_per_pod),
                "nobody queues while a pod has room"
            );
            assert!(
                s.tickets
                    .iter()
                    .all(|t| slot_count(t) == l.requests_per_pod),
                "nobody queues while a ticket has room"
            );
        }
        if s.may_add_pod() {
            assert!(
                s.queue.iter().all(|q| !q.impatient),
                "an escalated waiter is not left waiting while a specialization could start"
            );
        }
        if s.queued() > 0 && s.specializing() == 0 {
            assert!(
                s.may_add_pod() || !pods.is_empty() || s.is_held(),
                "a queue with no pod and no specialization can always start one"
            );
        }
    }

    /// A random schedule of arrivals, completions (some failing, some holding), releases,
    /// cancellations, escalations, resumptions and pod losses.
    struct Sim {
        s: AdmissionState<u64>,
        m: Model,
        l: Limits,
        rng: SplitMix64,
        /// Calls take 5 ms instead of 1 ms in this phase (flips now and then).
        saturated: bool,
        /// Steps at which the state was slowed.
        slowed_steps: u32,
    }

    impl Sim {
        fn pick(&mut self, len: usize) -> usize {
            self.rng.below(len.max(1) as u32) as usize
        }

        fn apply(&mut self, effects: Effects<u64>) {
            for g in effects.grants {
                assert!(self.m.waiting.remove(&g.waiter), "granted once");
                self.m.queued.retain(|w| *w != g.waiter);
                *self.m.leases.entry(g.pod).or_default() += 1;
            }
            for w in effects.failed {
                assert!(self.m.waiting.remove(&w), "failed once");
                self.m.queued.retain(|q| *q != w);
            }
            self.m.started += effects.started.len() as u32;
            for t in effects.started {
                assert!(self.s.tickets.iter().any(|tt| tt.id == t));
            }
            if effects.retired.is_some() {
                self.m.retired += 1;
            }
            let queue: HashSet<WaiterId> = self.s.queue.iter().map(|q| q.waiter).collect();
            self.m.queued.retain(|w| queue.contains(w));
        }

        /// A new request; the decision must follow the rules given the state before it.
        fn arrive(&mut self) {
            let (s, l) = (&mut self.s, self.l);
            let pod_room = !l.once_only && s.pods().any(|(_, n)| n < l.requests_per_pod);
            let ticket_room = !l.once_only
                && s.tickets
                    .iter()
                    .any(|t| (t.waiters.len() as u32) < l.requests_per_pod);
            let may = s.queue.is_empty() && s.may_add_pod();
            let nothing = s.held && s.pods.is_empty() && s.tickets.is_empty();
            let queue_room = s.queue.len() < l.max_queued as usize;
            match s.acquire() {
                Decision::Use(pod) => {
                    assert!(pod_room);
                    *self.m.leases.entry(pod).or_default() += 1;
                }
                Decision::Wait(w) => {
                    assert!(
                        !pod_room && ticket_room,
                        "waits only when a ticket has room"
                    );
                    self.m.waiting.insert(w);
                }
                Decision::Specialize { waiter, .. } => {
                    assert!(
                        !pod_room && !ticket_room && may,
                        "specializes within the caps"
                    );
                    self.m.waiting.insert(waiter);
                    self.m.started += 1;
                }
                Decision::Held => assert!(!pod_room && !ticket_room && !may && nothing),
                Decision::Queue(w) => {
                    assert!(!pod_room && !ticket_room && !may && !nothing && queue_room);
                    self.m.waiting.insert(w);
                    self.m.queued.push(w);
                }
                Decision::Reject { retry_after } => {
                    assert!(
                        !pod_room && !ticket_room && !may && !queue_room,
                        "rejects only with a full queue"
                    );
                    assert_eq!(retry_after, RETRY_AFTER);
                }
            }
        }

        /// A specialization finishes; exactly its waiters are answered (and, on a holding failure
        /// with nothing left, the queue).
        fn finish(&mut self) {
            if self.s.tickets.is_empty() {
                return;
            }
            let i = self.pick(self.s.tickets.len());
            let ticket = self.s.tickets[i].clone();
            let mut expected = ticket.waiters.clone();
            expected.sort();
            match self.rng.below(8) {
                0 | 1 => {
                    let hold = self.rng.below(2) == 0;
                    let effects = self.s.specialization_failed(ticket.id, hold);
                    let mut failed = effects.failed.clone();
                    failed.retain(|w| ticket.waiters.contains(w));
                    failed.sort();
                    assert_eq!(failed, expected);
                    self.apply(effects);
                }
                _ => {
                    self.m.next_pod += 1;
                    let pod = self.m.next_pod;
                    let effects = self.s.specialization_succeeded(ticket.id, pod);
                    let mut granted: Vec<_> = effects
                        .grants
                        .iter()
                        .filter(|g| ticket.waiters.contains(&g.waiter))
                        .map(|g| g.waiter)
                        .collect();
                    granted.sort();
                    if !(self.l.once_only && expected.is_empty()) {
                        assert_eq!(granted, expected);
                    }
                    assert!(effects.grants.iter().all(|g| g.pod == pod));
                    self.apply(effects);
                }
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
                let known = self.s.pods.iter().any(|slot| slot.pod == pod);
                // Stretches of 1 ms calls and of 5 ms ones: the pods are slowed now and then.
                if self.pick(30) == 0 {
                    self.saturated = !self.saturated;
                }
                let took = if self.saturated { 5 } else { 1 };
                let effects = self.s.release(&pod, Duration::from_millis(took));
                if effects.retired.is_some() {
                    assert!(self.l.once_only);
                }
                if !known {
                    assert_eq!(effects, Effects::default());
                }
                self.apply(effects);
            }
        }

        /// A waiter gives up.
        fn cancel(&mut self) {
            let mut ids: Vec<WaiterId> = self.m.waiting.iter().copied().collect();
            ids.sort();
            let i = self.pick(ids.len());
            if let Some(&w) = ids.get(i) {
                assert!(self.s.cancel_wait(w));
                self.m.waiting.remove(&w);
                self.m.queued.retain(|q| *q != w);
            }
        }

        /// A queued waiter runs out of patience.
        fn escalate(&mut self) {
            let i = self.pick(self.m.queued.len());
            if let Some(&w) = self.m.queued.get(i) {
                let effects = self.s.escalate(w);
                self.apply(effects);
            }
        }

        /// A hold's time is up.
        fn resume(&mut self) {
            let effects = self.s.resume();
            self.apply(effects);
        }

        /// A pod disappears; its outstanding leases release later, harmlessly.
        fn lose_pod(&mut self) {
            let pods: Vec<u64> = self.s.pods().map(|(p, _)| *p).collect();
            let i = self.pick(pods.len());
            if let Some(&pod) = pods.get(i) {
                let effects = self.s.remove_pod(&pod).unwrap();
                self.m.leases.remove(&pod);
                self.apply(effects);
            }
        }

        /// Every waiter ends granted or failed, never forgotten: specializations succeed, requests
        /// finish, queued requests escalate.
        fn drain(&mut self) {
            self.resume();
            for _ in 0..10_000 {
                if self.m.waiting.is_empty() {
                    break;
                }
                if let Some(t) = self.s.tickets.first().map(|t| t.id) {
                    self.m.next_pod += 1;
                    let effects = self.s.specialization_succeeded(t, self.m.next_pod);
                    self.apply(effects);
                } else if self.m.leases.values().any(|n| *n > 0) {
                    self.release();
                } else {
                    let queued: Vec<WaiterId> = self.s.queue.iter().map(|q| q.waiter).collect();
                    for w in queued {
                        let effects = self.s.escalate(w);
                        self.apply(effects);
                    }
                }
                check(&self.s, &self.m, self.l);
            }
            assert!(
                self.m.waiting.is_empty(),
                "{} never answered",
                self.m.waiting.len()
            );
            assert_eq!(self.s.waiting(), 0);
        }
    }

    fn run_random(seed: u64, l: Limits, steps: usize) -> Sim {
        let mut sim = Sim {
            s: AdmissionState::new(l),
            m: Model::default(),
            l,
            rng: SplitMix64::seeded(seed),
            saturated: false,
            slowed_steps: 0,
        };
        for _ in 0..steps {
            match sim.rng.below(13) {
                0..=4 => sim.arrive(),
                5 | 6 => sim.finish(),
                7 | 8 => sim.release(),
                9 => sim.cancel(),
                10 => sim.escalate(),
                11 => sim.resume(),
                _ => sim.lose_pod(),
            }
            check(&sim.s, &sim.m, l);
            sim.slowed_steps += u32::from(sim.s.is_slowed());
        }
        sim.drain();
        sim
    }

    #[test]
    fn invariants_hold_under_random_interleavings() {
        let (mut cases, mut slowed) = (0, 0);
        for seed in 0..300u64 {
            let mut pick = SplitMix64::seeded(seed ^ 0xA5A5);
            let l = Limits {
                requests_per_pod: 1 + pick.below(4),
                concurrency: 1 + pick.below(6),
                once_only: pick.below(5) == 0,
                max_specializing: 1 + pick.below(3),
                max_queued: pick.below(6),
                max_slowdown: DEFAULT_MAX_SLOWDOWN,
            };
            slowed += run_random(seed, l, 400).slowed_steps;
            cases += 1;
        }
        assert_eq!(cases, 300);
        assert!(
            slowed > 1000,
            "the pace gate was exercised: {slowed} slowed steps"
        );
    }

    #[test]
    fn bursts_without_failures_never_start_more_than_concurrency() {
        for seed in 0..50u64 {
            let l = limits(1 + (seed % 3) as u32, 5);
            let mut s: AdmissionState<u64> = AdmissionState::new(l);
            let mut rng = SplitMix64::seeded(seed);
            let mut started = 0;
            // Bursts of arrivals, with some completions and escalations in between, never
            // releasing pods: the total number of pods ever specialized stays within the cap.
            let mut open = Vec::new();
            for i in 0..500u64 {
                match s.acquire() {
                    Decision::Specialize { ticket, .. } => {
                        started += 1;
                        open.push(ticket);
                    }
                    Decision::Queue(w) if rng.below(2) == 0 => {
                        let effects = s.escalate(w);
                        started += effects.started.len();
                        open.extend(effects.started);
                    }
                    _ => {}
                }
                if rng.below(10) == 0
                    && let Some(t) = open.pop()
                {
                    let effects = s.specialization_succeeded(t, i);
                    started += effects.started.len();
                    open.extend(effects.started);
                }
            }
            assert!(started <= 5, "seed {seed}: {started} specializations");
        }
    }
}
