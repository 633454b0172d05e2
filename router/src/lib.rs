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
//! The Kubernetes-facing parts (watching triggers and functions, claiming and specializing pods)
//! plug in through [`routes::RouteTable::build`] and [`admission::Specializer`].
//! See `docs/router.md`.

pub mod admission;
pub mod headers;
pub mod proxy;
pub mod rng;
pub mod routes;
mod urlpath;

pub use hyper::http;
