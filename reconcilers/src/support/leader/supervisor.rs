//! Runs a set of reconcilers only while this replica leads: starts them when leadership is gained,
//! stops them through their shutdown future when it is lost (waiting until they have stopped),
//! and starts them again when it is regained.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use futures::future::Shared;
use tokio::sync::{oneshot, watch};
use tracing::{info, warn};

/// The shutdown future handed to one term of reconcilers: resolves when leadership is lost or the
/// process shuts down. Clone it to give each reconciler its own. It is `Send + Sync + 'static`, as
/// the reconcilers' `run` functions require.
#[derive(Clone, Debug)]
pub struct Stop(Shared<oneshot::Receiver<()>>);

impl Stop {
    /// A stop signal and the sender that fires it (also fired when the sender is dropped).
    pub fn new() -> (oneshot::Sender<()>, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self(rx.shared()))
    }
}

impl Future for Stop {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}

/// Waits until `is_leader` equals `value`; `false` when the election has ended (sender dropped).
async fn reaches(is_leader: &mut watch::Receiver<bool>, value: bool) -> bool {
    is_leader.wait_for(|l| *l == value).await.is_ok()
}

/// How long [`while_leader`] waits for stopped reconcilers before dropping them. Short, because
/// after losing the Lease another replica may lead within a few seconds.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs `start(stop)` during each term of leadership, until `shutdown` resolves (then stops the
/// current term and waits for it) or the election ends.
///
/// A stopped term has `grace` to finish (the reconcilers' `run(…, shutdown)` finish the
/// reconciles in flight); then its future is dropped, so a term never outlives leadership for
/// long. Dropping must cancel the work: spawn reconcilers into a `tokio::task::JoinSet`, not as
/// detached tasks. (kube's graceful shutdown waits until the controller's cache has synced, so a
/// reconciler whose CRD is missing would otherwise never stop.)
pub async fn while_leader<F, Fut>(
    mut is_leader: watch::Receiver<bool>,
    mut start: F,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    F: FnMut(Stop) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return,
            leads = reaches(&mut is_leader, true) => if !leads { return },
        }
        info!("leading: starting the reconcilers");
        let (stop, stopped) = Stop::new();
        let mut term = std::pin::pin!(start(stopped));
        let mut shutting_down = false;
        tokio::select! {
            biased;
            () = &mut term => {
                // A term that ends by itself is not restarted before leadership changes.
                info!("reconcilers ended on their own");
                tokio::select! {
                    () = &mut shutdown => return,
                    _ = reaches(&mut is_leader, false) => continue,
                }
            }
            () = &mut shutdown => shutting_down = true,
            _ = reaches(&mut is_leader, false) => {}
        }
        info!(shutting_down, "stopping the reconcilers");
        let _ = stop.send(());
        if tokio::time::timeout(grace, &mut term).await.is_ok() {
            info!("reconcilers stopped");
        } else {
            warn!(?grace, "reconcilers did not stop in time: cancelling them");
        }
        if shutting_down {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Counts terms started and terms running.
    #[derive(Default)]
    struct Terms {
        started: AtomicUsize,
        running: AtomicUsize,
    }

    fn term(terms: &Arc<Terms>, stop: Stop) -> impl Future<Output = ()> + use<> {
        let terms = terms.clone();
        terms.started.fetch_add(1, Ordering::SeqCst);
        terms.running.fetch_add(1, Ordering::SeqCst);
        async move {
            stop.await;
            terms.running.fetch_sub(1, Ordering::SeqCst);
        }
    }

    async fn until(what: &str, check: impl Fn() -> bool) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !check() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
    }

    #[tokio::test]
    async fn terms_follow_leadership_and_shutdown_stops_the_running_one() {
        let (leading, is_leader) = watch::channel(false);
        let (shut, shutdown) = oneshot::channel::<()>();
        let terms = Arc::new(Terms::default());
        let supervised = tokio::spawn({
            let terms = terms.clone();
            while_leader(
                is_leader,
                move |stop| term(&terms, stop),
                async move {
                    let _ = shutdown.await;
                },
                DEFAULT_STOP_GRACE,
            )
        });
        tokio::task::yield_now().await;
        assert_eq!(
            terms.started.load(Ordering::SeqCst),
            0,
            "no term before leading"
        );

        leading.send(true).unwrap();
        until("first term", || terms.running.load(Ordering::SeqCst) == 1).await;
        leading.send(false).unwrap();
        until("first term stopped", || {
            terms.running.load(Ordering::SeqCst) == 0
        })
        .await;
        leading.send(true).unwrap();
        until("second term", || terms.started.load(Ordering::SeqCst) == 2).await;
        assert_eq!(terms.running.load(Ordering::SeqCst), 1);

        shut.send(()).unwrap();
        supervised.await.unwrap();
        assert_eq!(terms.running.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn the_end_of_the_election_ends_supervision() {
        let (leading, is_leader) = watch::channel(false);
        let terms = Arc::new(Terms::default());
        let supervised = tokio::spawn({
            let terms = terms.clone();
            while_leader(
                is_leader,
                move |stop| term(&terms, stop),
                std::future::pending(),
                DEFAULT_STOP_GRACE,
            )
        });
        drop(leading);
        supervised.await.unwrap();
        assert_eq!(terms.started.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_term_that_ignores_its_stop_is_dropped_after_the_grace_period() {
        /// Counts the term's drops.
        struct OnDrop(Arc<Terms>);
        impl Drop for OnDrop {
            fn drop(&mut self) {
                self.0.running.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let (leading, is_leader) = watch::channel(true);
        let terms = Arc::new(Terms::default());
        let supervised = tokio::spawn({
            let terms = terms.clone();
            while_leader(
                is_leader,
                move |_ignored: Stop| {
                    terms.started.fetch_add(1, Ordering::SeqCst);
                    terms.running.fetch_add(1, Ordering::SeqCst);
                    let guard = OnDrop(terms.clone());
                    async move {
                        let _guard = guard;
                        std::future::pending::<()>().await;
                    }
                },
                std::future::pending(),
                Duration::from_millis(50),
            )
        });
        until("the term started", || {
            terms.running.load(Ordering::SeqCst) == 1
        })
        .await;
        leading.send(false).unwrap();
        until("the stuck term dropped", || {
            terms.running.load(Ordering::SeqCst) == 0
        })
        .await;
        drop(leading);
        supervised.await.unwrap();
        assert_eq!(terms.started.load(Ordering::SeqCst), 1);
    }
}
