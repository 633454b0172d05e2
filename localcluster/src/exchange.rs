//! One HTTP exchange as the handlers see it: the request ([`Req`], from a [`Caller`]) and the
//! builders of the responses. Shared by the transport (crate::http), which fills in the request,
//! and the resource handlers (crate::api::handlers), which answer it.

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::Query;
use crate::api::status::ApiError;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json_response(code: u16, value: &Value) -> Response<Body> {
    bytes_response(
        code,
        "application/json",
        Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
    )
}

pub fn bytes_response(code: u16, content_type: &str, body: Bytes) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

pub fn error_response(e: &ApiError) -> Response<Body> {
    json_response(e.code, &e.to_status())
}

/// A chunked streaming response fed by `rx`, one chunk flushed per message.
pub fn stream_response(content_type: &str, rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let stream = tokio_stream(rx).map(|b| Ok::<_, Infallible>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    r
}

/// A streamed `text/plain` body of log bytes; a read error ends the stream.
pub fn log_response(mut stream: crate::hooks::LogStream) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        while let Some(Ok(chunk)) = stream.next().await {
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    stream_response("text/plain", rx)
}

fn tokio_stream(mut rx: mpsc::Receiver<Bytes>) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The parts of a request the handlers need.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub query: Query,
    pub accept: String,
    pub content_type: String,
    pub user_agent: String,
    pub body: Bytes,
    pub caller: Caller,
}

/// Who sent a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// The admin token (the kubeconfig's).
    Admin,
    /// A ServiceAccount token (crate::tokens), still valid and, when pod-bound, its pod alive.
    ServiceAccount(crate::tokens::Claims),
    /// Someone the admin impersonates (`Impersonate-User`, `Impersonate-Group`).
    Impersonated(crate::rbac::User),
}

impl Caller {
    /// The user RBAC judges; `None` for the admin, who may do anything (like system:masters)
    /// and whose requests skip authorization entirely.
    pub fn user(&self) -> Option<crate::rbac::User> {
        match self {
            Caller::Admin => None,
            Caller::ServiceAccount(c) => Some(crate::rbac::User::service_account(
                &c.namespace,
                &c.service_account,
            )),
            Caller::Impersonated(u) => Some(u.clone()),
        }
    }
}
