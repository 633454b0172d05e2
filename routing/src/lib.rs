//! Rivulet's routing rules, with no I/O: what both the data plane (`rivulet-router`) and the
//! control plane (`rivulet-reconcilers`, whose HTTPTrigger status reports what the router does)
//! need to agree on. A change in the router's running parts recompiles neither the reconcilers
//! nor their tests.
//!
//! - [`routes`]: the route table built from HTTPTriggers and Functions, with gorilla/mux matching
//!   exactly as Fission registers it, internal `/fission-function/...` routes
//!   ([`routes::internal_url`]), weighted (canary) backends, and route-conflict detection.
//! - [`headers`]: the request rewriting of Fission's router (`X-Fission-*`, `Forwarded`,
//!   `X-Forwarded-Host`, `X-Forwarded-For`, hop-by-hop removal) and the router's own markers
//!   ([`headers::NO_ROUTE`]).
//! - [`rng`]: the random sources behind weighted choices (seedable for tests).
//!
//! See `docs/router.md`.

pub mod headers;
pub mod rng;
pub mod routes;
mod urlpath;

pub use http;
