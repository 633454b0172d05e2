//! The node agent's pod side (a kubelet): one worker per pod bound to the agent's nodes, running
//! each container as a local process (or, with `simulate_pods`, nothing at all, like kwok).

pub mod container;
pub mod env;
pub mod ipam;
pub mod launch;
pub mod network;
pub mod probe;
pub mod process;
pub mod sandbox;
pub mod service_account;
pub mod status;
pub mod volumes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::{Api, ResourceExt};
use nix::sys::signal::Signal;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::events::Events;
use crate::images::LiveTable;
use crate::informer::Informer;
use container::{Job, Shared};
use status::{ContainerInfo, State};
use volumes::VolumeContent;

/// What every pod worker shares.
pub struct Ctx {
    pub client: kube::Client,
    pub data_dir: PathBuf,
    pub images: LiveTable,
    pub ipam: ipam::Ipam,
    pub simulate: bool,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// How pods reach the API server (their credentials: `service_account.rs`); `None`: pods
    /// get none.
    pub api: Option<service_account::ApiAccess>,
    /// Containers run under bubblewrap (`sandbox.rs`); `None`: plain processes.
    pub sandbox: Option<sandbox::Sandbox>,
    /// Pods get network namespaces on this bridge (`network.rs`); `None`: the host's network.
    pub network: Option<network::Bridge>,
    pub events: Events,
    pub shutdown: watch::Receiver<bool>,
    /// Process groups of running containers, killed when the agent is dropped.
    pub groups: Arc<ProcessGroups>,
}

/// The process groups the agent started and that still run.
#[derive(Debug, Default)]
pub struct ProcessGroups(std::sync::Mutex<BTreeSet<i32>>);

impl ProcessGroups {
    pub fn insert(&self, pgid: i32) {
        if let Ok(mut g) = self.0.lock() {
            g.insert(pgid);
        }
    }

    pub fn remove(&self, pgid: i32) {
        if let Ok(mut g) = self.0.lock() {
            g.remove(&pgid);
        }
    }

    /// SIGKILL to every group (the last resort when the agent goes away without a shutdown).
    pub fn kill_all(&self) {
        if let Ok(g) = self.0.lock() {
            for pgid in g.iter() {
                process::signal_group(*pgid, Signal::SIGKILL);
            }
        }
    }
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("data_dir", &self.data_dir)
            .field("simulate", &self.simulate)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    /// Environment every container starts from.
    pub fn base_env(&self, pod: &Pod, ip: &str, root: &Path) -> BTreeMap<String, String> {
        let mut env: BTreeMap<String, String> = launch::PASSED_THROUGH
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_string(), v)))
            .collect();
        env.insert("HOSTNAME".into(), pod.name_any());
        // With a network of its own a pod binds 0.0.0.0 like in a cluster (and its containers
        // meet on localhost); on the shared host network only its own address is its own.
        if self.network.is_none() {
            env.insert("RIVULET_BIND_ADDRESS".into(), ip.into());
        }
        env.insert("RIVULET_POD_IP".into(), ip.into());
        env.insert(launch::ROOT_ENV.into(), root.display().to_string());
        if let Some(api) = &self.api {
            env.extend(api.env());
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            let kubeconfig = PodDirs::new(self, &uid)
                .service_account()
                .join(service_account::KUBECONFIG_FILE);
            if self.sandbox.is_none() && kubeconfig.exists() {
                env.insert("KUBECONFIG".into(), kubeconfig.display().to_string());
            }
        }
        env
    }

    fn pids_dir(&self) -> PathBuf {
        self.data_dir.join("pids")
    }
}

/// A pod's directories.
#[derive(Clone, Debug)]
pub struct PodDirs {
    pub uid: String,
    pub base: PathBuf,
    pub volumes: PathBuf,
    pids: PathBuf,
}

impl PodDirs {
    fn new(ctx: &Ctx, uid: &str) -> Self {
        let base = ctx.data_dir.join("pods").join(uid);
        Self {
            uid: uid.into(),
            volumes: base.join("volumes"),
            base,
            pids: ctx.pids_dir(),
        }
    }

    /// The pod's credentials (`service_account.rs`).
    pub fn service_account(&self) -> PathBuf {
        self.base.join("serviceaccount")
    }

    /// The directory that stands for `/` in `container`.
    pub fn root(&self, container: &str) -> PathBuf {
        self.base.join("roots").join(container)
    }

    pub fn pid_file(&self, container: &str) -> PathBuf {
        self.pids.join(format!("{}.{container}.pid", self.uid))
    }
}

/// Runs pods bound to `nodes` until `ctx.shutdown`; then stops every process.
pub async fn run(ctx: Arc<Ctx>, pods: Informer<Pod>, nodes: BTreeSet<String>) {
    tracing::debug!("kubelet starting");
    let reaped = process::reap_orphans(&ctx.pids_dir());
    if reaped > 0 {
        tracing::info!(reaped, "killed processes left by a previous agent");
    }
    let mut changes = pods.subscribe();
    let mut shutdown = ctx.shutdown.clone();
    pods.ready().await;
    let mut workers: Workers = HashMap::new();
    tracing::debug!(?nodes, "kubelet running");
    loop {
        let mut seen = BTreeSet::new();
        for pod in pods.all() {
            let on_ours = pod
                .spec
                .as_ref()
                .and_then(|s| s.node_name.as_ref())
                .is_some_and(|n| nodes.contains(n));
            let Some(uid) = pod.metadata.uid.clone() else {
                continue;
            };
            if !on_ours {
                continue;
            }
            seen.insert(uid.clone());
            if let Some((tx, _)) = workers.get(&uid) {
                tx.send_if_modified(|cur| {
                    let changed = cur.as_ref().is_none_or(|c| {
                        c.metadata.resource_version != pod.metadata.resource_version
                    });
                    if changed {
                        *cur = Some(pod.clone());
                    }
                    changed
                });
            } else {
                tracing::debug!(pod = %pod.name_any(), "starting pod worker");
                let (tx, rx) = watch::channel(Some(pod.clone()));
                let handle = tokio::spawn(run_pod(ctx.clone(), rx));
                workers.insert(uid, (tx, handle));
            }
        }
        for (uid, (tx, _)) in &workers {
            if !seen.contains(uid) {
                let _ = tx.send(None);
            }
        }
        workers.retain(|uid, (_, h)| !h.is_finished() || seen.contains(uid));
        tokio::select! {
            r = changes.changed() => if r.is_err() { break },
            () = crate::stopped(&mut shutdown) => break,
        }
    }
    for (_, (_, handle)) in workers {
        let _ = handle.await;
    }
}

/// Pod workers by pod uid: the channel that feeds them the pod, and their task.
type Workers = HashMap<String, (watch::Sender<Option<Arc<Pod>>>, JoinHandle<()>)>;

/// Why a pod worker stops its containers.
enum Exit {
    /// The pod has a deletionTimestamp: graceful termination, then delete with grace 0.
    Deleted(Arc<Pod>),
    /// The pod object is gone.
    Removed,
    /// The agent stops.
    Shutdown,
}

fn terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Waits for the next change of the pod, or `timeout`; `Some(exit)` when the pod must stop.
async fn next(
    rx: &mut watch::Receiver<Option<Arc<Pod>>>,
    shutdown: &mut watch::Receiver<bool>,
    timeout: Option<Duration>,
    extra: Option<&tokio::sync::Notify>,
) -> Option<Exit> {
    let sleep = async {
        match timeout {
            Some(t) => tokio::time::sleep(t).await,
            None => std::future::pending().await,
        }
    };
    let notified = async {
        match extra {
            Some(n) => n.notified().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = rx.changed() => if r.is_err() { return Some(Exit::Removed) },
        () = crate::stopped(shutdown) => return Some(Exit::Shutdown),
        () = sleep => {},
        () = notified => {},
    }
    exit_of(rx)
}

fn exit_of(rx: &watch::Receiver<Option<Arc<Pod>>>) -> Option<Exit> {
    match rx.borrow().clone() {
        None => Some(Exit::Removed),
        Some(p) if p.metadata.deletion_timestamp.is_some() => Some(Exit::Deleted(p)),
        Some(_) => None,
    }
}

async fn run_pod(ctx: Arc<Ctx>, mut rx: watch::Receiver<Option<Arc<Pod>>>) {
    let Some(pod) = rx.borrow().clone() else {
        return;
    };
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let preferred = pod.status.as_ref().and_then(|s| s.pod_ip.clone());
    let Some(ip) = ctx.ipam.allocate(&uid, preferred.as_deref()) else {
        tracing::error!(pod = %pod.name_any(), "no free loopback address");
        return;
    };
    let ip = ip.to_string();
    let exit = if ctx.simulate {
        simulate(&ctx, &mut rx, &ip).await
    } else if terminal(&pod) {
        finished(&ctx, &mut rx).await
    } else {
        match attach_network(&ctx, &mut rx, &uid, &ip).await {
            Ok(relay) => {
                let exit = real(&ctx, &mut rx, &ip).await;
                if let Some(relay) = relay {
                    relay.abort();
                }
                exit
            }
            Err(exit) => exit,
        }
    };
    if let Some(bridge) = ctx.network.clone() {
        let uid = uid.clone();
        let _ = tokio::task::spawn_blocking(move || bridge.detach(&uid)).await;
    }
    match exit {
        Exit::Deleted(p) => {
            delete_now(&ctx, &p).await;
            let _ = std::fs::remove_dir_all(PodDirs::new(&ctx, &uid).base);
        }
        Exit::Removed => {
            let _ = std::fs::remove_dir_all(PodDirs::new(&ctx, &uid).base);
        }
        Exit::Shutdown => {}
    }
    ctx.ipam.release(&uid);
}

/// Gives the pod its network namespace on the agent's bridge (`network.rs`), retried every 2 s
/// with a `FailedCreatePodSandBox` Event while it fails, and relays the API server into it.
/// `Ok(None)`: pods share the host's network.
async fn attach_network(
    ctx: &Arc<Ctx>,
    rx: &mut watch::Receiver<Option<Arc<Pod>>>,
    uid: &str,
    ip: &str,
) -> Result<Option<tokio::task::JoinHandle<()>>, Exit> {
    let Some(bridge) = ctx.network.clone() else {
        return Ok(None);
    };
    let Ok(address) = ip.parse::<std::net::Ipv4Addr>() else {
        return Ok(None);
    };
    let mut shutdown = ctx.shutdown.clone();
    let mut reported = String::new();
    loop {
        if let Some(exit) = exit_of(rx) {
            return Err(exit);
        }
        let (b, u) = (bridge.clone(), uid.to_owned());
        let attached = tokio::task::spawn_blocking(move || b.attach(&u, address))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        let result = match attached {
            Ok(netns) => match &ctx.api {
                Some(api) if api.host == "127.0.0.1" => network::relay_api(&netns, api.port)
                    .await
                    .map(Some)
                    .map_err(|e| format!("relaying the API server into the pod: {e}")),
                _ => Ok(None),
            },
            Err(e) => Err(e),
        };
        let msg = match result {
            Ok(relay) => return Ok(relay),
            Err(msg) => format!("Failed to create pod sandbox: {msg}"),
        };
        let current = rx.borrow().clone();
        if msg != reported
            && let Some(pod) = current
        {
            let reference = kube::Resource::object_ref(pod.as_ref(), &());
            ctx.events
                .publish(
                    &reference,
                    true,
                    "FailedCreatePodSandBox",
                    "Network",
                    msg.clone(),
                )
                .await;
            tracing::warn!(pod = %pod.name_any(), "{msg}");
            reported = msg;
        }
        if let Some(exit) = next(rx, &mut shutdown, Some(Duration::from_secs(2)), None).await {
            return Err(exit);
        }
    }
}

/// The final step of a graceful delete: remove the object (grace 0, only this incarnation).
async fn delete_now(ctx: &Ctx, pod: &Pod) {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
    let dp = DeleteParams {
        grace_period_seconds: Some(0),
        preconditions: Some(Preconditions {
            uid: pod.metadata.uid.clone(),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    if let Err(e) = api.delete(&pod.name_any(), &dp).await {
        tracing::debug!(pod = %pod.name_any(), error = %e, "final delete failed");
    }
}

async fn write_status(ctx: &Ctx, pod: &Pod, status: &Value, last: &mut Option<Value>) {
    if last.as_ref() == Some(status) {
        return;
    }
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &pod.namespace().unwrap_or_default());
    match api
        .patch_status(
            &pod.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&json!({"status": status})),
        )
        .await
    {
        Ok(_) => *last = Some(status.clone()),
        Err(e) => tracing::debug!(pod = %pod.name_any(), error = %e, "status write failed"),
    }
}

/// `--simulate-pods`: Running and Ready with an address at once; deletion is immediate.
async fn simulate(ctx: &Ctx, rx: &mut watch::Receiver<Option<Arc<Pod>>>, ip: &str) -> Exit {
    let mut shutdown = ctx.shutdown.clone();
    let Some(pod) = rx.borrow().clone() else {
        return Exit::Removed;
    };
    if let Some(exit) = exit_of(rx) {
        return exit;
    }
    let now = crate::time::now_rfc3339();
    let infos: Vec<ContainerInfo> = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| ContainerInfo {
            state: State::Running {
                started_at: now.clone(),
            },
            ready: true,
            started: true,
            ever_ran: true,
            ..ContainerInfo::new(&c.name, c.image.as_deref().unwrap_or_default())
        })
        .collect();
    let status = status::pod_status(&pod, ip, &now, &infos, &now);
    let mut last = None;
    write_status(ctx, &pod, &status, &mut last).await;
    loop {
        if let Some(exit) = next(
            rx,
            &mut shutdown,
            if last.is_none() {
                Some(Duration::from_secs(1))
            } else {
                None
            },
            None,
        )
        .await
        {
            return exit;
        }
        if last.is_none() {
            write_status(ctx, &pod, &status, &mut last).await;
        }
    }
}

/// A pod that already finished (seen again after an agent restart): wait for its deletion.
async fn finished(ctx: &Ctx, rx: &mut watch::Receiver<Option<Arc<Pod>>>) -> Exit {
    let mut shutdown = ctx.shutdown.clone();
    loop {
        if let Some(exit) = exit_of(rx) {
            return exit;
        }
        if let Some(exit) = next(rx, &mut shutdown, None, None).await {
            return exit;
        }
    }
}

/// Volumes of the pod, fetched from the API (configMap and secret content).
/// Writes the pod's ServiceAccount token and its companions into `dir` once (a restarted agent
/// finds them there: the token lives as long as the pod).
async fn credentials(ctx: &Ctx, pod: &Pod, dir: &Path) -> Result<(), String> {
    let Some(api) = &ctx.api else { return Ok(()) };
    if dir.join("token").exists() {
        return Ok(());
    }
    let failed = |e: String| format!("MountVolume.SetUp failed for the ServiceAccount token: {e}");
    let Some(token) = service_account::token(&ctx.client, pod)
        .await
        .map_err(failed)?
    else {
        return Ok(());
    };
    let ns = pod.namespace().unwrap_or_default();
    let files = service_account::files(&token, api, &ns, ctx.sandbox.is_none());
    volumes::materialize(dir, &files).map_err(|e| failed(e.to_string()))
}

async fn volume_contents(ctx: &Ctx, pod: &Pod) -> Result<Vec<(String, VolumeContent)>, String> {
    let ns = pod.namespace().unwrap_or_default();
    let mut out = Vec::new();
    for v in pod.spec.iter().flat_map(|s| s.volumes.iter().flatten()) {
        let content = if let Some(cm) = &v.config_map {
            let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &ns);
            let optional = cm.optional == Some(true);
            match api.get_opt(&cm.name).await.map_err(|e| e.to_string())? {
                None if optional => VolumeContent::Empty,
                None => {
                    return Err(format!(
                        "MountVolume.SetUp failed for volume \"{}\" : configmap \"{}\" not found",
                        v.name, cm.name
                    ));
                }
                Some(obj) => {
                    let mut data: BTreeMap<String, Vec<u8>> = obj
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.into_bytes()))
                        .collect();
                    data.extend(
                        obj.binary_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.0)),
                    );
                    VolumeContent::Files(
                        volumes::key_files(
                            &data,
                            cm.items.as_deref(),
                            cm.default_mode,
                            &format!("configmap {}", cm.name),
                            optional,
                        )
                        .map_err(|e| {
                            format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name)
                        })?,
                    )
                }
            }
        } else if let Some(sec) = &v.secret {
            let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
            let name = sec.secret_name.clone().unwrap_or_default();
            let optional = sec.optional == Some(true);
            match api.get_opt(&name).await.map_err(|e| e.to_string())? {
                None if optional => VolumeContent::Empty,
                None => {
                    return Err(format!(
                        "MountVolume.SetUp failed for volume \"{}\" : secret \"{name}\" not found",
                        v.name
                    ));
                }
                Some(obj) => {
                    let mut data: BTreeMap<String, Vec<u8>> = obj
                        .data
                        .unwrap_or_default()
                        .into_iter()
                        .map(|(k, v)| (k, v.0))
                        .collect();
                    data.extend(
                        obj.string_data
                            .unwrap_or_default()
                            .into_iter()
                            .map(|(k, v)| (k, v.into_bytes())),
                    );
                    VolumeContent::Files(
                        volumes::key_files(
                            &data,
                            sec.items.as_deref(),
                            sec.default_mode,
                            &format!("secret {name}"),
                            optional,
                        )
                        .map_err(|e| {
                            format!("MountVolume.SetUp failed for volume \"{}\" : {e}", v.name)
                        })?,
                    )
                }
            }
        } else if v.downward_api.is_some() {
            VolumeContent::Files(volumes::downward_files(pod, v)?)
        } else if let Some(h) = &v.host_path {
            VolumeContent::Host(PathBuf::from(&h.path))
        } else {
            VolumeContent::Empty
        };
        out.push((v.name.clone(), content));
    }
    Ok(out)
}

/// Pod with its pod IP in status, for downward API values read before the first status write.
fn with_ip(pod: &Pod, ip: &str) -> Pod {
    let mut p = pod.clone();
    let status = p.status.get_or_insert_with(Default::default);
    status.pod_ip = Some(ip.into());
    status.host_ip = Some("127.0.0.1".into());
    p
}

/// One pod's run: what the status is computed from.
struct PodRun<'a> {
    ctx: &'a Arc<Ctx>,
    ip: &'a str,
    first: Arc<Pod>,
    dirs: PodDirs,
    start_time: String,
    shared: Arc<Shared>,
    last: Option<Value>,
}

impl PodRun<'_> {
    async fn write(&mut self, pod: &Pod) {
        let now = crate::time::now_rfc3339();
        let status = status::pod_status_with_init(
            pod,
            self.ip,
            &self.start_time,
            &self.shared.init_snapshot(),
            &self.shared.snapshot(),
            &now,
        );
        write_status(self.ctx, pod, &status, &mut self.last).await;
    }

    fn latest(&self, rx: &watch::Receiver<Option<Arc<Pod>>>) -> Arc<Pod> {
        rx.borrow().clone().unwrap_or_else(|| self.first.clone())
    }

    /// Writes the volumes; a missing ConfigMap/Secret keeps the pod in ContainerCreating (with
    /// a FailedMount event) and is retried.
    async fn prepare_volumes(
        &mut self,
        rx: &mut watch::Receiver<Option<Arc<Pod>>>,
    ) -> Option<Exit> {
        let mut shutdown = self.ctx.shutdown.clone();
        let mut reported = String::new();
        loop {
            if let Some(exit) = exit_of(rx) {
                return Some(exit);
            }
            let latest = self.latest(rx);
            let result = match volume_contents(self.ctx, &with_ip(&latest, self.ip)).await {
                Ok(contents) => contents
                    .iter()
                    .try_for_each(|(name, content)| {
                        volumes::materialize(&self.dirs.volumes.join(name), content)
                    })
                    .map_err(|e| format!("MountVolume.SetUp failed: {e}")),
                Err(e) => Err(e),
            };
            let result = match result {
                Ok(()) => credentials(self.ctx, &latest, &self.dirs.service_account()).await,
                Err(e) => Err(e),
            };
            let Err(msg) = result else { return None };
            self.write(&latest).await;
            if msg != reported {
                let reference = kube::Resource::object_ref(latest.as_ref(), &());
                self.ctx
                    .events
                    .publish(&reference, true, "FailedMount", "Mount", msg.clone())
                    .await;
                reported = msg;
            }
            if let Some(exit) = next(rx, &mut shutdown, Some(Duration::from_secs(2)), None).await {
                return Some(exit);
            }
        }
    }

    /// Runs the init containers one after the other. `Ok(true)`: all succeeded; `Ok(false)`:
    /// one failed for good (the pod is Failed); `Err(exit)`: the pod must stop (after its
    /// processes were stopped).
    async fn run_init(
        &mut self,
        rx: &mut watch::Receiver<Option<Arc<Pod>>>,
        pod: &Arc<Pod>,
        stop_tx: &watch::Sender<bool>,
        stop_rx: &watch::Receiver<bool>,
    ) -> Result<bool, Exit> {
        let mut shutdown = self.ctx.shutdown.clone();
        let inits = pod
            .spec
            .as_ref()
            .and_then(|s| s.init_containers.clone())
            .unwrap_or_default();
        for (idx, container) in inits.into_iter().enumerate() {
            let job = Job {
                ctx: self.ctx.clone(),
                pod: pod.clone(),
                container,
                idx,
                ip: self.ip.to_string(),
                dirs: self.dirs.clone(),
                shared: self.shared.clone(),
                stop: stop_rx.clone(),
                init: true,
            };
            let mut task = tokio::spawn(container::run(job));
            loop {
                let latest = self.latest(rx);
                self.write(&latest).await;
                if task.is_finished() {
                    break;
                }
                let retry = self.last.is_none().then_some(Duration::from_secs(1));
                tokio::select! {
                    _ = &mut task => {}
                    exit = next(rx, &mut shutdown, retry, Some(&self.shared.changed)) => if let Some(exit) = exit {
                        let _ = stop_tx.send(true);
                        self.terminate(&exit, std::slice::from_mut(&mut task)).await;
                        return Err(exit);
                    }
                }
            }
            let ok = self
                .shared
                .init_snapshot()
                .get(idx)
                .is_some_and(|c| matches!(c.state, State::Terminated { exit_code: 0, .. }));
            if !ok {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// preStop hooks, SIGTERM, the grace period, SIGKILL; the last status.
    async fn terminate(&mut self, exit: &Exit, tasks: &mut [JoinHandle<()>]) {
        let grace = match exit {
            Exit::Deleted(p) => p
                .metadata
                .deletion_grace_period_seconds
                .or_else(|| {
                    p.spec
                        .as_ref()
                        .and_then(|s| s.termination_grace_period_seconds)
                })
                .unwrap_or(30),
            Exit::Removed | Exit::Shutdown => 2,
        };
        let deadline =
            Instant::now() + Duration::from_secs(u64::try_from(grace.max(0)).unwrap_or(0));
        if let Exit::Deleted(p) = exit {
            pre_stop(self.ctx, p, &self.shared, &self.dirs, self.ip, deadline).await;
        }
        stop_processes(&self.shared, tasks, deadline).await;
        if let Exit::Deleted(p) = exit {
            self.write(p).await;
        }
    }
}

async fn real(ctx: &Arc<Ctx>, rx: &mut watch::Receiver<Option<Arc<Pod>>>, ip: &str) -> Exit {
    let mut shutdown = ctx.shutdown.clone();
    let Some(first) = rx.borrow().clone() else {
        return Exit::Removed;
    };
    let pod = Arc::new(with_ip(&first, ip));
    let uid = pod.metadata.uid.clone().unwrap_or_default();
    let start_time = first
        .status
        .as_ref()
        .and_then(|s| s.start_time.as_ref())
        .map_or_else(crate::time::now_rfc3339, |t| {
            t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        });
    let infos = |list: Option<&Vec<k8s_openapi::api::core::v1::Container>>,
                 waiting: &str|
     -> Vec<ContainerInfo> {
        list.into_iter()
            .flatten()
            .map(|c| ContainerInfo {
                state: State::waiting(waiting, ""),
                ..ContainerInfo::new(&c.name, c.image.as_deref().unwrap_or_default())
            })
            .collect()
    };
    let spec = pod.spec.as_ref();
    let has_init = spec.is_some_and(|s| s.init_containers.as_ref().is_some_and(|i| !i.is_empty()));
    let main_waiting = if has_init {
        "PodInitializing"
    } else {
        "ContainerCreating"
    };
    let containers = infos(spec.map(|s| &s.containers), main_waiting);
    let targets = std::sync::Mutex::new(vec![None; containers.len()]);
    let shared = Arc::new(Shared {
        infos: std::sync::Mutex::new(containers),
        init_infos: std::sync::Mutex::new(infos(
            spec.and_then(|s| s.init_containers.as_ref()),
            "ContainerCreating",
        )),
        changed: tokio::sync::Notify::new(),
        targets,
    });
    let mut run = PodRun {
        ctx,
        ip,
        first,
        dirs: PodDirs::new(ctx, &uid),
        start_time,
        shared: shared.clone(),
        last: None,
    };
    let _ = std::fs::create_dir_all(run.dirs.base.join("logs"));
    if let Some(exit) = run.prepare_volumes(rx).await {
        return exit;
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    let initialized = match run.run_init(rx, &pod, &stop_tx, &stop_rx).await {
        Ok(ok) => ok,
        Err(exit) => return exit,
    };
    if initialized {
        for (idx, container) in pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .enumerate()
        {
            let job = Job {
                ctx: ctx.clone(),
                pod: pod.clone(),
                container: container.clone(),
                idx,
                ip: ip.to_string(),
                dirs: run.dirs.clone(),
                shared: shared.clone(),
                stop: stop_rx.clone(),
                init: false,
            };
            tasks.push(tokio::spawn(container::run(job)));
        }
    }
    let exit = loop {
        let latest = run.latest(rx);
        run.write(&latest).await;
        // A failed status write is retried after a second.
        let retry = run.last.is_none().then_some(Duration::from_secs(1));
        if let Some(exit) = next(rx, &mut shutdown, retry, Some(&shared.changed)).await {
            break exit;
        }
    };
    let _ = stop_tx.send(true);
    run.terminate(&exit, &mut tasks).await;
    exit
}

/// Runs the containers' `preStop` hooks (exec and sleep), bounded by the grace deadline.
async fn pre_stop(
    ctx: &Ctx,
    pod: &Pod,
    shared: &Shared,
    dirs: &PodDirs,
    ip: &str,
    deadline: Instant,
) {
    let targets = shared.targets.lock().map(|t| t.clone()).unwrap_or_default();
    let hooks = pod
        .spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .enumerate()
        .filter_map(|(idx, c)| {
            let handler = c.lifecycle.as_ref()?.pre_stop.clone()?;
            let root = dirs.root(&c.name);
            let target = targets
                .get(idx)
                .cloned()
                .flatten()
                .unwrap_or_else(|| probe::Target {
                    ip: ip.into(),
                    env: ctx.base_env(pod, ip, &root),
                    cwd: Some(root),
                    inside: None,
                });
            Some(async move {
                if let Some(exec) = &handler.exec {
                    let _ =
                        probe::exec_command(exec.command.as_deref().unwrap_or(&[]), &target).await;
                } else if let Some(sleep) = &handler.sleep {
                    tokio::time::sleep(Duration::from_secs(
                        u64::try_from(sleep.seconds.max(0)).unwrap_or(0),
                    ))
                    .await;
                }
            })
        });
    let all = futures::future::join_all(hooks);
    let _ = tokio::time::timeout_at(deadline.into(), all).await;
}

/// SIGTERM to every container's process group, SIGKILL at the deadline, until all tasks end.
async fn stop_processes(shared: &Shared, tasks: &mut [JoinHandle<()>], deadline: Instant) {
    for c in shared.snapshot().into_iter().chain(shared.init_snapshot()) {
        process::signal_group(c.pid, Signal::SIGTERM);
    }
    // One join for both phases: it remembers which tasks already ended, and a finished
    // JoinHandle must never be polled again (it panics).
    let mut all = std::pin::pin!(futures::future::join_all(tasks.iter_mut()));
    if tokio::time::timeout_at(deadline.into(), &mut all)
        .await
        .is_err()
    {
        for c in shared.snapshot().into_iter().chain(shared.init_snapshot()) {
            process::signal_group(c.pid, Signal::SIGKILL);
        }
        let _ = all.await;
    }
}
