//! The reverse-proxy core: forwards a rewritten request to a function pod over a pooled
//! HTTP/1.1 keep-alive client and streams both bodies.
//!
//! What the caller gives: the request (headers already rewritten by
//! [`headers::rewrite_request`](rivulet_routing::headers::rewrite_request)), the pod address, the upstream
//! path, the function's timeout, and a guard (an admission [`Lease`](crate::admission::Lease) or
//! anything else) that must live exactly as long as the exchange. The guard is dropped when the
//! response body ends, when the client goes away (hyper drops the response body or the request
//! future), or when forwarding fails — in that last case it is handed back with the error so the
//! caller can evict a dead pod first.
//!
//! Timeouts: `functionTimeout` bounds the time until the function's response headers arrive
//! (504 after that). A body that is already streaming is not cut.
//!
//! Request bodies are bounded by [`ProxyConfig::max_request_body`] (Fission's router has no
//! limit; a client could stream any amount into a pod): a `Content-Length` above it is refused
//! with 413 before the pod is contacted, and a chunked body is cut when it passes the limit,
//! also answered 413.

use std::error::Error as StdError;
use std::fmt::{self, Write as _};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{LengthLimitError, Limited};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::http::header::CONTENT_LENGTH;
use hyper::http::header::{ALLOW, CONTENT_TYPE, HOST, LOCATION, RETRY_AFTER};
use hyper::http::uri::{Authority, Scheme};
use hyper::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::admission::AdmissionError;
use rivulet_routing::headers::remove_hop_by_hop;

/// Settings of the pooled client.
#[derive(Debug, Clone, Copy)]
pub struct ProxyConfig {
    /// Idle keep-alive connections are closed after this. Below the runtimes' own keep-alive
    /// (60–65 s) so the router never reuses a connection the pod is closing.
    pub pool_idle_timeout: Duration,
    /// Idle connections kept per pod.
    pub pool_max_idle_per_host: usize,
    /// TCP connect timeout to a pod.
    pub connect_timeout: Duration,
    /// Largest request body forwarded to a function, in bytes (413 above it).
    pub max_request_body: u64,
}

/// Default [`ProxyConfig::max_request_body`]: 16 MiB, above the payloads of Fission's own
/// benchmarks (1 MB) and examples, below what a 2-core machine's pods should buffer.
pub const DEFAULT_MAX_REQUEST_BODY: u64 = 16 * 1024 * 1024;

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            pool_idle_timeout: Duration::from_secs(30),
            pool_max_idle_per_host: 256,
            connect_timeout: Duration::from_secs(5),
            max_request_body: DEFAULT_MAX_REQUEST_BODY,
        }
    }
}

/// Why a request could not be forwarded.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// No response headers within `functionTimeout`: 504.
    #[error("function did not respond within {}s (functionTimeout)", .0.as_secs_f64())]
    Timeout(Duration),
    /// The pod could not be reached (refused, unreachable, connect timeout): 502. The pod is
    /// probably gone.
    #[error("error connecting to function at {address}: {cause}")]
    Connect {
        /// The pod address.
        address: String,
        /// The cause chain.
        cause: String,
    },
    /// The exchange failed after connecting (the pod closed the connection, sent garbage): 502.
    #[error("error sending request to function: {0}")]
    Upstream(String),
    /// The upstream path could not form a URI (cannot happen with paths from the route table).
    #[error("invalid upstream URI: {0}")]
    InvalidUri(String),
    /// The request body is larger than [`ProxyConfig::max_request_body`]: 413.
    #[error("request body exceeds the router's limit of {limit} bytes (--max-request-body)")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: u64,
    },
}

impl ProxyError {
    /// The status the router answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Connect { .. } | Self::Upstream(_) => StatusCode::BAD_GATEWAY,
            Self::InvalidUri(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The response for the client: the status and the message as a text body.
    pub fn to_response<G>(&self) -> Response<ProxyBody<G>> {
        text_response(self.status(), &self.to_string())
    }
}

/// A failed forward: the error, and the guard back (still held) so the caller can act on the
/// pod (for example evict it after a connect error) before releasing it.
#[derive(Debug)]
pub struct ProxyFailure<G> {
    /// What went wrong.
    pub error: ProxyError,
    /// The guard passed to [`ProxyClient::forward`].
    pub guard: G,
}

/// The pooled HTTP/1.1 client to function pods.
pub struct ProxyClient<B = Incoming> {
    client: Client<HttpConnector, Limited<B>>,
    max_request_body: u64,
}

impl<B> fmt::Debug for ProxyClient<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProxyClient").finish_non_exhaustive()
    }
}

impl<B> Clone for ProxyClient<B> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            max_request_body: self.max_request_body,
        }
    }
}

impl<B> ProxyClient<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    /// A client with its own connection pool.
    pub fn new(config: ProxyConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.connect_timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_max_idle_per_host)
            // Go writes canonical header names (`X-Fission-Params-Userid`); so do we.
            .http1_title_case_headers(true)
            .build(connector);
        Self {
            client,
            max_request_body: config.max_request_body,
        }
    }

    /// Refuses a request whose `Content-Length` is above the limit, so callers can answer 413
    /// before claiming or specializing a pod for it.
    pub fn check_declared_length(&self, headers: &HeaderMap) -> Result<(), ProxyError> {
        let declared = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        match declared {
            Some(len) if len > self.max_request_body => Err(ProxyError::BodyTooLarge {
                limit: self.max_request_body,
            }),
            _ => Ok(()),
        }
    }

    /// Forwards `request` to `http://<address><path_and_query>` and returns the function's
    /// response (hop-by-hop headers removed) with a body that streams and holds `guard` until it
    /// ends. `Host` becomes the pod address, as in Fission.
    pub async fn forward<G: Send + Unpin + 'static>(
        &self,
        request: Request<B>,
        address: &Authority,
        path_and_query: String,
        timeout: Duration,
        guard: G,
    ) -> Result<Response<ProxyBody<G>>, ProxyFailure<G>> {
        // The owned path becomes the URI's bytes without a copy.
        let uri = Uri::builder()
            .scheme(Scheme::HTTP)
            .authority(address.clone())
            .path_and_query(path_and_query)
            .build();
        let uri = match uri {
            Ok(uri) => uri,
            Err(e) => {
                return Err(ProxyFailure {
                    error: ProxyError::InvalidUri(e.to_string()),
                    guard,
                });
            }
        };
        let limit = self.max_request_body;
        if let Err(error) = self.check_declared_length(request.headers()) {
            return Err(ProxyFailure { error, guard });
        }
        let mut request =
            request.map(|body| Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX)));
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        if let Ok(host) = HeaderValue::from_str(address.as_str()) {
            request.headers_mut().insert(HOST, host);
        }
        let response = match tokio::time::timeout(timeout, self.client.request(request)).await {
            Ok(Ok(response)) => response,
            Ok(Err(e)) => {
                let error = if exceeded_limit(&e) {
                    ProxyError::BodyTooLarge { limit }
                } else if e.is_connect() {
                    ProxyError::Connect {
                        address: address.to_string(),
                        cause: cause_chain(&e),
                    }
                } else {
                    ProxyError::Upstream(cause_chain(&e))
                };
                return Err(ProxyFailure { error, guard });
            }
            Err(_) => {
                return Err(ProxyFailure {
                    error: ProxyError::Timeout(timeout),
                    guard,
                });
            }
        };
        let (mut parts, body) = response.into_parts();
        remove_hop_by_hop(&mut parts.headers, false);
        Ok(Response::from_parts(
            parts,
            ProxyBody::upstream(body, guard),
        ))
    }
}

/// Whether the request body was cut by [`Limited`] (somewhere in hyper's error chain).
fn exceeded_limit(error: &(dyn StdError + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<LengthLimitError>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// The innermost useful messages of an error chain, joined with ": " (hyper-util's own
/// message, "client error (Connect)", says little; the cause says "Connection refused").
fn cause_chain(error: &(dyn StdError + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !out.contains(&message) {
            let _ = write!(out, ": {message}");
        }
        source = e.source();
    }
    out
}

/// Response body of the router: a function's streamed body holding its guard, or a small text
/// the router wrote itself.
pub struct ProxyBody<G> {
    kind: Kind<G>,
}

enum Kind<G> {
    Upstream { body: Incoming, guard: Option<G> },
    Full(Option<Bytes>),
}

impl<G> fmt::Debug for ProxyBody<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Upstream { guard, .. } => f
                .debug_struct("ProxyBody::Upstream")
                .field("guard_held", &guard.is_some())
                .finish_non_exhaustive(),
            Kind::Full(data) => f.debug_tuple("ProxyBody::Full").field(data).finish(),
        }
    }
}

impl<G> ProxyBody<G> {
    fn upstream(body: Incoming, guard: G) -> Self {
        Self {
            kind: Kind::Upstream {
                body,
                guard: Some(guard),
            },
        }
    }

    /// A body of known bytes.
    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        Self {
            kind: Kind::Full((!data.is_empty()).then_some(data)),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self {
            kind: Kind::Full(None),
        }
    }
}

impl<G: Unpin> Body for ProxyBody<G> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Upstream { body, guard } => {
                let frame = Pin::new(body).poll_frame(cx);
                if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
                    // The exchange is over: give the pod's slot back now, not when hyper gets
                    // around to dropping the body.
                    guard.take();
                }
                frame
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Upstream { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Upstream { body, .. } => body.size_hint(),
        }
    }
}

/// A `text/plain` answer from the router itself; the body ends with a newline.
pub fn text_response<G>(status: StatusCode, message: &str) -> Response<ProxyBody<G>> {
    let mut body = String::with_capacity(message.len() + 1);
    body.push_str(message);
    if !body.ends_with('\n') {
        body.push('\n');
    }
    let mut response = Response::new(ProxyBody::full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// 404 as Go's `http.NotFound` writes it (what gorilla/mux answers).
pub fn not_found<G>() -> Response<ProxyBody<G>> {
    let mut response = text_response(StatusCode::NOT_FOUND, "404 page not found");
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response.headers_mut().insert(
        rivulet_routing::headers::NO_ROUTE,
        HeaderValue::from_static("1"),
    );
    response
}

/// 401 on the internal listener for a request without the installation's bearer token.
pub fn unauthorized<G>() -> Response<ProxyBody<G>> {
    let mut response = text_response(
        StatusCode::UNAUTHORIZED,
        "the router's internal listener calls functions only for Rivulet's controller: send \
         Authorization: Bearer <router internal token> (docs/router.md, \"Internal listener\")",
    );
    response
        .headers_mut()
        .insert("www-authenticate", HeaderValue::from_static("Bearer"));
    response
}

/// 405 with `Allow` and an empty body (mux writes no body; `Allow` is Rivulet's addition, which
/// RFC 9110 requires).
pub fn method_not_allowed<G>(allow: &str) -> Response<ProxyBody<G>> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    if let Ok(allow) = HeaderValue::from_str(allow) {
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}

/// 301 to the cleaned path (mux's `cleanPath` redirect).
pub fn redirect<G>(location: &str) -> Response<ProxyBody<G>> {
    let mut response = Response::new(ProxyBody::empty());
    *response.status_mut() = StatusCode::MOVED_PERMANENTLY;
    if let Ok(location) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, location);
    }
    response
}

/// 400 for a malformed request path (Go's server answers the same).
pub fn bad_request<G>() -> Response<ProxyBody<G>> {
    text_response(StatusCode::BAD_REQUEST, "400 Bad Request")
}

/// The answer to a request that got no pod: 429 with `Retry-After`, or 502/503/504 with the
/// cause in the body.
pub fn admission_error<G>(error: &AdmissionError) -> Response<ProxyBody<G>> {
    let mut response = text_response(error.status(), &error.to_string());
    if let Some(retry_after) = error.retry_after() {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::SpecializeError;
    use http_body_util::BodyExt;

    async fn text(response: Response<ProxyBody<()>>) -> String {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn router_answers_look_like_fission() {
        let r = not_found::<()>();
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()["x-content-type-options"], "nosniff");
        assert_eq!(text(r).await, "404 page not found\n");

        let r = method_not_allowed::<()>("GET, POST");
        assert_eq!(r.status(), 405);
        assert_eq!(r.headers()[ALLOW], "GET, POST");
        assert!(r.body().is_end_stream());

        let r = redirect::<()>("/hello?x=1");
        assert_eq!(r.status(), 301);
        assert_eq!(r.headers()[LOCATION], "/hello?x=1");

        assert_eq!(bad_request::<()>().status(), 400);
    }

    #[tokio::test]
    async fn admission_errors_carry_status_retry_after_and_cause() {
        let r = admission_error::<()>(&AdmissionError::TooManyRequests {
            concurrency: 5,
            queued: 0,
            retry_after: Duration::from_secs(1),
        });
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()[RETRY_AFTER], "1");
        assert!(text(r).await.contains("limit of 5 pods"));

        let r = admission_error::<()>(&AdmissionError::Specialization(SpecializeError::Failed(
            "ModuleNotFoundError: No module named 'helo'".into(),
        )));
        assert_eq!(r.status(), 502);
        assert!(r.headers().get(RETRY_AFTER).is_none());
        assert!(text(r).await.contains("No module named 'helo'"));
    }

    #[tokio::test]
    async fn proxy_errors_explain_themselves() {
        let e = ProxyError::Timeout(Duration::from_mins(1));
        assert_eq!(e.status(), 504);
        assert_eq!(
            text(e.to_response()).await,
            "function did not respond within 60s (functionTimeout)\n"
        );
        let e = ProxyError::Connect {
            address: "10.0.0.1:8888".into(),
            cause: "Connection refused".into(),
        };
        assert_eq!(e.status(), 502);
        assert_eq!(
            e.to_string(),
            "error connecting to function at 10.0.0.1:8888: Connection refused"
        );
    }

    #[test]
    fn full_bodies_report_their_size() {
        let b = ProxyBody::<()>::full("abc");
        assert_eq!(b.size_hint().exact(), Some(3));
        assert!(!b.is_end_stream());
        assert!(ProxyBody::<()>::full("").is_end_stream());
    }
}
