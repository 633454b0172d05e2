//! Where archives live: one object per archive, `<prefix>/<id>`, in any `object_store` backend.

use std::path::Path as FsPath;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, ObjectStoreScheme, WriteMultipart};

use crate::error::StorageError;
use crate::id::ArchiveId;

/// Which backend holds the archives (for `HEAD /v1/archive` and logs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    Local,
    Memory,
    S3,
    Gcs,
    Azure,
}

/// One archive as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredArchive {
    pub id: ArchiveId,
    pub size: u64,
    /// When it was written: the pruner's grace period counts from here.
    pub last_modified: SystemTime,
}

/// The archive store: an `object_store` backend and the prefix archives live under.
#[derive(Clone, Debug)]
pub struct Store {
    inner: Arc<dyn ObjectStore>,
    prefix: Path,
    kind: StorageKind,
    bucket: Option<String>,
}

impl Store {
    /// Archives as files in `dir` (created owner-only if missing).
    pub fn local(dir: &FsPath) -> Result<Self, StorageError> {
        create_private_dir(dir)?;
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)?;
        Ok(Self::with_backend(
            Arc::new(fs),
            StorageKind::Local,
            None,
            Path::default(),
        ))
    }

    /// Archives in memory (tests, throwaway runs).
    pub fn in_memory() -> Self {
        Self::with_backend(
            Arc::new(object_store::memory::InMemory::new()),
            StorageKind::Memory,
            None,
            Path::default(),
        )
    }

    /// Any backend, archives under `prefix`.
    pub fn with_backend(
        inner: Arc<dyn ObjectStore>,
        kind: StorageKind,
        bucket: Option<String>,
        prefix: Path,
    ) -> Self {
        Self {
            inner,
            prefix,
            kind,
            bucket,
        }
    }

    /// A store from a URL: `file:///abs/dir`, `memory:///`, and with the matching cargo feature
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix` (credentials and
    /// region from the SDK's usual environment variables, `AWS_*`, `GOOGLE_*`, `AZURE_*`).
    pub fn from_url(raw: &str) -> Result<Self, StorageError> {
        let unsupported = |reason: &str| StorageError::UnsupportedUrl {
            url: raw.to_owned(),
            reason: reason.to_owned(),
        };
        let url = url::Url::parse(raw).map_err(|e| unsupported(&e.to_string()))?;
        let (scheme, prefix) =
            ObjectStoreScheme::parse(&url).map_err(|e| unsupported(&e.to_string()))?;
        let bucket = url.host_str().map(str::to_owned);
        match scheme {
            ObjectStoreScheme::Local => Self::local(FsPath::new(url.path())),
            ObjectStoreScheme::Memory => Ok(Self::in_memory()),
            ObjectStoreScheme::AmazonS3 => cloud(raw, "s3", StorageKind::S3, bucket, prefix),
            ObjectStoreScheme::GoogleCloudStorage => {
                cloud(raw, "gcs", StorageKind::Gcs, bucket, prefix)
            }
            ObjectStoreScheme::MicrosoftAzure => {
                cloud(raw, "azure", StorageKind::Azure, bucket, prefix)
            }
            _ => Err(unsupported(
                "expected file:///dir, memory:///, s3://bucket, gs://bucket or az://container",
            )),
        }
    }

    pub fn kind(&self) -> StorageKind {
        self.kind
    }

    /// The bucket (S3, GCS) or container (Azure), if any.
    pub fn bucket(&self) -> Option<&str> {
        self.bucket.as_deref()
    }

    fn location(&self, id: &ArchiveId) -> Path {
        self.prefix.clone().join(id.as_str())
    }

    /// Every archive directly under the prefix (objects deeper down or with names that are not
    /// ids are not archives of this service and are left out).
    pub async fn list(&self) -> Result<Vec<StoredArchive>, StorageError> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        let metas: Vec<_> = self.inner.list(prefix).try_collect().await?;
        let depth = self.prefix.parts().count() + 1;
        let mut archives: Vec<StoredArchive> = metas
            .into_iter()
            .filter(|meta| meta.location.parts().count() == depth)
            .filter_map(|meta| {
                let id = ArchiveId::parse(meta.location.filename()?).ok()?;
                Some(StoredArchive {
                    id,
                    size: meta.size,
                    last_modified: SystemTime::from(meta.last_modified),
                })
            })
            .collect();
        archives.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(archives)
    }

    /// One archive's size and age; `NotFound` when it is not there.
    pub async fn head(&self, id: &ArchiveId) -> Result<StoredArchive, StorageError> {
        let meta = self
            .inner
            .head(&self.location(id))
            .await
            .map_err(|e| not_found(e, id))?;
        Ok(StoredArchive {
            id: id.clone(),
            size: meta.size,
            last_modified: SystemTime::from(meta.last_modified),
        })
    }

    /// The archive's size and its bytes as a stream.
    pub async fn get(
        &self,
        id: &ArchiveId,
    ) -> Result<(u64, BoxStream<'static, Result<Bytes, StorageError>>), StorageError> {
        let result = self
            .inner
            .get(&self.location(id))
            .await
            .map_err(|e| not_found(e, id))?;
        let size = result.meta.size;
        Ok((
            size,
            result.into_stream().map_err(StorageError::from).boxed(),
        ))
    }

    /// Deletes an archive; `NotFound` when it is not there.
    pub async fn delete(&self, id: &ArchiveId) -> Result<(), StorageError> {
        self.head(id).await?;
        self.inner
            .delete(&self.location(id))
            .await
            .map_err(|e| not_found(e, id))
    }

    /// Starts writing a new archive; nothing is visible under `id` until [`ArchiveWriter::finish`].
    pub async fn writer(&self, id: &ArchiveId) -> Result<ArchiveWriter, StorageError> {
        let upload = self.inner.put_multipart(&self.location(id)).await?;
        Ok(ArchiveWriter {
            inner: WriteMultipart::new(upload),
            written: 0,
        })
    }

    /// Writes a whole archive at once (small archives, tests).
    pub async fn put(&self, id: &ArchiveId, data: Bytes) -> Result<(), StorageError> {
        self.inner.put(&self.location(id), data.into()).await?;
        Ok(())
    }
}

/// A new archive being written in parts: S3-style multipart uploads (5 MiB parts), a staging file
/// renamed on completion for the local filesystem, so memory stays bounded whatever the size.
#[derive(Debug)]
pub struct ArchiveWriter {
    inner: WriteMultipart,
    written: u64,
}

impl ArchiveWriter {
    /// Parts being uploaded at once at most before `write` waits.
    const MAX_IN_FLIGHT: usize = 4;

    pub async fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.inner.wait_for_capacity(Self::MAX_IN_FLIGHT).await?;
        self.inner.write(data);
        self.written += data.len() as u64;
        Ok(())
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    pub async fn finish(self) -> Result<(), StorageError> {
        self.inner.finish().await?;
        Ok(())
    }

    /// Drops what was written (a rejected upload leaves nothing behind).
    pub async fn abort(self) {
        if let Err(err) = self.inner.abort().await {
            tracing::warn!(error = %err, "cannot abort an archive upload");
        }
    }
}

fn not_found(err: object_store::Error, id: &ArchiveId) -> StorageError {
    match err {
        object_store::Error::NotFound { .. } => StorageError::NotFound { id: id.to_string() },
        other => StorageError::ObjectStore(other),
    }
}

fn create_private_dir(dir: &FsPath) -> Result<(), StorageError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| StorageError::LocalDir {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg_attr(
    not(any(feature = "s3", feature = "gcs", feature = "azure")),
    allow(unused_variables, clippy::unnecessary_wraps, unreachable_code)
)]
fn cloud(
    raw: &str,
    feature: &str,
    kind: StorageKind,
    bucket: Option<String>,
    prefix: Path,
) -> Result<Store, StorageError> {
    let inner: Arc<dyn ObjectStore> = match kind {
        #[cfg(feature = "s3")]
        StorageKind::S3 => Arc::new(
            object_store::aws::AmazonS3Builder::from_env()
                .with_url(raw)
                .build()?,
        ),
        #[cfg(feature = "gcs")]
        StorageKind::Gcs => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(raw)
                .build()?,
        ),
        #[cfg(feature = "azure")]
        StorageKind::Azure => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(raw)
                .build()?,
        ),
        _ => {
            return Err(StorageError::UnsupportedUrl {
                url: raw.to_owned(),
                reason: format!(
                    "this build has no {feature} backend (build rivulet-storage with --features {feature})"
                ),
            });
        }
    };
    Ok(Store::with_backend(inner, kind, bucket, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn archives_are_written_listed_read_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(&dir.path().join("archives")).unwrap();
        let id = ArchiveId::generate().unwrap();
        let mut writer = store.writer(&id).await.unwrap();
        writer.write(b"hello ").await.unwrap();
        writer.write(b"world").await.unwrap();
        assert!(
            store.list().await.unwrap().is_empty(),
            "not visible before finish"
        );
        writer.finish().await.unwrap();

        let listed = store.list().await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].id.clone(), listed[0].size), (id.clone(), 11));
        let (size, body) = store.get(&id).await.unwrap();
        let bytes: Vec<Bytes> = body.try_collect().await.unwrap();
        assert_eq!((size, bytes.concat()), (11, b"hello world".to_vec()));

        store.delete(&id).await.unwrap();
        assert!(matches!(
            store.delete(&id).await,
            Err(StorageError::NotFound { .. })
        ));
        assert!(matches!(
            store.get(&id).await,
            Err(StorageError::NotFound { .. })
        ));
    }

    #[tokio::test]
    async fn an_aborted_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::local(dir.path()).unwrap();
        let id = ArchiveId::generate().unwrap();
        let mut writer = store.writer(&id).await.unwrap();
        writer.write(b"partial").await.unwrap();
        writer.abort().await;
        assert!(store.list().await.unwrap().is_empty());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[tokio::test]
    async fn a_prefix_keeps_archives_apart_from_other_objects() {
        let backend = Arc::new(object_store::memory::InMemory::new());
        let store = Store::with_backend(
            backend.clone(),
            StorageKind::Memory,
            None,
            Path::from("fission-functions"),
        );
        backend
            .put(&Path::from("other/thing"), Bytes::from_static(b"x").into())
            .await
            .unwrap();
        backend
            .put(
                &Path::from("fission-functions/nested/deep"),
                Bytes::from_static(b"x").into(),
            )
            .await
            .unwrap();
        let id = ArchiveId::generate().unwrap();
        store.put(&id, Bytes::from_static(b"zip")).await.unwrap();
        let ids: Vec<_> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, [id]);
    }

    #[test]
    fn urls_choose_the_backend_and_name_missing_features() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("a").display());
        assert_eq!(Store::from_url(&url).unwrap().kind(), StorageKind::Local);
        assert!(dir.path().join("a").is_dir());
        assert_eq!(
            Store::from_url("memory:///").unwrap().kind(),
            StorageKind::Memory
        );
        let err = Store::from_url("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("ftp://host/x"), "{err}");
        #[cfg(not(feature = "s3"))]
        {
            let err = Store::from_url("s3://bucket/p").unwrap_err().to_string();
            assert!(err.contains("--features s3"), "{err}");
        }
    }
}
