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
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    /// A specializer whose specializations block until the test opens the gate.
    struct Fake {
        calls: AtomicU32,
        gate: Semaphore,
        fail: AtomicBool,
        never: AtomicBool,
        retired: Mutex<Vec<u32>>,
        revision: Mutex<String>,
    }

    #[derive(Clone)]
    struct FakeSpec(Arc<Fake>);

    impl Default for FakeSpec {
        fn default() -> Self {
            Self(Arc::new(Fake {
                calls: AtomicU32::new(0),
                gate: Semaphore::new(0),
                fail: AtomicBool::new(false),
                never: AtomicBool::new(false),
                retired: Mutex::new(Vec::new()),
                revision: Mutex::new("pkg/1".to_owned()),
            }))
        }
    }

    impl Specializer for FakeSpec {
        type Pod = u32;

        async fn specialize(&self) -> Result<u32, SpecializeError> {
            let n = self.0.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if self.0.never.load(Ordering::SeqCst) {
                std::future::pending::<()>().await;
            }
            self.0
                .gate
                .acquire()
                .await
                .map_err(|e| SpecializeError::Failed(e.to_string()))?
                .forget();
            if self.0.fail.load(Ordering::SeqCst) {
                return Err(SpecializeError::Failed(
                    "runtime said: SyntaxError in hello.py".into(),
                ));
            }
            Ok(n)
        }

        fn retire(&self, pod: u32) {
            self.0.retired.lock().unwrap().push(pod);
        }

        fn revision(&self) -> String {
            self.0.revision.lock().unwrap().clone()
        }
    }

    fn limits(requests_per_pod: u32, concurrency: u32) -> Limits {
        Limits::for_tests(requests_per_pod, concurrency)
    }

    fn timing(specialization: Duration, patience: Duration) -> Timing {
        Timing {
            specialization,
            patience,
        }
    }

    /// Patience long enough that no test escalates unless it means to.
    const PATIENT: Duration = Duration::from_mins(1);

    fn admission(rpp: u32, concurrency: u32) -> (Admission<FakeSpec>, Arc<Fake>) {
        let spec = FakeSpec::default();
        let fake = spec.0.clone();
        let adm = Admission::new(
            limits(rpp, concurrency),
            spec,
            timing(Duration::from_secs(30), PATIENT),
        );
        (adm, fake)
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    /// Polls `cond` until it holds, failing after 10 s.
    async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for: {what}");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn burst_of_200_with_concurrency_5_specializes_5_queues_100_rejects_95() {
        let (adm, fake) = admission(1, 5);
        let rejected = Arc::new(AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let adm = adm.clone();
            let rejected = rejected.clone();
            tasks.push(tokio::spawn(async move {
                match adm.acquire(far()).await {
                    Ok(lease) => Some(*lease.pod()),
                    Err(e) => {
                        assert_eq!(e.status(), StatusCode::TOO_MANY_REQUESTS);
                        assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
                        rejected.fetch_add(1, Ordering::SeqCst);
                        None
                    }
                }
            }));
        }
        eventually("95 rejections", || rejected.load(Ordering::SeqCst) == 95).await;
        assert_eq!(adm.stats().queued, 100);
        fake.gate.add_permits(5);
        let mut served = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                served += 1;
            }
        }
        assert_eq!(
            served, 105,
            "the queue is served by the 5 pods as leases end"
        );
        assert_eq!(fake.calls.load(Ordering::SeqCst), 5);
        let stats = adm.stats();
        assert_eq!(stats.pods.len(), 5);
        assert!(
            stats.pods.iter().all(|(_, n)| *n == 0),
            "leases were dropped: {stats:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_request_takes_a_freed_slot_not_a_new_pod() {
        let adm = Admission::new(
            Limits {
                max_specializing: 1,
                ..limits(1, 5)
            },
            FakeSpec::default(),
            timing(Duration::from_secs(30), PATIENT),
        );
        let fake = adm.specializer().0.clone();
        fake.gate.add_permits(1);
        let first = adm.acquire(far()).await.unwrap();
        // The pod is busy and nobody is queued: the second request specializes (blocked at the
        // gate), the third queues.
        let second = tokio::spawn({
            let adm = adm.clone();
            async move { adm.acquire(far()).await.map(|l| *l.pod()) }
        });
        eventually("second specializing", || adm.stats().specializing == 1).await;
        let third = tokio::spawn({
            let adm = adm.clone();
            async move { adm.acquire(far()).await.map(|l| *l.pod()) }
        });
        eventually("third queued", || adm.stats().queued == 1).await;
        drop(first);
        assert_eq!(third.await.unwrap(), Ok(1), "served by the freed pod");
        fake.gate.add_permits(1);
        assert_eq!(second.await.unwrap(), Ok(2));
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_request_out_of_patience_gets_a_pod_of_its_own() {
        let adm = Admission::new(
            Limits {
                max_specializing: 1,
                ..limits(1, 5)
            },
            FakeSpec::default(),
            timing(Duration::from_secs(30), Duration::from_millis(20)),
        );
        let fake = adm.specializer().0.clone();
        fake.gate.add_permits(1);
        let _busy = adm.acquire(far()).await.unwrap();
        // Each task keeps its lease, so no pod frees up for the queue.
        let second = tokio::spawn({
            let adm = adm.clone();
            async move { adm.acquire(far()).await }
        });
        eventually("second specializing", || adm.stats().specializing == 1).await;
        let third = tokio::spawn({
            let adm = adm.clone();
            async move { adm.acquire(far()).await }
        });
        eventually("third queued", || adm.stats().queued == 1).await;
        // Past its patience the third waits for the second's specialization to end (one in flight
        // at most), then starts its own.
        fake.gate.add_permits(1);
        let second = second.await.unwrap().unwrap();
        assert_eq!(*second.pod(), 2);
        eventually("third specializing", || {
            fake.calls.load(Ordering::SeqCst) == 3
        })
        .await;
        fake.gate.add_permits(1);
        assert_eq!(*third.await.unwrap().unwrap().pod(), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn burst_shares_pods_when_requests_per_pod_allows() {
        let (adm, fake) = admission(40, 5);
        let mut tasks = Vec::new();
        for _ in 0..200 {
            let adm = adm.clone();
            tasks.push(tokio::spawn(async move {
                adm.acquire(far()).await.map(|lease| *lease.pod())
            }));
        }
        eventually("all 200 admitted", || adm.stats().waiting == 200).await;
        assert_eq!(fake.calls.load(Ordering::SeqCst), 5);
        fake.gate.add_permits(5);
        for t in tasks {
            assert!(t.await.unwrap().is_ok());
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn warm_requests_reuse_the_pod_and_leases_release_on_drop() {
        let (adm, fake) = admission(1, 5);
        fake.gate.add_permits(1);
        let lease = adm.acquire(far()).await.unwrap();
        assert_eq!(adm.stats().pods, vec![(1, 1)]);
        drop(lease);
        assert_eq!(adm.stats().pods, vec![(1, 0)]);
        let lease = adm.acquire(far()).await.unwrap();
        assert_eq!(*lease.pod(), 1);
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            1,
            "warm path: no specialization"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_waiter_releases_its_slot() {
        let (adm, fake) = admission(2, 1);
        let first = tokio::spawn({
            let adm = adm.clone();
            async move { adm.acquire(far()).await.map(|l| *l.pod()) }
        });
        let second = tokio::spawn({
            let adm = adm.clone();
            async move {
                let lease = adm.acquire(far()).await;
                std::future::pending::<()>().await;
                drop(lease);
            }
        });
        eventually("two waiters", || adm.stats().waiting == 2).await;
        // The client of the second request disconnects: its future is dropped.
        second.abort();
        eventually("one waiter left", || adm.stats().waiting == 1).await;
        fake.gate.add_permits(1);
        assert_eq!(first.await.unwrap(), Ok(1));
        assert_eq!(adm.stats().pods, vec![(1, 0)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_client_gone_after_the_grant_still_releases() {
        let (adm, fake) = admission(1, 1);
        let holder = tokio::spawn({
            let adm = adm.clone();
            async move {
                let lease = adm.acquire(far()).await;
                std::future::pending::<()>().await;
                drop(lease);
            }
        });
        eventually("specializing", || fake.calls.load(Ordering::SeqCst) == 1).await;
        fake.gate.add_permits(1);
        eventually("granted", || adm.stats().pods == vec![(1, 1)]).await;
        holder.abort();
        eventually("released", || adm.stats().pods == vec![(1, 0)]).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_specialization_fails_its_waiters_once() {
        let (adm, fake) = admission(3, 5);
        fake.fail.store(true, Ordering::SeqCst);
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let adm = adm.clone();
                tokio::spawn(async move { adm.acquire(far()).await.map(|l| *l.pod()) })
            })
            .collect();
        eventually("three waiting", || adm.stats().waiting == 3).await;
        fake.gate.add_permits(1);
        for t in tasks {
            let err = t.await.unwrap().unwrap_err();
            assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
            assert!(err.to_string().contains("SyntaxError in hello.py"), "{err}");
        }
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            1,
            "one failure costs one specialization"
        );
        let stats = adm.stats();
        assert_eq!(
            (stats.pods.len(), stats.specializing, stats.waiting),
            (0, 0, 0)
        );
        // The next request gets the recorded failure at once, without another specialization.
        let err = adm.acquire(far()).await.unwrap_err();
        assert!(err.to_string().contains("SyntaxError in hello.py"), "{err}");
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "held: no pod burned");
        assert!(adm.stats().held.is_some());
        // New code (another Package generation) is tried at once.
        *fake.revision.lock().unwrap() = "pkg/2".to_owned();
        fake.fail.store(false, Ordering::SeqCst);
        fake.gate.add_permits(1);
        assert_eq!(*adm.acquire(far()).await.unwrap().pod(), 2);
        assert!(adm.stats().held.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_is_lifted_after_its_time_and_doubles_on_the_next_failure() {
        let (adm, fake) = admission(1, 5);
        fake.fail.store(true, Ordering::SeqCst);
        fake.gate.add_permits(3);
        assert!(adm.acquire(far()).await.is_err());
        tokio::time::advance(Duration::from_millis(4_999)).await;
        assert!(adm.acquire(far()).await.is_err());
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "still held");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(adm.acquire(far()).await.is_err());
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            2,
            "one retry after the hold"
        );
        tokio::time::advance(hold::FIRST_HOLD).await;
        assert!(adm.acquire(far()).await.is_err());
        assert_eq!(
            fake.calls.load(Ordering::SeqCst),
            2,
            "the second hold is twice as long"
        );
        tokio::time::advance(hold::FIRST_HOLD).await;
        fake.fail.store(false, Ordering::SeqCst);
        assert_eq!(*adm.acquire(far()).await.unwrap().pod(), 3);
    }

    #[tokio::test]
    async fn no_warm_pod_is_not_held() {
        struct Empty;
        impl Specializer for Empty {
            type Pod = u32;
            async fn specialize(&self) -> Result<u32, SpecializeError> {
                Err(SpecializeError::Unavailable("no warm pod".into()))
            }
        }
        let adm = Admission::new(limits(1, 5), Empty, timing(Duration::from_secs(1), PATIENT));
        for _ in 0..2 {
            let err = adm.acquire(far()).await.unwrap_err();
            assert_eq!(err.status(), StatusCode::SERVICE_UNAVAILABLE);
        }
        assert!(adm.stats().held.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_request_deadline_bounds_the_wait() {
        let (adm, fake) = admission(1, 1);
        let err = adm
            .acquire(Instant::now() + Duration::from_millis(20))
            .await
            .unwrap_err();
        assert_eq!(err, AdmissionError::Deadline);
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(adm.stats().waiting, 0);
        // The specialization goes on; its pod becomes warm for the next request.
        fake.gate.add_permits(1);
        eventually("pod ready", || adm.stats().pods == vec![(1, 0)]).await;
        assert_eq!(*adm.acquire(far()).await.unwrap().pod(), 1);
    }

    #[tokio::test]
    async fn specializations_time_out() {
        let spec = FakeSpec::default();
        spec.0.never.store(true, Ordering::SeqCst);
        let adm = Admission::new(
            limits(1, 1),
            spec,
            timing(Duration::from_millis(20), PATIENT),
        );
        let err = adm.acquire(far()).await.unwrap_err();
        assert_eq!(
            err,
            AdmissionError::Specialization(SpecializeError::Timeout(Duration::from_millis(20)))
        );
        assert_eq!(err.status(), StatusCode::GATEWAY_TIMEOUT);
        assert_eq!(
            adm.stats().specializing,
            0,
            "the slot under concurrency is freed"
        );
    }

    #[tokio::test]
    async fn evicted_pods_leave_and_are_retired() {
        let (adm, fake) = admission(1, 1);
        fake.gate.add_permits(2);
        let mut lease = adm.acquire(far()).await.unwrap();
        lease.evict();
        drop(lease);
        assert!(adm.stats().pods.is_empty());
        assert_eq!(*fake.retired.lock().unwrap(), vec![1]);
        assert_eq!(*adm.acquire(far()).await.unwrap().pod(), 2);
    }

    #[tokio::test]
    async fn once_only_pods_are_retired_after_their_request() {
        let spec = FakeSpec::default();
        let fake = spec.0.clone();
        let limits = Limits {
            once_only: true,
            ..limits(1, 2)
        };
        let adm = Admission::new(limits, spec, timing(Duration::from_secs(30), PATIENT));
        fake.gate.add_permits(2);
        drop(adm.acquire(far()).await.unwrap());
        drop(adm.acquire(far()).await.unwrap());
        assert_eq!(*fake.retired.lock().unwrap(), vec![1, 2]);
        assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn removed_pods_take_no_new_requests() {
        let (adm, fake) = admission(1, 1);
        fake.gate.add_permits(2);
        drop(adm.acquire(far()).await.unwrap());
        assert!(adm.remove_pod(&1));
        assert_eq!(*adm.acquire(far()).await.unwrap().pod(), 2);
    }

    #[test]
    fn statuses_map_errors() {
        let e = |s: SpecializeError| AdmissionError::Specialization(s).status();
        assert_eq!(
            e(SpecializeError::Unavailable("pool empty".into())),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            e(SpecializeError::Failed("x".into())),
            StatusCode::BAD_GATEWAY
        );
        assert_eq!(
            e(SpecializeError::Timeout(Duration::from_secs(1))),
            StatusCode::GATEWAY_TIMEOUT
        );
        let too_many = AdmissionError::TooManyRequests {
            concurrency: 5,
            queued: 1024,
            retry_after: RETRY_AFTER,
        };
        assert_eq!(
            too_many.to_string(),
            "function concurrency limit of 5 pods reached and 1024 requests queued; retry after 1s"
        );
    }

    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn admission_is_usable_from_hyper_services() {
        assert_send_sync::<Admission<FakeSpec>>();
        assert_send_sync::<Lease<FakeSpec>>();
        let (adm, _) = admission(1, 1);
        let acquiring = adm.acquire(far());
        assert_send(&acquiring);
    }
}
