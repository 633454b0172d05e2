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
