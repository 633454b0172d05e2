//! Harness for the router's Kubernetes tests: a localcluster with the fission.io CRDs, simulated
//! pods (fake fetcher on `<ip>:8000` and fake runtime on `<ip>:8888`, served by the test on a
//! loopback address of its own, with a Pod object whose `status.podIP` points there), a counting
//! kube client, and a small HTTP client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test harness

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::http::{Request, Response, StatusCode};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use rivulet_api::{Environment, Function, HTTPTrigger};
use rivulet_router::{Router, RouterConfig, RouterHandle};
use rivulet_testing::{TestCluster, eventually};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub const WAIT: Duration = Duration::from_secs(20);

pub async fn cluster() -> TestCluster {
    let cluster = TestCluster::start().await.unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(cluster.client.clone());
    for crd in rivulet_api::crds::fission_crds() {
        crds.create(&PostParams::default(), &crd).await.unwrap();
        let name = crd.metadata.name.clone().unwrap();
        eventually(WAIT, &format!("{name} established"), || {
            let crds = crds.clone();
            let name = name.clone();
            async move {
                let crd = crds.get(&name).await.map_err(|e| e.to_string())?;
                let ok = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                if ok {
                    Ok(())
                } else {
                    Err("not established".into())
                }
            }
        })
        .await;
    }
    cluster
}

/// A kube client for `cluster` that counts the API requests it sends.
pub async fn counting_client(cluster: &TestCluster) -> (Client, Arc<AtomicUsize>) {
    let kc = Kubeconfig::read_from(cluster.cluster.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let client = kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&CountLayer(count.clone()))
        .build();
    (client, count)
}

#[derive(Clone)]
struct CountLayer(Arc<AtomicUsize>);

impl<S> tower::Layer<S> for CountLayer {
    type Service = Counted<S>;
    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            count: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Counted<S> {
    inner: S,
    count: Arc<AtomicUsize>,
}

impl<S, B> tower::Service<hyper::http::Request<B>> for Counted<S>
where
    S: tower::Service<hyper::http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }
    fn call(&mut self, request: hyper::http::Request<B>) -> S::Future {
        self.count.fetch_add(1, Ordering::SeqCst);
        self.inner.call(request)
    }
}

pub fn config() -> RouterConfig {
    RouterConfig {
        public_addr: "127.0.0.1:0".parse().unwrap(),
        internal_addr: "127.0.0.1:0".parse().unwrap(),
        pool_wait: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(10),
        ..RouterConfig::default()
    }
}

pub async fn start_router(client: Client, config: RouterConfig) -> RouterHandle {
    Router::start(client, config).await.unwrap()
}

pub async fn create<K>(client: &Client, value: Value) -> K
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + k8s_openapi::serde::de::DeserializeOwned
        + k8s_openapi::serde::Serialize
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(value).unwrap();
    let api: Api<K> = Api::namespaced(client.clone(), "default");
    api.create(&PostParams::default(), &object).await.unwrap()
}

pub async fn environment(client: &Client, name: &str, poolsize: i32) -> Environment {
    create(
        client,
        json!({"apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"version": 3, "runtime": {"image": "fission/python-env"}, "poolsize": poolsize}}),
    )
    .await
}

pub async fn function(client: &Client, name: &str, env: &str, extra: Value) -> Function {
    let mut spec = json!({
        "environment": {"name": env, "namespace": "default"},
        "package": {"packageref": {"name": format!("{name}-pkg"), "namespace": "default"},
                    "functionName": "hello.main"},
        "InvokeStrategy": {"StrategyType": "execution",
            "ExecutionStrategy": {"ExecutorType": "poolmgr"}},
    });
    merge(&mut spec, extra);
    create(
        client,
        json!({"apiVersion": "fission.io/v1", "kind": "Function",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}),
    )
    .await
}

fn merge(base: &mut Value, extra: Value) {
    if let (Value::Object(b), Value::Object(e)) = (base, extra) {
        for (k, v) in e {
            match b.get_mut(&k) {
                Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                _ => {
                    b.insert(k, v);
                }
            }
        }
    }
}

pub async fn trigger(client: &Client, name: &str, url: &str, function: &str) -> HTTPTrigger {
    create(
        client,
        json!({"apiVersion": "fission.io/v1", "kind": "HTTPTrigger",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"relativeurl": url, "methods": ["GET"],
                     "functionref": {"type": "name", "name": function}}}),
    )
    .await
}

/// Loopback addresses for fake pods: distinct per process and per pod, away from 127.0.0.1.
fn next_ip() -> Ipv4Addr {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    Ipv4Addr::new(
        127,
        u8::try_from(180 + pid % 60).unwrap(),
        u8::try_from((pid / 60) % 250).unwrap(),
        u8::try_from(n % 250 + 2).unwrap(),
    )
}

/// What a fake pod does and saw.
#[derive(Default)]
pub struct FakePodState {
    /// Bodies of `POST /specialize` received by the fake fetcher.
    pub specializations: Mutex<Vec<Value>>,
    /// When set, the fetcher answers 500 with this text.
    pub fail_with: Mutex<Option<String>>,
    /// Requests the runtime received.
    pub requests: AtomicUsize,
    /// Requests the runtime is holding (header `x-test-hold`).
    pub holding: AtomicUsize,
    /// Releases held requests.
    pub release: Notify,
}

pub struct FakePod {
    pub ip: IpAddr,
    pub state: Arc<FakePodState>,
}

async fn serve<F, Fut>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Full<Bytes>>> + Send,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            return;
        };
        let handler = handler.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Starts a fake fetcher (`:8000`) and runtime (`:8888`) on a fresh loopback address.
pub async fn fake_pod() -> FakePod {
    fake_pod_with(true).await
}

/// A fake pod whose runtime crashed after specialization: nothing listens on `:8888`.
pub async fn fake_pod_without_runtime() -> FakePod {
    fake_pod_with(false).await
}

async fn fake_pod_with(with_runtime: bool) -> FakePod {
    let (ip, fetcher, runtime) = loop {
        let ip = IpAddr::V4(next_ip());
        let Ok(fetcher) = TcpListener::bind(SocketAddr::new(ip, 8000)).await else {
            continue;
        };
        let Ok(runtime) = TcpListener::bind(SocketAddr::new(ip, 8888)).await else {
            continue;
        };
        break (ip, fetcher, runtime);
    };
    // Closing the bound runtime socket leaves the port refusing connections.
    let runtime = with_runtime.then_some(runtime);
    let state = Arc::new(FakePodState::default());
    let s = state.clone();
    tokio::spawn(serve(fetcher, move |req: Request<Incoming>| {
        let s = s.clone();
        async move {
            let path = req.uri().path().to_owned();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            if path != "/specialize" {
                return text(StatusCode::NOT_FOUND, "not found");
            }
            s.specializations
                .lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
            if let Some(message) = s.fail_with.lock().unwrap().clone() {
                return text(StatusCode::INTERNAL_SERVER_ERROR, &message);
            }
            text(StatusCode::OK, "")
        }
    }));
    let Some(runtime) = runtime else {
        return FakePod { ip, state };
    };
    let s = state.clone();
    tokio::spawn(serve(runtime, move |req: Request<Incoming>| {
        let s = s.clone();
        async move {
            s.requests.fetch_add(1, Ordering::SeqCst);
            if req.headers().contains_key("x-test-hold") {
                let released = s.release.notified();
                s.holding.fetch_add(1, Ordering::SeqCst);
                released.await;
                s.holding.fetch_sub(1, Ordering::SeqCst);
            }
            let name = req
                .headers()
                .get("x-fission-function-name")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            text(StatusCode::OK, &format!("hello from {name} at {ip}"))
        }
    }));
    FakePod { ip, state }
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
}

/// Creates a Pod object for `fake` with `labels`, and marks it Running and Ready at its IP.
pub async fn pod_object(client: &Client, name: &str, fake: &FakePod, labels: Value) -> Pod {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "labels": labels},
        "spec": {"containers": [{"name": "runtime", "image": "fission/python-env"}]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &pod).await.unwrap();
    let status = json!({"status": {"phase": "Running", "podIP": fake.ip.to_string(),
        "conditions": [{"type": "Ready", "status": "True"}]}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap()
}

/// A ready warm pool pod of `env`.
pub async fn warm_pod(client: &Client, name: &str, env: &Environment, fake: &FakePod) -> Pod {
    let labels = json!({"executorType": "poolmgr", "managed": "true",
        "environmentName": env.metadata.name, "environmentNamespace": "default",
        "environmentUid": env.metadata.uid});
    pod_object(client, name, fake, labels).await
}

pub async fn get_pod(client: &Client, name: &str) -> Option<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "default");
    api.get_opt(name).await.unwrap()
}

/// A reply as the test sees it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: hyper::http::HeaderMap,
    pub body: String,
}

pub fn http() -> HttpClient<HttpConnector, Full<Bytes>> {
    HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub async fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let response = http()
        .request(builder.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Reply {
    send(addr, "GET", path, &[]).await
}

/// Waits until the router answers `path` with something other than 404 (the table is built).
pub async fn routed(addr: SocketAddr, path: &str) {
    eventually(WAIT, &format!("{path} routed"), || async move {
        let reply = send(addr, "HEAD", path, &[]).await;
        if reply.status == StatusCode::NOT_FOUND {
            Err("404".to_owned())
        } else {
            Ok(())
        }
    })
    .await;
}

pub fn label(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.labels.as_ref()?.get(key).cloned()
}

pub fn annotation(pod: &Pod, key: &str) -> Option<String> {
    pod.metadata.annotations.as_ref()?.get(key).cloned()
}
