//! The HTTP API on port 8000 (reference/fission.md §5.1). Exact paths; each handler checks its
//! method and answers 405 otherwise, as Fission's ServeMux handlers do.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::error::FetcherError;
use crate::fetch::Fetcher;
use crate::source::ClusterSource;
use rivulet_api::specialize::{FetchRequest, FunctionSpecializeRequest};

/// Largest request body accepted (a specialize request carries one ObjectMeta).
const MAX_BODY_BYTES: usize = 4 << 20;

/// A bound fetcher, not yet serving. `bind` then `serve`, so callers (and tests on port 0) know
/// the address before requests arrive.
#[derive(Debug)]
pub struct Server<S> {
    listener: TcpListener,
    fetcher: Arc<Fetcher<S>>,
    ready: Arc<AtomicBool>,
    startup: Option<FunctionSpecializeRequest>,
    token: Option<Arc<[u8]>>,
}

impl<S: ClusterSource> Server<S> {
    pub async fn bind(config: Config, source: S) -> Result<Self, FetcherError> {
        let fetcher = Arc::new(Fetcher::new(&config, source)?);
        if config.token.is_none() {
            tracing::warn!(
                "no --token-file: any process that reaches this port may specialize the pod"
            );
        }
        let token = config.token.as_deref().map(Arc::from);
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| FetcherError::Bind {
                    addr: config.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            fetcher,
            ready: Arc::new(AtomicBool::new(config.specialize_on_startup.is_none())),
            startup: config.specialize_on_startup,
            token,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn fetcher(&self) -> Arc<Fetcher<S>> {
        self.fetcher.clone()
    }

    /// Serves until `shutdown` resolves. With specialize-on-startup, the specialization runs next
    /// to the server; readiness turns 200 after it succeeds, and a failure ends `serve` with the
    /// error, so the container restarts (Fission logs it as fatal).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) -> Result<(), FetcherError> {
        let Self {
            listener,
            fetcher,
            ready,
            startup,
            token,
        } = self;
        let startup = async {
            match startup {
                Some(request) => {
                    fetcher
                        .specialize(&request)
                        .await
                        .map_err(|e| FetcherError::StartupSpecialization(Box::new(e)))?;
                    ready.store(true, Ordering::SeqCst);
                    tracing::info!("specialized at startup; ready");
                    std::future::pending::<Result<(), FetcherError>>().await
                }
                None => std::future::pending().await,
            }
        };
        let accept = async {
            loop {
                let (stream, peer) = match listener.accept().await {
                    Ok(conn) => conn,
                    Err(err) => {
                        // Typically out of file descriptors: pause instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (fetcher, ready, token) = (fetcher.clone(), ready.clone(), token.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let (fetcher, ready, token) =
                            (fetcher.clone(), ready.clone(), token.clone());
                        async move {
                            Ok::<_, Infallible>(
                                route(&fetcher, &ready, token.as_deref(), request).await,
                            )
                        }
                    });
                    if let Err(err) = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await
                    {
                        tracing::debug!(%peer, error = %err, "connection ended with an error");
                    }
                });
            }
        };
        tokio::select! {
            result = startup => result,
            () = accept => Ok(()),
            () = shutdown => Ok(()),
        }
    }
}

async fn route<S: ClusterSource>(
    fetcher: &Fetcher<S>,
    ready: &AtomicBool,
    token: Option<&[u8]>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let path = request.uri().path().to_owned();
    // Every route that writes code into the pod or loads it into the runtime is the router's.
    if matches!(path.as_str(), "/specialize" | "/fetch" | "/upload")
        && let Err(err) = authorize(token, &request)
    {
        return error_response(&path, &err);
    }
    match path.as_str() {
        "/specialize" => {
            if request.method() != Method::POST {
                return method_not_allowed(request.method());
            }
            match read_json::<FunctionSpecializeRequest>(request).await {
                Ok(body) => outcome(&path, fetcher.specialize(&body).await),
                Err(err) => error_response(&path, &err),
            }
        }
        "/fetch" => {
            if request.method() != Method::POST {
                return method_not_allowed(request.method());
            }
            match read_json::<FetchRequest>(request).await {
                Ok(body) => outcome(&path, fetcher.fetch(&body).await.map(|_| ())),
                Err(err) => error_response(&path, &err),
            }
        }
        "/upload" => text(
            StatusCode::NOT_IMPLEMENTED,
            "upload (the builder flow) is not supported by Rivulet's fetcher yet\n",
        ),
        "/version" => {
            let body = serde_json::json!({
                "Name": "rivulet-fetcher",
                "Version": env!("CARGO_PKG_VERSION"),
            });
            let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json; charset=utf-8"),
            );
            response
        }
        "/wsevent/start" | "/wsevent/end" => {
            // Fission turns these into pod Events; Rivulet only logs them for now.
            tracing::info!(event = %path, "websocket activity reported by the runtime");
            text(StatusCode::OK, "")
        }
        "/readiness-healthz" => {
            if ready.load(Ordering::SeqCst) {
                text(StatusCode::OK, "")
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "not specialized yet\n")
            }
        }
        "/healthz" => text(StatusCode::OK, ""),
        _ => text(StatusCode::NOT_FOUND, "404 page not found\n"),
    }
}

/// Checks `Authorization: Bearer <token>` against the configured token in constant time.
fn authorize<B>(token: Option<&[u8]>, request: &Request<B>) -> Result<(), FetcherError> {
    let Some(expected) = token else {
        return Ok(());
    };
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Err(FetcherError::Unauthorized("no Authorization header"));
    };
    let Some(presented) = value.as_bytes().strip_prefix(b"Bearer ") else {
        return Err(FetcherError::Unauthorized(
            "Authorization is not a Bearer token",
        ));
    };
    if bool::from(presented.ct_eq(expected)) {
        Ok(())
    } else {
        Err(FetcherError::Unauthorized("wrong token"))
    }
}

async fn read_json<T: DeserializeOwned>(request: Request<Incoming>) -> Result<T, FetcherError> {
    let body = Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| FetcherError::BadRequest(format!("cannot read body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| FetcherError::BadRequest(e.to_string()))
}

fn outcome(path: &str, result: Result<(), FetcherError>) -> Response<Full<Bytes>> {
    match result {
        Ok(()) => text(StatusCode::OK, ""),
        Err(err) => error_response(path, &err),
    }
}

fn error_response(path: &str, err: &FetcherError) -> Response<Full<Bytes>> {
    tracing::warn!(%path, status = %err.status(), error = %err, "request failed");
    text(err.status(), &format!("{err}\n"))
}

fn method_not_allowed(method: &Method) -> Response<Full<Bytes>> {
    text(
        StatusCode::METHOD_NOT_ALLOWED,
        &format!("only POST is supported on this endpoint, {method} received\n"),
    )
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
