//! The storage service as `rivulet up` runs it: archives in the data dir, the pruner, and the
//! Service that tells the CLI (and `fission`) where it is.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::StorageError;
use crate::pruner::{Pruner, PrunerConfig};
use crate::server::{Server, ServerConfig, ServerHandle};
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Archives go to `<data_dir>/archives`.
    pub data_dir: PathBuf,
    /// Where to listen: loopback, plus the pods' gateway (`169.254.B.1`) when pods have a
    /// network of their own, so their fetchers reach the service.
    pub listen: Vec<SocketAddr>,
    /// The URL recorded in Packages, reachable from the host and from the pods; default: the
    /// first listen address.
    pub advertise_url: Option<String>,
    pub max_archive_bytes: u64,
    pub pruner: PrunerConfig,
}

impl LocalConfig {
    pub fn new(data_dir: &Path, listen: Vec<SocketAddr>) -> Self {
        Self {
            data_dir: data_dir.to_path_buf(),
            listen,
            advertise_url: None,
            max_archive_bytes: crate::DEFAULT_MAX_ARCHIVE_BYTES,
            pruner: PrunerConfig::default(),
        }
    }
}

/// A running local storage service.
#[derive(Debug)]
pub struct LocalStorage {
    server: ServerHandle,
    url: String,
    stop_pruner: watch::Sender<bool>,
    pruner: JoinHandle<()>,
}

impl LocalStorage {
    /// Starts the server on `<data_dir>/archives`, publishes the `storagesvc` Service in
    /// namespace `fission` with the URL, and starts the pruner.
    pub async fn start(client: &kube::Client, config: LocalConfig) -> Result<Self, StorageError> {
        let store = Store::local(&config.data_dir.join("archives"))?;
        let server = Server::start(
            ServerConfig {
                listen: config.listen,
                max_archive_bytes: config.max_archive_bytes,
            },
            store.clone(),
        )
        .await?;
        let url = config.advertise_url.unwrap_or_else(|| server.url());
        let port = server
            .local_addrs()
            .first()
            .map_or(crate::DEFAULT_PORT, SocketAddr::port);
        if let Err(err) = crate::discovery::publish(client, &url, port).await {
            server.shutdown().await;
            return Err(err);
        }
        let (stop_pruner, stopped) = watch::channel(false);
        let pruner = tokio::spawn(Pruner::new(client.clone(), store, config.pruner).run(stopped));
        Ok(Self {
            server,
            url,
            stop_pruner,
            pruner,
        })
    }

    /// The URL clients and fetchers use (`<url>/v1/archive?id=`).
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.server.local_addrs()
    }

    pub async fn shutdown(self) {
        let _ = self.stop_pruner.send(true);
        let _ = self.pruner.await;
        self.server.shutdown().await;
    }
}
