//! Rivulet's fetcher sidecar: speaks Fission's fetcher protocol on port 8000, fetches function code
//! (Package literal or URL archives, verified and safely unpacked), secrets and configmaps, then
//! specializes the runtime container. See `docs/fetcher.md`.
//!
//! The wire types (`rivulet_api::specialize`, re-exported here) are what the router sends to
//! `POST /specialize`; [`FunctionSpecializeRequest::for_function`] builds one the way Fission's
//! executor does.

pub mod archive;
pub mod checksum;
pub mod cli;
pub mod config;
pub mod error;
pub mod fetch;
pub mod http;
pub mod package;
pub mod paths;
pub mod runtime;
pub mod server;
pub mod source;

pub use config::Config;
pub use error::FetcherError;
pub use fetch::{CodeOutcome, Fetcher};
pub use rivulet_api::specialize::{
    FetchRequest, FetchType, FunctionFetchRequest, FunctionLoadRequest, FunctionSpecializeRequest,
    ObjectReference,
};
pub use server::Server;
pub use source::{ClusterSource, InMemorySource, KubeSource};

/// Runs the fetcher against the Kubernetes API (in-cluster config or `KUBECONFIG`) until SIGTERM
/// or Ctrl-C. Returns an error if specialize-on-startup fails, so the container restarts.
pub async fn run(config: Config) -> Result<(), FetcherError> {
    let source = KubeSource::from_env()
        .await
        .map_err(|e| FetcherError::KubeClient(http::error_chain(&e)))?;
    let server = Server::bind(config, source).await?;
    tracing::info!(addr = ?server.local_addr().ok(), "fetcher listening");
    server.serve(shutdown_signal()).await
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}
