//! What a KubernetesWatchTrigger watches and how its events become function calls (pure).

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::http::{HeaderName, HeaderValue, Method, header};
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use rivulet_api::KubernetesWatchTriggerSpec;
use serde::Serialize;

use crate::triggers::delivery::Invocation;

/// Header with the watch event type (`ADDED`, `MODIFIED`, `DELETED`).
pub const EVENT_TYPE_HEADER: HeaderName = HeaderName::from_static("x-kubernetes-event-type");
/// Header with the object's Go type name (`Pod`, `Service`, …).
pub const OBJECT_TYPE_HEADER: HeaderName = HeaderName::from_static("x-kubernetes-object-type");

/// The kinds Fission's kubewatcher accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchedKind {
    /// core/v1 Pod.
    Pod,
    /// core/v1 Service.
    Service,
    /// core/v1 ReplicationController.
    ReplicationController,
    /// batch/v1 Job.
    Job,
}

impl WatchedKind {
    /// `spec.type`, case-insensitive.
    pub fn parse(object_type: &str) -> Option<Self> {
        match object_type.to_ascii_uppercase().as_str() {
            "POD" => Some(Self::Pod),
            "SERVICE" => Some(Self::Service),
            "REPLICATIONCONTROLLER" => Some(Self::ReplicationController),
            "JOB" => Some(Self::Job),
            _ => None,
        }
    }

    /// The kind, which is also the Go type name Fission sends in `X-Kubernetes-Object-Type`.
    pub fn kind(self) -> &'static str {
        match self {
            Self::Pod => "Pod",
            Self::Service => "Service",
            Self::ReplicationController => "ReplicationController",
            Self::Job => "Job",
        }
    }

    /// The API resource to list and watch.
    pub fn api_resource(self) -> ApiResource {
        let (group, plural) = match self {
            Self::Pod => ("", "pods"),
            Self::Service => ("", "services"),
            Self::ReplicationController => ("", "replicationcontrollers"),
            Self::Job => ("batch", "jobs"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", self.kind()), plural)
    }
}

/// One watch: namespace, kind and label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// Watched namespace (`spec.namespace`).
    pub namespace: String,
    /// Watched kind (`spec.type`).
    pub kind: WatchedKind,
    /// Label selector (`spec.labelselector`), as `k=v,…`.
    pub selector: Option<String>,
}

impl Subscription {
    /// The subscription of a (validated) spec; `None` for an unknown type.
    pub fn of(spec: &KubernetesWatchTriggerSpec) -> Option<Self> {
        Some(Self {
            namespace: spec.namespace.clone(),
            kind: WatchedKind::parse(&spec.object_type)?,
            selector: spec.labelselector.as_ref().and_then(selector),
        })
    }

    /// Stable identity, as recorded in `status.delivery.subscription`:
    /// `<namespace>/<type>[?<selector>]`.
    pub fn id(&self) -> String {
        let kind = self.kind.kind().to_ascii_lowercase();
        match &self.selector {
            Some(selector) => format!("{}/{kind}?{selector}", self.namespace),
            None => format!("{}/{kind}", self.namespace),
        }
    }

    /// For messages: "pods in ns matching a=b".
    pub fn describe(&self) -> String {
        let kind = self.kind.api_resource().plural;
        match &self.selector {
            Some(selector) => format!("{kind} in {} matching {selector}", self.namespace),
            None => format!("{kind} in {}", self.namespace),
        }
    }
}

/// An equality label selector from a map (sorted, so equal maps give equal strings).
fn selector(labels: &BTreeMap<String, String>) -> Option<String> {
    (!labels.is_empty()).then(|| {
        labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    })
}

/// The call Fission makes for one event: POST to the trigger's function, the object as
/// 4-space-indented JSON.
pub fn invocation(
    path: &str,
    event_type: &str,
    kind: WatchedKind,
    object: &DynamicObject,
) -> Result<Invocation, serde_json::Error> {
    let mut body = Vec::new();
    let mut serializer = serde_json::Serializer::with_formatter(
        &mut body,
        serde_json::ser::PrettyFormatter::with_indent(b"    "),
    );
    object.serialize(&mut serializer)?;
    let event_type =
        HeaderValue::from_str(event_type).unwrap_or_else(|_| HeaderValue::from_static("UNKNOWN"));
    Ok(Invocation {
        method: Method::POST,
        path: path.to_owned(),
        headers: vec![
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
            (EVENT_TYPE_HEADER, event_type),
            (OBJECT_TYPE_HEADER, HeaderValue::from_static(kind.kind())),
        ],
        body: Bytes::from(body),
    })
}

/// Whether an object's resourceVersion is newer than the checkpoint. resourceVersions are
/// opaque in general but integers on every API server Rivulet runs against (etcd revisions,
/// localcluster); anything else is treated as newer, so nothing is skipped.
pub fn newer_than(resource_version: &str, checkpoint: &str) -> bool {
    match (resource_version.parse::<u64>(), checkpoint.parse::<u64>()) {
        (Ok(rv), Ok(checkpoint)) => rv > checkpoint,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rivulet_api::FunctionReference;

    fn spec(object_type: &str, labels: &[(&str, &str)]) -> KubernetesWatchTriggerSpec {
        KubernetesWatchTriggerSpec {
            namespace: "demo".into(),
            object_type: object_type.into(),
            labelselector: (!labels.is_empty()).then(|| {
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect()
            }),
            functionref: FunctionReference::default(),
        }
    }

    #[test]
    fn subscriptions_are_identified_by_namespace_kind_and_selector() {
        let pods = Subscription::of(&spec("pod", &[])).unwrap();
        assert_eq!(pods.id(), "demo/pod");
        let jobs = Subscription::of(&spec("JOB", &[("tier", "web"), ("app", "x")])).unwrap();
        assert_eq!(jobs.id(), "demo/job?app=x,tier=web");
        assert_eq!(jobs.kind.api_resource().group, "batch");
        assert_eq!(jobs.describe(), "jobs in demo matching app=x,tier=web");
        assert!(Subscription::of(&spec("deployment", &[])).is_none());
        assert_eq!(
            WatchedKind::parse("ReplicationController").map(WatchedKind::kind),
            Some("ReplicationController")
        );
    }

    #[test]
    fn events_become_fission_style_posts() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "demo"}
        }))
        .unwrap();
        let call = invocation("/fission-function/f", "ADDED", WatchedKind::Pod, &object).unwrap();
        assert_eq!(call.method, Method::POST);
        let header = |name: &HeaderName| {
            call.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.to_str().unwrap().to_owned())
        };
        assert_eq!(header(&EVENT_TYPE_HEADER).as_deref(), Some("ADDED"));
        assert_eq!(header(&OBJECT_TYPE_HEADER).as_deref(), Some("Pod"));
        let body = String::from_utf8(call.body.to_vec()).unwrap();
        assert!(
            body.contains("\n    \"metadata\": {\n        \"name\": \"p\""),
            "{body}"
        );
    }

    #[test]
    fn resource_versions_compare_as_numbers() {
        assert!(newer_than("10", "9"));
        assert!(!newer_than("9", "10"));
        assert!(!newer_than("10", "10"));
        assert!(newer_than("opaque", "10"));
    }
}
