//! Rivulet data plane: the parts of Fission's router that need no Kubernetes client.
//!
//! - [`routes`]: the route table built from HTTPTriggers and Functions, with gorilla/mux matching
//!   exactly as Fission registers it, internal `/fission-function/...` routes, weighted
//!   (canary) backends, and route-conflict detection.
//! - [`headers`]: the request rewriting of Fission's router (`X-Fission-*`, `Forwarded`,
//!   `X-Forwarded-Host`, `X-Forwarded-For`, hop-by-hop removal).
//! - [`admission`]: per-function admission for `poolmgr` (`requestsPerPod`, `concurrency`,
//!   single-flight specialization, 429 over the cap) as a pure state machine plus a tokio wrapper.
//! - [`proxy`]: the hyper reverse-proxy core (pooled keep-alive client, streaming, timeouts) and
//!   the answers the router writes itself (404, 405, 301, 400, 429, 502, 503, 504).
//!
//! - [`runtime`]: the running router on Kubernetes: caches, table swaps, poolmgr claiming and
//!   specialization, newdeploy/container endpoints, activity publishing, listeners, metrics,
//!   graceful shutdown. Entry point: [`Router::start`].
//!
//! See `docs/router.md`.

pub mod admission;
pub mod headers;
pub mod proxy;
pub mod rng;
pub mod routes;
pub mod runtime;
mod urlpath;

pub use hyper::http;
/// The kube client crate the router is built with (so binaries build a compatible `Client`).
pub use kube;
pub use runtime::{Router, RouterConfig, RouterError, RouterHandle};
