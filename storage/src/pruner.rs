//! Fission's archive pruner: every interval, delete the archives no Package references
//! (`spec.source.url` / `spec.deployment.url` `?id=`), except those younger than a grace period,
//! because the CLI uploads an archive before it creates the Package naming it.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use kube::Api;
use kube::api::ListParams;
use rivulet_api::package::Package;
use tokio::sync::watch;

use crate::error::StorageError;
use crate::id::ArchiveId;
use crate::store::{Store, StoredArchive};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrunerConfig {
    /// Time between rounds (Fission: `PRUNE_INTERVAL`, 60 minutes).
    pub interval: Duration,
    /// Archives younger than this are never deleted (Fission: one minute, fixed).
    pub grace: Duration,
}

impl Default for PrunerConfig {
    fn default() -> Self {
        Self {
            interval: Duration::from_hours(1),
            // Longer than Fission's minute: `spec apply` uploads every archive before it
            // creates any Package.
            grace: Duration::from_mins(10),
        }
    }
}

/// What one round did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PruneReport {
    pub deleted: Vec<ArchiveId>,
    /// Archives kept because a Package references them.
    pub referenced: usize,
    /// Unreferenced archives kept because they are younger than the grace period.
    pub young: usize,
}

/// The decision, pure: the ids to delete among `stored`, given the ids Packages reference.
pub fn orphans<S: std::hash::BuildHasher>(
    stored: &[StoredArchive],
    referenced: &HashSet<String, S>,
    now: SystemTime,
    grace: Duration,
) -> Vec<ArchiveId> {
    stored
        .iter()
        .filter(|archive| !referenced.contains(archive.id.as_str()))
        // A modification time in the future (clock skew) counts as young.
        .filter(|archive| {
            now.duration_since(archive.last_modified)
                .is_ok_and(|age| age >= grace)
        })
        .map(|archive| archive.id.clone())
        .collect()
}

/// The archive ids a Package's URLs name. Any URL's `id` counts, whatever its host: an archive
/// kept by mistake costs disk, one deleted by mistake breaks a function.
pub fn referenced_ids(package: &Package) -> impl Iterator<Item = String> + '_ {
    [&package.spec.source, &package.spec.deployment]
        .into_iter()
        .flatten()
        .filter_map(|archive| archive.url.as_deref())
        .filter_map(crate::id_from_url)
}

#[derive(Clone)]
pub struct Pruner {
    client: kube::Client,
    store: Store,
    config: PrunerConfig,
}

impl std::fmt::Debug for Pruner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pruner")
            .field("store", &self.store)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Pruner {
    pub fn new(client: kube::Client, store: Store, config: PrunerConfig) -> Self {
        Self {
            client,
            store,
            config,
        }
    }

    /// One round. Packages are listed before the store (Fission's order), so an archive uploaded
    /// after the Package list is young and kept. A failed Package list deletes nothing.
    pub async fn run_once(&self) -> Result<PruneReport, StorageError> {
        let packages: Api<Package> = Api::all(self.client.clone());
        let referenced: HashSet<String> = packages
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .flat_map(referenced_ids)
            .collect();
        let stored = self.store.list().await?;
        let now = SystemTime::now();
        let doomed = orphans(&stored, &referenced, now, self.config.grace);
        let in_use = stored
            .iter()
            .filter(|a| referenced.contains(a.id.as_str()))
            .count();
        let mut report = PruneReport {
            referenced: in_use,
            young: stored.len() - in_use - doomed.len(),
            ..PruneReport::default()
        };
        for id in doomed {
            match self.store.delete(&id).await {
                Ok(()) | Err(StorageError::NotFound { .. }) => {
                    tracing::info!(%id, "pruned an archive no Package references");
                    report.deleted.push(id);
                }
                // Retried next round, like Fission.
                Err(err) => tracing::warn!(%id, error = %err, "cannot prune an archive"),
            }
        }
        Ok(report)
    }

    /// Rounds every `interval` (the first one after one interval) until `stop` turns true.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut ticker = tokio::time::interval(self.config.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            match self.run_once().await {
                Ok(report) => tracing::debug!(?report, "archive pruner round"),
                Err(err) => {
                    tracing::warn!(error = %err, "archive pruner round failed; retrying next interval");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivulet_api::package::{Archive, PackageSpec};

    fn archive(id: &str, age: Duration, now: SystemTime) -> StoredArchive {
        StoredArchive {
            id: ArchiveId::parse(id).unwrap(),
            size: 1,
            last_modified: now - age,
        }
    }

    #[test]
    fn only_old_unreferenced_archives_are_deleted() {
        let now = SystemTime::now();
        let grace = Duration::from_mins(10);
        let stored = [
            archive("used", Duration::from_hours(5), now),
            archive("old-orphan", Duration::from_hours(5), now),
            archive("just-uploaded", Duration::from_secs(30), now),
            archive("at-grace", grace, now),
        ];
        let referenced: HashSet<String> = ["used".to_owned(), "gone-elsewhere".to_owned()].into();
        let ids: Vec<String> = orphans(&stored, &referenced, now, grace)
            .into_iter()
            .map(|id| id.to_string())
            .collect();
        assert_eq!(ids, ["old-orphan", "at-grace"]);
    }

    #[test]
    fn archives_from_the_future_are_young() {
        let now = SystemTime::now();
        let future = StoredArchive {
            id: ArchiveId::parse("skewed").unwrap(),
            size: 1,
            last_modified: now + Duration::from_hours(1),
        };
        assert!(orphans(&[future], &HashSet::new(), now, Duration::ZERO).is_empty());
    }

    #[test]
    fn both_archives_of_a_package_are_references() {
        let url = |u: &str| Archive {
            url: Some(u.into()),
            ..Archive::default()
        };
        let mut package = Package::new(
            "p",
            PackageSpec {
                source: Some(url("http://storagesvc.fission/v1/archive?id=src-1")),
                deployment: Some(url("http://127.0.0.1:8000/v1/archive?id=dep%2D2")),
                ..PackageSpec::default()
            },
        );
        let ids: Vec<String> = referenced_ids(&package).collect();
        assert_eq!(ids, ["src-1", "dep-2"]);
        package.spec.source = Some(url("https://example.com/code.zip"));
        package.spec.deployment = None;
        assert_eq!(referenced_ids(&package).count(), 0);
    }
}
