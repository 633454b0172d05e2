//! Node objects: registration (labels, taints, capacity), the `Ready` heartbeat and the node
//! Lease in `kube-node-lease`, as a kubelet keeps them.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use tokio::sync::watch;

const MANAGER: &str = "rivulet-node-agent";
const LEASE_NAMESPACE: &str = "kube-node-lease";
/// Reported as `status.nodeInfo.kubeletVersion`.
pub const KUBELET_VERSION: &str = "v1.33.0-rivulet";

/// A node this agent registers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeSpec {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `(key, value, effect)`.
    pub taints: Vec<(String, String, String)>,
    /// `cpu`, `memory`, `pods`, `ephemeral-storage` as quantities.
    pub capacity: BTreeMap<String, String>,
}

/// The Node object (metadata and spec) to apply.
pub fn node_object(spec: &NodeSpec) -> Value {
    let taints: Vec<Value> = spec
        .taints
        .iter()
        .map(|(k, v, e)| json!({"key": k, "value": v, "effect": e}))
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name, "labels": spec.labels},
        "spec": {"taints": taints},
    })
}

/// The Node status with a fresh heartbeat.
pub fn node_status(spec: &NodeSpec, now: &str, ready_since: &str) -> Value {
    let cond = |type_: &str, status: &str, reason: &str, message: &str, since: &str| {
        json!({"type": type_, "status": status, "reason": reason, "message": message,
               "lastHeartbeatTime": now, "lastTransitionTime": since})
    };
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name},
        "status": {
            "capacity": spec.capacity,
            "allocatable": spec.capacity,
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available", ready_since),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure", ready_since),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available", ready_since),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status", ready_since),
            ],
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": spec.name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 0}},
            "nodeInfo": {
                "machineID": "", "systemUUID": "", "bootID": "",
                "kernelVersion": "", "osImage": "rivulet localcluster",
                "containerRuntimeVersion": "rivulet://local-processes",
                "kubeletVersion": KUBELET_VERSION, "kubeProxyVersion": "",
                "operatingSystem": "linux", "architecture": std::env::consts::ARCH,
            },
        },
    })
}

/// This machine's cpu count and memory, as quantities.
pub fn host_capacity(max_pods: u32) -> BTreeMap<String, String> {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let mem_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .unwrap_or(8 * 1024 * 1024);
    BTreeMap::from([
        ("cpu".into(), cpus.to_string()),
        ("memory".into(), format!("{mem_kib}Ki")),
        ("pods".into(), max_pods.to_string()),
        ("ephemeral-storage".into(), "100Gi".into()),
    ])
}

fn params() -> PatchParams {
    PatchParams::apply(MANAGER).force()
}

/// Applies the Node objects and their status, and makes sure the lease namespace exists.
pub async fn register(client: &kube::Client, nodes: &[NodeSpec]) -> Result<(), kube::Error> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    if ns_api.get_opt(LEASE_NAMESPACE).await?.is_none() {
        let ns = serde_json::from_value(json!({"metadata": {"name": LEASE_NAMESPACE}}))
            .map_err(kube::Error::SerdeError)?;
        match ns_api.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let api: Api<Node> = Api::all(client.clone());
    let now = crate::time::now_rfc3339();
    for spec in nodes {
        api.patch(&spec.name, &params(), &Patch::Apply(node_object(spec)))
            .await?;
        api.patch_status(
            &spec.name,
            &params(),
            &Patch::Apply(node_status(spec, &now, &now)),
        )
        .await?;
    }
    beat(client, nodes, &now).await;
    Ok(())
}

async fn beat(client: &kube::Client, nodes: &[NodeSpec], ready_since: &str) {
    let api: Api<Node> = Api::all(client.clone());
    let leases: Api<Lease> = Api::namespaced(client.clone(), LEASE_NAMESPACE);
    let now = crate::time::now_rfc3339();
    let micro = k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%S.%6fZ")
        .to_string();
    for spec in nodes {
        if let Err(e) = api
            .patch_status(
                &spec.name,
                &params(),
                &Patch::Apply(node_status(spec, &now, ready_since)),
            )
            .await
        {
            tracing::debug!(node = %spec.name, error = %e, "node heartbeat failed");
        }
        let uid = api
            .get_opt(&spec.name)
            .await
            .ok()
            .flatten()
            .and_then(|n| n.metadata.uid);
        let lease = json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": spec.name, "namespace": LEASE_NAMESPACE,
                "ownerReferences": uid.map(|u| vec![json!({"apiVersion": "v1", "kind": "Node", "name": spec.name, "uid": u})]).unwrap_or_default()},
            "spec": {"holderIdentity": spec.name, "leaseDurationSeconds": 40, "renewTime": micro},
        });
        if let Err(e) = leases
            .patch(&spec.name, &params(), &Patch::Apply(lease))
            .await
        {
            tracing::debug!(node = %spec.name, error = %e, "lease renewal failed");
        }
    }
}

/// Renews the heartbeat every `interval` until `stop`.
pub async fn heartbeat(
    client: kube::Client,
    nodes: Vec<NodeSpec>,
    interval: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let since = crate::time::now_rfc3339();
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => beat(&client, &nodes, &since).await,
            () = crate::stopped(&mut stop) => return,
        }
    }
}
