//! The whole request path over real sockets on 127.0.0.1: a test router (route table, header
//! rewriting, proxy, an in-flight guard) in front of a tiny backend standing in for a function pod.

// Helpers outside #[test] functions panic on purpose when the harness breaks.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Frame, Incoming};
use hyper::http::uri::Authority;
use hyper::http::{Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use rivulet_api::{Function, FunctionReference, HTTPTrigger, HTTPTriggerSpec};
use rivulet_router::proxy::{self, ProxyBody, ProxyClient, ProxyConfig, ProxyError};
use rivulet_routing::headers::{self, Rewrite};
use rivulet_routing::rng::ThreadRng;
use rivulet_routing::routes::{Listener, RequestInfo, Resolution, RouteTable, RouteTableOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

// ---------------------------------------------------------------- backend (the "function pod")

/// A body fed chunk by chunk from a channel, to prove the proxy streams.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(Frame::data(c))))
    }
}

type BackendBody = http_body_util::combinators::BoxBody<Bytes, Infallible>;

#[derive(Default)]
struct Backend {
    connections: AtomicUsize,
    /// Lets `/stream` send its second chunk.
    release: Notify,
}

async fn backend_handle(
    req: Request<Incoming>,
    backend: Arc<Backend>,
) -> Result<Response<BackendBody>, Infallible> {
    let path = req.uri().path().to_owned();
    let full = |s: String| Full::new(Bytes::from(s)).boxed();
    let response = match path.as_str() {
        "/count" => {
            let mut body = req.into_body();
            let mut n = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame.unwrap().into_data() {
                    n += data.len();
                }
            }
            Response::new(full(n.to_string()))
        }
        "/stream" => {
            let (tx, rx) = mpsc::channel(2);
            tokio::spawn(async move {
                tx.send(Bytes::from_static(b"first\n")).await.unwrap();
                backend.release.notified().await;
                tx.send(Bytes::from_static(b"second\n")).await.unwrap();
            });
            Response::new(ChannelBody(rx).boxed())
        }
        "/big" => Response::new(Full::new(Bytes::from(vec![b'x'; 8 << 20])).boxed()),
        "/slow" => {
            std::future::pending::<()>().await;
            unreachable!()
        }
        _ => {
            // Echo what the function sees: the request target, then every header.
            let mut lines = vec![format!("target: {}", req.uri())];
            let mut names: Vec<_> = req
                .headers()
                .keys()
                .map(|k| k.as_str().to_owned())
                .collect();
            names.sort();
            names.dedup();
            for name in names {
                for value in req.headers().get_all(&name) {
                    lines.push(format!("{name}: {}", value.to_str().unwrap()));
                }
            }
            let mut response = Response::new(full(lines.join("\n")));
            response
                .headers_mut()
                .insert("x-custom", "1".parse().unwrap());
            response
                .headers_mut()
                .insert("proxy-authenticate", "Basic".parse().unwrap());
            response
        }
    };
    Ok(response)
}

async fn start_backend() -> (SocketAddr, Arc<Backend>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let backend = Arc::new(Backend::default());
    let state = backend.clone();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            state.connections.fetch_add(1, Ordering::SeqCst);
            let state = state.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| backend_handle(req, state.clone()));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, backend)
}

// ---------------------------------------------------------------- the test router

/// Stands in for an admission lease: counts requests in flight.
struct Guard(Arc<AtomicUsize>);

impl Guard {
    fn enter(counter: &Arc<AtomicUsize>) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter.clone())
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Router {
    table: RouteTable,
    proxy: ProxyClient,
    pod: Authority,
    timeout: Duration,
    in_flight: Arc<AtomicUsize>,
}

async fn route(
    req: Request<Incoming>,
    router: Arc<Router>,
    peer: SocketAddr,
) -> Result<Response<ProxyBody<Guard>>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let resolution = router.table.resolve(
        Listener::Public,
        &RequestInfo::from_parts(&parts),
        &mut ThreadRng,
    );
    let response = match resolution {
        Resolution::Function(m) => {
            headers::rewrite_request(
                &mut parts,
                &Rewrite {
                    function: &m.function.headers,
                    params: &m.params,
                    client: Some(peer.ip()),
                },
            );
            let guard = Guard::enter(&router.in_flight);
            let request = Request::from_parts(parts, body);
            match router
                .proxy
                .forward(
                    request,
                    &router.pod,
                    m.upstream_path_and_query,
                    router.timeout,
                    guard,
                )
                .await
            {
                Ok(response) => response,
                Err(failure) => failure.error.to_response(),
            }
        }
        Resolution::NotFound => proxy::not_found(),
        Resolution::MethodNotAllowed { allow } => proxy::method_not_allowed(&allow),
        Resolution::Redirect { location } => proxy::redirect(&location),
        Resolution::BadRequest => proxy::bad_request(),
        Resolution::Builtin(_) => Response::new(ProxyBody::empty()),
    };
    Ok(response)
}

fn trigger(name: &str, url: Option<&str>, prefix: Option<&str>) -> HTTPTrigger {
    HTTPTrigger {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("default".into()),
            creation_timestamp: Some(Time(k8s_openapi::jiff::Timestamp::from_second(1).unwrap())),
            ..ObjectMeta::default()
        },
        spec: HTTPTriggerSpec {
            relativeurl: url.map(Into::into),
            prefix: prefix.map(Into::into),
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some("hello".into()),
                functionweights: None,
            },
            ..HTTPTriggerSpec::default()
        },
        status: None,
    }
}

fn hello() -> Function {
    Function {
        metadata: ObjectMeta {
            name: Some("hello".into()),
            namespace: Some("default".into()),
            uid: Some("uid-hello".into()),
            resource_version: Some("12".into()),
            ..ObjectMeta::default()
        },
        spec: rivulet_api::FunctionSpec::default(),
        status: None,
    }
}

struct Setup {
    router_addr: SocketAddr,
    router: Arc<Router>,
    backend: Arc<Backend>,
}

/// A test router forwarding every function to `pod`; `backend` is what listens there, if ours.
async fn start(pod: Authority, timeout: Duration, backend: Arc<Backend>) -> Setup {
    start_with(pod, timeout, backend, ProxyConfig::default()).await
}

async fn start_with(
    pod: Authority,
    timeout: Duration,
    backend: Arc<Backend>,
    config: ProxyConfig,
) -> Setup {
    let table = RouteTable::build(
        &[
            trigger("hello", Some("/hello"), None),
            trigger("users", Some("/users/{userID}"), None),
            trigger("p", None, Some("/p")),
        ],
        &[hello()],
        RouteTableOptions::default(),
    );
    assert!(table.issues().is_empty(), "{:?}", table.issues());
    let router = Arc::new(Router {
        table,
        proxy: ProxyClient::new(config),
        pod,
        timeout,
        in_flight: Arc::new(AtomicUsize::new(0)),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router_addr = listener.local_addr().unwrap();
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
    Setup {
        router_addr,
        router,
        backend,
    }
}

async fn with_backend(timeout: Duration) -> Setup {
    let (addr, backend) = start_backend().await;
    start(addr.to_string().parse().unwrap(), timeout, backend).await
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

async fn send(
    setup: &Setup,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> (StatusCode, hyper::http::HeaderMap, String) {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("http://{}{target}", setup.router_addr));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = client()
        .request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

async fn get(setup: &Setup, target: &str) -> (StatusCode, hyper::http::HeaderMap, String) {
    send(setup, "GET", target, &[], Bytes::new()).await
}

async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn line<'a>(body: &'a str, name: &str) -> Option<&'a str> {
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(": ")))
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn exact_trigger_forwards_to_slash_with_fission_headers() {
    let s = with_backend(Duration::from_secs(5)).await;
    let (status, headers, body) = send(
        &s,
        "GET",
        "/hello?name=bob",
        &[
            ("connection", "x-secret"),
            ("x-secret", "1"),
            ("x-fission-function-name", "spoofed"),
        ],
        Bytes::new(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(line(&body, "target"), Some("/?name=bob"), "{body}");
    assert_eq!(line(&body, "x-fission-full-url"), Some("/hello?name=bob"));
    assert_eq!(line(&body, "x-fission-function-name"), Some("hello"));
    assert_eq!(line(&body, "x-fission-function-namespace"), Some("default"));
    assert_eq!(line(&body, "x-fission-function-uid"), Some("uid-hello"));
    assert_eq!(
        line(&body, "x-fission-function-resourceversion"),
        Some("12")
    );
    assert_eq!(line(&body, "x-forwarded-for"), Some("127.0.0.1"));
    let router_host = s.router_addr.to_string();
    assert_eq!(line(&body, "x-forwarded-host"), Some(router_host.as_str()));
    assert_eq!(
        line(&body, "forwarded"),
        Some(format!("host={router_host};").as_str())
    );
    assert_eq!(
        line(&body, "host"),
        Some(s.router.pod.as_str()),
        "Host is the pod address"
    );
    assert_eq!(
        line(&body, "x-secret"),
        None,
        "headers named by Connection are dropped"
    );
    assert_eq!(
        body.lines()
            .filter(|l| l.starts_with("x-fission-function-name:"))
            .count(),
        1
    );
    assert_eq!(headers["x-custom"], "1");
    assert!(
        headers.get("proxy-authenticate").is_none(),
        "hop-by-hop response headers are dropped"
    );
    eventually("guard released", || {
        s.router.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn params_and_prefix_paths_reach_the_function() {
    let s = with_backend(Duration::from_secs(5)).await;
    let (_, _, body) = get(&s, "/users/42").await;
    assert_eq!(line(&body, "target"), Some("/"));
    assert_eq!(line(&body, "x-fission-params-userid"), Some("42"));
    let (_, _, body) = get(&s, "/p/echo/a%20b?x=1").await;
    assert_eq!(line(&body, "target"), Some("/echo/a%20b?x=1"));
}

#[tokio::test]
async fn router_answers_404_405_and_redirects() {
    let s = with_backend(Duration::from_secs(5)).await;
    let (status, _, body) = get(&s, "/nope").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::NOT_FOUND, "404 page not found\n")
    );
    let (status, _, _) = get(&s, "//hello").await;
    assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
    let (status, headers, _) = send(&s, "POST", "/", &[], Bytes::new()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers["allow"], "GET");
}

#[tokio::test]
async fn request_and_response_bodies_stream() {
    let s = with_backend(Duration::from_secs(5)).await;
    let upload = Bytes::from(vec![7u8; 3 << 20]);
    let (status, _, body) = send(&s, "POST", "/p/count", &[], upload).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "3145728"));
    let (status, _, body) = get(&s, "/p/big").await;
    assert_eq!((status, body.len()), (StatusCode::OK, 8 << 20));

    // The first chunk arrives before the backend has produced the second: nothing is buffered.
    let req = Request::get(format!("http://{}/p/stream", s.router_addr))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let mut body = client().request(req).await.unwrap().into_body();
    let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(first, "first\n");
    assert_eq!(
        s.router.in_flight.load(Ordering::SeqCst),
        1,
        "the slot is held while streaming"
    );
    s.backend.release.notify_one();
    let second = body.frame().await.unwrap().unwrap().into_data().unwrap();
    assert_eq!(second, "second\n");
    assert!(body.frame().await.is_none());
    eventually("guard released at end of body", || {
        s.router.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn request_bodies_above_the_limit_get_413() {
    let (addr, backend) = start_backend().await;
    let config = ProxyConfig {
        max_request_body: 1024,
        ..ProxyConfig::default()
    };
    let s = start_with(
        addr.to_string().parse().unwrap(),
        Duration::from_secs(5),
        backend,
        config,
    )
    .await;
    // Declared too large: refused before the pod is contacted.
    let (status, _, body) = send(&s, "POST", "/p/count", &[], Bytes::from(vec![1u8; 1025])).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(body.contains("limit of 1024 bytes"), "{body}");
    assert_eq!(s.backend.connections.load(Ordering::SeqCst), 0);
    // Exactly the limit passes.
    let (status, _, body) = send(&s, "POST", "/p/count", &[], Bytes::from(vec![1u8; 1024])).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1024"));
    // Chunked (no Content-Length): cut once it passes the limit.
    let (tx, rx) = mpsc::channel(8);
    for _ in 0..4 {
        tx.send(Bytes::from(vec![2u8; 512])).await.unwrap();
    }
    drop(tx);
    let chunked: Client<HttpConnector, ChannelBody> =
        Client::builder(TokioExecutor::new()).build(HttpConnector::new());
    let response = chunked
        .request(
            Request::post(format!("http://{}/p/count", s.router_addr))
                .body(ChannelBody(rx))
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let text = response.into_body().collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&text).contains("limit of 1024 bytes"));
}

#[tokio::test]
async fn function_timeout_gives_504_with_a_clear_body() {
    let s = with_backend(Duration::from_millis(200)).await;
    let (status, _, body) = get(&s, "/p/slow").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        body,
        "function did not respond within 0.2s (functionTimeout)\n"
    );
    eventually("guard released", || {
        s.router.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn unreachable_pod_gives_502_with_the_cause() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let s = start(
        closed.to_string().parse().unwrap(),
        Duration::from_secs(5),
        Arc::default(),
    )
    .await;
    let (status, _, body) = get(&s, "/hello").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body.starts_with(&format!("error connecting to function at {closed}: ")),
        "{body}"
    );
    assert!(body.to_lowercase().contains("refused"), "{body}");
    assert_eq!(s.router.in_flight.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_pod_that_hangs_up_gives_502() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    let s = start(
        addr.to_string().parse().unwrap(),
        Duration::from_secs(5),
        Arc::default(),
    )
    .await;
    let (status, _, body) = get(&s, "/hello").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(
        body.starts_with("error sending request to function: "),
        "{body}"
    );
}

#[tokio::test]
async fn client_disconnect_releases_the_guard() {
    let s = with_backend(Duration::from_secs(30)).await;
    let mut stream = TcpStream::connect(s.router_addr).await.unwrap();
    stream
        .write_all(b"GET /p/slow HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    eventually("request in flight", || {
        s.router.in_flight.load(Ordering::SeqCst) == 1
    })
    .await;
    drop(stream);
    eventually("guard released after disconnect", || {
        s.router.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn client_disconnect_mid_body_releases_the_guard() {
    let s = with_backend(Duration::from_secs(30)).await;
    let mut stream = TcpStream::connect(s.router_addr).await.unwrap();
    stream
        .write_all(b"GET /p/stream HTTP/1.1\r\nhost: test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let mut seen = String::new();
    while !seen.contains("first") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0);
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert_eq!(s.router.in_flight.load(Ordering::SeqCst), 1);
    drop(stream);
    eventually("guard released after disconnect", || {
        s.router.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn upstream_connections_are_kept_alive() {
    let s = with_backend(Duration::from_secs(5)).await;
    for _ in 0..20 {
        let (status, _, _) = get(&s, "/hello").await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        s.backend.connections.load(Ordering::SeqCst),
        1,
        "one pooled connection to the pod"
    );
}

#[test]
fn proxy_error_statuses() {
    assert_eq!(
        ProxyError::Upstream("x".into()).status(),
        StatusCode::BAD_GATEWAY
    );
}

fn assert_send<T: Send>(_: &T) {}
fn assert_send_sync<T: Send + Sync>() {}

#[tokio::test]
async fn router_types_are_usable_from_hyper_services() {
    assert_send_sync::<RouteTable>();
    assert_send_sync::<ProxyClient>();
    assert_send_sync::<ProxyBody<Guard>>();
    let proxy: ProxyClient<Full<Bytes>> = ProxyClient::new(ProxyConfig::default());
    let pod: Authority = "127.0.0.1:1".parse().unwrap();
    let forwarding = proxy.forward(
        Request::new(Full::new(Bytes::new())),
        &pod,
        "/".to_owned(),
        Duration::from_secs(1),
        (),
    );
    assert_send(&forwarding);
}
