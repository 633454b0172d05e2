//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one `rivulet controller`
//! replica reconciles at a time.
//!
//! Protocol (client-go's, with its defaults): every replica reads the Lease; the holder renews
//! `renewTime` every [`LeaseConfig::renew_interval`]; a candidate takes the Lease when it has no
//! holder or when its record has not changed for `leaseDurationSeconds` on the candidate's own
//! clock ([`decision`]). Every write is a replace carrying the resourceVersion that was read, so of
//! two racing candidates exactly one wins (the other gets 409 Conflict). A leader that cannot
//! renew for [`LeaseConfig::renew_deadline`] (shorter than the lease duration) steps down before
//! anyone else may take over. On graceful shutdown the holder clears `holderIdentity`, so a
//! standby takes over on its next round instead of waiting for expiry.
//!
//! Leadership only gates the reconcilers ([`supervisor::while_leader`]); losing it never deletes
//! or touches any object besides the Lease.

pub mod decision;
pub mod supervisor;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{info, warn};

use decision::{Decision, View, decide};
pub use supervisor::{DEFAULT_STOP_GRACE, Stop, while_leader};

/// Where the Lease lives, who we are, and the timings.
#[derive(Clone, Debug)]
pub struct LeaseConfig {
    /// Lease name.
    pub name: String,
    /// Lease namespace.
    pub namespace: String,
    /// This replica's `holderIdentity` (see [`default_identity`]).
    pub identity: String,
    /// `leaseDurationSeconds` written on the Lease: how long a silent holder is trusted.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_interval: Duration,
    /// A leader that has not renewed for this long steps down (must be < `lease_duration`).
    pub renew_deadline: Duration,
    /// How often a standby looks at the Lease.
    pub retry_interval: Duration,
}

/// Default Lease name.
pub const DEFAULT_LEASE_NAME: &str = "rivulet-controller";

impl LeaseConfig {
    /// The defaults: 15 s lease, renew every 5 s, step down after 10 s without renewal, standbys
    /// look every 2 s.
    pub fn new(
        name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(15),
            renew_interval: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_interval: Duration::from_secs(2),
        }
    }
}

/// `$POD_NAME`, else `$HOSTNAME`, else the kernel's hostname, else `rivulet`; plus `-` and five
/// random characters, so two processes on one host (or a restarted pod) never share an identity.
pub fn default_identity() -> String {
    let base = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rivulet".to_owned());
    format!("{base}-{}", random_suffix())
}

fn random_suffix() -> String {
    use std::hash::BuildHasher;
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    // std's RandomState is seeded from the OS's randomness and differs per instance: enough
    // entropy for a name suffix without another dependency.
    let mut n = std::hash::RandomState::new().hash_one(std::process::id());
    let base = ALPHABET.len() as u64;
    (0..5)
        .map(|_| {
            let c = ALPHABET[usize::try_from(n % base).unwrap_or(0)];
            n /= base;
            char::from(c)
        })
        .collect()
}

/// The election as the rest of the process sees it.
#[derive(Clone, Debug)]
pub struct Election {
    is_leader: watch::Receiver<bool>,
    last_contact: Arc<Mutex<Option<Instant>>>,
    lease_duration: Duration,
}

impl Election {
    /// Whether we lead now, and every change of it.
    pub fn is_leader(&self) -> watch::Receiver<bool> {
        self.is_leader.clone()
    }

    /// Whether the election loop is running and reached the API server (read or wrote the Lease)
    /// within the last lease duration.
    pub fn is_live(&self) -> bool {
        let last = self.last_contact.lock().map_or(None, |t| *t);
        last.is_some_and(|t| t.elapsed() < self.lease_duration)
    }
}

/// Why a round failed; the loop logs it and tries again.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the Lease failed.
    #[error("reading Lease {lease}: {source}")]
    Read {
        /// namespace/name.
        lease: String,
        /// Cause.
        source: kube::Error,
    },
    /// Creating, renewing, acquiring or releasing the Lease failed.
    #[error("writing Lease {lease}: {source}")]
    Write {
        /// namespace/name.
        lease: String,
        /// Cause.
        source: kube::Error,
    },
}

/// The last version of the Lease record we saw, and since when (our clock).
struct Observed {
    resource_version: Option<String>,
    since: Instant,
}

/// Starts the election. Returns its handle and the loop, which runs until `stop` resolves and then
/// releases the Lease if it holds it. Await `stop` only after the reconcilers have stopped, so the
/// next leader never overlaps with them.
pub fn run(
    client: Client,
    config: LeaseConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> (Election, impl Future<Output = ()> + Send + 'static) {
    let (leading_tx, is_leader) = watch::channel(false);
    let last_contact = Arc::new(Mutex::new(None));
    let election = Election {
        is_leader,
        last_contact: last_contact.clone(),
        lease_duration: config.lease_duration,
    };
    let api: Api<Lease> = Api::namespaced(client, &config.namespace);
    let elector = Elector {
        api,
        lease: format!("{}/{}", config.namespace, config.name),
        config,
        observed: None,
        last_renew: None,
        leading: leading_tx,
        last_contact,
    };
    (election, elector.run(stop))
}

struct Elector {
    api: Api<Lease>,
    lease: String,
    config: LeaseConfig,
    observed: Option<Observed>,
    /// When we last wrote the Lease as its holder.
    last_renew: Option<Instant>,
    leading: watch::Sender<bool>,
    last_contact: Arc<Mutex<Option<Instant>>>,
}

impl Elector {
    async fn run(mut self, stop: impl Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            let leading = match self.round().await {
                Ok(leading) => {
                    self.touch();
                    leading
                }
                Err(e) => {
                    warn!(lease = %self.lease, identity = %self.config.identity, "leader election: {e}");
                    // Keep leading through transient errors until the renew deadline.
                    self.last_renew
                        .is_some_and(|t| t.elapsed() < self.config.renew_deadline)
                }
            };
            if !leading {
                self.last_renew = None;
            }
            self.set_leading(leading);
            let wait = if leading {
                self.config.renew_interval
            } else {
                self.config.retry_interval
            };
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        let held = *self.leading.borrow();
        self.set_leading(false);
        if held {
            match self.release().await {
                Ok(()) => {
                    info!(lease = %self.lease, identity = %self.config.identity, "released the leader Lease");
                }
                Err(e) => warn!(lease = %self.lease, "releasing the leader Lease: {e}"),
            }
        }
    }

    fn touch(&self) {
        if let Ok(mut last) = self.last_contact.lock() {
            *last = Some(Instant::now());
        }
    }

    fn set_leading(&self, leading: bool) {
        let changed = self
            .leading
            .send_if_modified(|l| std::mem::replace(l, leading) != leading);
        if changed {
            info!(lease = %self.lease, identity = %self.config.identity, leading, "leadership changed");
        }
    }

    /// One read and at most one write. `Ok(true)` when we hold the Lease after it.
    async fn round(&mut self) -> Result<bool, Error> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|source| Error::Read {
                lease: self.lease.clone(),
                source,
            })?;
        let Some(lease) = current else {
            return self.create().await;
        };
        let now = Instant::now();
        let version = lease.metadata.resource_version.clone();
        let since = match &self.observed {
            Some(seen) if seen.resource_version == version => seen.since,
            _ => now,
        };
        self.observed = Some(Observed {
            resource_version: version,
            since,
        });
        let spec = lease.spec.clone().unwrap_or_default();
        let view = View {
            holder: spec.holder_identity.as_deref(),
            lease_duration: spec
                .lease_duration_seconds
                .and_then(|s| u64::try_from(s).ok())
                .map(Duration::from_secs),
            unchanged_for: now.duration_since(since),
        };
        match decide(view, &self.config.identity, self.config.lease_duration) {
            Decision::Follow => Ok(false),
            Decision::Renew => {
                let mut renewed = spec;
                renewed.renew_time = Some(now_micro());
                renewed.lease_duration_seconds = Some(self.duration_seconds());
                self.write(lease, renewed).await
            }
            Decision::Acquire => {
                // A change of holder (also after a release) is a transition, as in client-go.
                let transitions = spec.lease_transitions.unwrap_or(0)
                    + i32::from(spec.holder_identity.as_deref() != Some(&self.config.identity));
                let acquired = LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(self.duration_seconds()),
                    acquire_time: Some(now_micro()),
                    renew_time: Some(now_micro()),
                    lease_transitions: Some(transitions),
                    ..spec
                };
                self.write(lease, acquired).await
            }
        }
    }

    /// Replaces the Lease's spec, conditional on the resourceVersion we read. A conflict means
    /// someone else wrote first: we do not hold it (yet); the next round reads again.
    async fn write(&mut self, mut lease: Lease, spec: LeaseSpec) -> Result<bool, Error> {
        lease.spec = Some(spec);
        match self
            .api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(written) => {
                self.observe_own_write(&written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(Error::Write {
                lease: self.lease.clone(),
                source,
            }),
        }
    }

    async fn create(&mut self) -> Result<bool, Error> {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(self.config.name.clone()),
                namespace: Some(self.config.namespace.clone()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.config.identity.clone()),
                lease_duration_seconds: Some(self.duration_seconds()),
                acquire_time: Some(now_micro()),
                renew_time: Some(now_micro()),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(written) => {
                self.observe_own_write(&written);
                Ok(true)
            }
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(source) => Err(Error::Write {
                lease: self.lease.clone(),
                source,
            }),
        }
    }

    fn observe_own_write(&mut self, written: &Lease) {
        let now = Instant::now();
        self.last_renew = Some(now);
        self.observed = Some(Observed {
            resource_version: written.metadata.resource_version.clone(),
            since: now,
        });
    }

    /// Clears `holderIdentity` if we still hold the Lease (conditional on its resourceVersion).
    async fn release(&mut self) -> Result<(), Error> {
        let current = self
            .api
            .get_opt(&self.config.name)
            .await
            .map_err(|source| Error::Read {
                lease: self.lease.clone(),
                source,
            })?;
        let Some(mut lease) = current else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(now_micro());
        self.api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
            .map(|_| ())
            .map_err(|source| Error::Write {
                lease: self.lease.clone(),
                source,
            })
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_differ_and_keep_the_host_name() {
        let a = default_identity();
        let b = default_identity();
        assert_ne!(a, b);
        let (base_a, suffix) = a.rsplit_once('-').unwrap();
        assert_eq!(suffix.len(), 5);
        assert_eq!(Some(base_a), b.rsplit_once('-').map(|(base, _)| base));
    }
}
