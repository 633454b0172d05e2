//! The cluster connection: kube-rs through the kubeconfig, as Fission's CLI since v1.18.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, Resource};
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Flags every command takes.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct Global {
    /// Path to the kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubernetes context to be used for the execution of Fission commands
    #[arg(long = "kube-context", global = true, value_name = "CONTEXT")]
    pub kube_context: Option<String>,
    /// If present, the namespace scope for this CLI request (default: the context's namespace)
    #[arg(short = 'n', long, global = true, value_name = "NAMESPACE")]
    pub namespace: Option<String>,
}

/// A client, the namespace commands work in, and the server URL for error messages.
#[derive(Clone)]
pub struct Ctx {
    /// The client.
    pub client: Client,
    /// `--namespace`, else the current context's namespace, else `default`.
    pub namespace: String,
    /// API server URL, for "cannot reach" errors.
    pub server: String,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("namespace", &self.namespace)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// Loads the kubeconfig (`--kubeconfig`, else KUBECONFIG, else ~/.kube/config) and builds
    /// a client for its current (or `--kube-context`) context. Does not contact the server.
    pub async fn connect(global: &Global) -> Result<Self> {
        let options = KubeConfigOptions {
            context: global.kube_context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &global.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
                Config::from_custom_kubeconfig(kubeconfig, &options).await
            }
            None => Config::from_kubeconfig(&options).await,
        }
        .map_err(|e| Error::Kubeconfig(chain(&e)))?;
        let namespace = global
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let server = config.cluster_url.to_string();
        let client = Client::try_from(config).map_err(|e| Error::Kubeconfig(chain(&e)))?;
        Ok(Self {
            client,
            namespace,
            server,
        })
    }

    /// The namespaced API of `K` in the working namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Turns a kube error into the CLI's: transport failures name the server, API refusals
    /// keep the API server's message (which names the field).
    pub fn error(&self, action: &str, error: kube::Error) -> Error {
        match error {
            kube::Error::Api(status) => Error::Api {
                action: action.to_owned(),
                message: status.message.clone(),
                code: status.code,
            },
            kube::Error::HyperError(_) | kube::Error::Service(_) => Error::Unreachable {
                server: self.server.clone(),
                reason: root_cause(&error),
            },
            other => Error::Api {
                action: action.to_owned(),
                message: chain(&other),
                code: 0,
            },
        }
    }

    /// `get`, with 404 as `None`.
    pub async fn get_opt<K>(&self, action: &str, name: &str) -> Result<Option<K>>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.api::<K>()
            .get_opt(name)
            .await
            .map_err(|e| self.error(action, e))
    }
}

/// The innermost cause of an error (for transport errors: "Connection refused (os error 111)").
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

/// An error with its causes, `a: b: c`.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut current = error;
    while let Some(next) = current.source() {
        let part = next.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        current = next;
    }
    text
}
