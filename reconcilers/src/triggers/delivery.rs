//! Delivers trigger invocations (watch events, timer ticks) to functions through the router's
//! internal listener, `POST {router}/fission-function/[<ns>/]<name>`, with bounded retries.
//!
//! Fission's publisher retries only transport errors and counts any HTTP answer as delivered;
//! Rivulet also retries what a retry can fix (5xx, 408, 429 honouring `Retry-After`) and reports
//! other 4xx answers as rejected at once.
//!
//! With an installation key, every request carries `Authorization: Bearer <router internal
//! token>` (`FetcherKey::router_internal_token`): the router's internal listener answers 401
//! without it (docs/router.md "Internal listener").

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How deliveries are retried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// Attempts per invocation, the first included (Fission: 10).
    pub max_attempts: usize,
    /// Delay before the first retry, doubled before each next one (Fission: 500 ms).
    pub initial_backoff: Duration,
    /// Longest delay between two attempts.
    pub max_backoff: Duration,
    /// Time allowed for one attempt, answer included.
    pub request_timeout: Duration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            request_timeout: Duration::from_mins(1),
        }
    }
}

/// One call of a function.
#[derive(Clone, Debug)]
pub struct Invocation {
    /// Method (watch events: POST; timers: the trigger's).
    pub method: Method,
    /// Path and query on the router, starting with `/fission-function/`.
    pub path: String,
    /// Extra headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Body.
    pub body: Bytes,
}

/// What became of an invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The function answered 2xx or 3xx.
    Delivered {
        /// HTTP status.
        status: u16,
        /// Attempts made.
        attempts: usize,
    },
    /// The function (or the router) answered a 4xx that a retry would not change.
    Rejected {
        /// HTTP status.
        status: u16,
        /// Start of the answer's body.
        body: String,
    },
    /// Every attempt failed with a retryable error.
    Exhausted {
        /// Attempts made.
        attempts: usize,
        /// The last error.
        last_error: String,
    },
}

impl Outcome {
    /// Whether the function took the invocation.
    pub fn is_delivered(&self) -> bool {
        matches!(self, Self::Delivered { .. })
    }

    /// Stable label for metrics.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Self::Delivered { .. } => "delivered",
            Self::Rejected { .. } => "rejected",
            Self::Exhausted { .. } => "exhausted",
        }
    }

    /// One line for status fields and Events.
    pub fn message(&self) -> String {
        match self {
            Self::Delivered { status, attempts } => {
                format!("HTTP {status} after {attempts} attempt(s)")
            }
            Self::Rejected { status, body } => format!("HTTP {status}: {body}"),
            Self::Exhausted {
                attempts,
                last_error,
            } => format!("gave up after {attempts} attempt(s): {last_error}"),
        }
    }
}

/// How one answer is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Done.
    Delivered,
    /// Retrying would get the same answer.
    Reject,
    /// Worth another attempt.
    Retry,
}

/// Classifies an answer (pure). The router's own 404 (header
/// [`rivulet_routing::headers::NO_ROUTE`]) means the function is not routed yet, for example
/// when it was applied together with its trigger: that is retried; a function's 404 is not.
pub fn disposition(status: StatusCode, no_route: bool) -> Disposition {
    if status.is_server_error()
        || (status == StatusCode::NOT_FOUND && no_route)
        || status == StatusCode::REQUEST_TIMEOUT
        || status == StatusCode::TOO_MANY_REQUESTS
    {
        Disposition::Retry
    } else if status.is_client_error() {
        Disposition::Reject
    } else {
        Disposition::Delivered
    }
}

/// `Retry-After` in seconds (the router's form; HTTP dates are ignored), capped at `max`.
fn retry_after(value: Option<&HeaderValue>, max: Duration) -> Option<Duration> {
    let seconds: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(max))
}

/// Bytes of an answer's body kept for messages.
const BODY_EXCERPT: usize = 512;

/// The HTTP client of every trigger delivery (one connection pool).
#[derive(Clone, Debug)]
pub struct Deliverer {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
    config: DeliveryConfig,
    /// `Bearer <token>`, marked sensitive (hidden from Debug).
    authorization: Option<HeaderValue>,
}

/// The `Authorization` value presenting the router internal token, marked sensitive so that
/// no Debug output shows it; `None` if the token is not a valid header value.
pub fn bearer(token: &str) -> Option<HeaderValue> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}")).ok()?;
    value.set_sensitive(true);
    Some(value)
}

enum Attempt {
    Done(Outcome),
    Retry {
        error: String,
        after: Option<Duration>,
    },
}

impl Deliverer {
    /// A deliverer to the router internal listener at `router_url` (for example
    /// `http://127.0.0.1:8889`).
    pub fn new(router_url: &str, config: DeliveryConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base: router_url.trim_end_matches('/').to_owned(),
            config,
            authorization: None,
        }
    }

    /// Every request presents `authorization` (from [`bearer`]) to the router.
    #[must_use]
    pub fn with_authorization(mut self, authorization: Option<HeaderValue>) -> Self {
        self.authorization = authorization;
        self
    }

    /// Delivers `invocation`, retrying with exponential back-off; never fails, the outcome says
    /// what happened. Cancel by dropping the future.
    pub async fn deliver(&self, invocation: &Invocation) -> Outcome {
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.config.initial_backoff)
            .with_max_delay(self.config.max_backoff)
            .with_max_times(self.config.max_attempts.saturating_sub(1))
            .with_jitter()
            .build();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (error, after) = match self.attempt(invocation, attempts).await {
                Attempt::Done(outcome) => return outcome,
                Attempt::Retry { error, after } => (error, after),
            };
            let Some(delay) = delays.next() else {
                return Outcome::Exhausted {
                    attempts,
                    last_error: error,
                };
            };
            tracing::debug!(path = %invocation.path, attempts, "delivery failed, retrying: {error}");
            tokio::time::sleep(after.map_or(delay, |a| a.max(delay))).await;
        }
    }

    async fn attempt(&self, invocation: &Invocation, attempts: usize) -> Attempt {
        let mut request = Request::builder()
            .method(invocation.method.clone())
            .uri(format!("{}{}", self.base, invocation.path));
        for (name, value) in &invocation.headers {
            // The router reads the first Authorization: only ours may be there.
            if self.authorization.is_none() || name != header::AUTHORIZATION {
                request = request.header(name, value);
            }
        }
        if let Some(authorization) = &self.authorization {
            request = request.header(header::AUTHORIZATION, authorization);
        }
        let request = match request.body(Full::new(invocation.body.clone())) {
            Ok(request) => request,
            Err(e) => {
                return Attempt::Done(Outcome::Exhausted {
                    attempts,
                    last_error: format!("invalid request: {e}"),
                });
            }
        };
        let answer = tokio::time::timeout(self.config.request_timeout, async {
            let response = self.client.request(request).await?;
            let (parts, body) = response.into_parts();
            // The body is read so the connection can be reused; only an excerpt is kept.
            let bytes = Limited::new(body, 1 << 20)
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((parts, bytes))
        })
        .await;
        let (parts, body) = match answer {
            Err(_) => {
                return Attempt::Retry {
                    error: format!(
                        "no answer within {} s",
                        self.config.request_timeout.as_secs()
                    ),
                    after: None,
                };
            }
            Ok(Err(e)) => {
                return Attempt::Retry {
                    error: transport_error(&e),
                    after: None,
                };
            }
            Ok(Ok(answer)) => answer,
        };
        let excerpt = || {
            let end = body.len().min(BODY_EXCERPT);
            String::from_utf8_lossy(&body[..end]).trim().to_owned()
        };
        let no_route = parts
            .headers
            .contains_key(rivulet_routing::headers::NO_ROUTE);
        match disposition(parts.status, no_route) {
            Disposition::Delivered => Attempt::Done(Outcome::Delivered {
                status: parts.status.as_u16(),
                attempts,
            }),
            Disposition::Reject => Attempt::Done(Outcome::Rejected {
                status: parts.status.as_u16(),
                body: excerpt(),
            }),
            Disposition::Retry => Attempt::Retry {
                error: format!("HTTP {}: {}", parts.status.as_u16(), excerpt()),
                after: retry_after(
                    parts.headers.get(header::RETRY_AFTER),
                    self.config.max_backoff,
                ),
            },
        }
    }
}

/// The innermost cause of a client error (hyper's outer message is only "client error").
fn transport_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(disposition(StatusCode::OK, false), Disposition::Delivered);
        assert_eq!(
            disposition(StatusCode::FOUND, false),
            Disposition::Delivered
        );
        assert_eq!(
            disposition(StatusCode::NOT_FOUND, false),
            Disposition::Reject
        );
        assert_eq!(disposition(StatusCode::NOT_FOUND, true), Disposition::Retry);
        assert_eq!(
            disposition(StatusCode::TOO_MANY_REQUESTS, false),
            Disposition::Retry
        );
        assert_eq!(
            disposition(StatusCode::REQUEST_TIMEOUT, false),
            Disposition::Retry
        );
        assert_eq!(
            disposition(StatusCode::BAD_GATEWAY, false),
            Disposition::Retry
        );
    }

    #[test]
    fn retry_after_is_seconds_capped() {
        let max = Duration::from_secs(30);
        let v = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            retry_after(Some(&v("2")), max),
            Some(Duration::from_secs(2))
        );
        assert_eq!(retry_after(Some(&v("3600")), max), Some(max));
        assert_eq!(
            retry_after(Some(&v("Wed, 21 Oct 2015 07:28:00 GMT")), max),
            None
        );
        assert_eq!(retry_after(None, max), None);
    }
}
