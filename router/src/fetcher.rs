//! Calling a pod's fetcher: `POST http://<podIP>:8000/specialize` with Fission's
//! `{"FetchReq":…,"LoadReq":…}` body. One attempt: a failed specialization costs one pod and is
//! never retried on another (docs/router.md).
//!
//! With an installation key, each call carries the Environment's fetcher token
//! (`Authorization: Bearer`, `rivulet_api::specialize::token`), which the router derives itself
//! rather than reading the pool's Secret.
//!
//! The router does not depend on the fetcher crate (it would pull zip and sha2 into the data
//! plane) and needs only this small POST.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::http::{Request, StatusCode, header};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rivulet_api::error_chain::error_chain;
use rivulet_api::specialize::{FetcherKey, FunctionSpecializeRequest};

/// Largest error body kept for the client's message.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Why the call to a pod's fetcher did not specialize it (the fetcher crate's own `FetcherError`
/// is what the fetcher itself fails with). The message reaches the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecializeCallError {
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
    key: Option<FetcherKey>,
}

impl Default for FetcherClient {
    /// A client without a key: for fetchers started without `--token-file`.
    fn default() -> Self {
        Self::with_key(None)
    }
}

impl FetcherClient {
    /// A client that authenticates with tokens derived from `key`.
    pub fn with_key(key: Option<FetcherKey>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            key,
        }
    }

    /// Asks the fetcher at `addr`, a pod of the Environment with uid `env_uid`, to specialize
    /// its pod with `request`.
    pub async fn specialize(
        &self,
        addr: SocketAddr,
        env_uid: &str,
        request: &FunctionSpecializeRequest,
    ) -> Result<(), SpecializeCallError> {
        let failed = |status, message: String| SpecializeCallError::Failed {
            addr,
            status,
            message,
        };
        let body = serde_json::to_vec(request)
            .map_err(|e| failed(StatusCode::BAD_REQUEST, format!("cannot encode: {e}")))?;
        let mut request = Request::post(format!("http://{addr}/specialize"))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.key {
            let token = key.token_for(env_uid);
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| failed(StatusCode::BAD_REQUEST, e.to_string()))?;
        let response =
            self.client
                .request(request)
                .await
                .map_err(|e| SpecializeCallError::Unreachable {
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-shot fetcher that answers `status` and returns the request head it got.
    async fn fake_fetcher(status: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = stream.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 5\r\n\r\nnope!");
            stream.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&seen).to_lowercase()
        });
        (addr, task)
    }

    #[tokio::test]
    async fn with_a_key_the_environments_token_is_sent() {
        let key = FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
        let (addr, head) = fake_fetcher("200 OK").await;
        FetcherClient::with_key(Some(key.clone()))
            .specialize(addr, "uid-1", &FunctionSpecializeRequest::default())
            .await
            .unwrap();
        let head = head.await.unwrap();
        let expected = format!("authorization: bearer {}\r\n", key.token_for("uid-1"));
        assert!(head.contains(&expected), "{head}");

        let (addr, head) = fake_fetcher("200 OK").await;
        FetcherClient::default()
            .specialize(addr, "uid-1", &FunctionSpecializeRequest::default())
            .await
            .unwrap();
        assert!(!head.await.unwrap().contains("authorization"));
    }

    #[tokio::test]
    async fn a_refusing_fetcher_fails_the_specialization_with_its_answer() {
        let (addr, _head) = fake_fetcher("401 Unauthorized").await;
        let err = FetcherClient::default()
            .specialize(addr, "uid-1", &FunctionSpecializeRequest::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, SpecializeCallError::Failed { status, message, .. }
                if *status == StatusCode::UNAUTHORIZED && message == "nope!"),
            "{err}"
        );
    }
}
