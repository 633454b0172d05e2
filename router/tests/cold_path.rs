//! Admission and proxy together over real sockets: a test router that admits each request through
//! `Admission` (with a stand-in specializer that "specializes" by returning a backend address),
//! then forwards with the lease as the proxy guard. This is the burst scenario in
//! miniature: 200 concurrent first requests with `concurrency: 5`.

// Helpers outside #[test] functions panic on purpose when the harness breaks.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::uri::Authority;
use hyper::http::{Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rivulet_api::Function;
use rivulet_router::admission::{Admission, Lease, Limits, SpecializeError, Specializer, Timing};
use rivulet_router::proxy::{self, ProxyBody, ProxyClient, ProxyConfig, ProxyError};
use rivulet_routing::headers::{self, Rewrite};
use rivulet_routing::rng::ThreadRng;
use rivulet_routing::routes::{Listener, RequestInfo, Resolution, RouteTable, RouteTableOptions};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct Pod {
    id: u32,
    address: Authority,
}

/// "Specializes" by handing out the backend's address, once the test opens the gate.
struct TestSpecializer {
    backend: Authority,
    calls: AtomicU32,
    gate: Semaphore,
    fail: AtomicBool,
}

#[derive(Clone)]
struct Spec(Arc<TestSpecializer>);

impl Specializer for Spec {
    type Pod = Pod;

    async fn specialize(&self) -> Result<Pod, SpecializeError> {
        let this = &self.0;
        let id = this.calls.fetch_add(1, Ordering::SeqCst) + 1;
        this.gate.acquire().await.unwrap().forget();
        if this.fail.load(Ordering::SeqCst) {
            return Err(SpecializeError::Failed(
                "runtime: ModuleNotFoundError: No module named 'helo'".into(),
            ));
        }
        Ok(Pod {
            id,
            address: this.backend.clone(),
        })
    }
}

struct Router {
    table: RouteTable,
    admission: Admission<Spec>,
    proxy: ProxyClient,
}

async fn route(
    req: Request<Incoming>,
    router: Arc<Router>,
    peer: SocketAddr,
) -> Result<Response<ProxyBody<Lease<Spec>>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let Resolution::Function(m) = router.table.resolve(
        Listener::Public,
        &RequestInfo::from_parts(&parts),
        &mut ThreadRng,
    ) else {
        return Ok(proxy::not_found());
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    let lease = match router.admission.acquire(deadline).await {
        Ok(lease) => lease,
        Err(e) => return Ok(proxy::admission_error(&e)),
    };
    headers::rewrite_request(
        &mut parts,
        &Rewrite {
            function: &m.function.headers,
            params: &m.params,
            client: Some(peer.ip()),
        },
    );
    let address = lease.pod().address.clone();
    let request = Request::from_parts(parts, body);
    let timeout = Duration::from_secs(10);
    Ok(
        match router
            .proxy
            .forward(request, &address, m.upstream_path_and_query, timeout, lease)
            .await
        {
            Ok(response) => response,
            Err(mut failure) => {
                if matches!(failure.error, ProxyError::Connect { .. }) {
                    failure.guard.evict();
                }
                failure.error.to_response()
            }
        },
    )
}

async fn start_backend() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let service = service_fn(|req: Request<Incoming>| async move {
                    let name = req.headers()["x-fission-function-name"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                        "hello from {name}"
                    )))))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

struct Setup {
    addr: SocketAddr,
    router: Arc<Router>,
    spec: Arc<TestSpecializer>,
}

async fn start(concurrency: u32, requests_per_pod: u32) -> Setup {
    let backend = start_backend().await;
    let spec = Arc::new(TestSpecializer {
        backend: backend.to_string().parse().unwrap(),
        calls: AtomicU32::new(0),
        gate: Semaphore::new(0),
        fail: AtomicBool::new(false),
    });
    let function = Function {
        metadata: ObjectMeta {
            name: Some("hello".into()),
            namespace: Some("default".into()),
            uid: Some("u1".into()),
            resource_version: Some("1".into()),
            ..ObjectMeta::default()
        },
        spec: rivulet_api::FunctionSpec::default(),
        status: None,
    };
    let options = RouteTableOptions {
        internal_routes_on_public: true,
    };
    let limits = Limits {
        requests_per_pod,
        concurrency,
        once_only: false,
        max_specializing: concurrency,
        max_queued: 0,
        max_slowdown: rivulet_router::admission::DEFAULT_MAX_SLOWDOWN,
    };
    let router = Arc::new(Router {
        table: RouteTable::build(&[], &[function], options),
        admission: Admission::new(
            limits,
            Spec(spec.clone()),
            Timing {
                specialization: Duration::from_secs(30),
                patience: Duration::from_mins(1),
            },
        ),
        proxy: ProxyClient::new(ProxyConfig::default()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = router.clone();
    tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| route(req, state.clone(), peer));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Setup { addr, router, spec }
}

async fn get(addr: SocketAddr) -> (StatusCode, Option<String>, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let req = Request::get(format!("http://{addr}/fission-function/hello"))
        .body(Full::default())
        .unwrap();
    let response = client.request(req).await.unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        retry_after,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_then_warm() {
    let s = start(5, 1).await;
    s.spec.gate.add_permits(1);
    assert_eq!(
        get(s.addr).await,
        (StatusCode::OK, None, "hello from hello".into())
    );
    eventually("released", || {
        s.router.admission.stats().pods.iter().all(|(_, n)| *n == 0)
    })
    .await;
    assert_eq!(get(s.addr).await.0, StatusCode::OK);
    assert_eq!(
        s.spec.calls.load(Ordering::SeqCst),
        1,
        "the second request is warm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_of_200_first_requests_with_concurrency_5() {
    let s = start(5, 1).await;
    let rejected = Arc::new(AtomicU32::new(0));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let rejected = rejected.clone();
            let addr = s.addr;
            tokio::spawn(async move {
                let answer = get(addr).await;
                if answer.0 == StatusCode::TOO_MANY_REQUESTS {
                    rejected.fetch_add(1, Ordering::SeqCst);
                }
                answer
            })
        })
        .collect();
    // Every request arrives while the 5 pods are still being specialized: 195 are refused at
    // once, 5 wait for their pods.
    eventually("195 refusals", || rejected.load(Ordering::SeqCst) == 195).await;
    assert_eq!(s.spec.calls.load(Ordering::SeqCst), 5);
    assert_eq!(s.router.admission.stats().waiting, 5);
    s.spec.gate.add_permits(5);
    let mut ok = 0;
    let mut too_many = 0;
    for t in tasks {
        let (status, retry_after, body) = t.await.unwrap();
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::TOO_MANY_REQUESTS => {
                assert_eq!(retry_after.as_deref(), Some("1"));
                assert!(body.contains("concurrency limit of 5"), "{body}");
                too_many += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((ok, too_many), (5, 195));
    assert_eq!(
        s.spec.calls.load(Ordering::SeqCst),
        5,
        "at most `concurrency` pods specialized"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn burst_shares_pods_with_requests_per_pod() {
    let s = start(5, 40).await;
    let tasks: Vec<_> = (0..200).map(|_| tokio::spawn(get(s.addr))).collect();
    eventually("all waiting", || s.router.admission.stats().waiting == 200).await;
    s.spec.gate.add_permits(5);
    for t in tasks {
        assert_eq!(t.await.unwrap().0, StatusCode::OK);
    }
    assert_eq!(s.spec.calls.load(Ordering::SeqCst), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_gone_during_cold_start_leaves_a_warm_idle_pod() {
    let s = start(5, 1).await;
    let mut stream = TcpStream::connect(s.addr).await.unwrap();
    stream
        .write_all(b"GET /fission-function/hello HTTP/1.1\r\nhost: t\r\n\r\n")
        .await
        .unwrap();
    eventually("waiting", || s.router.admission.stats().waiting == 1).await;
    drop(stream);
    eventually("wait abandoned", || s.router.admission.stats().waiting == 0).await;
    s.spec.gate.add_permits(1);
    eventually("pod warm and idle", || {
        s.router.admission.stats().pods.len() == 1
    })
    .await;
    assert!(s.router.admission.stats().pods.iter().all(|(_, n)| *n == 0));
    assert_eq!(get(s.addr).await.0, StatusCode::OK);
    assert_eq!(s.spec.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_specialization_answers_502_with_the_cause_then_holds() {
    let s = start(5, 1).await;
    s.spec.fail.store(true, Ordering::SeqCst);
    s.spec.gate.add_permits(1);
    let (status, _, body) = get(s.addr).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("No module named 'helo'"), "{body}");
    assert_eq!(
        s.spec.calls.load(Ordering::SeqCst),
        1,
        "no retry on another pod"
    );
    // The same code again: the recorded answer, without burning a warm pod (issue 15.6).
    s.spec.fail.store(false, Ordering::SeqCst);
    s.spec.gate.add_permits(1);
    let (status, _, body) = get(s.addr).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("No module named 'helo'"), "{body}");
    assert_eq!(s.spec.calls.load(Ordering::SeqCst), 1, "held");
}
