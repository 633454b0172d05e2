//! Simulated Liqo peers: virtual nodes like Liqo's virtual kubelet registers, the
//! NamespaceOffloading CRD, a stand-in for Liqo's offloading controller and its webhooks.

pub mod controller;
pub mod crd;
pub mod webhook;

use std::collections::BTreeMap;

use crate::node::NodeSpec;

/// Label with the provider cluster's ID on a virtual node.
pub const REMOTE_CLUSTER_ID: &str = "liqo.io/remote-cluster-id";
/// The cluster label the simulation sets on virtual nodes.
pub const REGION_LABEL: &str = "topology.liqo.io/region";

/// Default region of a cluster: the seed's clusters (reference/liqo.md §1.5 uses
/// `topology.liqo.io/region in (center,south)` for Florence and Naples), else its own name.
pub fn default_region(cluster: &str) -> String {
    match cluster {
        "venice" => "north",
        "naples" => "south",
        "florence" => "center",
        other => other,
    }
    .to_string()
}

/// The node name Liqo v0.9 gives a peer's virtual node.
pub fn virtual_node_name(cluster: &str) -> String {
    format!("liqo-{cluster}")
}

/// The virtual node of `cluster` with Liqo's labels, taint and the given capacity.
pub fn virtual_node(cluster: &str, region: &str, capacity: BTreeMap<String, String>) -> NodeSpec {
    let name = virtual_node_name(cluster);
    let labels = BTreeMap::from([
        ("kubernetes.io/hostname".to_string(), name.clone()),
        ("kubernetes.io/role".into(), "agent".into()),
        ("kubernetes.io/os".into(), "linux".into()),
        ("kubernetes.io/arch".into(), "amd64".into()),
        (webhook::TYPE_LABEL.into(), webhook::VIRTUAL_NODE.into()),
        (REMOTE_CLUSTER_ID.into(), cluster.into()),
        (
            "node.kubernetes.io/exclude-from-external-load-balancers".into(),
            "true".into(),
        ),
        (
            "alpha.service-controller.kubernetes.io/exclude-balancer".into(),
            "true".into(),
        ),
        (REGION_LABEL.into(), region.into()),
    ]);
    NodeSpec {
        name,
        labels,
        taints: vec![(
            webhook::TOLERATION_KEY.into(),
            "true".into(),
            "NoExecute".into(),
        )],
        capacity,
    }
}

/// Liqo v0.9's `UniqueName` of a cluster: `<name>-<first 6 hex of sha256(clusterID)>` (the
/// simulation uses the name as cluster ID).
pub fn unique_name(cluster: &str) -> String {
    format!("{cluster}-{}", crate::sha256_hex(cluster, 3))
}
