//! Data-plane worker threads, one per core, as nginx runs one worker process per core.
//!
//! Each worker is an OS thread running a single-threaded tokio runtime with its own pool of
//! upstream connections. The accept loops hand each accepted connection to the next worker in
//! turn; from then on the client connection, the upstream connection and every wake-up of the
//! exchange stay on that thread. On a shared work-stealing runtime the same exchange hops
//! between threads (futex wake-ups, cache misses): measured on 2 cores at `wrk -c32`, the
//! router spent 85 µs of CPU per request that way and 62 µs on one single-threaded runtime
//! (docs/performance.md).
//!
//! Everything else (caches, specialization's API calls, activity publishing) stays on the
//! runtime that started the router; the workers share its state through `Arc`s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

use crate::proxy::{ProxyClient, ProxyConfig};
use crate::server::{self, Port, State};

/// Accepts on `listener` until `shutdown` becomes true and hands each connection to a worker.
pub async fn accept(
    listener: TcpListener,
    workers: Arc<Dispatch>,
    port: Port,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = async { let _ = shutdown.wait_for(|stop| *stop).await; } => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                workers.hand_over(stream, peer, port);
            }
            // Out of file descriptors and similar: keep serving the open connections.
            Err(error) => tracing::warn!(%error, "accept failed"),
        }
    }
}

/// A connection an accept loop took, for a worker to serve.
#[derive(Debug)]
struct Accepted {
    stream: std::net::TcpStream,
    peer: SocketAddr,
    port: Port,
}

/// The accept loops' side: hands connections to the workers in turn. The workers stop taking
/// connections (and drain the ones they have) once every `Dispatch` is dropped.
#[derive(Debug)]
pub struct Dispatch {
    workers: Vec<mpsc::UnboundedSender<Accepted>>,
    next: AtomicUsize,
}

impl Dispatch {
    /// Gives `stream` to the next worker. A worker that is gone (only after shutdown) drops it.
    pub fn hand_over(&self, stream: TcpStream, peer: SocketAddr, port: Port) {
        let Ok(stream) = stream.into_std() else {
            return;
        };
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        let _ = self.workers[i].send(Accepted { stream, peer, port });
    }
}

/// The router's side: waits for the workers to drain, or cuts them off.
#[derive(Debug)]
pub struct Workers {
    drained: Vec<oneshot::Receiver<()>>,
    abort: watch::Sender<bool>,
}

impl Workers {
    /// Starts `count` workers (at least one) serving with `state`; connections watch `stop` to
    /// finish gracefully.
    pub fn start(
        count: usize,
        state: &Arc<State>,
        proxy: ProxyConfig,
        stop: &watch::Receiver<bool>,
    ) -> std::io::Result<(Dispatch, Self)> {
        let (abort, aborted) = watch::channel(false);
        let mut senders = Vec::new();
        let mut drained = Vec::new();
        for index in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (tx, rx) = mpsc::unbounded_channel();
            let (done, done_rx) = oneshot::channel();
            let worker = Worker {
                state: state.clone(),
                proxy,
                stop: stop.clone(),
                aborted: aborted.clone(),
            };
            std::thread::Builder::new()
                .name(format!("router-worker-{index}"))
                .spawn(move || {
                    runtime.block_on(worker.run(rx));
                    // Dropping the runtime cancels whatever an abort left running.
                    drop(runtime);
                    let _ = done.send(());
                })?;
            senders.push(tx);
            drained.push(done_rx);
        }
        let dispatch = Dispatch {
            workers: senders,
            next: AtomicUsize::new(0),
        };
        Ok((dispatch, Self { drained, abort }))
    }

    /// Resolves when every worker has served its last connection (after the dispatchers are
    /// dropped and the connections closed).
    pub async fn drained(&mut self) {
        for done in &mut self.drained {
            let _ = done.await;
        }
    }

    /// Cuts the connections still open.
    pub fn abort(&self) {
        let _ = self.abort.send(true);
    }
}

struct Worker {
    state: Arc<State>,
    proxy: ProxyConfig,
    stop: watch::Receiver<bool>,
    aborted: watch::Receiver<bool>,
}

impl Worker {
    async fn run(self, mut accepted: mpsc::UnboundedReceiver<Accepted>) {
        let proxy = ProxyClient::new(self.proxy);
        let mut connections = JoinSet::new();
        let serve = async {
            while let Some(Accepted { stream, peer, port }) = accepted.recv().await {
                let Ok(stream) = TcpStream::from_std(stream) else {
                    continue;
                };
                connections.spawn(server::serve_connection(
                    stream,
                    peer,
                    port,
                    self.state.clone(),
                    proxy.clone(),
                    self.stop.clone(),
                ));
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
            while connections.join_next().await.is_some() {}
        };
        let mut aborted = self.aborted.clone();
        let abort = async {
            // A router dropped without a shutdown drains instead of cutting.
            if aborted.wait_for(|aborted| *aborted).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        tokio::select! {
            () = serve => {}
            () = abort => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_go_to_the_workers_in_turn() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (channels, mut receivers): (Vec<_>, Vec<_>) =
            (0..3).map(|_| mpsc::unbounded_channel()).unzip();
        let dispatch = Dispatch {
            workers: channels,
            next: AtomicUsize::new(0),
        };
        for _ in 0..6 {
            let _client = TcpStream::connect(addr).await.unwrap();
            let (stream, peer) = listener.accept().await.unwrap();
            dispatch.hand_over(stream, peer, Port::Public);
        }
        for receiver in &mut receivers {
            for _ in 0..2 {
                assert_eq!(receiver.try_recv().unwrap().port, Port::Public);
            }
            assert!(receiver.try_recv().is_err(), "more than its share");
        }
        // A worker that is gone (after shutdown) just drops the connection.
        drop(receivers);
        let _client = TcpStream::connect(addr).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        dispatch.hand_over(stream, peer, Port::Internal);
    }
}
