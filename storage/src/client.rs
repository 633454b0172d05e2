//! The storagesvc client the `fission` CLI uses (Fission's `pkg/storagesvc/client`): uploads
//! stream from the file, and report the archive URL and sha256 a Package records.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyDataStream, BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::StorageError;
use crate::server::{Body, UPLOAD_FIELD, UploadResponse};

/// What an upload produced: what Fission's CLI writes into `spec.deployment` / `spec.source`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uploaded {
    pub id: String,
    /// `<base>/v1/archive?id=<id>`, with the client's base URL.
    pub url: String,
    /// Hex sha256 of the bytes sent (`checksum: {type: sha256, sum}`).
    pub sha256: String,
    pub size: u64,
}

/// `HEAD /v1/archive?id=`: where the archive is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchiveInfo {
    /// `X-FISSION-STORAGETYPE` (`local` from this service).
    pub storage_type: String,
    /// `X-FISSION-BUCKET`, for cloud backends.
    pub bucket: Option<String>,
}

/// A client for one storage service (plain http, as Fission's in-cluster URLs).
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    http: HyperClient<HttpConnector, Body>,
}

impl Client {
    /// `base_url` is the service root, e.g. `http://storagesvc.fission` or `http://127.0.0.1:8000`.
    pub fn new(base_url: &str) -> Result<Self, StorageError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let invalid = |reason: &str| StorageError::InvalidUrl {
            url: base_url.to_owned(),
            reason: reason.to_owned(),
        };
        let uri: http::Uri = base
            .parse()
            .map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(invalid("expected http://host[:port]"));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
        Ok(Self {
            base,
            http: HyperClient::builder(TokioExecutor::new()).build(connector),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The URL a fetcher downloads `id` from, through this client's base URL.
    pub fn archive_url(&self, id: &str) -> String {
        crate::archive_url(&self.base, id)
    }

    /// Uploads a file, streaming it (never wholly in memory).
    pub async fn upload_file(&self, path: &Path) -> Result<Uploaded, StorageError> {
        let read_error = |source| StorageError::ReadFile {
            path: path.to_path_buf(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(read_error)?;
        let size = file.metadata().await.map_err(read_error)?.len();
        let name = path
            .file_name()
            .map_or_else(|| "archive".into(), |n| n.to_string_lossy().into_owned());
        let chunks = futures::stream::try_unfold(file, |mut file| async move {
            let mut buf = vec![0u8; 64 * 1024];
            let n = file.read(&mut buf).await?;
            if n == 0 {
                return Ok(None);
            }
            buf.truncate(n);
            Ok(Some((Bytes::from(buf), file)))
        });
        let uploaded = self.upload_stream(&name, size, chunks.boxed()).await;
        match uploaded {
            Err(StorageError::FileChanged {
                expected, actual, ..
            }) => Err(StorageError::FileChanged {
                path: path.to_path_buf(),
                expected,
                actual,
            }),
            other => other,
        }
    }

    /// Uploads bytes already in memory.
    pub async fn upload_bytes(&self, name: &str, data: Bytes) -> Result<Uploaded, StorageError> {
        let size = data.len() as u64;
        let chunks = futures::stream::once(async move { Ok(data) });
        self.upload_stream(name, size, chunks.boxed()).await
    }

    async fn upload_stream(
        &self,
        name: &str,
        size: u64,
        chunks: futures::stream::BoxStream<'static, std::io::Result<Bytes>>,
    ) -> Result<Uploaded, StorageError> {
        let mut boundary_bytes = [0u8; 12];
        getrandom::fill(&mut boundary_bytes).map_err(|e| StorageError::Random(e.to_string()))?;
        let boundary = crate::hex(&boundary_bytes);
        let boundary = format!("rivulet-{boundary}");
        let safe_name: String = name
            .chars()
            .map(|c| {
                if c == '"' || c == '\\' || c.is_control() {
                    '_'
                } else {
                    c
                }
            })
            .collect();
        let head = Bytes::from(format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{UPLOAD_FIELD}\"; filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        ));
        let tail = Bytes::from(format!("\r\n--{boundary}--\r\n"));
        let hasher = Arc::new(Mutex::new((Sha256::new(), 0u64)));
        let hashing = hasher.clone();
        let hashed = chunks.inspect_ok(move |chunk| {
            let mut state = hashing.lock().unwrap_or_else(PoisonError::into_inner);
            state.0.update(chunk);
            state.1 += chunk.len() as u64;
        });
        let body = futures::stream::once(async move { Ok(head) })
            .chain(hashed)
            .chain(futures::stream::once(async move { Ok(tail) }))
            .map_ok(Frame::data);
        let url = format!("{}/v1/archive", self.base);
        let request = Request::builder()
            .method(Method::POST)
            .uri(&url)
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .header("X-File-Size", size.to_string())
            .body(BodyExt::boxed_unsync(StreamBody::new(body)))
            .map_err(|e| self.invalid(&e.to_string()))?;
        let (status, body) = self.send(&url, request).await?;
        let (digest, sent) = {
            let state = hasher.lock().unwrap_or_else(PoisonError::into_inner);
            (state.0.clone().finalize(), state.1)
        };
        if sent != size {
            return Err(StorageError::FileChanged {
                path: name.into(),
                expected: size,
                actual: sent,
            });
        }
        let body = expect_ok(&url, status, body)?;
        let answer: UploadResponse =
            serde_json::from_slice(&body).map_err(|e| StorageError::BadAnswer {
                url: url.clone(),
                reason: e.to_string(),
            })?;
        Ok(Uploaded {
            url: self.archive_url(&answer.id),
            id: answer.id,
            sha256: hex(&digest),
            size,
        })
    }

    /// Ids of every archive (`GET /v1/archive`).
    pub async fn list(&self) -> Result<Vec<String>, StorageError> {
        let url = format!("{}/v1/archive", self.base);
        let body = self.simple(Method::GET, &url).await?;
        serde_json::from_slice(&body).map_err(|e| StorageError::BadAnswer {
            url,
            reason: e.to_string(),
        })
    }

    /// Downloads an archive into a new file at `dest` (which must not exist); returns its sha256.
    pub async fn download(&self, id: &str, dest: &Path) -> Result<String, StorageError> {
        let url = self.archive_url(id);
        let request = self.request(Method::GET, &url)?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.connect(&e))?;
        let status = response.status();
        let body = response.into_body();
        if !status.is_success() {
            let body = body
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            expect_ok(&url, status, body)?;
            return Err(StorageError::BadAnswer {
                url,
                reason: format!("status {status}"),
            });
        }
        let write_error = |source| StorageError::WriteFile {
            path: dest.to_path_buf(),
            source,
        };
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dest)
            .await
            .map_err(write_error)?;
        let mut hasher = Sha256::new();
        let mut body = BodyDataStream::new(body);
        let copied: Result<(), StorageError> = async {
            while let Some(chunk) = body.try_next().await.map_err(|e| self.connect(&e))? {
                hasher.update(&chunk);
                file.write_all(&chunk).await.map_err(write_error)?;
            }
            file.flush().await.map_err(write_error)
        }
        .await;
        if let Err(err) = copied {
            drop(file);
            let _ = tokio::fs::remove_file(dest).await;
            return Err(err);
        }
        Ok(hex(&hasher.finalize()))
    }

    /// An archive's bytes in memory (small archives, tests).
    pub async fn get(&self, id: &str) -> Result<Bytes, StorageError> {
        self.simple(Method::GET, &self.archive_url(id)).await
    }

    /// Deletes an archive (`DELETE /v1/archive?id=`).
    pub async fn delete(&self, id: &str) -> Result<(), StorageError> {
        self.simple(Method::DELETE, &self.archive_url(id))
            .await
            .map(drop)
    }

    /// `HEAD /v1/archive?id=`: `NotFound`-like `Status` 404 when the archive is not there.
    pub async fn info(&self, id: &str) -> Result<ArchiveInfo, StorageError> {
        let url = self.archive_url(id);
        let request = self.request(Method::HEAD, &url)?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.connect(&e))?;
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let info = ArchiveInfo {
            storage_type: header("x-fission-storagetype").unwrap_or_default(),
            bucket: header("x-fission-bucket"),
        };
        expect_ok(&url, response.status(), Bytes::new())?;
        Ok(info)
    }

    /// `GET /healthz`.
    pub async fn healthy(&self) -> Result<(), StorageError> {
        self.simple(Method::GET, &format!("{}/healthz", self.base))
            .await
            .map(drop)
    }

    async fn simple(&self, method: Method, url: &str) -> Result<Bytes, StorageError> {
        let request = self.request(method, url)?;
        let (status, body) = self.send(url, request).await?;
        expect_ok(url, status, body)
    }

    fn request(&self, method: Method, url: &str) -> Result<Request<Body>, StorageError> {
        Request::builder()
            .method(method)
            .uri(url)
            .body(
                Full::new(Bytes::new())
                    .map_err(|never: std::convert::Infallible| match never {})
                    .boxed_unsync(),
            )
            .map_err(|e| self.invalid(&e.to_string()))
    }

    async fn send(
        &self,
        url: &str,
        request: Request<Body>,
    ) -> Result<(StatusCode, Bytes), StorageError> {
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| self.connect(&e))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| StorageError::Connect {
                url: url.to_owned(),
                reason: e.to_string(),
            })?
            .to_bytes();
        Ok((status, body))
    }

    fn connect(&self, err: &dyn std::error::Error) -> StorageError {
        StorageError::Connect {
            url: self.base.clone(),
            reason: error_chain(err),
        }
    }

    fn invalid(&self, reason: &str) -> StorageError {
        StorageError::InvalidUrl {
            url: self.base.clone(),
            reason: reason.to_owned(),
        }
    }
}

fn expect_ok(url: &str, status: StatusCode, body: Bytes) -> Result<Bytes, StorageError> {
    if status.is_success() {
        Ok(body)
    } else {
        Err(StorageError::Status {
            url: url.to_owned(),
            status,
            message: String::from_utf8_lossy(&body).trim_end().to_owned(),
        })
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn hex(bytes: &[u8]) -> String {
    crate::hex(bytes)
}
