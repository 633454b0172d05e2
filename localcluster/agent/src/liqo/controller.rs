//! A stand-in for Liqo's NamespaceOffloading controller (reference/liqo.md §1.3–§1.4): finalizer,
//! namespace label, remote namespace name, per-cluster conditions and `offloadingPhase`, with
//! every virtual node counting as a peered cluster whose remote namespace is created at once.

use std::collections::{BTreeMap, HashSet};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Node};
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use kube::{Api, Resource, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::{REMOTE_CLUSTER_ID, crd, unique_name, webhook};
use crate::events::Events;
use crate::informer::Informer;
use crate::scheduler::placement::term_matches;

/// Liqo's finalizer on NamespaceOffloading.
pub const FINALIZER: &str = "namespaceoffloading-controller.liqo.io/finalizer";
/// Where the simulation remembers the immutable fields' first values.
const ORIGINAL: &str = "localcluster.rivulet.dev/original-namespace-mapping";

/// How the simulation is set up.
#[derive(Clone, Debug)]
pub struct Settings {
    pub local_cluster: String,
    pub v1alpha1: bool,
}

impl Settings {
    pub fn api_resource(&self) -> ApiResource {
        let version = if self.v1alpha1 { "v1alpha1" } else { "v1beta1" };
        ApiResource {
            group: crd::GROUP.into(),
            version: version.into(),
            api_version: format!("{}/{version}", crd::GROUP),
            kind: "NamespaceOffloading".into(),
            plural: crd::PLURAL.into(),
        }
    }
}

/// A peered cluster as seen through its virtual node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub cluster_id: String,
    pub labels: BTreeMap<String, String>,
    pub node_name: String,
}

/// Peers from the virtual nodes.
pub fn peers(nodes: &[std::sync::Arc<Node>]) -> Vec<Peer> {
    let mut out: Vec<Peer> = nodes
        .iter()
        .filter(|n| {
            n.labels().get(webhook::TYPE_LABEL).map(String::as_str) == Some(webhook::VIRTUAL_NODE)
        })
        .filter_map(|n| {
            Some(Peer {
                cluster_id: n.labels().get(REMOTE_CLUSTER_ID)?.clone(),
                labels: n.labels().clone(),
                node_name: n.name_any(),
            })
        })
        .collect();
    out.sort_by(|a, b| a.cluster_id.cmp(&b.cluster_id));
    out.dedup_by(|a, b| a.cluster_id == b.cluster_id);
    out
}

/// Whether the cluster selector (absent or empty terms: every cluster) selects `peer`.
pub fn selected(spec: &Value, peer: &Peer) -> bool {
    let terms = spec["clusterSelector"]["nodeSelectorTerms"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    terms.is_empty()
        || terms.iter().any(|t| {
            serde_json::from_value(t.clone())
                .is_ok_and(|term| term_matches(&term, &peer.labels, &peer.node_name))
        })
}

/// The remote namespace name (Liqo's `remoteNamespaceName()`).
pub fn remote_namespace_name(settings: &Settings, namespace: &str, spec: &Value) -> String {
    match spec["namespaceMappingStrategy"]
        .as_str()
        .unwrap_or("DefaultName")
    {
        "EnforceSameName" => namespace.to_string(),
        "SelectedName" => spec["remoteNamespaceName"]
            .as_str()
            .unwrap_or(namespace)
            .to_string(),
        _ if settings.v1alpha1 => format!("{namespace}-{}", unique_name(&settings.local_cluster)),
        _ => format!("{namespace}-{}", settings.local_cluster),
    }
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str, now: &str) -> Value {
    json!({"type": type_, "status": if ok { "True" } else { "False" }, "reason": reason, "message": message, "lastTransitionTime": now})
}

/// The status Liqo's controller would write (transition times taken from `previous` when the
/// condition did not change).
pub fn desired_status(
    settings: &Settings,
    obj: &Value,
    peers: &[Peer],
    previous: &Value,
    now: &str,
) -> Value {
    let ns = obj["metadata"]["namespace"].as_str().unwrap_or_default();
    let spec = &obj["spec"];
    let deleting = obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    let mut conditions = serde_json::Map::new();
    let mut required = 0;
    if !deleting {
        for peer in peers {
            let key = if settings.v1alpha1 {
                unique_name(&peer.cluster_id)
            } else {
                peer.cluster_id.clone()
            };
            let list = if selected(spec, peer) {
                required += 1;
                vec![
                    condition(
                        "OffloadingRequired",
                        true,
                        "ClusterSelected",
                        "You have selected this cluster for offloading",
                        now,
                    ),
                    condition(
                        "Ready",
                        true,
                        "NamespaceCreated",
                        "Namespace correctly offloaded on this cluster",
                        now,
                    ),
                ]
            } else {
                vec![condition(
                    "OffloadingRequired",
                    false,
                    "ClusterNotSelected",
                    "You have not selected this cluster through ClusterSelector fields",
                    now,
                )]
            };
            let list = list
                .into_iter()
                .map(|mut c| {
                    let old = previous["remoteNamespacesConditions"][&key]
                        .as_array()
                        .and_then(|l| {
                            l.iter()
                                .find(|o| o["type"] == c["type"] && o["status"] == c["status"])
                                .cloned()
                        });
                    if let Some(old) = old {
                        c["lastTransitionTime"] = old["lastTransitionTime"].clone();
                    }
                    c
                })
                .collect();
            conditions.insert(key, Value::Array(list));
        }
    }
    let phase = if deleting {
        "Terminating"
    } else if required == 0 {
        "NoClusterSelected"
    } else {
        "Ready"
    };
    json!({
        "observedGeneration": obj["metadata"]["generation"],
        "offloadingPhase": phase,
        "remoteNamespaceName": remote_namespace_name(settings, ns, spec),
        "remoteNamespacesConditions": conditions,
    })
}

/// Runs the controller until `stop`.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    nodes: Informer<Node>,
    mut stop: watch::Receiver<bool>,
) {
    let ar = settings.api_resource();
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let events = Events::new(client.clone(), "liqo-controller-manager", None);
    let mut node_changes = nodes.subscribe();
    nodes.ready().await;
    let stream = watcher::watcher(api.clone(), watcher::Config::default()).default_backoff();
    futures::pin_mut!(stream);
    let mut warned: HashSet<String> = HashSet::new();
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                Some(Ok(Event::Apply(o) | Event::InitApply(o))) => {
                    reconcile(&client, &settings, &ar, &events, &nodes, &o, &mut warned).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => tracing::debug!(error = %e, "NamespaceOffloading watch error"),
                None => return,
            },
            r = node_changes.changed() => {
                if r.is_err() { return }
                if let Ok(list) = api.list(&kube::api::ListParams::default()).await {
                    for o in list.items {
                        reconcile(&client, &settings, &ar, &events, &nodes, &o, &mut warned).await;
                    }
                }
            }
            () = crate::stopped(&mut stop) => return,
        }
    }
}

async fn set_namespace_label(client: &kube::Client, ns: &str, on: bool) {
    let api: Api<Namespace> = Api::all(client.clone());
    let Ok(Some(current)) = api.get_opt(ns).await else {
        return;
    };
    let has = current
        .labels()
        .get(webhook::SCHEDULING_ENABLED)
        .map(String::as_str)
        == Some("true");
    if has == on {
        return;
    }
    let value = if on { json!("true") } else { Value::Null };
    let patch = json!({"metadata": {"labels": {webhook::SCHEDULING_ENABLED: value}}});
    if let Err(e) = api
        .patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        tracing::debug!(namespace = ns, error = %e, "cannot update the scheduling label");
    }
}

/// Liqo's webhook refuses changes of `namespaceMappingStrategy`/`remoteNamespaceName`; here the
/// first values are remembered in an annotation and a change is reverted (with an Event).
/// Returns whether the object is as it should be (else a write was made and a new event comes).
async fn immutable_fields_kept(
    api: &Api<DynamicObject>,
    name: &str,
    obj: &DynamicObject,
    spec: &Value,
    events: &Events,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
) -> bool {
    let current = json!({"namespaceMappingStrategy": spec["namespaceMappingStrategy"], "remoteNamespaceName": spec["remoteNamespaceName"]});
    match obj
        .annotations()
        .get(ORIGINAL)
        .and_then(|o| serde_json::from_str::<Value>(o).ok())
    {
        None => {
            let patch = json!({"metadata": {"annotations": {ORIGINAL: current.to_string()}}});
            let _ = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            false
        }
        Some(original) if original != current => {
            events
                .publish(reference, true, "ImmutableFieldChanged", "Validate",
                    "The NamespaceMappingStrategy and RemoteNamespaceName values cannot be modified after creation; the change was reverted".into())
                .await;
            let patch = json!({"spec": original});
            let _ = api
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await;
            false
        }
        Some(_) => true,
    }
}

async fn reconcile(
    client: &kube::Client,
    settings: &Settings,
    ar: &ApiResource,
    events: &Events,
    nodes: &Informer<Node>,
    obj: &DynamicObject,
    warned: &mut HashSet<String>,
) {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns, ar);
    let reference = obj.object_ref(ar);
    let uid = obj.uid().unwrap_or_default();
    if name != crd::NAME {
        // Liqo's validating webhook would have refused it; the create hook does when installed.
        if warned.insert(uid) {
            events
                .publish(
                    &reference,
                    true,
                    "InvalidName",
                    "Validate",
                    format!(
                        "NamespaceOffloading name must match {}: {name:?} is ignored",
                        crd::NAME
                    ),
                )
                .await;
        }
        return;
    }
    let Ok(value) = serde_json::to_value(obj) else {
        return;
    };
    let finalizers = obj.finalizers().to_vec();
    if obj.metadata.deletion_timestamp.is_some() {
        if finalizers.iter().any(|f| f == FINALIZER) {
            set_namespace_label(client, &ns, false).await;
            let rest: Vec<&String> = finalizers.iter().filter(|f| *f != FINALIZER).collect();
            let patch = json!({"metadata": {"finalizers": rest, "resourceVersion": obj.resource_version()}});
            if let Err(e) = api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                tracing::debug!(error = %e, "cannot remove the offloading finalizer");
            }
        }
        return;
    }
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut all = finalizers.clone();
        all.push(FINALIZER.into());
        let patch =
            json!({"metadata": {"finalizers": all, "resourceVersion": obj.resource_version()}});
        // The resulting change brings the object back through the watch.
        let _ = api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await;
        return;
    }
    if !immutable_fields_kept(&api, &name, obj, &value["spec"], events, &reference).await {
        return;
    }
    let spec = &value["spec"];
    let strategy = spec["podOffloadingStrategy"]
        .as_str()
        .unwrap_or("LocalAndRemote");
    set_namespace_label(client, &ns, strategy != "Local").await;
    let now = crate::time::now_rfc3339();
    let status = desired_status(
        settings,
        &value,
        &peers(&nodes.all()),
        &value["status"],
        &now,
    );
    if value["status"] == status {
        return;
    }
    let mut next = value.clone();
    next["status"] = status;
    let Ok(next) = serde_json::from_value::<DynamicObject>(next) else {
        return;
    };
    if let Err(e) = api
        .replace_status(&name, &PostParams::default(), &next)
        .await
    {
        tracing::debug!(error = %e, "cannot write the offloading status");
    }
}

/// Installs the CRD (unless present) and waits until it is served.
pub async fn install_crd(
    client: &kube::Client,
    crd_object: &Value,
    settings: &Settings,
) -> Result<(), kube::Error> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd: CustomResourceDefinition =
        serde_json::from_value(crd_object.clone()).map_err(kube::Error::SerdeError)?;
    let name = crd.metadata.name.clone().unwrap_or_default();
    if api.get_opt(&name).await?.is_none() {
        match api.create(&PostParams::default(), &crd).await {
            Ok(_) => {}
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    let ar = settings.api_resource();
    let probe: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let mut delay = std::time::Duration::from_millis(20);
    for _ in 0..50 {
        if probe
            .list(&kube::api::ListParams::default().limit(1))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(std::time::Duration::from_millis(500));
    }
    probe
        .list(&kube::api::ListParams::default().limit(1))
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(id: &str, region: &str) -> Peer {
        Peer {
            cluster_id: id.into(),
            node_name: format!("liqo-{id}"),
            labels: BTreeMap::from([("topology.liqo.io/region".to_string(), region.to_string())]),
        }
    }

    #[test]
    fn status_reaches_ready_with_per_cluster_conditions() {
        let settings = Settings {
            local_cluster: "venice".into(),
            v1alpha1: false,
        };
        let obj = json!({"metadata": {"name": "offloading", "namespace": "demo", "generation": 3}, "spec": {
            "namespaceMappingStrategy": "EnforceSameName",
            "clusterSelector": {"nodeSelectorTerms": [{"matchExpressions": [{"key": "topology.liqo.io/region", "operator": "In", "values": ["south"]}]}]}}});
        let peers = [peer("naples", "south"), peer("florence", "center")];
        let s = desired_status(&settings, &obj, &peers, &Value::Null, "t0");
        assert_eq!(s["offloadingPhase"], "Ready");
        assert_eq!(s["observedGeneration"], 3);
        assert_eq!(s["remoteNamespaceName"], "demo");
        assert_eq!(
            s["remoteNamespacesConditions"]["naples"][1]["reason"],
            "NamespaceCreated"
        );
        assert_eq!(
            s["remoteNamespacesConditions"]["florence"][0]["reason"],
            "ClusterNotSelected"
        );
        // Unchanged conditions keep their transition time.
        let again = desired_status(&settings, &obj, &peers, &s, "t1");
        assert_eq!(again, s);
    }

    #[test]
    fn nothing_selected_and_v1alpha1_names() {
        let settings = Settings {
            local_cluster: "venice".into(),
            v1alpha1: true,
        };
        let obj = json!({"metadata": {"namespace": "demo", "generation": 1}, "spec": {}});
        let s = desired_status(&settings, &obj, &[], &Value::Null, "t");
        assert_eq!(s["offloadingPhase"], "NoClusterSelected");
        assert!(
            s["remoteNamespaceName"]
                .as_str()
                .unwrap()
                .starts_with("demo-venice-")
        );
        let s = desired_status(
            &settings,
            &obj,
            &[peer("naples", "south")],
            &Value::Null,
            "t",
        );
        let key = unique_name("naples");
        assert_eq!(s["remoteNamespacesConditions"][&key][0]["status"], "True");
    }
}
