//! What a pod's status says about whether its containers will start (pure). Shared by the router
//! (a request for an Environment whose runtime cannot start is answered at once, with the
//! reason) and the Environment reconciler (the same reason in `Ready`).

use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

/// Waiting reasons after which a container does not become ready without a change: the
/// kubelet's, and the local agent's `ImageNotMapped`.
pub const STUCK_REASONS: &[&str] = &[
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "ErrImagePull",
    "ImageNotMapped",
    "ImagePullBackOff",
    "InvalidImageName",
    "RunContainerError",
];

/// Why `pod` cannot become ready by itself, in one line (the first stuck container: its reason,
/// its message, and for a crash loop the last exit code and the termination message's last line,
/// which with `terminationMessagePolicy: FallbackToLogsOnError` is its log's); `None` while it
/// may still become ready.
pub fn stuck(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() == Some("Failed") {
        let why = status
            .message
            .clone()
            .or_else(|| status.reason.clone())
            .unwrap_or_default();
        return Some(
            format!("pod {} failed {why}", name(pod))
                .trim_end()
                .to_owned(),
        );
    }
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find_map(|c| stuck_container(c).map(|why| format!("pod {}: {why}", name(pod))))
}

/// Why no pod of a pool will become ready without a change: every member is [`stuck`], and this
/// is the first one's reason. `None` while the pool is empty (being refilled) or any member may
/// still become ready.
pub fn pool_stuck<'a>(members: impl IntoIterator<Item = &'a Pod>) -> Option<String> {
    let mut first = None;
    for pod in members {
        let why = stuck(pod)?;
        first.get_or_insert(why);
    }
    first
}

fn name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or_default()
}

fn stuck_container(c: &ContainerStatus) -> Option<String> {
    let waiting = c.state.as_ref()?.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    if !STUCK_REASONS.contains(&reason) {
        return None;
    }
    let mut line = format!("container {}: {reason}", c.name);
    if let Some(message) = waiting.message.as_deref().filter(|m| !m.is_empty()) {
        line.push_str(": ");
        line.push_str(message);
    }
    if let Some(last) = c.last_state.as_ref().and_then(|s| s.terminated.as_ref()) {
        let _ = write!(line, "; it exited with code {}", last.exit_code);
        // The last line of the log says the most (a traceback ends with the exception).
        let last_line = last
            .message
            .as_deref()
            .and_then(|m| m.lines().rev().map(str::trim).find(|l| !l.is_empty()));
        if let Some(message) = last_line {
            line.push_str(": ");
            line.push_str(message);
        }
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)] // json! literals
    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p"}, "status": status})).unwrap()
    }

    #[test]
    fn an_unmapped_image_or_a_crash_loop_is_stuck_with_its_reason() {
        let unmapped = pod(json!({"phase": "Pending", "containerStatuses": [
            {"name": "fetcher", "image": "f", "imageID": "", "ready": true, "restartCount": 0,
             "state": {"running": {}}},
            {"name": "python", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ImageNotMapped", "message": "image \"x\" has no local command"}}}]}));
        assert_eq!(
            stuck(&unmapped).as_deref(),
            Some("pod p: container python: ImageNotMapped: image \"x\" has no local command")
        );
        let crashing = pod(json!({"phase": "Running", "containerStatuses": [
            {"name": "python", "image": "x", "imageID": "", "ready": false, "restartCount": 2,
             "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
             "lastState": {"terminated": {"exitCode": 3, "message": "Traceback:\n  import flask\nModuleNotFoundError: No module named 'flask'\n"}}}]}));
        assert_eq!(
            stuck(&crashing).as_deref(),
            Some(
                "pod p: container python: CrashLoopBackOff: back-off 20s; it exited with code 3: \
                 ModuleNotFoundError: No module named 'flask'"
            )
        );
    }

    #[test]
    fn starting_pods_are_not_stuck() {
        let creating = pod(json!({"phase": "Pending", "containerStatuses": [
            {"name": "python", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}));
        assert_eq!(stuck(&creating), None);
        assert_eq!(stuck(&pod(json!({"phase": "Pending"}))), None);
        assert!(stuck(&pod(json!({"phase": "Failed", "reason": "Evicted"}))).is_some());
    }

    #[test]
    fn a_pool_is_stuck_only_when_every_member_is() {
        let bad = pod(json!({"phase": "Pending", "containerStatuses": [
            {"name": "c", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
             "state": {"waiting": {"reason": "ImageNotMapped"}}}]}));
        let starting = pod(json!({"phase": "Pending"}));
        assert_eq!(
            pool_stuck([&bad, &bad]).as_deref(),
            Some("pod p: container c: ImageNotMapped")
        );
        assert_eq!(pool_stuck([&bad, &starting]), None);
        assert_eq!(pool_stuck(std::iter::empty()), None);
    }
}
