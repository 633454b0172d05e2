//! Rivulet data plane: Fission's router on Kubernetes. The routing rules it applies (route
//! table, request rewriting, weighted choice) are the pure crate [`rivulet_routing`], shared with
//! the reconcilers.
//!
//! - [`admission`]: per-function admission for `poolmgr` (`requestsPerPod`, `concurrency`,
//!   single-flight specialization, 429 over the cap) as a pure state machine plus a tokio wrapper.
//! - [`proxy`]: the hyper reverse-proxy core (pooled keep-alive client, streaming, timeouts) and
//!   the answers the router writes itself (404, 405, 301, 400, 429, 502, 503, 504).
//!
//! The running router on Kubernetes ([`Router::start`] is the entry point): caches and table
//! swaps ([`Router`]), poolmgr claiming and specialization ([`poolmgr`], [`admissions`],
//! [`pods`], [`fetcher`], [`report`]), newdeploy/container endpoints ([`deploy`]), activity
//! publishing ([`activity`]), the listeners and worker threads ([`server`], [`workers`]), and
//! [`metrics`]. "Runtime" in this project means only an Environment's language runtime.
//!
//! See `docs/router.md`.

pub mod activity;
pub mod admission;
pub mod admissions;
pub mod deploy;
pub mod fetcher;
pub mod metrics;
pub mod pods;
pub mod poolmgr;
pub mod proxy;
pub mod report;
mod router;
pub mod server;
pub mod workers;

pub use hyper::http;
/// The kube client crate the router is built with (so binaries build a compatible `Client`).
pub use kube;
pub use metrics::Metrics;
pub use pods::PodRef;
pub use router::{Router, RouterConfig, RouterError, RouterHandle};
