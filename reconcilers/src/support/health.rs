//! The controller's HTTP endpoints (hyper 1, no framework):
//!
//! - `GET /healthz`: 200 while the process serves HTTP (liveness).
//! - `GET /readyz`: 200 when the readiness check passes, else 503 with the reason. What "ready"
//!   means is the caller's choice; `rivulet controller` uses "the leader election loop reached the
//!   API server within the last lease duration" (standbys are ready too), or, without leader
//!   election, "the API server answered at startup".
//! - `GET /metrics`: the [`Metrics`] registry in the OpenMetrics text format.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tracing::debug;

use super::metrics::{self, Metrics};

/// A readiness check: `Ok` when ready, else why not.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

/// What the endpoints report.
#[derive(Clone)]
pub struct Health {
    /// Served on `/metrics`.
    pub metrics: Metrics,
    /// Evaluated on every `/readyz`.
    pub ready: ReadinessCheck,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Health").finish_non_exhaustive()
    }
}

/// One response: status, content type, body.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Body.
    pub body: String,
}

const TEXT: &str = "text/plain; charset=utf-8";

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    Reply {
        status,
        content_type: TEXT,
        body: body.into(),
    }
}

/// Routes one request (pure apart from reading the metrics and the readiness check).
pub fn respond(method: &Method, path: &str, health: &Health) -> Reply {
    if method != Method::GET && method != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    }
    match path {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => match (health.ready)() {
            Ok(()) => text(StatusCode::OK, "ok\n"),
            Err(why) => text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("not ready: {why}\n"),
            ),
        },
        "/metrics" => Reply {
            status: StatusCode::OK,
            content_type: metrics::CONTENT_TYPE,
            body: health.metrics.encode(),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /healthz, /readyz or /metrics\n",
        ),
    }
}

/// A bound, not yet serving, health server.
#[derive(Debug)]
pub struct HealthServer {
    listener: TcpListener,
}

impl HealthServer {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(addr).await?,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves; then stops accepting (open connections finish on their
    /// own tasks).
    pub async fn serve(self, health: Health, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                () = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    debug!("health server: accept: {e}");
                    continue;
                }
            };
            let health = health.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request: Request<hyper::body::Incoming>| {
                    let reply = respond(request.method(), request.uri().path(), &health);
                    let head = request.method() == Method::HEAD;
                    async move { Ok::<_, std::convert::Infallible>(into_response(reply, head)) }
                });
                if let Err(e) = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await
                {
                    debug!("health server: connection: {e}");
                }
            });
        }
    }
}

fn into_response(reply: Reply, head: bool) -> Response<Full<Bytes>> {
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(reply.body)
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = reply.status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(ready: Result<(), String>) -> Health {
        Health {
            metrics: Metrics::new(),
            ready: Arc::new(move || ready.clone()),
        }
    }

    #[test]
    fn liveness_is_unconditional() {
        let reply = respond(&Method::GET, "/healthz", &health(Err("no".into())));
        assert_eq!(reply.status, StatusCode::OK);
    }

    #[test]
    fn readiness_follows_the_check_and_says_why() {
        assert_eq!(
            respond(&Method::GET, "/readyz", &health(Ok(()))).status,
            StatusCode::OK
        );
        let reply = respond(
            &Method::GET,
            "/readyz",
            &health(Err("lease unreachable".into())),
        );
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.body, "not ready: lease unreachable\n");
    }

    #[test]
    fn metrics_are_openmetrics_text() {
        let reply = respond(&Method::GET, "/metrics", &health(Ok(())));
        assert_eq!(reply.content_type, metrics::CONTENT_TYPE);
        assert!(reply.body.contains("# TYPE rivulet_leader gauge"));
    }

    #[test]
    fn other_paths_and_methods_are_refused() {
        let h = health(Ok(()));
        assert_eq!(respond(&Method::GET, "/", &h).status, StatusCode::NOT_FOUND);
        assert_eq!(
            respond(&Method::POST, "/healthz", &h).status,
            StatusCode::METHOD_NOT_ALLOWED
        );
    }
}
