//! The fetcher's outbound HTTP: archive downloads (http or https, redirects followed like Go's
//! client) and runtime calls. Built on the hyper stack kube-client already brings.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode, Uri, header};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;

use crate::checksum::Sha256Hasher;
use crate::error::FetcherError;

pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Go's `http.Client` follows at most 10 redirects.
const MAX_REDIRECTS: usize = 10;

/// A client for `http://` and `https://` (native roots, ring provider: the same rustls setup as
/// kube-client, so no second crypto backend is built).
pub fn client() -> Result<HttpClient, FetcherError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_nodelay(true);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_provider_and_native_roots(provider.clone()) {
        Ok(builder) => builder,
        Err(err) => {
            // No CA bundle on this machine: http still works, https fails with a TLS error.
            tracing::warn!(error = %err, "no native TLS roots found; https downloads will fail");
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| FetcherError::HttpClient(e.to_string()))?
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(config)
        }
    };
    let connector = builder.https_or_http().enable_http1().wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Bounds on one archive download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DownloadLimits {
    /// Largest body accepted.
    pub max_bytes: u64,
    /// Longest wait for the response headers or for the next piece of the body: a server that
    /// stalls must not hold the pod's fetch lock forever.
    pub idle_timeout: Duration,
}

impl Default for DownloadLimits {
    fn default() -> Self {
        Self {
            max_bytes: 1 << 30,
            idle_timeout: Duration::from_mins(1),
        }
    }
}

/// Streams `url` into a new file at `dest` (mode 0600), following redirects, and returns the
/// SHA-256 of what was written.
pub async fn download(
    client: &HttpClient,
    url: &str,
    dest: &Path,
    limits: DownloadLimits,
) -> Result<String, FetcherError> {
    let stalled = || FetcherError::Download {
        url: url.into(),
        reason: format!("no data for {:?}", limits.idle_timeout),
    };
    let mut uri: Uri = parse_http_uri(url)?;
    let mut redirects = 0;
    let response = loop {
        let request = Request::get(uri.clone())
            .body(Full::default())
            .map_err(|e| invalid(url, &e.to_string()))?;
        let response = tokio::time::timeout(limits.idle_timeout, client.request(request))
            .await
            .map_err(|_| stalled())?
            .map_err(|e| FetcherError::Download {
                url: url.into(),
                reason: error_chain(&e),
            })?;
        if !response.status().is_redirection() {
            break response;
        }
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok());
        match location {
            Some(location) if redirects < MAX_REDIRECTS => {
                uri =
                    resolve_location(&uri, location).map_err(|reason| FetcherError::Download {
                        url: url.into(),
                        reason,
                    })?;
                redirects += 1;
            }
            _ => break response,
        }
    };
    if !response.status().is_success() {
        return Err(FetcherError::DownloadStatus {
            url: url.into(),
            status: response.status(),
        });
    }

    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .await
        .map_err(|e| FetcherError::io("cannot create", dest, e))?;
    let mut hasher = Sha256Hasher::default();
    let mut written = 0u64;
    let mut body = response.into_body();
    while let Some(frame) = tokio::time::timeout(limits.idle_timeout, body.frame())
        .await
        .map_err(|_| stalled())?
    {
        let frame = frame.map_err(|e| FetcherError::Download {
            url: url.into(),
            reason: error_chain(&e),
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > limits.max_bytes {
            return Err(FetcherError::DownloadTooLarge {
                url: url.into(),
                limit: limits.max_bytes,
            });
        }
        hasher.update(&data);
        file.write_all(&data)
            .await
            .map_err(|e| FetcherError::io("cannot write", dest, e))?;
    }
    file.sync_all()
        .await
        .map_err(|e| FetcherError::io("cannot sync", dest, e))?;
    Ok(hasher.finish())
}

/// Outcome of one POST, before retry decisions.
#[derive(Debug)]
pub enum PostOutcome {
    Answered {
        status: StatusCode,
        body: String,
    },
    /// Nothing listens yet (connection refused or failed to connect).
    NotListening(String),
    /// Connected, but the exchange failed.
    Failed(String),
}

/// One POST of `body` to `uri`, reading the whole answer.
pub async fn post(client: &HttpClient, uri: &Uri, content_type: &str, body: Bytes) -> PostOutcome {
    let request = match Request::post(uri.clone())
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body))
    {
        Ok(request) => request,
        Err(e) => return PostOutcome::Failed(e.to_string()),
    };
    match client.request(request).await {
        Ok(response) => {
            let status = response.status();
            match response.into_body().collect().await {
                Ok(collected) => PostOutcome::Answered {
                    status,
                    body: String::from_utf8_lossy(&collected.to_bytes()).into_owned(),
                },
                Err(e) => PostOutcome::Failed(error_chain(&e)),
            }
        }
        Err(e) if e.is_connect() => PostOutcome::NotListening(error_chain(&e)),
        Err(e) => PostOutcome::Failed(error_chain(&e)),
    }
}

fn parse_http_uri(url: &str) -> Result<Uri, FetcherError> {
    let uri: Uri = url
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| invalid(url, &e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.authority().is_some() => Ok(uri),
        _ => Err(invalid(
            url,
            "only absolute http:// and https:// URLs are supported",
        )),
    }
}

fn invalid(url: &str, reason: &str) -> FetcherError {
    FetcherError::InvalidUrl {
        url: url.into(),
        reason: reason.into(),
    }
}

/// Resolves a `Location` header against the URI that answered with it (absolute, host-relative
/// `/path`, or path-relative `file`).
pub fn resolve_location(base: &Uri, location: &str) -> Result<Uri, String> {
    let bad = |e: &dyn std::fmt::Display| format!("invalid redirect location {location:?}: {e}");
    if location.contains("://") {
        return location.parse().map_err(|e| bad(&e));
    }
    let scheme = base.scheme_str().unwrap_or("http");
    let authority = base.authority().map_or("", |a| a.as_str());
    if let Some(rest) = location.strip_prefix("//") {
        return format!("{scheme}://{rest}").parse().map_err(|e| bad(&e));
    }
    let path = if location.starts_with('/') {
        location.to_owned()
    } else {
        let base_path = base.path();
        let dir = &base_path[..=base_path.rfind('/').unwrap_or(0)];
        let dir = if dir.is_empty() { "/" } else { dir };
        format!("{dir}{location}")
    };
    format!("{scheme}://{authority}{path}")
        .parse()
        .map_err(|e| bad(&e))
}

pub use rivulet_api::error_chain::error_chain;

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(base: &str, location: &str) -> String {
        resolve_location(&base.parse().unwrap(), location)
            .unwrap()
            .to_string()
    }

    #[test]
    fn redirect_locations() {
        assert_eq!(resolve("http://a:1/x/y?id=1", "https://b/z"), "https://b/z");
        assert_eq!(resolve("http://a:1/x/y?id=1", "/z?q=2"), "http://a:1/z?q=2");
        assert_eq!(resolve("http://a:1/x/y", "z.zip"), "http://a:1/x/z.zip");
        assert_eq!(resolve("http://a:1", "z.zip"), "http://a:1/z.zip");
        assert_eq!(resolve("https://a/x", "//cdn/z"), "https://cdn/z");
    }

    #[test]
    fn only_absolute_http_urls() {
        for url in ["", "ftp://a/b", "/relative", "storagesvc/v1/archive"] {
            assert!(
                matches!(parse_http_uri(url), Err(FetcherError::InvalidUrl { .. })),
                "{url:?}"
            );
        }
        parse_http_uri("http://storagesvc.fission/v1/archive?id=x").unwrap();
    }
}
