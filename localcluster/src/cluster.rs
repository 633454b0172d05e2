//! Starting and stopping a local cluster: the public entry point of this crate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::api::Ctx;
use crate::api::options::WriteOpts;
use crate::api::write;
use crate::registry::Registry;
use crate::storage::{DEFAULT_HISTORY, StorageError, Store};
use crate::{controllers, http, kubeconfig, private, tls, util};

/// Namespaces that always exist.
const DEFAULT_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// How to start a local cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// State (`wal.log`, `snapshot.db`), the bearer token and the kubeconfig live here.
    pub data_dir: PathBuf,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub api_port: u16,
    /// Events kept for watch resumption and paginated lists; older versions answer 410.
    pub history: usize,
    /// Interval of watch bookmarks (upstream: about a minute).
    pub bookmark_interval: Duration,
    /// Mutating admission hooks run on create (see [`crate::hooks::CreateHook`]).
    pub create_hooks: Vec<std::sync::Arc<dyn crate::hooks::CreateHook>>,
    /// Source of `pods/log` (a node agent); without one, `pods/log` answers 400.
    pub pod_logs: Option<std::sync::Arc<dyn crate::hooks::PodLogs>>,
    /// Timeouts and the per-client cap of connections ([`crate::connections`]).
    pub connections: crate::connections::ConnectionLimits,
    /// Create (and reconcile at start) the ClusterRole `rivulet:service-account-reader` bound to
    /// every ServiceAccount: get anything, list and watch anything but Secrets. Default true;
    /// off, ServiceAccounts can do only what stored RBAC grants them (least-privilege tests).
    pub bootstrap_service_account_reader: bool,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            api_port: 0,
            history: DEFAULT_HISTORY,
            bookmark_interval: Duration::from_mins(1),
            create_hooks: Vec::new(),
            pod_logs: None,
            connections: crate::connections::ConnectionLimits::default(),
            bootstrap_service_account_reader: true,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("binding 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("creating the default namespace {name}: {message}")]
    Seed { name: String, message: String },
}

/// A running local cluster.
#[derive(Debug)]
pub struct LocalCluster {
    ctx: Arc<Ctx>,
    addr: SocketAddr,
    kubeconfig: PathBuf,
    ca_pem: String,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

fn load_or_create_token(dir: &Path) -> Result<String, Error> {
    let path = dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&path) {
        let t = t.trim().to_string();
        if t.len() >= 32 {
            return Ok(t);
        }
    }
    let token = util::new_token();
    private::write_file(&path, &token).map_err(|source| Error::Write { path, source })?;
    Ok(token)
}

impl LocalCluster {
    /// Open the data directory, start serving, write the kubeconfig.
    pub async fn start(config: Config) -> Result<LocalCluster, Error> {
        let dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&dir, config.history))
            .await
            .map_err(|e| Error::Seed {
                name: String::new(),
                message: e.to_string(),
            })??;
        let token = load_or_create_token(&config.data_dir)?;
        let certs = tls::load_or_create(&config.data_dir)?;
        let server_tls = tls::server_config(&certs)?;
        let (stop, shutdown) = watch::channel(false);
        let ctx = Arc::new(Ctx {
            store,
            registry: Registry::new(),
            signer: crate::tokens::Signer::new(&token),
            token,
            shutdown,
            bookmark_interval: config.bookmark_interval,
            create_hooks: config.create_hooks.clone(),
            pod_logs: config.pod_logs.clone(),
            bootstrap_service_account_reader: config.bootstrap_service_account_reader,
        });
        ctx.rebuild_registry();
        seed(&ctx).await?;
        let (listener, addr) = http::bind(config.api_port)
            .await
            .map_err(|source| Error::Bind {
                port: config.api_port,
                source,
            })?;
        let kubeconfig = config.data_dir.join("kubeconfig");
        private::write_file(
            &kubeconfig,
            &kubeconfig::render(&format!("https://{addr}"), &certs.ca, &ctx.token),
        )
        .map_err(|source| Error::Write {
            path: kubeconfig.clone(),
            source,
        })?;
        let tasks = vec![
            tokio::spawn(http::serve(
                ctx.clone(),
                listener,
                server_tls,
                config.connections.clone(),
            )),
            tokio::spawn(controllers::run(ctx.clone())),
        ];
        Ok(LocalCluster {
            ctx,
            addr,
            kubeconfig,
            ca_pem: certs.ca,
            stop,
            tasks,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// PEM of the CA that signed the serving certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token every request must carry.
    pub fn token(&self) -> &str {
        &self.ctx.token
    }

    /// `<data-dir>/kubeconfig` (mode 0600).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.ctx.store.current_rv()
    }

    /// Stop serving, end watches, make every write durable and close the store.
    pub async fn shutdown(mut self) {
        self.stop_inner().await;
    }

    async fn stop_inner(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        let store = self.ctx.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.close()).await;
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        for t in &self.tasks {
            t.abort();
        }
        // Dropped without `shutdown()`: still let the committer flush and exit, so the thread
        // and the in-memory state do not outlive the cluster.
        self.ctx.store.request_close();
    }
}

async fn seed(ctx: &Ctx) -> Result<(), Error> {
    let catalog = ctx.registry.catalog();
    let Some(info) = catalog.get("", "v1", "namespaces") else {
        return Ok(());
    };
    let opts = WriteOpts {
        field_manager: Some("rivulet-localcluster".into()),
        ..WriteOpts::default()
    };
    for name in DEFAULT_NAMESPACES {
        let key = Ctx::key(&info, "", name);
        if ctx.store.get(&key).is_some() {
            continue;
        }
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        if let Err(e) = write::create(ctx, &info, "", body, &opts).await
            && e.code != 409
        {
            return Err(Error::Seed {
                name: (*name).to_string(),
                message: e.message,
            });
        }
    }
    crate::api::authz::ensure_bootstrap(ctx).await;
    Ok(())
}
