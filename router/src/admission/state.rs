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
mod tests;
