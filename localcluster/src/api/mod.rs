//! The Kubernetes REST API: request handling on top of the store and the registry.

pub mod authz;
pub mod conform;
pub mod discovery;
pub mod events;
pub mod handlers;
pub mod objects;
pub mod openapi;
pub mod options;
pub mod patch;
pub mod protobuf;
pub mod read;
pub mod status;
pub mod table;
pub mod watch;
pub mod write;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::watch as signal;

use crate::registry::Registry;
use crate::resources::ResourceInfo;
use crate::storage::{Key, Store, Stored};

/// Shared state of the API server.
#[derive(Debug)]
pub struct Ctx {
    pub store: Store,
    pub registry: Registry,
    pub token: String,
    /// Signs and checks ServiceAccount tokens (crate::tokens).
    pub signer: crate::tokens::Signer,
    /// Flips to `true` on shutdown: long-running requests end.
    pub shutdown: signal::Receiver<bool>,
    /// Interval between watch bookmarks.
    pub bookmark_interval: std::time::Duration,
    /// Mutating admission on create (extension point).
    pub create_hooks: Vec<Arc<dyn crate::hooks::CreateHook>>,
    /// Source of `pods/log` (a node agent), if any.
    pub pod_logs: Option<Arc<dyn crate::hooks::PodLogs>>,
    /// Keep the bootstrap ClusterRole that lets every ServiceAccount read (crate::rbac::READER).
    pub bootstrap_service_account_reader: bool,
}

impl crate::hooks::ObjectReader for Ctx {
    fn get(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let key = Key {
            resource: if resource == "events" {
                "/events".into()
            } else {
                format!("{group}/{resource}")
            },
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        };
        self.store.get(&key).map(|s| s.value.clone())
    }
}

impl Ctx {
    pub fn key(info: &ResourceInfo, namespace: &str, name: &str) -> Key {
        Key {
            resource: info.storage.clone(),
            namespace: if info.namespaced {
                namespace.to_string()
            } else {
                String::new()
            },
            name: name.to_string(),
        }
    }

    /// Every stored CRD (for registry rebuilds).
    pub fn crds(&self) -> Vec<Arc<Stored>> {
        self.store
            .list(
                "apiextensions.k8s.io/customresourcedefinitions",
                None,
                None,
                None,
            )
            .map(|(items, _)| items)
            .unwrap_or_default()
    }

    pub fn rebuild_registry(&self) {
        self.registry.rebuild(&self.crds());
    }

    /// Serve the CRDs as they will be once `name` becomes `new` (`None` = removed). Called
    /// before the write is committed, so no client can see the CRD changed (or gone) while the
    /// registry still serves the old version; a failed commit calls [`Ctx::rebuild_registry`].
    pub fn serve_crd_as(&self, name: &str, new: Option<&Value>) {
        let mut crds: Vec<_> = self
            .crds()
            .into_iter()
            .filter(|c| c.value["metadata"]["name"].as_str() != Some(name))
            .collect();
        if let Some(v) = new {
            crds.push(Arc::new(Stored {
                rv: 0,
                value: v.clone(),
                json: Bytes::new(),
            }));
        }
        self.registry.rebuild(&crds);
    }
}

/// Query parameters of a request.
#[derive(Debug, Default, Clone)]
pub struct Query(pub HashMap<String, String>);

impl Query {
    pub fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or_default().as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// The object as seen through `info` (its version; events.k8s.io form for those events).
pub fn view_value(info: &ResourceInfo, stored: &Stored) -> Value {
    if info.group == "events.k8s.io" {
        return events::from_core(&stored.value);
    }
    let mut v = stored.value.clone();
    if info.custom {
        v["apiVersion"] = Value::String(info.api_version());
    }
    v
}

/// Whether the object looks the same through `info` as in storage.
pub fn same_view(info: &ResourceInfo, stored: &Stored) -> bool {
    if info.group == "events.k8s.io" {
        false
    } else if info.custom {
        stored.value["apiVersion"].as_str() == Some(info.api_version().as_str())
    } else {
        true
    }
}

/// The JSON of the object as seen through `info`, reusing the stored bytes when possible.
pub fn view_json(info: &ResourceInfo, stored: &Stored) -> Bytes {
    if same_view(info, stored) {
        stored.json.clone()
    } else {
        Bytes::from(serde_json::to_vec(&view_value(info, stored)).unwrap_or_default())
    }
}

/// Resolves once shutdown has been requested.
pub async fn stopped(rx: &mut signal::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
