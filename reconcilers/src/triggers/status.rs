//! Status writes of trigger tasks. A trigger's task is the only writer of its status, so plain
//! merge patches suffice; the `Ready` condition is written only when it changes, with a Warning
//! Event whenever it turns false for a new reason.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Patch, PatchParams};
use kube::core::NamespaceResourceScope;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use rivulet_api::ConditionedStatus;
use serde::de::DeserializeOwned;
use serde_json::json;
use tracing::warn;

use rivulet_api::conditions::{Wanted, set};

/// Writes one trigger's status.
pub struct StatusWriter<K> {
    api: Api<K>,
    name: String,
    reference: k8s_openapi::api::core::v1::ObjectReference,
    generation: Option<i64>,
    recorder: Recorder,
    field_manager: &'static str,
    /// Conditions as last written (or read).
    conditions: Vec<Condition>,
}

impl<K> Debug for StatusWriter<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatusWriter")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K> StatusWriter<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + Clone
        + Debug
        + DeserializeOwned,
{
    /// A writer for `object`, whose current status (if any) is `current`.
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        field_manager: &'static str,
        object: &K,
        current: Option<&ConditionedStatus>,
    ) -> Self {
        let conditions = current.map(|c| c.conditions.clone()).unwrap_or_default();
        Self {
            api: Api::namespaced(client, &object.namespace().unwrap_or_default()),
            name: object.name_any(),
            reference: object.object_ref(&()),
            generation: object.meta().generation,
            recorder,
            field_manager,
            conditions,
        }
    }

    /// The object as the API server has it now, or `cached` when it cannot be read: a task
    /// started after another one of the same trigger stopped must see that one's last status
    /// write, which the event that started it predates.
    pub async fn latest(&self, cached: &K) -> K {
        match self.api.get(&self.name).await {
            Ok(current) => current,
            Err(e) => {
                warn!(trigger = %self.name, "cannot read the current status, using the cached one: {e}");
                cached.clone()
            }
        }
    }

    /// Merges `status` (a JSON object of status fields) into the object's status.
    pub async fn patch(&self, status: serde_json::Value) -> Result<(), kube::Error> {
        self.api
            .patch_status(
                &self.name,
                &PatchParams {
                    field_manager: Some(self.field_manager.to_owned()),
                    ..PatchParams::default()
                },
                &Patch::Merge(json!({ "status": status })),
            )
            .await
            .map(|_| ())
    }

    /// Sets the `Ready` condition (and `observedGeneration`); writes only on a change. A failed
    /// write is logged and retried by the next call.
    pub async fn ready(&mut self, wanted: Wanted<'_>) {
        let mut conditions = self.conditions.clone();
        let (ok, reason, message) = (wanted.status, wanted.reason, wanted.message.clone());
        set(
            &mut conditions,
            wanted,
            self.generation,
            &Time(jiff::Timestamp::now()),
        );
        if conditions == self.conditions {
            return;
        }
        let previous_reason = self
            .conditions
            .iter()
            .find(|c| c.type_ == rivulet_api::keys::conditions::READY)
            .map(|c| c.reason.clone());
        let status = json!({"conditions": conditions, "observedGeneration": self.generation});
        if let Err(e) = self.patch(status).await {
            warn!(trigger = %self.name, "cannot write the Ready condition: {e}");
            return;
        }
        self.conditions = conditions;
        if !ok && previous_reason.as_deref() != Some(reason) {
            self.warn(reason, &message).await;
        }
    }

    /// Publishes a Warning Event about the trigger.
    pub async fn warn(&self, reason: &str, note: &str) {
        let event = Event {
            type_: EventType::Warning,
            reason: reason.to_owned(),
            note: Some(note.chars().take(1024).collect()),
            action: "Deliver".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, &self.reference).await {
            warn!(trigger = %self.name, "cannot publish event: {e}");
        }
    }
}
