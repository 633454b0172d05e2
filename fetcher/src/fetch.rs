//! The fetch and specialize pipeline (reference/fission.md §5.2): read the Package, get the
//! archive (literal or URL with checksum), unpack it under the code directory, write secrets and
//! configmaps, then call the runtime.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use backon::{ExponentialBuilder, Retryable};
use tokio::io::AsyncWriteExt;

use crate::archive::{self, ExtractLimits, ExtractSummary};
use crate::checksum;
use crate::config::Config;
use crate::error::FetcherError;
use crate::http::{self, DownloadLimits, HttpClient};
use crate::package::{Archive, PackageArchives};
use crate::runtime::{self, RetryPolicy, RuntimeTarget};
use crate::source::{ClusterSource, ObjectData, SourceError};
use rivulet_api::specialize::{
    FetchRequest, FetchType, FunctionSpecializeRequest, ObjectReference,
};

/// What a fetch did to the code directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    /// The target existed already; nothing was downloaded (Fission's idempotence rule).
    AlreadyPresent(PathBuf),
    /// A single file was written.
    File(PathBuf),
    /// A zip was extracted into this directory.
    Extracted(PathBuf, ExtractSummary),
}

/// The fetcher: one per pod, shared by all requests.
#[derive(Debug)]
pub struct Fetcher<S> {
    source: S,
    http: HttpClient,
    code_dir: PathBuf,
    secret_dir: PathBuf,
    config_dir: PathBuf,
    limits: ExtractLimits,
    download: DownloadLimits,
    runtime: RuntimeTarget,
    runtime_retry: RetryPolicy,
    package_retry: RetryPolicy,
    runtime_attempts: AtomicU32,
    /// One fetch at a time: concurrent requests for the same pod must not interleave temp files.
    lock: tokio::sync::Mutex<()>,
    temp_counter: AtomicU64,
    /// The requests this pod was specialized with, by code target (`filename`): one per pod, or
    /// one per function on an `infinite` environment's shared pod. A different request for a
    /// target already loaded is refused (409); the same one (the claim retrying) is not.
    specialized: std::sync::Mutex<HashMap<String, FunctionSpecializeRequest>>,
}

impl<S: ClusterSource> Fetcher<S> {
    /// Creates the code, secret and configmap directories (as Fission does at startup).
    pub fn new(config: &Config, source: S) -> Result<Self, FetcherError> {
        let code_dir = config.code_dir_on_host();
        let secret_dir = config.secret_dir_on_host();
        let config_dir = config.config_dir_on_host();
        for dir in [&code_dir, &secret_dir, &config_dir] {
            std::fs::create_dir_all(dir).map_err(|e| FetcherError::io("cannot create", dir, e))?;
        }
        Ok(Self {
            source,
            http: http::client()?,
            code_dir,
            secret_dir,
            config_dir,
            limits: config.limits,
            download: config.download,
            runtime: config.runtime.clone(),
            runtime_retry: config.runtime_retry,
            package_retry: config.package_retry,
            runtime_attempts: AtomicU32::new(0),
            lock: tokio::sync::Mutex::new(()),
            temp_counter: AtomicU64::new(0),
            specialized: std::sync::Mutex::default(),
        })
    }

    /// Connection attempts made to the runtime so far.
    pub fn runtime_attempts(&self) -> u32 {
        self.runtime_attempts.load(Ordering::SeqCst)
    }

    /// `POST /specialize`: fetch, then load the code into the runtime.
    pub async fn specialize(
        &self,
        request: &FunctionSpecializeRequest,
    ) -> Result<(), FetcherError> {
        let _guard = self.lock.lock().await;
        let target = &request.fetch_req.filename;
        if self
            .specialized()
            .get(target)
            .is_some_and(|previous| !previous.same_claim(request))
        {
            return Err(FetcherError::AlreadySpecialized);
        }
        let function_namespace = request
            .load_req
            .function_metadata
            .as_ref()
            .and_then(|m| m.namespace.as_deref());
        let outcome = self
            .fetch_locked(&request.fetch_req, function_namespace)
            .await?;
        tracing::info!(?outcome, "code fetched, calling the runtime");
        runtime::specialize(
            &self.http,
            &self.runtime,
            &request.load_req,
            self.runtime_retry,
            &self.runtime_attempts,
        )
        .await?;
        self.specialized().insert(target.clone(), request.clone());
        Ok(())
    }

    /// Whether any function was loaded into this pod's runtime by this process.
    pub fn is_specialized(&self) -> bool {
        !self.specialized().is_empty()
    }

    fn specialized(&self) -> std::sync::MutexGuard<'_, HashMap<String, FunctionSpecializeRequest>> {
        // A panic while holding this lock cannot leave the map half-written: take it as is.
        self.specialized
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `POST /fetch`: code, secrets and configmaps, no runtime call.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<CodeOutcome, FetcherError> {
        let _guard = self.lock.lock().await;
        self.fetch_locked(request, None).await
    }

    /// Code, then secrets and configmaps. A reference without a namespace means the function's
    /// namespace (the package's when the function is not known, as for `/fetch`).
    async fn fetch_locked(
        &self,
        request: &FetchRequest,
        function_namespace: Option<&str>,
    ) -> Result<CodeOutcome, FetcherError> {
        let outcome = self.fetch_code(request).await?;
        let default_namespace = function_namespace
            .or(request.package.namespace.as_deref())
            .unwrap_or_default();
        for secret in &request.secrets {
            self.write_object("secret", secret, default_namespace, &self.secret_dir, 0o600)
                .await?;
        }
        for config_map in &request.config_maps {
            self.write_object(
                "configmap",
                config_map,
                default_namespace,
                &self.config_dir,
                0o644,
            )
            .await?;
        }
        Ok(outcome)
    }

    async fn fetch_code(&self, request: &FetchRequest) -> Result<CodeOutcome, FetcherError> {
        let filename = checked_filename(&request.filename)?;
        let target = self.code_dir.join(filename);
        if tokio::fs::symlink_metadata(&target).await.is_ok() {
            tracing::info!(target = %target.display(), "code already present, skipping fetch");
            return Ok(CodeOutcome::AlreadyPresent(target));
        }
        let temp = self.temp_path(filename, "download");
        let result = self.fetch_into(request, &temp, &target).await;
        if result.is_err() {
            remove_quietly(&temp).await;
        }
        result
    }

    async fn fetch_into(
        &self,
        request: &FetchRequest,
        temp: &Path,
        target: &Path,
    ) -> Result<CodeOutcome, FetcherError> {
        if request.fetch_type == FetchType::Url {
            // Fission never verifies plain URL fetches: there is no checksum to check against.
            http::download(&self.http, &request.url, temp, self.download).await?;
        } else {
            let package = self.read_package(request).await?;
            let archive = select_archive(&package, request.fetch_type)?;
            self.materialize(archive, temp).await?;
        }

        if !request.keep_archive
            && archive::is_zip(temp).map_err(|e| FetcherError::io("cannot read", temp, e))?
        {
            let unpacked = self.temp_path(&request.filename, "unzip");
            let summary = self.extract(temp, &unpacked).await;
            remove_quietly(temp).await;
            let summary = match summary {
                Ok(summary) => summary,
                Err(err) => {
                    remove_quietly(&unpacked).await;
                    return Err(err);
                }
            };
            rename(&unpacked, target).await?;
            Ok(CodeOutcome::Extracted(target.to_path_buf(), summary))
        } else {
            rename(temp, target).await?;
            Ok(CodeOutcome::File(target.to_path_buf()))
        }
    }

    async fn read_package(&self, request: &FetchRequest) -> Result<PackageArchives, FetcherError> {
        let namespace = request.package.namespace.as_deref().unwrap_or_default();
        let name = request.package.name.as_deref().unwrap_or_default();
        if namespace.is_empty() || name.is_empty() {
            return Err(FetcherError::MissingPackageRef);
        }
        let policy = self.package_retry;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_max_times(policy.attempts.saturating_sub(1) as usize);
        let package = (|| self.source.package(namespace, name))
            .retry(backoff)
            .when(|e| !matches!(e, SourceError::Malformed(_)))
            .await
            .map_err(|err| match err {
                SourceError::NotFound => FetcherError::PackageNotFound {
                    namespace: namespace.into(),
                    name: name.into(),
                },
                SourceError::Malformed(reason) => FetcherError::PackageMalformed {
                    namespace: namespace.into(),
                    name: name.into(),
                    reason,
                },
                SourceError::Api(reason) => FetcherError::ObjectRead {
                    kind: "package",
                    namespace: namespace.into(),
                    name: name.into(),
                    reason,
                },
            })?;
        if let (Some(wanted), Some(found)) =
            (&request.package.resource_version, &package.resource_version)
            && wanted != found
        {
            // Fission only logs this too: the newest package is what should run.
            tracing::info!(%wanted, %found, "package resourceVersion differs from the request");
        }
        Ok(package)
    }

    /// Writes the archive's bytes to `temp`: the literal, or the download verified against its
    /// checksum.
    async fn materialize(&self, archive: &Archive, temp: &Path) -> Result<(), FetcherError> {
        if archive.literal.is_empty() {
            let actual = http::download(&self.http, &archive.url, temp, self.download).await?;
            checksum::verify(&archive.checksum, &actual, &archive.url)
        } else {
            let mut file = tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(temp)
                .await
                .map_err(|e| FetcherError::io("cannot create", temp, e))?;
            file.write_all(&archive.literal)
                .await
                .map_err(|e| FetcherError::io("cannot write", temp, e))?;
            file.sync_all()
                .await
                .map_err(|e| FetcherError::io("cannot sync", temp, e))
        }
    }

    async fn extract(&self, archive: &Path, dest: &Path) -> Result<ExtractSummary, FetcherError> {
        let (archive, dest, limits) = (archive.to_path_buf(), dest.to_path_buf(), self.limits);
        tokio::task::spawn_blocking(move || archive::extract_zip(&archive, &dest, &limits))
            .await
            .map_err(|e| {
                FetcherError::io(
                    "extraction task failed for",
                    PathBuf::new(),
                    std::io::Error::other(e),
                )
            })?
            .map_err(FetcherError::from)
    }

    /// Writes every key of a Secret or ConfigMap to `<base>/<ns>/<name>/<key>`.
    async fn write_object(
        &self,
        kind: &'static str,
        reference: &ObjectReference,
        default_namespace: &str,
        base: &Path,
        mode: u32,
    ) -> Result<(), FetcherError> {
        let namespace = if reference.namespace.is_empty() {
            default_namespace
        } else {
            reference.namespace.as_str()
        };
        let name = reference.name.as_str();
        let unsafe_key = |key: &str| FetcherError::UnsafeKey {
            kind,
            namespace: namespace.into(),
            name: name.into(),
            key: key.into(),
        };
        let ns_part = checked_component(namespace).ok_or_else(|| unsafe_key(namespace))?;
        let name_part = checked_component(name).ok_or_else(|| unsafe_key(name))?;
        let result = if kind == "secret" {
            self.source.secret(namespace, name).await
        } else {
            self.source.config_map(namespace, name).await
        };
        let data: ObjectData = result.map_err(|err| match err {
            SourceError::NotFound => FetcherError::ObjectNotFound {
                kind,
                namespace: namespace.into(),
                name: name.into(),
            },
            SourceError::Malformed(reason) | SourceError::Api(reason) => FetcherError::ObjectRead {
                kind,
                namespace: namespace.into(),
                name: name.into(),
                reason,
            },
        })?;
        let dir = base.join(ns_part).join(name_part);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| FetcherError::io("cannot create", &dir, e))?;
        for (key, value) in &data {
            let file_name = checked_component(key).ok_or_else(|| unsafe_key(key))?;
            let path = dir.join(file_name);
            write_file(&path, value, mode).await?;
        }
        Ok(())
    }

    fn temp_path(&self, filename: &str, purpose: &str) -> PathBuf {
        let n = self.temp_counter.fetch_add(1, Ordering::SeqCst);
        self.code_dir.join(format!(
            ".{filename}.{purpose}.{}.{n}.tmp",
            std::process::id()
        ))
    }
}

/// Picks the archive a fetch type asks for, enforcing the build-status gate for deployments.
pub fn select_archive(
    package: &PackageArchives,
    fetch_type: FetchType,
) -> Result<&Archive, FetcherError> {
    let (archive, which) = match fetch_type {
        FetchType::Source => (&package.source, "source"),
        FetchType::Deployment => {
            if !package.deployment_is_deployable() {
                return Err(FetcherError::BuildNotDeployable {
                    namespace: package.namespace.clone(),
                    name: package.name.clone(),
                    status: package.effective_build_status().to_owned(),
                });
            }
            (&package.deployment, "deployment")
        }
        FetchType::Url => {
            return Err(FetcherError::BadRequest(
                "a url fetch does not read a package archive".into(),
            ));
        }
    };
    if archive.is_empty() {
        return Err(FetcherError::EmptyArchive {
            namespace: package.namespace.clone(),
            name: package.name.clone(),
            which,
        });
    }
    Ok(archive)
}

/// The request's `filename` as one safe path component. Fission joins it with the code directory
/// as is, so `../x` would escape; we refuse it.
pub fn checked_filename(filename: &str) -> Result<&str, FetcherError> {
    if filename.is_empty() {
        return Err(FetcherError::EmptyFilename);
    }
    checked_component(filename).ok_or_else(|| FetcherError::InvalidFilename(filename.into()))
}

fn checked_component(part: &str) -> Option<&str> {
    let bad = part.is_empty() || part == "." || part == ".." || part.contains(['/', '\\', '\0']);
    (!bad).then_some(part)
}

async fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<(), FetcherError> {
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .await
        .map_err(|e| FetcherError::io("cannot create", path, e))?;
    file.write_all(data)
        .await
        .map_err(|e| FetcherError::io("cannot write", path, e))?;
    // An existing file keeps its old mode on open; set it explicitly.
    tokio::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .await
        .map_err(|e| FetcherError::io("cannot chmod", path, e))
}

async fn rename(from: &Path, to: &Path) -> Result<(), FetcherError> {
    tokio::fs::rename(from, to)
        .await
        .map_err(|e| FetcherError::io("cannot move code into", to, e))
}

async fn remove_quietly(path: &Path) {
    match tokio::fs::symlink_metadata(path).await {
        Ok(meta) if meta.is_dir() => {
            let _ = tokio::fs::remove_dir_all(path).await;
        }
        Ok(_) => {
            let _ = tokio::fs::remove_file(path).await;
        }
        Err(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_must_be_one_component() {
        assert!(matches!(
            checked_filename(""),
            Err(FetcherError::EmptyFilename)
        ));
        for bad in ["..", ".", "../etc", "a/b", "a\\b"] {
            assert!(
                matches!(checked_filename(bad), Err(FetcherError::InvalidFilename(_))),
                "{bad}"
            );
        }
        assert_eq!(checked_filename("deployarchive").unwrap(), "deployarchive");
        assert_eq!(checked_filename("5f3c-uid").unwrap(), "5f3c-uid");
    }

    #[test]
    fn deployment_needs_a_deployable_build() {
        let package = PackageArchives {
            namespace: "ns".into(),
            name: "p".into(),
            deployment: Archive::literal(b"x".to_vec()),
            build_status: "failed".into(),
            ..PackageArchives::default()
        };
        let err = select_archive(&package, FetchType::Deployment).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("ns/p") && msg.contains("\"failed\""), "{msg}");
        // The source archive is not gated, but this one is empty.
        assert!(matches!(
            select_archive(&package, FetchType::Source),
            Err(FetcherError::EmptyArchive {
                which: "source",
                ..
            })
        ));
    }
}
