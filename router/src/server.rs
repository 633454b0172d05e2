//! The HTTP side: listeners, the request handler, graceful shutdown.
//!
//! The accept loops ([`crate::workers::accept`]) hand connections to the workers, which serve
//! each with [`serve_connection`]. Every connection watches the shutdown flag: when it
//! flips, hyper finishes the request in flight (including its streamed body) and closes the
//! connection; the accept loops stop first.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::http::uri::Authority;
use hyper::http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use rivulet_api::{ExecutorType, Function};
use subtle::ConstantTimeEq as _;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::activity::{Activity, InFlight};
use crate::admission::Lease;
use crate::admissions::Admissions;
use crate::deploy::DeployIndex;
use crate::metrics::Metrics;
use crate::poolmgr::PoolSpecializer;
use crate::proxy::{self, ProxyBody, ProxyClient, ProxyError};
use rivulet_routing::headers::{self, Rewrite};
use rivulet_routing::rng::ThreadRng;
use rivulet_routing::routes::{
    Builtin, FunctionTarget, Listener, RequestInfo, Resolution, RouteTable,
};

/// Extra time an admission wait gets beyond the specialization timeout, so the specialization's
/// own timeout (with its message) answers first.
const WAIT_MARGIN: Duration = Duration::from_secs(5);

/// What a proxied response body holds until it ends.
#[derive(Debug)]
pub enum Guard {
    /// A poolmgr in-flight slot and the pod's activity mark.
    Pool(Lease<PoolSpecializer>, InFlight),
    /// Nothing to release (newdeploy/container).
    None,
}

/// Which socket a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// Triggers and the router's own endpoints.
    Public,
    /// `/fission-function/...`, `/router-healthz`, and `/metrics` unless it has its own port.
    Internal,
    /// `/metrics` only.
    Metrics,
}

/// What the handler needs.
#[derive(Debug)]
pub struct State {
    /// The current route table (swapped whole on every rebuild).
    pub table: RwLock<Arc<RouteTable>>,
    /// poolmgr admissions.
    pub admissions: Admissions,
    /// newdeploy/container endpoints.
    pub deploy: DeployIndex,
    /// Activity publisher.
    pub activity: Activity,
    /// Metrics.
    pub metrics: Metrics,
    /// `/metrics` is served on the internal listener.
    pub metrics_on_internal: bool,
    /// The bearer token the internal listener requires for function calls (derived from the
    /// fetcher key); `None` without a key.
    pub internal_token: Option<String>,
}

impl State {
    fn table(&self) -> Arc<RouteTable> {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Swaps in a new table.
    pub fn set_table(&self, table: RouteTable) {
        *self.table.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(table);
    }
}

type Reply = Response<ProxyBody<Guard>>;

/// Serves one client connection until it closes, or until `stop` becomes true and the request
/// in flight (with its streamed body) has finished.
pub async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    port: Port,
    state: Arc<State>,
    proxy: ProxyClient,
    mut stop: watch::Receiver<bool>,
) {
    let service =
        service_fn(move |request| handle(request, state.clone(), proxy.clone(), port, peer));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// Whether a request on the internal listener carries its token (always, without a key).
fn internal_caller(state: &State, request: &Request<Incoming>) -> bool {
    let Some(token) = &state.internal_token else {
        return true;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    bool::from(presented.ct_eq(token.as_bytes()))
}

async fn handle(
    request: Request<Incoming>,
    state: Arc<State>,
    proxy: ProxyClient,
    port: Port,
    peer: SocketAddr,
) -> Result<Reply, Infallible> {
    let path = request.uri().path();
    match port {
        Port::Metrics => return Ok(metrics_or_404(&state, path)),
        Port::Internal if path == "/metrics" && state.metrics_on_internal => {
            return Ok(metrics_or_404(&state, path));
        }
        Port::Internal if path == "/router-healthz" => return Ok(ok()),
        Port::Internal if !internal_caller(&state, &request) => return Ok(proxy::unauthorized()),
        Port::Internal | Port::Public => {}
    }
    let listener = if port == Port::Public {
        Listener::Public
    } else {
        Listener::Internal
    };
    let (mut parts, body) = request.into_parts();
    let table = state.table();
    let resolution = table.resolve(listener, &RequestInfo::from_parts(&parts), &mut ThreadRng);
    let matched = match resolution {
        Resolution::Function(matched) => matched,
        Resolution::Builtin(Builtin::Home | Builtin::Healthz) => return Ok(ok()),
        Resolution::Builtin(Builtin::Version) => return Ok(version()),
        Resolution::Redirect { location } => return Ok(proxy::redirect(&location)),
        Resolution::MethodNotAllowed { allow } => return Ok(proxy::method_not_allowed(&allow)),
        Resolution::NotFound => return Ok(proxy::not_found()),
        Resolution::BadRequest => return Ok(proxy::bad_request()),
    };
    if let Err(too_large) = proxy.check_declared_length(&parts.headers) {
        return Ok(too_large.to_response());
    }
    let started = Instant::now();
    let target = matched.function.clone();
    headers::rewrite_request(
        &mut parts,
        &Rewrite {
            function: &target.headers,
            params: &matched.params,
            client: Some(peer.ip()),
        },
    );
    let upstream = matched.upstream_path_and_query;
    let request = Request::from_parts(parts, body);
    let function = &target.function;
    let reply = if matches!(
        function.spec.executor_type(),
        Some(ExecutorType::Newdeploy | ExecutorType::Container)
    ) {
        deployed(&state, &proxy, &target, request, upstream).await
    } else {
        // poolmgr, and anything the function reconciler reports as invalid.
        pooled(&state, &proxy, function, request, upstream).await
    };
    state.metrics.request(
        &target.key.namespace,
        &target.key.name,
        reply.status().as_u16(),
        started.elapsed(),
    );
    Ok(reply)
}

/// newdeploy/container: the next ready pod of the function's Deployment.
async fn deployed(
    state: &State,
    proxy: &ProxyClient,
    target: &FunctionTarget,
    request: Request<Incoming>,
    upstream: String,
) -> Reply {
    let function = &target.function;
    let timeout = rivulet_api::defaults::function_timeout(function.spec.function_timeout);
    match state.deploy.pick(function) {
        Some(address) => forward(proxy, request, address, upstream, timeout, Guard::None).await,
        None => proxy::text_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!(
                "no ready pod for function {} (executorType {})",
                target.key,
                function
                    .spec
                    .invoke_strategy
                    .execution_strategy
                    .executor_type
            ),
        ),
    }
}

/// poolmgr: a slot on a specialized pod, specializing one if admission says so.
async fn pooled(
    state: &State,
    proxy: &ProxyClient,
    function: &Arc<Function>,
    request: Request<Incoming>,
    upstream: String,
) -> Reply {
    let strategy = &function.spec.invoke_strategy.execution_strategy;
    let timeout = rivulet_api::defaults::function_timeout(function.spec.function_timeout);
    let specialization =
        rivulet_api::defaults::specialization_timeout(strategy.specialization_timeout);
    let admission = state.admissions.admission(function);
    match admission
        .acquire(Instant::now() + specialization + WAIT_MARGIN)
        .await
    {
        Err(error) => proxy::admission_error(&error),
        Ok(lease) => {
            let pod = lease.pod().clone();
            let in_flight = state.activity.begin(&pod);
            let guard = Guard::Pool(lease, in_flight);
            forward(proxy, request, pod.address, upstream, timeout, guard).await
        }
    }
}

async fn forward(
    proxy: &ProxyClient,
    request: Request<Incoming>,
    address: SocketAddr,
    upstream: String,
    timeout: Duration,
    guard: Guard,
) -> Reply {
    let Ok(authority) = Authority::try_from(address.to_string()) else {
        return proxy::text_response(StatusCode::INTERNAL_SERVER_ERROR, "invalid pod address");
    };
    match proxy
        .forward(request, &authority, upstream, timeout, guard)
        .await
    {
        Ok(response) => response,
        Err(mut failure) => {
            // A pod that refuses connections is gone or broken: the next request gets another.
            if matches!(failure.error, ProxyError::Connect { .. })
                && let Guard::Pool(lease, _) = &mut failure.guard
            {
                lease.evict();
            }
            failure.error.to_response()
        }
    }
}

fn ok() -> Reply {
    Response::new(ProxyBody::empty())
}

fn version() -> Reply {
    let body = format!(
        "{{\"name\":\"rivulet-router\",\"version\":\"{}\"}}",
        env!("CARGO_PKG_VERSION")
    );
    let mut response = Response::new(ProxyBody::full(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn metrics_or_404(state: &State, path: &str) -> Reply {
    if path != "/metrics" {
        return proxy::not_found();
    }
    let mut response = Response::new(ProxyBody::full(state.metrics.encode()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}
