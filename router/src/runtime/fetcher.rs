//! Calling a pod's fetcher: `POST http://<podIP>:8000/specialize` with Fission's
//! `{"FetchReq":…,"LoadReq":…}` body. One attempt: a failed specialization costs one pod and is
//! never retried on another (docs/router.md).
//!
//! The fetcher crate has a `specialize_pod` of its own; the router does not depend on that crate
//! (it would pull zip and sha2 into the data plane) and needs only this small POST.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rivulet_api::specialize::FunctionSpecializeRequest;

/// Largest error body kept for the client's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why the fetcher did not specialize its pod. The message reaches the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetcherError {
    /// Nothing answered at the fetcher's address.
    #[error("fetcher at {addr} unreachable: {reason}")]
    Unreachable {
        /// `<podIP>:8000`.
        addr: SocketAddr,
        /// The connection error.
        reason: String,
    },
    /// The fetcher answered with an error; `message` is its body (the fetch or runtime cause).
    #[error("fetcher at {addr} answered HTTP {status}: {message}")]
    Failed {
        /// `<podIP>:8000`.
        addr: SocketAddr,
        /// Its status.
        status: StatusCode,
        /// Its body.
        message: String,
    },
}

/// A small HTTP/1.1 client for fetcher calls.
#[derive(Debug, Clone)]
pub struct FetcherClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for FetcherClient {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }
}

impl FetcherClient {
    /// Asks the fetcher at `addr` to specialize its pod with `request`.
    pub async fn specialize(
        &self,
        addr: SocketAddr,
        request: &FunctionSpecializeRequest,
    ) -> Result<(), FetcherError> {
        let failed = |status, message: String| FetcherError::Failed {
            addr,
            status,
            message,
        };
        let body = serde_json::to_vec(request)
            .map_err(|e| failed(StatusCode::BAD_REQUEST, format!("cannot encode: {e}")))?;
        let request = Request::post(format!("http://{addr}/specialize"))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(StatusCode::BAD_REQUEST, e.to_string()))?;
        let response =
            self.client
                .request(request)
                .await
                .map_err(|e| FetcherError::Unreachable {
                    addr,
                    reason: error_chain(&e),
                })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = Limited::new(response.into_body(), MAX_ERROR_BODY)
            .collect()
            .await
            .map_or_else(
                |e| format!("(error body unreadable: {e})"),
                |b| String::from_utf8_lossy(&b.to_bytes()).trim_end().to_owned(),
            );
        Err(failed(status, body))
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let message = e.to_string();
        if !out.contains(&message) {
            out.push_str(": ");
            out.push_str(&message);
        }
        source = e.source();
    }
    out
}
