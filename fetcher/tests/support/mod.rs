//! Test fixtures: a fetcher on 127.0.0.1:0 with an in-memory source, a fake runtime that records
//! its specialize calls, and a tiny archive server. Loopback only.

// Test fixtures: a failed setup step should abort the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rivulet_fetcher::http::{HttpClient, PostOutcome};
use rivulet_fetcher::package::{Archive, PackageArchives};
use rivulet_fetcher::runtime::{RetryPolicy, RuntimeTarget};
use rivulet_fetcher::{Config, InMemorySource, Server};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// One request seen by a fake server.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub content_type: String,
    pub body: Vec<u8>,
}

type Handler = Arc<dyn Fn(&Seen) -> (StatusCode, Vec<(String, String)>, Vec<u8>) + Send + Sync>;

/// A loopback HTTP server answering through `handler` and recording every request.
pub struct FakeServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    _stop: oneshot::Sender<()>,
}

impl FakeServer {
    pub async fn start(handler: Handler) -> Self {
        Self::start_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), handler)
    }

    pub fn start_on(listener: TcpListener, handler: Handler) -> Self {
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (stop, mut stopped) = oneshot::channel();
        let recorded = seen.clone();
        tokio::spawn(async move {
            loop {
                let stream = tokio::select! {
                    accepted = listener.accept() => accepted.unwrap().0,
                    _ = &mut stopped => return,
                };
                let (handler, recorded) = (handler.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request: Request<Incoming>| {
                        let (handler, recorded) = (handler.clone(), recorded.clone());
                        async move {
                            let method = request.method().to_string();
                            let path = request.uri().path_and_query().unwrap().to_string();
                            let content_type = request
                                .headers()
                                .get(hyper::header::CONTENT_TYPE)
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default();
                            let body = request
                                .into_body()
                                .collect()
                                .await
                                .unwrap()
                                .to_bytes()
                                .to_vec();
                            let seen = Seen {
                                method,
                                path,
                                content_type,
                                body,
                            };
                            let (status, headers, body) = handler(&seen);
                            recorded.lock().unwrap().push(seen);
                            let mut response = Response::new(Full::new(Bytes::from(body)));
                            *response.status_mut() = status;
                            for (k, v) in headers {
                                response.headers_mut().insert(
                                    hyper::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                                    v.parse().unwrap(),
                                );
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            seen,
            _stop: stop,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A runtime answering every specialize call with `status` and `body`.
pub async fn fake_runtime(status: StatusCode, body: &'static str) -> FakeServer {
    FakeServer::start(runtime_handler(status, body)).await
}

pub fn runtime_handler(status: StatusCode, body: &'static str) -> Handler {
    Arc::new(move |_| (status, Vec::new(), body.as_bytes().to_vec()))
}

/// Serves `archive` at `/code.zip`, and a redirect to it at `/moved`.
pub async fn archive_server(archive: Vec<u8>) -> FakeServer {
    FakeServer::start(Arc::new(move |seen| match seen.path.as_str() {
        "/code.zip" => (StatusCode::OK, Vec::new(), archive.clone()),
        "/moved" => (
            StatusCode::FOUND,
            vec![("location".into(), "/code.zip".into())],
            Vec::new(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            Vec::new(),
            b"no such archive".to_vec(),
        ),
    }))
    .await
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running fetcher whose pod root is a temporary directory.
pub struct TestFetcher {
    pub addr: SocketAddr,
    pub root: tempfile::TempDir,
    pub source: InMemorySource,
    pub fetcher: Arc<rivulet_fetcher::Fetcher<InMemorySource>>,
    pub client: HttpClient,
    pub served: tokio::task::JoinHandle<Result<(), rivulet_fetcher::FetcherError>>,
    _stop: oneshot::Sender<()>,
}

pub fn test_config(root: &Path, runtime_port: u16) -> Config {
    let fast = RetryPolicy {
        attempts: 30,
        min_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(20),
    };
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        root: Some(root.to_path_buf()),
        runtime: RuntimeTarget {
            host: "127.0.0.1".into(),
            port: runtime_port,
        },
        runtime_retry: fast,
        package_retry: RetryPolicy {
            attempts: 2,
            ..fast
        },
        ..Config::default()
    }
}

impl TestFetcher {
    pub async fn start(runtime_port: u16) -> Self {
        Self::start_with(runtime_port, |_| {}).await
    }

    pub async fn start_with(runtime_port: u16, adjust: impl FnOnce(&mut Config)) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut config = test_config(root.path(), runtime_port);
        adjust(&mut config);
        let source = InMemorySource::new();
        let server = Server::bind(config, source.clone()).await.unwrap();
        let addr = server.local_addr().unwrap();
        let fetcher = server.fetcher();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(server.serve(async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            root,
            source,
            fetcher,
            client: rivulet_fetcher::http::client().unwrap(),
            served,
            _stop: stop,
        }
    }

    /// Host path of an in-pod path.
    pub fn host_path(&self, in_pod: &str) -> PathBuf {
        self.root.path().join(in_pod.trim_start_matches('/'))
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> (StatusCode, String) {
        let uri: Uri = format!("http://{}{path}", self.addr).parse().unwrap();
        match rivulet_fetcher::http::post(
            &self.client,
            &uri,
            "application/json",
            Bytes::from(body.to_string()),
        )
        .await
        {
            PostOutcome::Answered { status, body } => (status, body),
            other => panic!("fetcher did not answer: {other:?}"),
        }
    }

    /// POST with an optional `Authorization` header value.
    pub async fn post_authorized(
        &self,
        path: &str,
        authorization: Option<&str>,
        body: &serde_json::Value,
    ) -> (StatusCode, String) {
        let uri: Uri = format!("http://{}{path}", self.addr).parse().unwrap();
        let mut request = Request::post(uri).header("content-type", "application/json");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub async fn get(&self, path: &str) -> (StatusCode, String) {
        let uri: Uri = format!("http://{}{path}", self.addr).parse().unwrap();
        let request = Request::get(uri).body(Full::default()).unwrap();
        let response = self.client.request(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    pub fn add_package(&self, name: &str, deployment: Archive, build_status: &str) {
        self.source.insert_package(PackageArchives {
            namespace: "default".into(),
            name: name.into(),
            resource_version: Some("1".into()),
            deployment,
            build_status: build_status.into(),
            ..PackageArchives::default()
        });
    }
}

/// Polls `condition` every few milliseconds until it holds, failing after `limit`.
pub async fn wait_until(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, data) in files {
        writer.start_file(*name, options).unwrap();
        writer.write_all(data).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

pub fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
        .collect()
}

/// Fission's specialize request for package `default/<package>` with `filename: deployarchive`.
pub fn specialize_request(package: &str, env_version: i32) -> serde_json::Value {
    serde_json::json!({
        "FetchReq": {"fetchType": 1,
                     "package": {"name": package, "namespace": "default", "resourceVersion": "1"},
                     "url": "", "storagesvcurl": "", "filename": "deployarchive",
                     "secretList": null, "configMapList": null, "keeparchive": false},
        "LoadReq": {"filepath": "/userfunc/deployarchive", "functionName": "hello.main", "url": "",
                    "FunctionMetadata": {"name": "hello", "namespace": "default", "uid": "f-1"},
                    "envVersion": env_version}
    })
}

/// Entries of a directory, for "nothing was left behind" checks.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
