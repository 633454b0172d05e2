//! A stand-in for the router's internal listener: records every request, and answers per path
//! from a script (for example two 503s, then 200).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// One received request.
#[derive(Clone, Debug)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: String,
    pub at: Instant,
    /// The status it was answered with.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// `metadata.name` of a watch event's body.
    pub fn object_name(&self) -> String {
        let body: serde_json::Value = serde_json::from_str(&self.body).unwrap_or_default();
        body["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// `X-Kubernetes-Event-Type` and the object name, e.g. `ADDED a`.
    pub fn event(&self) -> String {
        format!(
            "{} {}",
            self.header("x-kubernetes-event-type").unwrap_or("-"),
            self.object_name()
        )
    }
}

#[derive(Default)]
struct State {
    received: Vec<Received>,
    /// Statuses to answer on a path, consumed front first; 200 when empty.
    script: HashMap<String, Vec<u16>>,
    /// Status answered on a path forever.
    always: HashMap<String, u16>,
    /// Answers on these paths wait for a permit (requests are recorded first).
    gates: HashMap<String, Arc<tokio::sync::Semaphore>>,
}

#[derive(Clone)]
pub struct Recorder {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Recorder {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(state.clone(), request));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next requests to `path` with `statuses`, in order.
    pub fn script(&self, path: &str, statuses: &[u16]) {
        self.state
            .lock()
            .unwrap()
            .script
            .insert(path.to_owned(), statuses.to_vec());
    }

    /// Answers every request to `path` with `status`.
    pub fn always(&self, path: &str, status: u16) {
        self.state
            .lock()
            .unwrap()
            .always
            .insert(path.to_owned(), status);
    }

    /// Holds every answer on `path` (after recording the request) until [`Recorder::release`].
    pub fn hold(&self, path: &str) {
        self.state
            .lock()
            .unwrap()
            .gates
            .insert(path.to_owned(), Arc::new(tokio::sync::Semaphore::new(0)));
    }

    /// Lets every held and future answer on `path` go.
    pub fn release(&self, path: &str) {
        if let Some(gate) = self.state.lock().unwrap().gates.remove(path) {
            gate.close();
        }
    }

    /// Requests received on `path`, in arrival order.
    pub fn on(&self, path: &str) -> Vec<Received> {
        self.state
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// `ADDED a`, `DELETED b`, … received on `path`, in order.
    pub fn events(&self, path: &str) -> Vec<String> {
        self.on(path).iter().map(Received::event).collect()
    }
}

async fn answer(
    state: Arc<Mutex<State>>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let gate = {
        let mut state = state.lock().unwrap();
        record(&mut state, &parts, path.clone(), &body, at)
    };
    if let (Some(gate), _) = &gate {
        // A closed semaphore is the release.
        let _ = gate.acquire().await;
    }
    let mut response = Response::new(Full::new(Bytes::from_static(b"recorded")));
    *response.status_mut() = hyper::StatusCode::from_u16(gate.1).unwrap();
    Ok(response)
}

fn record(
    state: &mut State,
    parts: &hyper::http::request::Parts,
    path: String,
    body: &Bytes,
    at: Instant,
) -> (Option<Arc<tokio::sync::Semaphore>>, u16) {
    let status = match state.always.get(&path) {
        Some(status) => *status,
        None => match state.script.get_mut(&path) {
            Some(script) if !script.is_empty() => script.remove(0),
            _ => 200,
        },
    };
    let gate = state.gates.get(&path).cloned();
    state.received.push(Received {
        method: parts.method.to_string(),
        path,
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_owned()))
            .collect(),
        body: String::from_utf8_lossy(body).into_owned(),
        at,
        status,
    });
    (gate, status)
}
