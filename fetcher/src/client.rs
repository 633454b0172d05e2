//! Calling a pod's fetcher: what the router does to specialize a claimed pod
//! (`POST http://<podIP>:8000/specialize`). One attempt; retrying is the caller's decision, so a
//! failed specialization costs one pod and nothing is amplified.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use hyper::{StatusCode, Uri};

use crate::http::{HttpClient, PostOutcome, post};
use crate::types::FunctionSpecializeRequest;

/// Why a pod could not be specialized, with what the caller needs to answer its own client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PodSpecializeError {
    /// Nothing answered at the fetcher's address (the pod is gone or not ready).
    #[error("fetcher at {addr} unreachable: {reason}")]
    Unreachable { addr: SocketAddr, reason: String },
    /// The fetcher did not answer within the specialization timeout.
    #[error("fetcher at {addr} did not finish specializing within {after:?}")]
    Timeout { addr: SocketAddr, after: Duration },
    /// The fetcher answered with an error; `message` is its body (the cause: missing package,
    /// checksum mismatch, the runtime's own error, …).
    #[error("specialization failed at {addr} (HTTP {status}): {message}")]
    Failed {
        addr: SocketAddr,
        status: StatusCode,
        message: String,
    },
}

/// Asks the fetcher at `addr` (a pod's `<podIP>:8000`) to specialize its pod with `request`.
pub async fn specialize_pod(
    http: &HttpClient,
    addr: SocketAddr,
    request: &FunctionSpecializeRequest,
    timeout: Duration,
) -> Result<(), PodSpecializeError> {
    let uri: Uri = format!("http://{addr}/specialize").parse().map_err(|e| {
        PodSpecializeError::Unreachable {
            addr,
            reason: format!("invalid address: {e}"),
        }
    })?;
    let body = serde_json::to_vec(request).map_err(|e| PodSpecializeError::Failed {
        addr,
        status: StatusCode::BAD_REQUEST,
        message: format!("cannot encode the request: {e}"),
    })?;
    let outcome = tokio::time::timeout(
        timeout,
        post(http, &uri, "application/json", Bytes::from(body)),
    )
    .await
    .map_err(|_| PodSpecializeError::Timeout {
        addr,
        after: timeout,
    })?;
    match outcome {
        PostOutcome::Answered { status, .. } if status.is_success() => Ok(()),
        PostOutcome::Answered { status, body } => Err(PodSpecializeError::Failed {
            addr,
            status,
            message: body.trim_end().to_owned(),
        }),
        PostOutcome::NotListening(reason) | PostOutcome::Failed(reason) => {
            Err(PodSpecializeError::Unreachable { addr, reason })
        }
    }
}
