//! Loading the fetched code into the runtime container (port 8888): `POST /v2/specialize` with the
//! `LoadReq` JSON for environment version 2 and later, `POST /specialize` with an empty body for
//! version 1 (reference/fission.md §5.2).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use hyper::Uri;

use crate::error::FetcherError;
use crate::http::{HttpClient, PostOutcome, post};
use rivulet_api::specialize::FunctionLoadRequest;

/// Where the runtime listens. In a pod it is `127.0.0.1:8888`; in local mode, the pod's own
/// loopback address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeTarget {
    pub host: String,
    pub port: u16,
}

impl Default for RuntimeTarget {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: rivulet_api::defaults::RUNTIME_PORT,
        }
    }
}

/// How long to wait for a runtime that is still starting. Only "nothing listens yet" is retried;
/// an answer, even an error, is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (Fission: 30).
    pub attempts: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 30 attempts, 20 ms doubling to at most 1 s: about 25 s in all, where Fission's linear
    /// 0, 1, 2, … s schedule could wait 7 minutes.
    fn default() -> Self {
        Self {
            attempts: 30,
            min_delay: Duration::from_millis(20),
            max_delay: Duration::from_secs(1),
        }
    }
}

/// The request for the environment version: URI, content type and body.
pub fn specialize_request(
    target: &RuntimeTarget,
    load: &FunctionLoadRequest,
) -> Result<(Uri, &'static str, Bytes), FetcherError> {
    let host = if target.host.contains(':') && !target.host.starts_with('[') {
        format!("[{}]", target.host)
    } else {
        target.host.clone()
    };
    let (path, content_type, body) = if load.env_version >= 2 {
        let json = serde_json::to_vec(load)
            .map_err(|e| FetcherError::BadRequest(format!("cannot encode LoadReq: {e}")))?;
        ("/v2/specialize", "application/json", Bytes::from(json))
    } else {
        ("/specialize", "text/plain", Bytes::new())
    };
    let uri = format!("http://{host}:{}{path}", target.port)
        .parse()
        .map_err(|e| FetcherError::BadRequest(format!("invalid runtime address {host}: {e}")))?;
    Ok((uri, content_type, body))
}

/// Calls the runtime, retrying while it does not listen yet. `attempts` counts every try (shared,
/// so callers and tests can watch progress).
pub async fn specialize(
    client: &HttpClient,
    target: &RuntimeTarget,
    load: &FunctionLoadRequest,
    policy: RetryPolicy,
    attempts: &AtomicU32,
) -> Result<(), FetcherError> {
    let (uri, content_type, body) = specialize_request(target, load)?;
    let url = uri.to_string();
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.attempts.saturating_sub(1) as usize);
    let mut tries = 0u32;
    let outcome = (|| {
        tries += 1;
        attempts.fetch_add(1, Ordering::SeqCst);
        let body = body.clone();
        let uri = uri.clone();
        async move {
            match post(client, &uri, content_type, body).await {
                PostOutcome::NotListening(reason) => Err(reason),
                other => Ok(other),
            }
        }
    })
    .retry(backoff)
    .notify(|reason, delay| {
        tracing::debug!(%reason, ?delay, "runtime not listening yet, retrying");
    })
    .await;
    match outcome {
        Ok(PostOutcome::Answered { status, .. }) if status.is_success() => {
            tracing::info!(%url, %status, "runtime specialized");
            Ok(())
        }
        Ok(PostOutcome::Answered { status, body }) => {
            Err(FetcherError::RuntimeFailed { url, status, body })
        }
        Ok(PostOutcome::Failed(reason)) => Err(FetcherError::RuntimeFailed {
            url,
            status: hyper::StatusCode::BAD_GATEWAY,
            body: format!("connection failed: {reason}"),
        }),
        Ok(PostOutcome::NotListening(reason)) | Err(reason) => {
            Err(FetcherError::RuntimeUnreachable {
                url,
                attempts: tries,
                reason,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_two_and_later_post_the_load_request() {
        let load = FunctionLoadRequest {
            file_path: "/userfunc/deployarchive".into(),
            function_name: "hello.main".into(),
            env_version: 3,
            ..FunctionLoadRequest::default()
        };
        let (uri, content_type, body) =
            specialize_request(&RuntimeTarget::default(), &load).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:8888/v2/specialize");
        assert_eq!(content_type, "application/json");
        let sent: FunctionLoadRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(sent, load);
    }

    #[test]
    fn version_one_posts_an_empty_body_to_specialize() {
        let load = FunctionLoadRequest {
            env_version: 1,
            ..FunctionLoadRequest::default()
        };
        let target = RuntimeTarget {
            host: "127.0.0.7".into(),
            port: 9999,
        };
        let (uri, content_type, body) = specialize_request(&target, &load).unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.7:9999/specialize");
        assert_eq!(content_type, "text/plain");
        assert!(body.is_empty());
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let target = RuntimeTarget {
            host: "::1".into(),
            port: 8888,
        };
        let (uri, ..) = specialize_request(&target, &FunctionLoadRequest::default()).unwrap();
        assert_eq!(uri.to_string(), "http://[::1]:8888/specialize");
    }
}
