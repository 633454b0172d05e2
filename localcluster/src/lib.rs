//! localcluster: an embedded Kubernetes API server for one machine.
//!
//! It serves the REST API that kubectl and kube-rs use (discovery, CRUD, watch, patches,
//! server-side apply, CRDs) on 127.0.0.1 with a bearer token, and keeps every object in a
//! crash-safe store in a data directory. Generic: it knows nothing about Rivulet's own kinds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), rivulet_localcluster::Error> {
//! let cluster = rivulet_localcluster::LocalCluster::start(rivulet_localcluster::Config::new("/tmp/lc")).await?;
//! println!("export KUBECONFIG={}", cluster.kubeconfig_path().display());
//! cluster.shutdown().await;
//! # Ok(()) }
//! ```

mod api;
mod cluster;
pub mod connections;
mod controllers;
mod exchange;
pub mod hooks;
mod http;
pub mod kubeconfig;
mod meta;
pub mod private;
pub mod rbac;
mod registry;
mod resources;
mod selectors;
pub mod storage;
mod tls;
pub mod tokens;
mod util;

pub use cluster::{Config, Error, LocalCluster};
