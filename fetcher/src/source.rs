//! Where the fetcher reads Packages, Secrets and ConfigMaps. A trait, so tests and embedders can
//! use [`InMemorySource`]; pods use [`KubeSource`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use rivulet_api::Package;

use crate::package::PackageArchives;

/// Data of a Secret or ConfigMap: key → bytes.
pub type ObjectData = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    #[error("not found")]
    NotFound,
    #[error("malformed object: {0}")]
    Malformed(String),
    #[error("{0}")]
    Api(String),
}

/// Read access to the objects a specialization needs.
pub trait ClusterSource: Send + Sync + 'static {
    fn package(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<PackageArchives, SourceError>> + Send;

    fn secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<ObjectData, SourceError>> + Send;

    /// `data` and `binaryData` merged.
    fn config_map(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<ObjectData, SourceError>> + Send;
}

type Key = (String, String);

/// An in-memory [`ClusterSource`], for tests and for embedding the fetcher without an API server.
#[derive(Debug, Clone, Default)]
pub struct InMemorySource {
    inner: Arc<Mutex<Objects>>,
}

#[derive(Debug, Default)]
struct Objects {
    packages: HashMap<Key, PackageArchives>,
    secrets: HashMap<Key, ObjectData>,
    config_maps: HashMap<Key, ObjectData>,
}

impl InMemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores the package under its own `namespace`/`name`.
    pub fn insert_package(&self, package: PackageArchives) {
        let key = (package.namespace.clone(), package.name.clone());
        self.lock().packages.insert(key, package);
    }

    pub fn insert_secret(&self, namespace: &str, name: &str, data: ObjectData) {
        self.lock().secrets.insert(key(namespace, name), data);
    }

    pub fn insert_config_map(&self, namespace: &str, name: &str, data: ObjectData) {
        self.lock().config_maps.insert(key(namespace, name), data);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Objects> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn key(namespace: &str, name: &str) -> Key {
    (namespace.to_owned(), name.to_owned())
}

impl ClusterSource for InMemorySource {
    async fn package(&self, namespace: &str, name: &str) -> Result<PackageArchives, SourceError> {
        self.lock()
            .packages
            .get(&key(namespace, name))
            .cloned()
            .ok_or(SourceError::NotFound)
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<ObjectData, SourceError> {
        self.lock()
            .secrets
            .get(&key(namespace, name))
            .cloned()
            .ok_or(SourceError::NotFound)
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<ObjectData, SourceError> {
        self.lock()
            .config_maps
            .get(&key(namespace, name))
            .cloned()
            .ok_or(SourceError::NotFound)
    }
}

/// Reads from the Kubernetes API with the pod's credentials (in-cluster config or `KUBECONFIG`).
#[derive(Clone)]
pub struct KubeSource {
    client: kube::Client,
}

impl std::fmt::Debug for KubeSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeSource").finish_non_exhaustive()
    }
}

impl KubeSource {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// Builds the client from the environment: in-cluster service account, else `KUBECONFIG`.
    pub async fn from_env() -> Result<Self, kube::Error> {
        Ok(Self::new(kube::Client::try_default().await?))
    }
}

fn source_error(err: kube::Error) -> SourceError {
    match err {
        kube::Error::Api(status) if status.code == 404 => SourceError::NotFound,
        kube::Error::SerdeError(e) => SourceError::Malformed(e.to_string()),
        other => SourceError::Api(other.to_string()),
    }
}

impl ClusterSource for KubeSource {
    async fn package(&self, namespace: &str, name: &str) -> Result<PackageArchives, SourceError> {
        let api: Api<Package> = Api::namespaced(self.client.clone(), namespace);
        let package = api.get(name).await.map_err(source_error)?;
        Ok(PackageArchives::from_package(&package))
    }

    async fn secret(&self, namespace: &str, name: &str) -> Result<ObjectData, SourceError> {
        let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let secret = api.get(name).await.map_err(source_error)?;
        let mut data: ObjectData = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect();
        // stringData is write-only on a real API server, but a simple store may return it.
        for (k, v) in secret.string_data.unwrap_or_default() {
            data.entry(k).or_insert_with(|| v.into_bytes());
        }
        Ok(data)
    }

    async fn config_map(&self, namespace: &str, name: &str) -> Result<ObjectData, SourceError> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let config_map = api.get(name).await.map_err(source_error)?;
        let mut data: ObjectData = config_map
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.into_bytes()))
            .collect();
        for (k, v) in config_map.binary_data.unwrap_or_default() {
            data.insert(k, v.0);
        }
        Ok(data)
    }
}
