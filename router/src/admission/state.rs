//! The admission state machine of one function version: pure, synchronous, no clock.
//!
//! It holds the specialized pods with their in-flight counts and the specializations in flight
//! ("tickets"), each with the requests waiting for it. [`AdmissionState::acquire`] decides, in
//! this order:
//!
//! 1. a specialized pod has room (`in_flight < requestsPerPod`): **use** it — the fullest such
//!    pod, oldest first on ties, so extra pods go idle and can be reaped;
//! 2. a specialization in flight still has a free slot (it will serve `requestsPerPod` requests,
//!    its initiator included): **wait** for it instead of specializing another pod;
//! 3. specialized + specializing pods are below `concurrency`: **specialize** a new pod (the
//!    caller starts it and waits for it like any waiter);
//! 4. otherwise **reject** (429 with `Retry-After`).
//!
//! So a burst of N requests against a cold function starts `ceil(N / requestsPerPod)`
//! specializations, never more than `concurrency`, and rejects the rest at once — where Fission
//! specializes a pod per request up to `concurrency` and then retries 429s (issues #2452, #1939).

use std::time::Duration;

/// How long a rejected client should wait before retrying. A specialization takes hundreds of
/// milliseconds and a typical function call less than a second; `Retry-After` counts whole
/// seconds and 1 is the smallest useful value.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Per-function limits (Fission's `requestsPerPod`, `concurrency`, `onceOnly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Concurrent requests one specialized pod serves (≥ 1).
    pub requests_per_pod: u32,
    /// Maximum specialized plus specializing pods (≥ 1).
    pub concurrency: u32,
    /// Every request gets a freshly specialized pod that is retired after it.
    pub once_only: bool,
}

impl Limits {
    /// The limits of a function spec, with Fission's defaults (0 or absent: 1 request per pod,
    /// concurrency 500).
    pub fn of(spec: &rivulet_api::FunctionSpec) -> Self {
        let positive = |v: i32| u32::try_from(v).unwrap_or(1).max(1);
        Self {
            requests_per_pod: positive(rivulet_api::defaults::requests_per_pod(
                spec.requests_per_pod,
            )),
            concurrency: positive(rivulet_api::defaults::concurrency(spec.concurrency)),
            once_only: spec.once_only.unwrap_or(false),
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
    /// Over the `concurrency` cap: answer 429 with `Retry-After`.
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

/// Outcome of a successful specialization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specialized<P> {
    /// Waiters that now hold a slot on the new pod.
    pub grants: Vec<Grant<P>>,
    /// A pod nobody will use (delete it).
    pub retired: Option<P>,
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

/// Admission state of one function version. `P` identifies a specialized pod (its address).
#[derive(Debug, Clone)]
pub struct AdmissionState<P> {
    limits: Limits,
    pods: Vec<PodSlot<P>>,
    tickets: Vec<Ticket>,
    next_id: u64,
}

impl<P: Clone + PartialEq> AdmissionState<P> {
    /// Empty state: no pod, nothing in flight.
    pub fn new(limits: Limits) -> Self {
        let limits = Limits {
            requests_per_pod: limits.requests_per_pod.max(1),
            concurrency: limits.concurrency.max(1),
            once_only: limits.once_only,
        };
        Self {
            limits,
            pods: Vec::new(),
            tickets: Vec::new(),
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

    /// Admits one request (see the module documentation for the order of the rules).
    pub fn acquire(&mut self) -> Decision<P> {
        let rpp = self.limits.requests_per_pod;
        if !self.limits.once_only {
            let best = self
                .pods
                .iter_mut()
                .filter(|slot| slot.in_flight < rpp)
                .reduce(|best, slot| {
                    if slot.in_flight > best.in_flight {
                        slot
                    } else {
                        best
                    }
                });
            if let Some(slot) = best {
                slot.in_flight += 1;
                return Decision::Use(slot.pod.clone());
            }
            let waiter = WaiterId(self.next());
            if let Some(ticket) = self.tickets.iter_mut().find(|t| slot_count(t) < rpp) {
                ticket.waiters.push(waiter);
                return Decision::Wait(waiter);
            }
        }
        if self.pods.len() + self.tickets.len() < self.limits.concurrency as usize {
            let ticket = TicketId(self.next());
            let waiter = WaiterId(self.next());
            self.tickets.push(Ticket {
                id: ticket,
                waiters: vec![waiter],
            });
            return Decision::Specialize { ticket, waiter };
        }
        Decision::Reject {
            retry_after: RETRY_AFTER,
        }
    }

    /// A specialization finished: the pod joins the set and the ticket's waiters get it (each
    /// holding one in-flight slot). An unknown ticket, or an `onceOnly` pod whose requester is
    /// gone, yields the pod back as `retired` (the caller deletes it).
    pub fn specialization_succeeded(&mut self, ticket: TicketId, pod: P) -> Specialized<P> {
        let Some(index) = self.tickets.iter().position(|t| t.id == ticket) else {
            return Specialized {
                grants: Vec::new(),
                retired: Some(pod),
            };
        };
        let ticket = self.tickets.swap_remove(index);
        let in_flight = slot_count(&ticket);
        let grants = ticket
            .waiters
            .into_iter()
            .map(|waiter| Grant {
                waiter,
                pod: pod.clone(),
            })
            .collect();
        if self.limits.once_only && in_flight == 0 {
            return Specialized {
                grants,
                retired: Some(pod),
            };
        }
        self.pods.push(PodSlot { pod, in_flight });
        Specialized {
            grants,
            retired: None,
        }
    }

    /// A specialization failed: its waiters fail with it (one failed specialization costs one
    /// pod, never a retry storm). Returns them.
    pub fn specialization_failed(&mut self, ticket: TicketId) -> Vec<WaiterId> {
        match self.tickets.iter().position(|t| t.id == ticket) {
            Some(index) => self.tickets.swap_remove(index).waiters,
            None => Vec::new(),
        }
    }

    /// A waiter gave up (deadline, client gone). `false` when it is not waiting any more
    /// (already granted or failed).
    pub fn cancel_wait(&mut self, waiter: WaiterId) -> bool {
        for ticket in &mut self.tickets {
            if let Some(i) = ticket.waiters.iter().position(|w| *w == waiter) {
                ticket.waiters.remove(i);
                return true;
            }
        }
        false
    }

    /// A request on `pod` finished. Returns the pod when it must now be retired (`onceOnly`).
    /// Releasing a pod that was removed is a no-op.
    pub fn release(&mut self, pod: &P) -> Option<P> {
        let index = self.pods.iter().position(|slot| slot.pod == *pod)?;
        let slot = &mut self.pods[index];
        slot.in_flight = slot.in_flight.saturating_sub(1);
        if self.limits.once_only && slot.in_flight == 0 {
            return Some(self.pods.swap_remove(index).pod);
        }
        None
    }

    /// Adds a pod that is already specialized for this function version (found again after a
    /// router restart) as idle capacity. `false` when it is already known.
    pub fn adopt(&mut self, pod: P) -> bool {
        if self.pods.iter().any(|slot| slot.pod == pod) {
            return false;
        }
        self.pods.push(PodSlot { pod, in_flight: 0 });
        true
    }

    /// The pod is gone (deleted, crashed, reaped): it takes no more requests and frees its place
    /// under `concurrency`. In-flight requests on it release harmlessly.
    pub fn remove_pod(&mut self, pod: &P) -> bool {
        let before = self.pods.len();
        self.pods.retain(|slot| slot.pod != *pod);
        self.pods.len() != before
    }

    /// Specialized pods and their in-flight counts, oldest first.
    pub fn pods(&self) -> impl Iterator<Item = (&P, u32)> {
        self.pods.iter().map(|slot| (&slot.pod, slot.in_flight))
    }

    /// Specializations in flight.
    pub fn specializing(&self) -> usize {
        self.tickets.len()
    }

    /// Requests waiting for a specialization.
    pub fn waiting(&self) -> usize {
        self.tickets.iter().map(|t| t.waiters.len()).sum()
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
