//! Pure helpers over Pod objects: readiness, warm-pool membership, specialized-pod identity, and
//! the claim patch. No I/O.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};

use k8s_openapi::api::core::v1::Pod;
use rivulet_api::keys::{executor_types, fission_annotations, fission_labels, rivulet};
use serde_json::{Value, json};

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

/// Requests on one pod, as the request path counts them (read by [`crate::activity`]).
#[derive(Debug, Default)]
pub struct Usage {
    pub(super) in_flight: AtomicU32,
    /// Requests begun plus requests ended, ever: a change means activity since the last look.
    pub(super) changes: AtomicU64,
    /// The publisher follows this pod (it has been sent to it and not forgotten since).
    pub(super) followed: AtomicBool,
}

impl Usage {
    pub(super) fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(super) fn changes(&self) -> u64 {
        self.changes.load(Ordering::SeqCst)
    }
}

/// A pod the router sends requests to: where it lives and where it listens. Two `PodRef`s are
/// the same pod when namespace, name and address match.
#[derive(Debug)]
pub struct PodRef {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `<podIP>:<port>`.
    pub address: SocketAddr,
    /// Requests on this pod, for activity publishing.
    pub usage: Usage,
}

impl PodRef {
    /// A pod with no requests counted yet.
    pub fn new(namespace: String, name: String, address: SocketAddr) -> Self {
        Self {
            namespace,
            name,
            address,
            usage: Usage::default(),
        }
    }
}

impl PartialEq for PodRef {
    fn eq(&self, other: &Self) -> bool {
        self.address == other.address
            && self.name == other.name
            && self.namespace == other.namespace
    }
}

impl Eq for PodRef {}

impl Hash for PodRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.namespace.hash(state);
        self.name.hash(state);
        self.address.hash(state);
    }
}

fn label<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata.labels.as_ref()?.get(key).map(String::as_str)
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

/// Fission's `IsReadyPod`: not terminating, an IP, the `Ready` condition true (every container
/// ready, as the kubelet reports it).
pub fn is_ready(pod: &Pod) -> bool {
    if pod.metadata.deletion_timestamp.is_some() {
        return false;
    }
    let Some(status) = &pod.status else {
        return false;
    };
    if pod_ip(pod).is_none() {
        return false;
    }
    status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// `status.podIP`, parsed.
pub fn pod_ip(pod: &Pod) -> Option<IpAddr> {
    pod.status.as_ref()?.pod_ip.as_deref()?.parse().ok()
}

/// The pod's address on `port`, with its namespace and name.
pub fn pod_ref(pod: &Pod, port: u16) -> Option<PodRef> {
    Some(PodRef::new(
        pod.metadata.namespace.clone()?,
        pod.metadata.name.clone()?,
        SocketAddr::new(pod_ip(pod)?, port),
    ))
}

/// The warm-pool selector of an environment (the environment reconciler's `warm_pod_selector`;
/// repeated here because the reconcilers crate depends on the router).
pub fn warm_pod_selector(environment_uid: &str) -> String {
    format!(
        "{}={},{}={environment_uid},{}=true",
        fission_labels::EXECUTOR_TYPE,
        executor_types::POOLMGR,
        fission_labels::ENVIRONMENT_UID,
        fission_labels::MANAGED
    )
}

/// Whether `pod` is an unclaimed member of the warm pool of the environment `env_uid`, ready or
/// not.
pub fn in_pool(pod: &Pod, env_uid: &str) -> bool {
    label(pod, fission_labels::EXECUTOR_TYPE) == Some(executor_types::POOLMGR)
        && label(pod, fission_labels::ENVIRONMENT_UID) == Some(env_uid)
        && label(pod, fission_labels::MANAGED) == Some("true")
        && pod.metadata.deletion_timestamp.is_none()
}

/// Whether `pod` is an unclaimed, ready member of the warm pool of the environment `env_uid`.
pub fn is_warm(pod: &Pod, env_uid: &str) -> bool {
    in_pool(pod, env_uid) && is_ready(pod)
}

/// The function version a claimed poolmgr pod was specialized for: `(functionUid, generation)`,
/// from its `functionUid` label and `rivulet.dev/function-generation` annotation.
pub fn specialized_for(pod: &Pod) -> Option<(&str, i64)> {
    if label(pod, fission_labels::EXECUTOR_TYPE) != Some(executor_types::POOLMGR)
        || label(pod, fission_labels::MANAGED) != Some("false")
    {
        return None;
    }
    let uid = label(pod, fission_labels::FUNCTION_UID)?;
    let generation = annotation(pod, rivulet::FUNCTION_GENERATION_ANNOTATION)?
        .parse()
        .ok()?;
    Some((uid, generation))
}

/// Whether a claimed pod finished specializing (`svcHost` is written only after success).
pub fn is_specialized(pod: &Pod) -> bool {
    annotation(pod, fission_annotations::SVC_HOST).is_some()
}

/// `functionUid` of a newdeploy or container pod.
pub fn deployment_function_uid(pod: &Pod) -> Option<&str> {
    match label(pod, fission_labels::EXECUTOR_TYPE)? {
        executor_types::NEWDEPLOY | executor_types::CONTAINER => {
            label(pod, fission_labels::FUNCTION_UID)
        }
        _ => None,
    }
}

/// What a claim writes on a warm pod.
#[derive(Debug, Clone, Copy)]
pub struct Claim<'a> {
    /// Function name, namespace and UID.
    pub function_name: &'a str,
    /// Function namespace.
    pub function_namespace: &'a str,
    /// Function UID.
    pub function_uid: &'a str,
    /// Function `metadata.generation`.
    pub generation: i64,
    /// Function `metadata.resourceVersion`.
    pub function_resource_version: &'a str,
    /// This router's instance id.
    pub instance_id: &'a str,
}

/// The claim as one JSON merge patch. It carries the pod's `resourceVersion`, so the API server
/// applies it only if nobody changed the pod since we read it: exactly one claimant wins and the
/// others get 409.
pub fn claim_patch(pod_resource_version: &str, claim: &Claim<'_>) -> Value {
    json!({
        "metadata": {
            "resourceVersion": pod_resource_version,
            "labels": {
                fission_labels::MANAGED: "false",
                fission_labels::FUNCTION_NAME: claim.function_name,
                fission_labels::FUNCTION_NAMESPACE: claim.function_namespace,
                fission_labels::FUNCTION_UID: claim.function_uid,
            },
            "annotations": {
                fission_annotations::EXECUTOR_INSTANCE_ID: claim.instance_id,
                rivulet::FUNCTION_GENERATION_ANNOTATION: claim.generation.to_string(),
                fission_annotations::FUNCTION_RESOURCE_VERSION: claim.function_resource_version,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    fn ready_status() -> Value {
        json!({"podIP": "127.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]})
    }

    #[test]
    fn warm_needs_labels_readiness_and_no_deletion() {
        let labels = json!({"executorType": "poolmgr", "environmentUid": "e1", "managed": "true"});
        let warm = pod(
            json!({"metadata": {"name": "p", "namespace": "n", "labels": labels},
            "status": ready_status()}),
        );
        assert!(is_warm(&warm, "e1"));
        assert!(!is_warm(&warm, "e2"));
        let not_ready = pod(json!({"metadata": {"name": "p", "labels": labels},
            "status": {"podIP": "127.0.0.5", "conditions": [{"type": "Ready", "status": "False"}]}}));
        assert!(!is_warm(&not_ready, "e1"));
        let deleting = pod(json!({"metadata": {"name": "p", "labels": labels,
            "deletionTimestamp": "2026-01-01T00:00:00Z"}, "status": ready_status()}));
        assert!(!is_warm(&deleting, "e1"));
        let no_ip = pod(json!({"metadata": {"name": "p", "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
        assert!(!is_warm(&no_ip, "e1"));
    }

    #[test]
    fn specialized_identity_comes_from_label_and_generation() {
        let p = pod(json!({"metadata": {"name": "p",
            "labels": {"executorType": "poolmgr", "managed": "false", "functionUid": "f1"},
            "annotations": {"rivulet.dev/function-generation": "3"}}}));
        assert_eq!(specialized_for(&p), Some(("f1", 3)));
        let warm = pod(json!({"metadata": {"name": "p",
            "labels": {"executorType": "poolmgr", "managed": "true", "functionUid": "f1"},
            "annotations": {"rivulet.dev/function-generation": "3"}}}));
        assert_eq!(specialized_for(&warm), None);
    }

    #[test]
    fn claim_patch_is_conditional() {
        let patch = claim_patch(
            "42",
            &Claim {
                function_name: "hello",
                function_namespace: "default",
                function_uid: "u",
                generation: 2,
                function_resource_version: "7",
                instance_id: "abc",
            },
        );
        assert_eq!(patch["metadata"]["resourceVersion"], "42");
        assert_eq!(patch["metadata"]["labels"]["managed"], "false");
        assert_eq!(patch["metadata"]["labels"]["functionName"], "hello");
        assert_eq!(
            patch["metadata"]["annotations"]["rivulet.dev/function-generation"],
            "2"
        );
        assert_eq!(
            warm_pod_selector("e"),
            "executorType=poolmgr,environmentUid=e,managed=true"
        );
    }
}
