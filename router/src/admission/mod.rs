//! Per-function admission for `poolmgr` functions (ARCHITECTURE §5): which pod serves a request,
//! when to specialize another one, when to say 429.
//!
//! [`AdmissionState`] is the pure state machine (see `state.rs` for its rules); [`Admission`] is a
//! thin tokio wrapper around it for one function version: it runs specializations through a
//! [`Specializer`] in background tasks (so a client that goes away does not abort a half-done
//! specialization), wakes waiters with a oneshot channel, bounds waits by a deadline, escalates
//! queued waiters after their patience, keeps the [`hold`] after a failed specialization, and
//! hands out [`Lease`]s that give their in-flight slot back when dropped — including when the
//! request future is dropped because the client disconnected.

pub mod hold;
mod pace;
mod state;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::http::StatusCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

use self::hold::Hold;
pub use self::state::{
    AdmissionState, DEFAULT_MAX_QUEUED, DEFAULT_MAX_SLOWDOWN, DEFAULT_MAX_SPECIALIZING, Decision,
    Effects, Grant, Limits, RETRY_AFTER, TicketId, WaiterId,
};

/// How long a queued request waits for a busy pod to free up before it starts a specialization
/// of its own, when the router is not told otherwise. Long enough that a fast function's queue
/// drains through the pods it has (one hello pod serves about 13,000 requests/s through the router,
/// docs/performance.md), short against a cold start of a slow function's pod. At 500
/// connections to hello the queue waits longer; the pace gate (`pace.rs`), not the patience,
/// then keeps pods from being added (docs/performance.md, "Overload").
pub const DEFAULT_PATIENCE: Duration = Duration::from_millis(DEFAULT_PATIENCE_MS);
/// [`DEFAULT_PATIENCE`] in milliseconds (the unit of `rivulet router --queue-patience-ms`).
pub const DEFAULT_PATIENCE_MS: u64 = 100;

/// The router-wide bounds of overload, per function version (`rivulet router` flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overload {
    /// Specializations in flight at most.
    pub max_specializing: u32,
    /// Requests queued for a free slot at most (then 429).
    pub max_queued: u32,
    /// How long a queued request waits before it may start a specialization.
    pub patience: Duration,
    /// No new pod while requests take more than this many times their best (0: off).
    pub max_slowdown: u32,
}

impl Default for Overload {
    fn default() -> Self {
        Self {
            max_specializing: DEFAULT_MAX_SPECIALIZING,
            max_queued: DEFAULT_MAX_QUEUED,
            max_slowdown: DEFAULT_MAX_SLOWDOWN,
            patience: DEFAULT_PATIENCE,
        }
    }
}

/// The clocks of one function version's admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Bound of one specialization (Fission: `max(SpecializationTimeout, 120 s)`).
    pub specialization: Duration,
    /// How long a queued request waits before it may start a specialization.
    pub patience: Duration,
}

/// Makes a specialized pod for one function version: claim a warm pod, call its fetcher, return
/// its address. Implemented by the Kubernetes-facing part of the router.
pub trait Specializer: Send + Sync + 'static {
    /// Identifies a specialized pod (for example its name and `podIP:8888`).
    type Pod: Clone + PartialEq + Send + Sync + fmt::Debug + 'static;

    /// Specializes one pod. The future may be dropped at the specialization deadline; an
    /// implementation must then not leak a claimed pod (delete it on failure and on drop).
    fn specialize(&self) -> impl Future<Output = Result<Self::Pod, SpecializeError>> + Send;

    /// A pod leaves the set for good (`onceOnly` pod after its request, a pod evicted after a
    /// connection failure, a pod specialized for nobody): delete it. Must not block.
    fn retire(&self, pod: Self::Pod) {
        let _ = pod;
    }

    /// Identifies the code a specialization loads beyond the function version (for example the
    /// Package's and Environment's generations): a changed revision lifts a [`hold`]. Called
    /// only while a hold is in force.
    fn revision(&self) -> String {
        String::new()
    }
}

/// Why a specialization did not produce a pod. The message is shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecializeError {
    /// No warm pod could be claimed (empty or missing pool): 503.
    #[error("no warm pod available: {0}")]
    Unavailable(String),
    /// The fetcher or the runtime refused the code (the cause comes from them): 502.
    #[error("specialization failed: {0}")]
    Failed(String),
    /// The specialization did not finish in time: 504.
    #[error("specialization did not finish within {0:?}")]
    Timeout(Duration),
}

/// Why a request got no pod.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmissionError {
    /// Over the `concurrency` cap and the queue is full: 429 with `Retry-After`.
    #[error("function concurrency limit of {concurrency} pods reached and {queued} requests queued; retry after {}s", retry_after.as_secs())]
    TooManyRequests {
        /// The function's `concurrency`.
        concurrency: u32,
        /// Requests already queued.
        queued: usize,
        /// `Retry-After`.
        retry_after: Duration,
    },
    /// The specialization this request waited for failed.
    #[error(transparent)]
    Specialization(#[from] SpecializeError),
    /// The request's deadline passed while its pod was still being specialized: 504.
    #[error("no pod for the function became ready before the request deadline")]
    Deadline,
}

impl AdmissionError {
    /// The status the router answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Specialization(SpecializeError::Unavailable(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Specialization(SpecializeError::Failed(_)) => StatusCode::BAD_GATEWAY,
            Self::Specialization(SpecializeError::Timeout(_)) | Self::Deadline => {
                StatusCode::GATEWAY_TIMEOUT
            }
        }
    }

    /// `Retry-After` for 429 answers.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

type Delivery<S> = Result<Lease<S>, SpecializeError>;

struct Inner<S: Specializer> {
    core: AdmissionState<S::Pod>,
    waiters: HashMap<WaiterId, oneshot::Sender<Delivery<S>>>,
    /// The last failure, while it holds specializations back.
    hold: Option<Hold>,
}

struct Shared<S: Specializer> {
    inner: Mutex<Inner<S>>,
    specializer: S,
    timing: Timing,
}

/// Effects taken out of the lock, with the channels they go to.
struct Pending<S: Specializer> {
    grants: Vec<(oneshot::Sender<Delivery<S>>, S::Pod)>,
    failed: Vec<oneshot::Sender<Delivery<S>>>,
    started: Vec<TicketId>,
    retired: Option<S::Pod>,
}

/// What `acquire` does once the lock is released.
enum Next<S: Specializer> {
    Answer(Result<S::Pod, AdmissionError>),
    Wait {
        waiter: WaiterId,
        rx: oneshot::Receiver<Delivery<S>>,
        /// A specialization this request starts.
        ticket: Option<TicketId>,
        /// Queued: escalate after the patience.
        queued: bool,
    },
}

impl<S: Specializer> Inner<S> {
    fn wait(&mut self, waiter: WaiterId, ticket: Option<TicketId>, queued: bool) -> Next<S> {
        let (tx, rx) = oneshot::channel();
        self.waiters.insert(waiter, tx);
        Next::Wait {
            waiter,
            rx,
            ticket,
            queued,
        }
    }

    fn take(&mut self, effects: Effects<S::Pod>) -> Pending<S> {
        let mut channel = |waiter| self.waiters.remove(&waiter);
        Pending {
            grants: effects
                .grants
                .into_iter()
                .filter_map(|g| channel(g.waiter).map(|tx| (tx, g.pod)))
                .collect(),
            failed: effects
                .failed
                .into_iter()
                .filter_map(&mut channel)
                .collect(),
            started: effects.started,
            retired: effects.retired,
        }
    }

    /// Lifts the hold when its time is up or the code changed.
    fn lift_hold(&mut self, specializer: &S, now: Instant) -> Option<Effects<S::Pod>> {
        if !self.core.is_held() {
            return None;
        }
        let hold = self.hold.as_ref()?;
        if !hold.lifted(&specializer.revision(), now) {
            return None;
        }
        Some(self.core.resume())
    }
}

impl<S: Specializer> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // The state stays consistent across a panic elsewhere: every update is a few field
        // writes, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Delivers effects taken under the lock. Channels are written after the lock is released:
    /// a send to a waiter that just left drops the lease, and the lease's drop takes the lock.
    fn apply(self: &Arc<Self>, pending: Pending<S>, error: Option<&SpecializeError>) {
        for (tx, pod) in pending.grants {
            // A waiter that is gone drops the lease, which releases its slot.
            let _ = tx.send(Ok(Lease::new(self.clone(), pod)));
        }
        for tx in pending.failed {
            let error = error.cloned().unwrap_or_else(|| {
                SpecializeError::Failed("the specialization was abandoned".to_owned())
            });
            let _ = tx.send(Err(error));
        }
        for ticket in pending.started {
            self.start(ticket);
        }
        if let Some(pod) = pending.retired {
            self.specializer.retire(pod);
        }
    }

    /// Runs one specialization in the background, bounded by its timeout.
    fn start(self: &Arc<Self>, ticket: TicketId) {
        let shared = self.clone();
        tokio::spawn(async move {
            let timeout = shared.timing.specialization;
            let outcome = match tokio::time::timeout(timeout, shared.specializer.specialize()).await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(SpecializeError::Timeout(timeout)),
            };
            if let Err(error) = &outcome {
                tracing::warn!(%error, "specialization failed");
            }
            shared.finish(ticket, outcome);
        });
    }

    /// Applies a specialization outcome: the pod serves its waiters and the queue, or the
    /// failure is recorded (a hold, when it comes from the code) and answered.
    fn finish(self: &Arc<Self>, ticket: TicketId, outcome: Result<S::Pod, SpecializeError>) {
        let (pending, error) = {
            let mut inner = self.lock();
            match outcome {
                Ok(pod) => {
                    inner.hold = None;
                    let effects = inner.core.specialization_succeeded(ticket, pod);
                    (inner.take(effects), None)
                }
                Err(error) => {
                    let holds = hold::holds(&error);
                    if holds {
                        let revision = self.specializer.revision();
                        let hold = Hold::after(
                            inner.hold.as_ref(),
                            error.clone(),
                            revision,
                            Instant::now(),
                        );
                        inner.hold = Some(hold);
                    }
                    let effects = inner.core.specialization_failed(ticket, holds);
                    (inner.take(effects), Some(error))
                }
            }
        };
        self.apply(pending, error.as_ref());
    }
}

/// Admission for one function version (Fission keys this by function UID and resourceVersion:
/// an update starts a fresh set of pods while the old ones drain).
pub struct Admission<S: Specializer> {
    shared: Arc<Shared<S>>,
}

impl<S: Specializer> Clone for Admission<S> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<S: Specializer> fmt::Debug for Admission<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared.lock();
        f.debug_struct("Admission")
            .field("state", &inner.core)
            .field("hold", &inner.hold)
            .field("timing", &self.shared.timing)
            .finish_non_exhaustive()
    }
}

/// A snapshot of an admission state, for metrics and tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmissionStats<P> {
    /// Specialized pods and their in-flight counts.
    pub pods: Vec<(P, u32)>,
    /// Specializations in flight.
    pub specializing: usize,
    /// Requests waiting for them or queued.
    pub waiting: usize,
    /// Of which queued for any free slot.
    pub queued: usize,
    /// The recorded failure while specializations are held back.
    pub held: Option<SpecializeError>,
}

impl<S: Specializer> Admission<S> {
    /// Admission with the given limits and clocks.
    pub fn new(limits: Limits, specializer: S, timing: Timing) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    core: AdmissionState::new(limits),
                    waiters: HashMap::new(),
                    hold: None,
                }),
                specializer,
                timing,
            }),
        }
    }

    /// The specializer.
    pub fn specializer(&self) -> &S {
        &self.shared.specializer
    }

    /// A pod for one request: at once when a specialized pod has room, after a specialization
    /// or a queue wait otherwise (at most until `deadline`), or an error (429 over the cap with
    /// a full queue, the specialization's failure or the held one, 504 at the deadline).
    /// Dropping the future gives up the wait.
    pub async fn acquire(&self, deadline: Instant) -> Result<Lease<S>, AdmissionError> {
        let shared = &self.shared;
        let (next, lifted) = {
            let mut inner = shared.lock();
            let lifted = inner
                .lift_hold(&shared.specializer, Instant::now())
                .map(|effects| inner.take(effects));
            let next = match inner.core.acquire() {
                Decision::Use(pod) => Next::Answer(Ok(pod)),
                Decision::Reject { retry_after } => {
                    Next::Answer(Err(AdmissionError::TooManyRequests {
                        concurrency: inner.core.limits().concurrency,
                        queued: inner.core.queued(),
                        retry_after,
                    }))
                }
                Decision::Held => Next::Answer(Err(AdmissionError::Specialization(
                    inner.hold.as_ref().map_or_else(
                        || SpecializeError::Failed("specialization is on hold".to_owned()),
                        |h| h.error.clone(),
                    ),
                ))),
                Decision::Wait(waiter) => inner.wait(waiter, None, false),
                Decision::Queue(waiter) => inner.wait(waiter, None, true),
                Decision::Specialize { ticket, waiter } => inner.wait(waiter, Some(ticket), false),
            };
            (next, lifted)
        };
        if let Some(pending) = lifted {
            shared.apply(pending, None);
        }
        let (waiter, rx, mut patience) = match next {
            Next::Answer(answer) => return answer.map(|pod| Lease::new(shared.clone(), pod)),
            Next::Wait {
                waiter,
                rx,
                ticket,
                queued,
            } => {
                if let Some(ticket) = ticket {
                    shared.start(ticket);
                }
                let patience = queued.then(|| Instant::now() + shared.timing.patience);
                (waiter, rx, patience)
            }
        };
        let mut guard = WaitGuard {
            shared,
            waiter,
            armed: true,
        };
        tokio::pin!(rx);
        loop {
            let wake = patience.map_or(deadline, |p| p.min(deadline));
            match tokio::time::timeout_at(wake, rx.as_mut()).await {
                Ok(Ok(delivery)) => {
                    guard.armed = false;
                    return delivery.map_err(AdmissionError::from);
                }
                // The sender vanished without an answer: only possible if the task panicked.
                Ok(Err(_)) => {
                    return Err(AdmissionError::Specialization(SpecializeError::Failed(
                        "the specialization task ended without an answer".to_owned(),
                    )));
                }
                Err(_) if patience.is_some_and(|p| p < deadline) => {
                    patience = None;
                    let pending = {
                        let mut inner = shared.lock();
                        let effects = inner.core.escalate(waiter);
                        inner.take(effects)
                    };
                    shared.apply(pending, None);
                }
                Err(_) => return Err(AdmissionError::Deadline),
            }
        }
    }

    /// A pod already specialized for this function version (re-discovered after a router
    /// restart) joins the set as idle capacity and serves the queue. `false` when it was already
    /// there.
    pub fn adopt(&self, pod: S::Pod) -> bool {
        let pending = {
            let mut inner = self.shared.lock();
            let Some(effects) = inner.core.adopt(pod) else {
                return false;
            };
            inner.take(effects)
        };
        self.shared.apply(pending, None);
        true
    }

    /// A pod is gone (deleted or crashed, seen by a watch): no new requests go to it.
    pub fn remove_pod(&self, pod: &S::Pod) -> bool {
        let pending = {
            let mut inner = self.shared.lock();
            let Some(effects) = inner.core.remove_pod(pod) else {
                return false;
            };
            inner.take(effects)
        };
        self.shared.apply(pending, None);
        true
    }

    /// Current pods, specializations, waiters and hold.
    pub fn stats(&self) -> AdmissionStats<S::Pod> {
        let inner = self.shared.lock();
        AdmissionStats {
            pods: inner.core.pods().map(|(p, n)| (p.clone(), n)).collect(),
            specializing: inner.core.specializing(),
            waiting: inner.core.waiting(),
            queued: inner.core.queued(),
            held: inner
                .hold
                .as_ref()
                .filter(|_| inner.core.is_held())
                .map(|h| h.error.clone()),
        }
    }
}

/// Cancels a wait when the acquiring future is dropped or times out.
struct WaitGuard<'a, S: Specializer> {
    shared: &'a Arc<Shared<S>>,
    waiter: WaiterId,
    armed: bool,
}

impl<S: Specializer> Drop for WaitGuard<'_, S> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let sender = {
            let mut inner = self.shared.lock();
            inner.core.cancel_wait(self.waiter);
            inner.waiters.remove(&self.waiter)
        };
        // If the grant was already sent, the lease sits in the channel and is released when the
        // receiver (dropped with this future) drops it.
        drop(sender);
    }
}

/// One in-flight slot on a specialized pod. Dropping it releases the slot (request finished,
/// response body done, or client gone).
pub struct Lease<S: Specializer> {
    shared: Arc<Shared<S>>,
    pod: S::Pod,
    evict: bool,
    /// When the slot was granted: the request's service time is measured from here.
    since: Instant,
}

impl<S: Specializer> fmt::Debug for Lease<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lease")
            .field("pod", &self.pod)
            .field("evict", &self.evict)
            .finish_non_exhaustive()
    }
}

impl<S: Specializer> Lease<S> {
    fn new(shared: Arc<Shared<S>>, pod: S::Pod) -> Self {
        Self {
            shared,
            pod,
            evict: false,
            since: Instant::now(),
        }
    }

    /// The pod to send the request to.
    pub fn pod(&self) -> &S::Pod {
        &self.pod
    }

    /// The pod is broken (connection refused, runtime crashed): when this lease is released the
    /// pod leaves the set and is retired, so the next request specializes a fresh one.
    pub fn evict(&mut self) {
        self.evict = true;
    }
}

impl<S: Specializer> Drop for Lease<S> {
    fn drop(&mut self) {
        let pending = {
            let mut inner = self.shared.lock();
            let effects = if self.evict {
                inner.core.remove_pod(&self.pod).map(|mut effects| {
                    effects.retired = Some(self.pod.clone());
                    effects
                })
            } else {
                Some(inner.core.release(&self.pod, self.since.elapsed()))
            };
            effects.map(|effects| inner.take(effects))
        };
        if let Some(pending) = pending {
            self.shared.apply(pending, None);
        }
    }
}

#[cfg(test)]
mod tests;
