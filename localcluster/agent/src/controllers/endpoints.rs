//! EndpointSlices (discovery.k8s.io/v1) and Endpoints (v1) for Services with a selector, from
//! the pods it selects that have an address: ready ones as ready endpoints, others not ready.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, Service, ServicePort};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::replicaset::{controller_ref, is_ready};
use super::selector;
use crate::informer::Informer;

const MANAGER: &str = "endpointslice-controller.k8s.io";

/// The target port of `port` in `pod` (a named target port is looked up in its containers).
pub fn target_port(port: &ServicePort, pod: &Pod) -> Option<i32> {
    match &port.target_port {
        None => Some(port.port),
        Some(IntOrString::Int(p)) => Some(*p),
        Some(IntOrString::String(name)) => pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name))
            .map(|p| p.container_port),
    }
}

/// The EndpointSlice and Endpoints objects of `svc` given the pods of its namespace.
pub fn desired(svc: &Service, pods: &[Arc<Pod>]) -> Option<(Value, Value)> {
    let spec = svc.spec.as_ref()?;
    let sel = spec.selector.as_ref().filter(|s| !s.is_empty())?;
    let ns = svc.namespace().unwrap_or_default();
    let name = svc.name_any();
    let empty = std::collections::BTreeMap::default();
    let mut selected: Vec<&Arc<Pod>> = pods
        .iter()
        .filter(|p| p.namespace().as_deref() == Some(ns.as_str()))
        .filter(|p| selector::map_matches(sel, p.metadata.labels.as_ref().unwrap_or(&empty)))
        .filter(|p| !crate::scheduler::is_finished(p))
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .is_some_and(|ip| !ip.is_empty())
        })
        .collect();
    selected.sort_by_key(|p| p.name_any());
    let ports = spec.ports.clone().unwrap_or_default();
    let first = selected.first();
    let slice_ports: Vec<Value> = ports
        .iter()
        .map(|p| {
            let target = first.and_then(|pod| target_port(p, pod)).unwrap_or(p.port);
            json!({"name": p.name.clone().unwrap_or_default(), "port": target, "protocol": p.protocol.clone().unwrap_or_else(|| "TCP".into())})
        })
        .collect();
    let mut endpoints = Vec::new();
    let (mut ready_addrs, mut not_ready_addrs) = (Vec::new(), Vec::new());
    for p in &selected {
        let ip = p
            .status
            .as_ref()
            .and_then(|s| s.pod_ip.clone())
            .unwrap_or_default();
        let terminating = p.metadata.deletion_timestamp.is_some();
        let ready = is_ready(p) && !terminating;
        let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
        let target = json!({"kind": "Pod", "namespace": ns, "name": p.name_any(), "uid": p.uid()});
        endpoints.push(json!({
            "addresses": [ip],
            "conditions": {"ready": ready, "serving": is_ready(p), "terminating": terminating},
            "nodeName": node,
            "targetRef": target,
        }));
        let addr = json!({"ip": ip, "nodeName": node, "targetRef": target});
        if ready {
            ready_addrs.push(addr);
        } else {
            not_ready_addrs.push(addr);
        }
    }
    let owner = controller_ref(svc);
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner],
            "labels": {"kubernetes.io/service-name": name, "endpointslice.kubernetes.io/managed-by": MANAGER}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": slice_ports,
    });
    let subsets = if selected.is_empty() {
        json!([])
    } else {
        let mut subset = json!({"ports": slice_ports});
        if !ready_addrs.is_empty() {
            subset["addresses"] = json!(ready_addrs);
        }
        if !not_ready_addrs.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready_addrs);
        }
        json!([subset])
    };
    let endpoints_obj = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": {"name": name, "namespace": ns, "ownerReferences": [owner], "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
        "subsets": subsets,
    });
    Some((slice, endpoints_obj))
}

/// Runs until `stop`.
pub async fn run(
    client: kube::Client,
    services: Informer<Service>,
    pods: Informer<Pod>,
    mut stop: watch::Receiver<bool>,
) {
    use k8s_openapi::api::core::v1::Endpoints;
    use k8s_openapi::api::discovery::v1::EndpointSlice;
    let mut s_changes = services.subscribe();
    let mut p_changes = pods.subscribe();
    services.ready().await;
    pods.ready().await;
    let mut last: std::collections::HashMap<String, (Value, Value)> =
        std::collections::HashMap::new();
    let params = PatchParams::apply(MANAGER).force();
    loop {
        let all_pods = pods.all();
        for svc in services.all() {
            let Some((slice, eps)) = desired(&svc, &all_pods) else {
                continue;
            };
            let key = format!(
                "{}/{}/{}",
                svc.namespace().unwrap_or_default(),
                svc.name_any(),
                svc.uid().unwrap_or_default()
            );
            if last.get(&key) == Some(&(slice.clone(), eps.clone())) {
                continue;
            }
            let ns = svc.namespace().unwrap_or_default();
            let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), &ns);
            let endpoints: Api<Endpoints> = Api::namespaced(client.clone(), &ns);
            let a = slices
                .patch(&svc.name_any(), &params, &Patch::Apply(&slice))
                .await;
            let b = endpoints
                .patch(&svc.name_any(), &params, &Patch::Apply(&eps))
                .await;
            match (a, b) {
                (Ok(_), Ok(_)) => {
                    last.insert(key, (slice, eps));
                }
                (Err(e), _) | (_, Err(e)) => {
                    tracing::debug!(service = %svc.name_any(), error = %e, "cannot write endpoints");
                }
            }
        }
        last.retain(|k, _| {
            services
                .all()
                .iter()
                .any(|s| k.ends_with(&s.uid().unwrap_or_default()))
        });
        tokio::select! {
            r = s_changes.changed() => if r.is_err() { return },
            r = p_changes.changed() => if r.is_err() { return },
            () = tokio::time::sleep(Duration::from_secs(30)) => last.clear(),
            () = crate::stopped(&mut stop) => return,
        }
    }
}
