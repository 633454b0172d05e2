//! One container's life: plan, start, probe, restart with CrashLoopBackOff, until the pod stops.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, ObjectReference, Pod, Probe};
use nix::sys::signal::Signal;
use tokio::sync::{Notify, mpsc, watch};

use super::env::RefData;
use super::launch::{self, NotStartable};
use super::probe::{self, Target};
use super::process::{self, Launch};
use super::status::{ContainerInfo, State};
use super::{Ctx, PodDirs};
use crate::time::now_rfc3339;

/// How long a container must run for its back-off to be forgotten (kubelet: 2 × max back-off).
fn backoff_reset(ctx: &Ctx) -> Duration {
    ctx.backoff_max * 2
}

/// Shared between the pod worker and its container tasks.
#[derive(Debug)]
pub struct Shared {
    pub infos: Mutex<Vec<ContainerInfo>>,
    /// Init containers, run one after the other before `infos`.
    pub init_infos: Mutex<Vec<ContainerInfo>>,
    pub changed: Notify,
    /// Each container's environment and working directory once planned (for preStop hooks).
    pub targets: Mutex<Vec<Option<Target>>>,
}

impl Shared {
    pub fn update(&self, init: bool, idx: usize, f: impl FnOnce(&mut ContainerInfo)) {
        let list = if init { &self.init_infos } else { &self.infos };
        if let Ok(mut infos) = list.lock()
            && let Some(info) = infos.get_mut(idx)
        {
            f(info);
        }
        self.changed.notify_one();
    }

    pub fn snapshot(&self) -> Vec<ContainerInfo> {
        self.infos.lock().map(|i| i.clone()).unwrap_or_default()
    }

    pub fn init_snapshot(&self) -> Vec<ContainerInfo> {
        self.init_infos
            .lock()
            .map(|i| i.clone())
            .unwrap_or_default()
    }
}

/// Everything a container task needs.
#[derive(Clone, Debug)]
pub struct Job {
    pub ctx: Arc<Ctx>,
    pub pod: Arc<Pod>,
    pub container: Container,
    pub idx: usize,
    pub ip: String,
    pub dirs: PodDirs,
    pub shared: Arc<Shared>,
    pub stop: watch::Receiver<bool>,
    /// An init container: runs to completion (restarted on failure unless the pod's policy is
    /// `Never`), and its status goes to `initContainerStatuses`.
    pub init: bool,
}

impl Job {
    fn update(&self, f: impl FnOnce(&mut ContainerInfo)) {
        self.shared.update(self.init, self.idx, f);
    }

    fn container(&self) -> &Container {
        &self.container
    }

    fn reference(&self) -> ObjectReference {
        let mut r = kube::Resource::object_ref(self.pod.as_ref(), &());
        let list = if self.init {
            "initContainers"
        } else {
            "containers"
        };
        r.field_path = Some(format!("spec.{list}{{{}}}", self.container().name));
        r
    }

    async fn event(&self, warning: bool, reason: &str, note: String) {
        self.ctx
            .events
            .publish(&self.reference(), warning, reason, reason, note)
            .await;
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `d` unless the pod stops first; returns whether it is stopping.
    async fn pause(&mut self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            () = tokio::time::sleep(d) => self.stopping(),
            () = crate::stopped(&mut stop) => true,
        }
    }
}

/// Runs the container until the pod stops or the restart policy says it is done.
pub async fn run(mut job: Job) {
    let pod_policy = job
        .pod
        .spec
        .as_ref()
        .and_then(|s| s.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    let policy = if job.init && pod_policy == "Always" {
        "OnFailure".to_string()
    } else {
        pod_policy
    };
    let mut failures_in_row: u32 = 0;
    let mut last_problem = String::new();
    loop {
        if job.stopping() {
            return;
        }
        let plan = match plan(&job).await {
            Ok(p) => p,
            Err(why) => {
                if why.message != last_problem {
                    let reason = if why.reason == "ImageNotMapped" {
                        "Failed"
                    } else {
                        why.reason
                    };
                    job.event(
                        true,
                        reason,
                        format!("Error: {}: {}", why.reason, why.message),
                    )
                    .await;
                    last_problem.clone_from(&why.message);
                }
                job.update(|i| {
                    i.state = State::waiting(why.reason, why.message.clone());
                });
                if job.pause(Duration::from_secs(2)).await {
                    return;
                }
                continue;
            }
        };
        last_problem.clear();
        let began = Instant::now();
        let terminated = run_once(&mut job, &plan).await;
        let State::Terminated { exit_code, .. } = terminated else {
            return;
        };
        let restart = !job.stopping()
            && match policy.as_str() {
                "Never" => false,
                "OnFailure" => exit_code != 0,
                _ => true,
            };
        job.update(|i| {
            i.state = terminated.clone();
            i.ready = false;
            i.started = false;
            i.pid = 0;
            i.ever_ran = true;
            i.done = !restart;
        });
        if !restart {
            return;
        }
        if began.elapsed() >= backoff_reset(&job.ctx) {
            failures_in_row = 0;
        }
        let delay = backoff(job.ctx.backoff_base, job.ctx.backoff_max, failures_in_row);
        failures_in_row += 1;
        if !delay.is_zero() && back_off(&mut job, delay, &terminated).await {
            return;
        }
        job.update(|i| {
            i.last = Some(terminated.clone());
            i.restart_count += 1;
        });
    }
}

/// The delay before restart number `failures_in_row + 1`: like the kubelet, the first restart
/// is immediate, then 1, 2, 4, ... × base, capped at max.
pub fn backoff(base: Duration, max: Duration, failures_in_row: u32) -> Duration {
    if failures_in_row == 0 {
        Duration::ZERO
    } else {
        base.saturating_mul(1 << (failures_in_row - 1).min(20))
            .min(max)
    }
}

/// Reports CrashLoopBackOff and waits `delay`; returns whether the pod is stopping.
async fn back_off(job: &mut Job, delay: Duration, terminated: &State) -> bool {
    let name = job.container().name.clone();
    let pod = &job.pod.metadata;
    let pod_name = pod.name.clone().unwrap_or_default();
    let msg = format!(
        "back-off {} restarting failed container={name} pod={pod_name}_{}({})",
        human(delay),
        pod.namespace.as_deref().unwrap_or_default(),
        pod.uid.as_deref().unwrap_or_default()
    );
    job.update(|i| {
        i.last = Some(terminated.clone());
        i.state = State::waiting("CrashLoopBackOff", msg);
    });
    job.event(
        true,
        "BackOff",
        format!("Back-off restarting failed container {name} in pod {pod_name}"),
    )
    .await;
    job.pause(delay).await
}

/// Starts one instance and waits for its end; returns its terminated state.
async fn run_once(job: &mut Job, plan: &launch::Plan) -> State {
    let name = job.container().name.clone();
    let logs = crate::logs::paths(&job.ctx.data_dir, &job.dirs.uid, &name);
    if logs.current.exists() {
        let _ = std::fs::rename(&logs.current, &logs.previous);
    }
    let _ = std::fs::write(&logs.running, b"");
    let launch = Launch {
        program: plan.program.clone(),
        args: plan.args.clone(),
        env: plan.env.clone(),
        cwd: Some(plan.cwd.clone()),
        log: logs.current.clone(),
        pid_file: job.dirs.pid_file(&name),
    };
    let started_at = now_rfc3339();
    let (exit_code, reason, message) = match process::start(&launch) {
        Err(e) => {
            let _ = std::fs::remove_file(&logs.running);
            let msg = format!("failed to start {:?}: {e}", plan.program);
            job.event(true, "Failed", format!("Error: {msg}")).await;
            (128, "StartError".to_string(), msg)
        }
        Ok(mut started) => {
            let pumps = std::mem::take(&mut started.pumps);
            job.event(false, "Started", format!("Started container {name}"))
                .await;
            let inside = job.ctx.sandbox.as_ref().and_then(|s| {
                Some(super::sandbox::Inside {
                    nsenter: s.nsenter.clone()?,
                    bwrap_pid: started.pid,
                    workdir: plan.workdir.clone(),
                })
            });
            let target = Target {
                ip: job.ip.clone(),
                env: plan.env.clone(),
                cwd: Some(plan.cwd.clone()),
                inside,
            };
            if let Ok(mut targets) = job.shared.targets.lock()
                && !job.init
                && let Some(slot) = targets.get_mut(job.idx)
            {
                *slot = Some(target.clone());
            }
            let pgid = started.pid;
            job.ctx.groups.insert(pgid);
            let (code, reason) = supervise(job, started, target, &started_at).await;
            super::process::drained(pumps).await;
            job.ctx.groups.remove(pgid);
            let _ = std::fs::remove_file(&logs.running);
            let _ = std::fs::remove_file(&launch.pid_file);
            let fallback = job.container().termination_message_policy.as_deref()
                == Some("FallbackToLogsOnError");
            let message = if code != 0 && fallback {
                let content = std::fs::read_to_string(&logs.current).unwrap_or_default();
                crate::logs::termination_message(&content)
            } else {
                String::new()
            };
            (code, reason, message)
        }
    };
    State::Terminated {
        exit_code,
        reason,
        message,
        started_at,
        finished_at: now_rfc3339(),
    }
}

fn human(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 60 && s.is_multiple_of(60) {
        format!("{}m0s", s / 60)
    } else if s > 0 {
        format!("{s}s")
    } else {
        format!("{}ms", d.as_millis())
    }
}

async fn plan(job: &Job) -> Result<launch::Plan, NotStartable> {
    let c = job.container();
    let (table, _) = job.ctx.images.current();
    let image = c.image.clone().unwrap_or_default();
    let refs = fetch_refs(job).await;
    let root = job.dirs.root(&c.name);
    super::volumes::build_root(&root, &job.dirs.volumes, c).map_err(|e| NotStartable {
        reason: "CreateContainerError",
        message: format!("preparing the container root {}: {e}", root.display()),
    })?;
    let base = job.ctx.base_env(&job.pod, &job.ip, &root);
    let plan = launch::plan(
        &job.pod,
        c,
        &launch::Context {
            entry: table.lookup(&image),
            table_path: job.ctx.images.path(),
            base_env: &base,
            refs: &refs,
            root: &root,
        },
    )?;
    Ok(match &job.ctx.sandbox {
        None => plan,
        Some(sandbox) => {
            let mut mounts = super::sandbox::mounts(&job.pod, c, &job.dirs.volumes);
            let credentials = job.dirs.service_account();
            if credentials.join("token").exists() {
                mounts.push(super::sandbox::Mount {
                    source: credentials,
                    target: super::service_account::MOUNT_PATH.into(),
                    read_only: true,
                });
            }
            let mounts = super::sandbox::resolve_targets(mounts);
            let shadows = sandbox.shadows(&mounts);
            let hostname = job.pod.metadata.name.clone().unwrap_or_default();
            let mut wrapped = super::sandbox::wrap(sandbox, &plan, &mounts, &shadows, &hostname);
            if let Some(bridge) = &job.ctx.network {
                (wrapped.program, wrapped.args) =
                    bridge.enter(&job.dirs.uid, &wrapped.program, &wrapped.args);
            }
            wrapped
        }
    })
}

async fn fetch_refs(job: &Job) -> RefData {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};
    let ns = job.pod.metadata.namespace.clone().unwrap_or_default();
    let (cms, secrets) = super::env::referenced(&job.pod);
    let mut refs = RefData::default();
    let cm_api: kube::Api<ConfigMap> = kube::Api::namespaced(job.ctx.client.clone(), &ns);
    for name in cms {
        let data = cm_api
            .get_opt(&name)
            .await
            .ok()
            .flatten()
            .map(|cm| cm.data.unwrap_or_default());
        refs.config_maps.insert(name, data);
    }
    let s_api: kube::Api<Secret> = kube::Api::namespaced(job.ctx.client.clone(), &ns);
    for name in secrets {
        let data = s_api.get_opt(&name).await.ok().flatten().map(|s| {
            let mut m: std::collections::BTreeMap<String, String> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                .collect();
            m.extend(s.string_data.unwrap_or_default());
            m
        });
        refs.secrets.insert(name, data);
    }
    refs
}

/// Waits for the process to exit while probing it. Returns the exit code and reason.
async fn supervise(
    job: &mut Job,
    mut started: process::Started,
    target: Target,
    started_at: &str,
) -> (i32, String) {
    let pid = started.pid;
    let c = job.container().clone();
    let has_startup = c.startup_probe.is_some();
    let has_readiness = c.readiness_probe.is_some();
    job.update(|i| {
        i.state = State::Running {
            started_at: started_at.to_string(),
        };
        i.pid = pid;
        i.ever_ran = true;
        i.started = !has_startup;
        i.ready = !has_startup && !has_readiness;
    });
    let (kill_tx, mut kill_rx) = mpsc::channel::<String>(1);
    let prober = tokio::spawn(probe_loop(job.clone(), c, target, kill_tx));
    let mut stop = job.stop.clone();
    let mut killed_for: Option<String> = None;
    let status = loop {
        tokio::select! {
            s = started.child.wait() => break s,
            Some(why) = kill_rx.recv(), if killed_for.is_none() => {
                job.event(false, "Killing", why.clone()).await;
                process::signal_group(pid, Signal::SIGTERM);
                killed_for = Some(why);
                let grace = job.pod.spec.as_ref().and_then(|s| s.termination_grace_period_seconds).unwrap_or(30);
                let deadline = Duration::from_secs(u64::try_from(grace.max(1)).unwrap_or(30));
                let child = &mut started.child;
                if let Ok(s) = tokio::time::timeout(deadline, child.wait()).await {
                    break s;
                }
                process::signal_group(pid, Signal::SIGKILL);
            }
            () = crate::stopped(&mut stop) => {
                // The pod worker also signals every group it knows, and SIGKILLs at the deadline;
                // this covers a process that started while the stop was being decided.
                process::signal_group(pid, Signal::SIGTERM);
                break started.child.wait().await;
            }
        }
    };
    prober.abort();
    // Whatever the leader left behind in its group goes with it.
    process::signal_group(pid, Signal::SIGKILL);
    let code = status.map_or(128, process::exit_code);
    let reason = if code == 0 { "Completed" } else { "Error" };
    (code, reason.to_string())
}

fn period(p: &Probe) -> Duration {
    Duration::from_secs(u64::try_from(p.period_seconds.unwrap_or(10).max(1)).unwrap_or(10))
}

fn initial_delay(p: &Probe) -> Duration {
    Duration::from_secs(u64::try_from(p.initial_delay_seconds.unwrap_or(0).max(0)).unwrap_or(0))
}

/// Startup, then readiness and liveness probes, as the kubelet runs them.
async fn probe_loop(job: Job, c: Container, target: Target, kill: mpsc::Sender<String>) {
    if let Some(p) = &c.startup_probe {
        tokio::time::sleep(initial_delay(p)).await;
        let threshold = p.failure_threshold.unwrap_or(3).max(1);
        let mut failures = 0;
        loop {
            match probe::run(p, &c, &target).await {
                Ok(()) => break,
                Err(e) => {
                    failures += 1;
                    if failures >= threshold {
                        let _ = kill
                            .send(format!(
                                "Container {} failed startup probe, will be restarted: {e}",
                                c.name
                            ))
                            .await;
                        return;
                    }
                }
            }
            tokio::time::sleep(period(p)).await;
        }
        let ready_now = c.readiness_probe.is_none();
        job.update(|i| {
            i.started = true;
            i.ready = ready_now;
        });
    }
    tokio::join!(
        readiness_loop(&job, &c, &target),
        liveness_loop(&job, &c, &target, &kill)
    );
}

async fn readiness_loop(job: &Job, c: &Container, target: &Target) {
    let Some(p) = &c.readiness_probe else { return };
    tokio::time::sleep(initial_delay(p)).await;
    let (ok_needed, fail_needed) = (
        p.success_threshold.unwrap_or(1).max(1),
        p.failure_threshold.unwrap_or(3).max(1),
    );
    let (mut oks, mut fails, mut ready, mut last_error) = (0, 0, false, String::new());
    loop {
        match probe::run(p, c, target).await {
            Ok(()) => {
                oks += 1;
                fails = 0;
                if !ready && oks >= ok_needed {
                    ready = true;
                    job.update(|i| i.ready = true);
                }
            }
            Err(e) => {
                fails += 1;
                oks = 0;
                if ready && fails >= fail_needed {
                    ready = false;
                    job.update(|i| i.ready = false);
                }
                if e != last_error {
                    job.event(true, "Unhealthy", format!("Readiness probe failed: {e}"))
                        .await;
                    last_error = e;
                }
            }
        }
        tokio::time::sleep(period(p)).await;
    }
}

async fn liveness_loop(job: &Job, c: &Container, target: &Target, kill: &mpsc::Sender<String>) {
    let Some(p) = &c.liveness_probe else { return };
    tokio::time::sleep(initial_delay(p)).await;
    let threshold = p.failure_threshold.unwrap_or(3).max(1);
    let mut failures = 0;
    loop {
        match probe::run(p, c, target).await {
            Ok(()) => failures = 0,
            Err(e) => {
                failures += 1;
                job.event(true, "Unhealthy", format!("Liveness probe failed: {e}"))
                    .await;
                if failures >= threshold {
                    let _ = kill
                        .send(format!(
                            "Container {} failed liveness probe, will be restarted",
                            c.name
                        ))
                        .await;
                    return;
                }
            }
        }
        tokio::time::sleep(period(p)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_second_restart_up_to_the_cap() {
        let (base, max) = (Duration::from_secs(10), Duration::from_mins(5));
        let delays: Vec<u64> = (0..8).map(|n| backoff(base, max, n).as_secs()).collect();
        assert_eq!(delays, vec![0, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(human(Duration::from_mins(5)), "5m0s");
        assert_eq!(human(Duration::from_secs(20)), "20s");
    }
}
