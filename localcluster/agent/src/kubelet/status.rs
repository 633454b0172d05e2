//! Pod status from what the agent knows about its containers (pure).

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

/// State of one container instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    Waiting {
        reason: String,
        message: String,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: String,
        started_at: String,
        finished_at: String,
    },
}

impl State {
    pub fn waiting(reason: &str, message: impl Into<String>) -> Self {
        State::Waiting {
            reason: reason.into(),
            message: message.into(),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if !message.is_empty() {
                    w["message"] = json!(message);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated {
                exit_code,
                reason,
                message,
                started_at,
                finished_at,
            } => {
                let mut t = json!({"exitCode": exit_code, "reason": reason, "startedAt": started_at, "finishedAt": finished_at});
                if !message.is_empty() {
                    t["message"] = json!(message);
                }
                json!({"terminated": t})
            }
        }
    }
}

/// What the agent tracks per container.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerInfo {
    pub name: String,
    pub image: String,
    pub state: State,
    pub last: Option<State>,
    pub ready: bool,
    pub started: bool,
    pub restart_count: i32,
    pub pid: i32,
    /// Ran at least once.
    pub ever_ran: bool,
    /// Terminated and will not be restarted.
    pub done: bool,
}

impl ContainerInfo {
    pub fn new(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            state: State::waiting("ContainerCreating", ""),
            last: None,
            ready: false,
            started: false,
            restart_count: 0,
            pid: 0,
            ever_ran: false,
            done: false,
        }
    }
}

fn succeeded(c: &ContainerInfo) -> bool {
    matches!(c.state, State::Terminated { exit_code: 0, .. })
}

/// Every init container finished successfully.
pub fn initialized(init: &[ContainerInfo]) -> bool {
    init.iter().all(succeeded)
}

/// The pod phase from its init containers and containers.
pub fn pod_phase(init: &[ContainerInfo], containers: &[ContainerInfo]) -> &'static str {
    if init.iter().any(|c| c.done && !succeeded(c)) {
        return "Failed";
    }
    if !initialized(init) {
        return "Pending";
    }
    phase(containers)
}

/// The pod phase from its containers.
pub fn phase(containers: &[ContainerInfo]) -> &'static str {
    if containers.iter().any(|c| !c.ever_ran) {
        return "Pending";
    }
    if !containers.is_empty() && containers.iter().all(|c| c.done) {
        let ok = containers
            .iter()
            .all(|c| matches!(c.state, State::Terminated { exit_code: 0, .. }));
        return if ok { "Succeeded" } else { "Failed" };
    }
    "Running"
}

fn condition(previous: &Pod, type_: &str, ok: bool, reason: Option<&str>, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = previous
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == type_))
        .filter(|c| c.status == status)
        .and_then(|c| c.last_transition_time.as_ref())
        .map_or_else(
            || now.to_string(),
            |t| t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        );
    let mut c = json!({"type": type_, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    c
}

/// The pod's `status` given its containers, keeping transition times from `pod`'s current status.
pub fn pod_status(
    pod: &Pod,
    ip: &str,
    start_time: &str,
    containers: &[ContainerInfo],
    now: &str,
) -> Value {
    pod_status_with_init(pod, ip, start_time, &[], containers, now)
}

fn container_statuses(containers: &[ContainerInfo]) -> Vec<Value> {
    containers
        .iter()
        .map(|c| {
            let mut s = json!({
                "name": c.name, "image": c.image, "imageID": "",
                "ready": c.ready, "started": c.started, "restartCount": c.restart_count,
                "state": c.state.to_json(),
                "lastState": c.last.as_ref().map_or(json!({}), State::to_json),
            });
            if c.pid > 0 {
                s["containerID"] = json!(format!("rivulet://{}", c.pid));
            }
            s
        })
        .collect()
}

/// [`pod_status`] for a pod with init containers.
pub fn pod_status_with_init(
    pod: &Pod,
    ip: &str,
    start_time: &str,
    init: &[ContainerInfo],
    containers: &[ContainerInfo],
    now: &str,
) -> Value {
    let phase = pod_phase(init, containers);
    let all_ready = !containers.is_empty() && containers.iter().all(|c| c.ready);
    let not_ready_reason = if matches!(phase, "Succeeded" | "Failed") {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let reason = (!all_ready).then_some(not_ready_reason);
    let statuses = container_statuses(containers);
    let init_done = initialized(init);
    let mut status = json!({
        "phase": phase,
        "conditions": [
            condition(pod, "PodReadyToStartContainers", true, None, now),
            condition(
                pod,
                "Initialized",
                init_done,
                (!init_done).then_some("ContainersNotInitialized"),
                now
            ),
            condition(pod, "Ready", all_ready, reason, now),
            condition(pod, "ContainersReady", all_ready, reason, now),
            condition(pod, "PodScheduled", true, None, now),
        ],
        "hostIP": "127.0.0.1",
        "hostIPs": [{"ip": "127.0.0.1"}],
        "podIP": ip,
        "podIPs": [{"ip": ip}],
        "startTime": start_time,
        "qosClass": "BestEffort",
        "containerStatuses": statuses,
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(container_statuses(init));
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(state: State, done: bool, ever: bool, ready: bool) -> ContainerInfo {
        ContainerInfo {
            state,
            done,
            ever_ran: ever,
            ready,
            ..ContainerInfo::new("c", "i")
        }
    }

    #[test]
    fn phases() {
        let run = State::Running {
            started_at: "t".into(),
        };
        let exit = |code| State::Terminated {
            exit_code: code,
            reason: String::new(),
            message: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
        };
        assert_eq!(
            phase(&[c(
                State::waiting("ContainerCreating", ""),
                false,
                false,
                false
            )]),
            "Pending"
        );
        assert_eq!(phase(&[c(run.clone(), false, true, true)]), "Running");
        assert_eq!(
            phase(&[c(exit(0), true, true, false), c(exit(0), true, true, false)]),
            "Succeeded"
        );
        assert_eq!(
            phase(&[c(exit(0), true, true, false), c(exit(1), true, true, false)]),
            "Failed"
        );
        assert_eq!(phase(&[c(exit(1), false, true, false)]), "Running");
    }

    #[test]
    fn init_containers_gate_the_phase() {
        let exit = |code| State::Terminated {
            exit_code: code,
            reason: String::new(),
            message: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
        };
        let waiting = c(State::waiting("PodInitializing", ""), false, false, false);
        assert_eq!(
            pod_phase(
                &[c(
                    State::Running {
                        started_at: "t".into()
                    },
                    false,
                    true,
                    false
                )],
                std::slice::from_ref(&waiting)
            ),
            "Pending"
        );
        assert_eq!(
            pod_phase(
                &[c(exit(1), true, true, false)],
                std::slice::from_ref(&waiting)
            ),
            "Failed"
        );
        assert_eq!(
            pod_phase(
                &[c(exit(0), true, true, false)],
                &[c(
                    State::Running {
                        started_at: "t".into()
                    },
                    false,
                    true,
                    true
                )]
            ),
            "Running"
        );
        let s = pod_status_with_init(
            &Pod::default(),
            "ip",
            "t",
            &[c(exit(1), false, true, false)],
            &[waiting],
            "now",
        );
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["exitCode"],
            1
        );
    }

    #[test]
    fn ready_conditions_follow_containers() {
        let pod = Pod::default();
        let s = pod_status(
            &pod,
            "127.1.0.1",
            "t",
            &[c(
                State::Running {
                    started_at: "t".into(),
                },
                false,
                true,
                false,
            )],
            "now",
        );
        assert_eq!(s["conditions"][2]["status"], "False");
        assert_eq!(s["conditions"][2]["reason"], "ContainersNotReady");
        assert_eq!(s["podIP"], "127.1.0.1");
    }
}
