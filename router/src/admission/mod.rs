//! Per-function admission for `poolmgr` functions (ARCHITECTURE §5): which pod serves a request,
//! when to specialize another one, when to say 429.
//!
//! [`AdmissionState`] is the pure state machine (see `state.rs` for its rules); [`Admission`] is a
//! thin tokio wrapper around it for one function version: it runs specializations through a
//! [`Specializer`] in background tasks (so a client that goes away does not abort a half-done
//! specialization), wakes waiters with a oneshot channel, bounds waits by a deadline, and hands
//! out [`Lease`]s that give their in-flight slot back when dropped — including when the request
//! future is dropped because the client disconnected.

mod state;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hyper::http::StatusCode;
use tokio::sync::oneshot;
use tokio::time::Instant;

pub use self::state::{
    AdmissionState, Decision, Grant, Limits, RETRY_AFTER, Specialized, TicketId, WaiterId,
};

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
    /// Over the `concurrency` cap: 429 with `Retry-After`.
    #[error("function concurrency limit of {concurrency} pods reached; retry after {}s", retry_after.as_secs())]
    TooManyRequests {
        /// The function's `concurrency`.
        concurrency: u32,
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
type Outcome<P> = Result<P, SpecializeError>;
type PendingDelivery<S> = (
    oneshot::Sender<Delivery<S>>,
    Outcome<<S as Specializer>::Pod>,
);

struct Inner<S: Specializer> {
    core: AdmissionState<S::Pod>,
    waiters: HashMap<WaiterId, oneshot::Sender<Delivery<S>>>,
}

struct Shared<S: Specializer> {
    inner: Mutex<Inner<S>>,
    specializer: S,
    specialization_timeout: Duration,
}

impl<S: Specializer> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // The state stays consistent across a panic elsewhere: every update is a few field
        // writes, so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies a specialization outcome and wakes its waiters. Channels are written after the
    /// lock is released: a send to a waiter that just left drops the lease, and the lease's drop
    /// takes the lock.
    fn finish(self: &Arc<Self>, ticket: TicketId, outcome: Outcome<S::Pod>) {
        let mut deliveries: Vec<PendingDelivery<S>> = Vec::new();
        let mut retired = None;
        {
            let mut inner = self.lock();
            match outcome {
                Ok(pod) => {
                    let done = inner.core.specialization_succeeded(ticket, pod);
                    retired = done.retired;
                    for grant in done.grants {
                        if let Some(tx) = inner.waiters.remove(&grant.waiter) {
                            deliveries.push((tx, Ok(grant.pod)));
                        }
                    }
                }
                Err(error) => {
                    for waiter in inner.core.specialization_failed(ticket) {
                        if let Some(tx) = inner.waiters.remove(&waiter) {
                            deliveries.push((tx, Err(error.clone())));
                        }
                    }
                }
            }
        }
        for (tx, result) in deliveries {
            // A waiter that is gone drops the lease, which releases its slot.
            let _ = tx.send(result.map(|pod| Lease::new(self.clone(), pod)));
        }
        if let Some(pod) = retired {
            self.specializer.retire(pod);
        }
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
            .field(
                "specialization_timeout",
                &self.shared.specialization_timeout,
            )
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
    /// Requests waiting for them.
    pub waiting: usize,
}

impl<S: Specializer> Admission<S> {
    /// Admission with the given limits; each specialization is bounded by
    /// `specialization_timeout` (Fission: `max(SpecializationTimeout, 120 s)`).
    pub fn new(limits: Limits, specializer: S, specialization_timeout: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(Inner {
                    core: AdmissionState::new(limits),
                    waiters: HashMap::new(),
                }),
                specializer,
                specialization_timeout,
            }),
        }
    }

    /// The specializer.
    pub fn specializer(&self) -> &S {
        &self.shared.specializer
    }

    /// A pod for one request: at once when a specialized pod has room, after a specialization
    /// otherwise (waiting at most until `deadline`), or an error (429 over the cap, the
    /// specialization's failure, 504 at the deadline). Dropping the future gives up the wait.
    pub async fn acquire(&self, deadline: Instant) -> Result<Lease<S>, AdmissionError> {
        let (waiter, ticket, rx) = {
            let mut inner = self.shared.lock();
            let (waiter, ticket) = match inner.core.acquire() {
                Decision::Use(pod) => return Ok(Lease::new(self.shared.clone(), pod)),
                Decision::Reject { retry_after } => {
                    return Err(AdmissionError::TooManyRequests {
                        concurrency: inner.core.limits().concurrency,
                        retry_after,
                    });
                }
                Decision::Wait(waiter) => (waiter, None),
                Decision::Specialize { ticket, waiter } => (waiter, Some(ticket)),
            };
            let (tx, rx) = oneshot::channel();
            inner.waiters.insert(waiter, tx);
            (waiter, ticket, rx)
        };
        let mut guard = WaitGuard {
            shared: &self.shared,
            waiter,
            armed: true,
        };
        if let Some(ticket) = ticket {
            self.spawn_specialization(ticket);
        }
        match tokio::time::timeout_at(deadline, rx).await {
            Ok(Ok(delivery)) => {
                guard.armed = false;
                delivery.map_err(AdmissionError::from)
            }
            // The sender vanished without an answer: only possible if the task panicked.
            Ok(Err(_)) => Err(AdmissionError::Specialization(SpecializeError::Failed(
                "the specialization task ended without an answer".to_owned(),
            ))),
            Err(_) => Err(AdmissionError::Deadline),
        }
    }

    fn spawn_specialization(&self, ticket: TicketId) {
        let shared = self.shared.clone();
        tokio::spawn(async move {
            let timeout = shared.specialization_timeout;
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

    /// A pod already specialized for this function version (re-discovered after a router
    /// restart) joins the set as idle capacity. `false` when it was already there.
    pub fn adopt(&self, pod: S::Pod) -> bool {
        self.shared.lock().core.adopt(pod)
    }

    /// A pod is gone (deleted or crashed, seen by a watch): no new requests go to it.
    pub fn remove_pod(&self, pod: &S::Pod) -> bool {
        self.shared.lock().core.remove_pod(pod)
    }

    /// Current pods, specializations and waiters.
    pub fn stats(&self) -> AdmissionStats<S::Pod> {
        let inner = self.shared.lock();
        AdmissionStats {
            pods: inner.core.pods().map(|(p, n)| (p.clone(), n)).collect(),
            specializing: inner.core.specializing(),
            waiting: inner.core.waiting(),
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
        let retired = {
            let mut inner = self.shared.lock();
            if self.evict {
                inner.core.remove_pod(&self.pod).then(|| self.pod.clone())
            } else {
                inner.core.release(&self.pod)
            }
        };
        if let Some(pod) = retired {
            self.shared.specializer.retire(pod);
        }
    }
}

#[cfg(test)]
mod tests;
