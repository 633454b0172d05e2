//! Server-side apply (structured-merge-diff's `Updater.Apply`, in miniature).
//!
//! 1. The applier's new field set is the set of its applied configuration.
//! 2. The configuration is merged into the live object (keyed lists by key, sets by value,
//!    atomic lists and maps replaced, granular maps field by field).
//! 3. Fields the applier owned before, does not apply now, and nobody else owns are removed.
//! 4. Fields the merge added or changed that another manager owns are conflicts: an error
//!    without `force`, taken from that manager with it. Setting a field to its current value is
//!    not a change, so two appliers agreeing on a value share it.

use std::fmt;

use serde_json::{Map, Value};

use crate::fieldset::{FieldSet, PathElement};
use crate::managed::{
    ManagedFieldsEntry, ManagedFieldsError, Operation, SERVER_SET_METADATA, Scope,
    drop_empty_metadata, ownable_view, read_managed_fields, without_managed_fields,
    write_managed_fields,
};
use crate::order::interleave;
use crate::schema::{MergeSchema, Seg};
use crate::typed::{ItemError, Shape, compare, field_set, item_ids, remove_path, shape};

/// One server-side apply request.
#[derive(Clone, Copy, Debug)]
pub struct ApplyRequest<'a> {
    /// The stored object, or `None` when apply creates it (the caller answers 404 instead for
    /// `/status`, which never creates).
    pub live: Option<&'a Value>,
    /// The applied configuration (the parsed request body; the caller has checked apiVersion,
    /// kind, name and the absence of `metadata.managedFields`).
    pub applied: &'a Value,
    /// The `fieldManager` query parameter.
    pub manager: &'a str,
    /// The `force` query parameter.
    pub force: bool,
    /// Which endpoint: [`Scope::Status`] for `/status`, [`Scope::Main`] for the main endpoint of a
    /// kind with a status subresource, [`Scope::Whole`] otherwise ([`Scope::Scale`] takes only
    /// `.spec.replicas`, for a Scale body already converted to the parent kind).
    pub scope: Scope,
    /// RFC 3339 timestamp for the applier's entry when it changes, e.g. `2026-11-23T08:00:00Z`.
    pub now: &'a str,
}

/// The result of an apply.
#[derive(Clone, Debug, PartialEq)]
pub struct ApplyOutcome {
    /// The new object, `metadata.managedFields` included. Server-set metadata (uid,
    /// resourceVersion, ...) is the live object's, untouched.
    pub object: Value,
    /// False when `object` equals the live object exactly (managedFields included): the caller
    /// should not write, bump the resourceVersion or emit a watch event.
    pub changed: bool,
}

/// One field owned by another manager that the apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation.
    pub operation: Operation,
    /// Its apiVersion.
    pub api_version: String,
    /// Its subresource, if any.
    pub subresource: Option<String>,
    /// The field, formatted like upstream: `.spec.replicas`, `.spec.containers[name="app"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as upstream prints it: `"mgr"`, `"mgr" with subresource "status"`, and
    /// `... using v1` for `Update` managers.
    pub fn manager_description(&self) -> String {
        let subresource = self
            .subresource
            .as_ref()
            .map(|sub| format!(" with subresource {sub:?}"));
        let version =
            (self.operation == Operation::Update).then(|| format!(" using {}", self.api_version));
        format!(
            "{:?}{}{}",
            self.manager,
            subresource.unwrap_or_default(),
            version.unwrap_or_default()
        )
    }

    /// The `message` of this conflict's `StatusCause` (whose `type` is `FieldManagerConflict`
    /// and `field` is [`Self::field`]).
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_description())
    }
}

/// Apply conflicts; the `Display` text is upstream's 409 message, e.g.
/// `Apply failed with 1 conflict: conflict with "other": .data.key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConflictError {
    /// Every conflicting field, ordered by manager then field.
    pub conflicts: Vec<Conflict>,
}

impl fmt::Display for ConflictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let [only] = self.conflicts.as_slice() {
            return write!(
                f,
                "Apply failed with 1 conflict: conflict with {}: {}",
                only.manager_description(),
                only.field
            );
        }
        write!(f, "Apply failed with {} conflicts: ", self.conflicts.len())?;
        let mut by_manager: Vec<(String, &str)> = self
            .conflicts
            .iter()
            .map(|c| (c.manager_description(), c.field.as_str()))
            .collect();
        by_manager.sort();
        let mut current: Option<&str> = None;
        let mut first = true;
        for (manager, field) in &by_manager {
            if current != Some(manager.as_str()) {
                if !first {
                    f.write_str("\n")?;
                }
                write!(f, "conflicts with {manager}:")?;
                current = Some(manager.as_str());
            }
            write!(f, "\n- {field}")?;
            first = false;
        }
        Ok(())
    }
}

impl std::error::Error for ConflictError {}

/// Why an apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change and `force` was not set: answer 409
    /// `Conflict` with one `FieldManagerConflict` cause per [`Conflict`].
    #[error(transparent)]
    Conflicts(#[from] ConflictError),
    /// The applied configuration is not an object (400).
    #[error("the applied configuration must be an object")]
    NotAnObject,
    /// The applied configuration has list items that cannot be identified (422).
    #[error(transparent)]
    InvalidItems(#[from] ItemError),
    /// The live object's managedFields cannot be read (a stored-data problem: 500).
    #[error(transparent)]
    ManagedFields(#[from] ManagedFieldsError),
}

impl ApplyError {
    /// The HTTP status to answer with.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Conflicts(_) => 409,
            Self::NotAnObject => 400,
            Self::InvalidItems(_) => 422,
            Self::ManagedFields(_) => 500,
        }
    }
}

/// Runs server-side apply; see the module docs for the rules.
pub fn apply(
    request: &ApplyRequest<'_>,
    schema: &dyn MergeSchema,
) -> Result<ApplyOutcome, ApplyError> {
    let Value::Object(applied) = request.applied else {
        return Err(ApplyError::NotAnObject);
    };
    let config = Value::Object(config_in_scope(applied, request.scope));
    let new_set = field_set(&ownable_view(&config, request.scope), schema, true)?;

    let empty = Value::Object(Map::new());
    let live = request.live.unwrap_or(&empty);
    let mut entries = read_managed_fields(live)?;
    let live_content = without_managed_fields(live);

    let subresource = request.scope.subresource();
    let api_version = applied
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let existing = entries
        .iter()
        .position(|e| e.is_writer(request.manager, Operation::Apply, subresource, ""));
    let created = existing.is_none();
    let mine = existing.unwrap_or_else(|| {
        entries.push(ManagedFieldsEntry {
            manager: request.manager.to_owned(),
            operation: Operation::Apply,
            api_version: api_version.clone(),
            time: None,
            subresource: subresource.map(str::to_owned),
            fields: FieldSet::new(),
        });
        entries.len() - 1
    });
    let previous = std::mem::replace(&mut entries[mine].fields, new_set);

    let mut merged = merge(schema, Some(&live_content), &config, &mut Vec::new());
    let owned = entries
        .iter()
        .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
    for path in previous.difference(&owned).paths() {
        // A map field stays while another manager owns something inside it (its other
        // unowned contents are pruned one by one); list items go as a whole, like upstream.
        let is_field = matches!(path.0.last(), Some(PathElement::Field(_)));
        if !(is_field && owned.has_members_below(&path.0)) {
            remove_path(&mut merged, &path.0, schema);
        }
    }
    drop_empty_metadata(&mut merged);

    let cmp = compare(
        &ownable_view(&live_content, request.scope),
        &ownable_view(&merged, request.scope),
        schema,
    );
    let changed_fields = cmp.added.union(&cmp.modified);
    let mut conflicts = Vec::new();
    for (i, entry) in entries.iter_mut().enumerate() {
        if i == mine {
            continue;
        }
        let taken = entry.fields.intersection(&changed_fields);
        conflicts.extend(taken.paths().into_iter().map(|p| Conflict {
            manager: entry.manager.clone(),
            operation: entry.operation,
            api_version: entry.api_version.clone(),
            subresource: entry.subresource.clone(),
            field: p.to_string(),
        }));
        entry.fields = entry.fields.difference(&taken).difference(&cmp.removed);
    }
    if !conflicts.is_empty() && !request.force {
        conflicts.sort_by(|a, b| {
            (a.manager_description(), &a.field).cmp(&(b.manager_description(), &b.field))
        });
        return Err(ConflictError { conflicts }.into());
    }

    let entry = &mut entries[mine];
    let content_changed = merged != live_content;
    if created || content_changed || entry.fields != previous || entry.api_version != api_version {
        entry.time = Some(request.now.to_owned());
        entry.api_version = api_version;
    }
    write_managed_fields(&mut merged, entries);
    let changed = request.live != Some(&merged);
    Ok(ApplyOutcome {
        object: merged,
        changed,
    })
}

/// The applied configuration limited to what this endpoint takes: `null`s dropped (as decoding
/// into typed objects does upstream), server-set metadata dropped, and only `.status` for
/// `/status` (without it for the main endpoint of a kind with a status subresource).
fn config_in_scope(applied: &Map<String, Value>, scope: Scope) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in applied {
        if value.is_null() {
            continue;
        }
        let value = without_nulls(value);
        match key.as_str() {
            "apiVersion" | "kind" => {
                out.insert(key.clone(), value);
            }
            "metadata" => {
                if let Value::Object(mut meta) = value {
                    meta.retain(|k, _| {
                        !SERVER_SET_METADATA.contains(&k.as_str())
                            && (scope.covers_metadata()
                                || matches!(k.as_str(), "name" | "namespace"))
                    });
                    out.insert(key.clone(), Value::Object(meta));
                }
            }
            _ => {
                if let Some(part) = scope.part_of(key, &value) {
                    out.insert(key.clone(), part);
                }
            }
        }
    }
    out
}

fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        scalar => scalar.clone(),
    }
}

/// Merges `config` into `live` following the schema (structured-merge-diff `merge`).
fn merge<'v>(
    schema: &dyn MergeSchema,
    live: Option<&Value>,
    config: &'v Value,
    segs: &mut Vec<Seg<'v>>,
) -> Value {
    match (shape(schema, segs, config), live) {
        (Shape::Map(config_map), Some(Value::Object(live_map))) => {
            let mut out = live_map.clone();
            for (name, value) in config_map {
                segs.push(Seg::Field(name));
                let merged = merge(schema, live_map.get(name), value, segs);
                segs.pop();
                out.insert(name.clone(), merged);
            }
            Value::Object(out)
        }
        (Shape::Set(config_items), Some(Value::Array(live_items))) => {
            let slots = interleave(&item_ids(live_items, None), &item_ids(config_items, None));
            Value::Array(
                slots
                    .into_iter()
                    .filter_map(|slot| match slot {
                        (Some(l), _) => live_items.get(l).cloned(),
                        (None, Some(c)) => config_items.get(c).cloned(),
                        (None, None) => None,
                    })
                    .collect(),
            )
        }
        (Shape::Keyed(config_items, keys), Some(Value::Array(live_items))) => {
            let slots = interleave(
                &item_ids(live_items, Some(&keys)),
                &item_ids(config_items, Some(&keys)),
            );
            segs.push(Seg::Item);
            let out = slots
                .into_iter()
                .filter_map(|slot| match slot {
                    (Some(l), Some(c)) => {
                        Some(merge(schema, live_items.get(l), &config_items[c], segs))
                    }
                    (Some(l), None) => live_items.get(l).cloned(),
                    (None, Some(c)) => config_items.get(c).cloned(),
                    (None, None) => None,
                })
                .collect();
            segs.pop();
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

#[cfg(test)]
mod tests {
    //! Server-side apply scenarios, written as a server would drive them: apply, then "store" the
    //! result (the server adds uid and resourceVersion), then apply again.

    use serde_json::{Value, json};

    use super::*;
    use crate::managed::{UpdateWrite, record_update};
    use crate::schema::{BuiltinSchema, OpenApiSchema};

    const T1: &str = "2026-11-23T08:00:00Z";
    const T2: &str = "2026-11-23T09:00:00Z";
    const T3: &str = "2026-11-23T10:00:00Z";

    fn cm_schema() -> BuiltinSchema {
        BuiltinSchema::for_kind("", "ConfigMap")
    }

    fn config_map(data: &Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"}, "data": data})
    }

    /// What the server does with a created object before storing it.
    fn stored(mut object: Value) -> Value {
        object["metadata"]["uid"] = json!("0000-1111");
        object["metadata"]["resourceVersion"] = json!("7");
        object["metadata"]["creationTimestamp"] = json!(T1);
        object
    }

    fn run(
        live: Option<&Value>,
        applied: &Value,
        manager: &str,
        force: bool,
        now: &str,
        schema: &dyn MergeSchema,
    ) -> Result<ApplyOutcome, ApplyError> {
        apply(
            &ApplyRequest {
                live,
                applied,
                manager,
                force,
                scope: Scope::Whole,
                now,
            },
            schema,
        )
    }

    fn apply_ok(live: Option<&Value>, applied: &Value, manager: &str, now: &str) -> Value {
        match run(live, applied, manager, false, now, &cm_schema()) {
            Ok(outcome) => outcome.object,
            Err(e) => panic!("apply by {manager} failed: {e}"),
        }
    }

    /// `(manager, operation, fieldsV1)` of every entry.
    fn owners(object: &Value) -> Vec<(String, String, Value)> {
        crate::managed::read_managed_fields(object)
            .unwrap()
            .into_iter()
            .map(|e| {
                (
                    e.manager,
                    e.operation.as_str().to_owned(),
                    e.fields.to_fields_v1(),
                )
            })
            .collect()
    }

    #[test]
    fn kubectl_server_side_create() {
        let mut applied = config_map(&json!({"key": "v"}));
        applied["metadata"]["labels"] = json!({"app": "demo"});
        let outcome = run(None, &applied, "kubectl", false, T1, &cm_schema()).unwrap();
        assert!(outcome.changed);
        let mut expected = applied.clone();
        expected["metadata"]["managedFields"] = json!([{
            "manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
            "fieldsV1": {"f:data": {"f:key": {}}, "f:metadata": {"f:labels": {"f:app": {}}}}
        }]);
        assert_eq!(outcome.object, expected);
    }

    #[test]
    fn reapplying_identical_config_changes_nothing() {
        let applied = config_map(&json!({"key": "v"}));
        let live = stored(apply_ok(None, &applied, "kubectl", T1));
        let outcome = run(Some(&live), &applied, "kubectl", false, T2, &cm_schema()).unwrap();
        assert!(!outcome.changed);
        assert_eq!(outcome.object, live, "time must not move on a no-op");
    }

    #[test]
    fn reapplying_without_a_field_removes_it() {
        let live = stored(apply_ok(
            None,
            &config_map(&json!({"a": "1", "b": "2"})),
            "kubectl",
            T1,
        ));
        let outcome = run(
            Some(&live),
            &config_map(&json!({"a": "1"})),
            "kubectl",
            false,
            T2,
            &cm_schema(),
        )
        .unwrap();
        assert!(outcome.changed);
        assert_eq!(outcome.object["data"], json!({"a": "1"}));
        assert_eq!(
            outcome.object["metadata"]["uid"],
            json!("0000-1111"),
            "server-set metadata is kept"
        );
        assert_eq!(
            outcome.object["metadata"]["managedFields"][0]["time"],
            json!(T2)
        );
        assert_eq!(
            owners(&outcome.object),
            [(
                "kubectl".into(),
                "Apply".into(),
                json!({"f:data": {"f:a": {}}})
            )]
        );
    }

    #[test]
    fn second_manager_conflicts_on_an_owned_field() {
        let live = stored(apply_ok(
            None,
            &config_map(&json!({"key": "v"})),
            "kubectl",
            T1,
        ));
        let err = run(
            Some(&live),
            &config_map(&json!({"key": "other"})),
            "ctrl",
            false,
            T2,
            &cm_schema(),
        )
        .unwrap_err();
        assert_eq!(err.http_status(), 409);
        let ApplyError::Conflicts(conflicts) = err else {
            panic!("expected conflicts, got {err}");
        };
        assert_eq!(conflicts.conflicts.len(), 1);
        assert_eq!(conflicts.conflicts[0].manager, "kubectl");
        assert_eq!(conflicts.conflicts[0].field, ".data.key");
        assert_eq!(
            conflicts.conflicts[0].cause_message(),
            r#"conflict with "kubectl""#
        );
        assert_eq!(
            conflicts.to_string(),
            r#"Apply failed with 1 conflict: conflict with "kubectl": .data.key"#
        );
    }

    #[test]
    fn force_takes_ownership_and_the_loser_then_conflicts() {
        let live = stored(apply_ok(
            None,
            &config_map(&json!({"key": "v", "mine": "x"})),
            "kubectl",
            T1,
        ));
        let outcome = run(
            Some(&live),
            &config_map(&json!({"key": "forced"})),
            "ctrl",
            true,
            T2,
            &cm_schema(),
        )
        .unwrap();
        assert_eq!(
            outcome.object["data"],
            json!({"key": "forced", "mine": "x"})
        );
        assert_eq!(
            owners(&outcome.object),
            [
                (
                    "kubectl".into(),
                    "Apply".into(),
                    json!({"f:data": {"f:mine": {}}})
                ),
                (
                    "ctrl".into(),
                    "Apply".into(),
                    json!({"f:data": {"f:key": {}}})
                ),
            ]
        );
        // kubectl re-applying its old value now conflicts with ctrl.
        let live = outcome.object;
        let err = run(
            Some(&live),
            &config_map(&json!({"key": "v", "mine": "x"})),
            "kubectl",
            false,
            T3,
            &cm_schema(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "ctrl": .data.key"#
        );
    }

    #[test]
    fn agreeing_appliers_share_a_field_and_it_survives_one_dropping_it() {
        let live = stored(apply_ok(
            None,
            &config_map(&json!({"shared": "same", "a": "1"})),
            "alice",
            T1,
        ));
        let live = apply_ok(
            Some(&live),
            &config_map(&json!({"shared": "same"})),
            "bob",
            T2,
        );
        assert_eq!(
            owners(&live),
            [
                (
                    "alice".into(),
                    "Apply".into(),
                    json!({"f:data": {"f:a": {}, "f:shared": {}}})
                ),
                (
                    "bob".into(),
                    "Apply".into(),
                    json!({"f:data": {"f:shared": {}}})
                ),
            ]
        );
        // Alice drops it: Bob still owns it, so it stays.
        let live = apply_ok(Some(&live), &config_map(&json!({"a": "1"})), "alice", T3);
        assert_eq!(live["data"], json!({"shared": "same", "a": "1"}));
        // Bob drops it too (sending no data at all): now it goes.
        let mut no_data = config_map(&json!({}));
        no_data.as_object_mut().unwrap().remove("data");
        let live = apply_ok(Some(&live), &no_data, "bob", T3);
        assert_eq!(live["data"], json!({"a": "1"}));
        assert_eq!(
            owners(&live),
            [(
                "alice".into(),
                "Apply".into(),
                json!({"f:data": {"f:a": {}}})
            )]
        );
    }

    fn deployment(containers: &Value) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "default"},
            "spec": {"template": {"spec": {"containers": containers}}}
        })
    }

    #[test]
    fn containers_merge_by_name_across_managers() {
        let schema = BuiltinSchema::for_kind("apps", "Deployment");
        let apply_as = |live: Option<&Value>, containers: Value, manager: &str| {
            run(live, &deployment(&containers), manager, false, T1, &schema).map(|o| o.object)
        };
        let live =
            stored(apply_as(None, json!([{"name": "app", "image": "app:1"}]), "team").unwrap());
        let live = apply_as(
            Some(&live),
            json!([{"name": "proxy", "image": "proxy:1"}]),
            "mesh",
        )
        .unwrap();
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "app:1"}, {"name": "proxy", "image": "proxy:1"}])
        );
        let all = owners(&live);
        let fields = &all.iter().find(|o| o.0 == "team").unwrap().2;
        assert_eq!(
            fields,
            &json!({"f:spec": {"f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}}}})
        );
        // The team bumps its image (no conflict: mesh does not own it) ...
        let live = apply_as(
            Some(&live),
            json!([{"name": "app", "image": "app:2"}]),
            "team",
        )
        .unwrap();
        // ... and mesh cannot change it.
        let err = apply_as(
            Some(&live),
            json!([{"name": "proxy", "image": "proxy:1"}, {"name": "app", "image": "x"}]),
            "mesh",
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "team": .spec.template.spec.containers[name="app"].image"#
        );
        // The team drops its container: only mesh's remains.
        let live = apply_as(Some(&live), json!([]), "team").unwrap();
        assert_eq!(
            live["spec"]["template"]["spec"]["containers"],
            json!([{"name": "proxy", "image": "proxy:1"}])
        );
    }

    #[test]
    fn applied_items_without_keys_are_rejected() {
        let schema = BuiltinSchema::for_kind("apps", "Deployment");
        let err = run(
            None,
            &deployment(&json!([{"image": "x"}])),
            "m",
            false,
            T1,
            &schema,
        )
        .unwrap_err();
        assert_eq!(err.http_status(), 422);
        assert!(
            err.to_string().contains("omits key field \"name\""),
            "{err}"
        );
    }

    #[test]
    fn finalizers_merge_as_a_set_between_managers() {
        let with_finalizers = |f: Value| {
            let mut o = config_map(&json!({}));
            o["metadata"]["finalizers"] = f;
            o
        };
        let live = stored(apply_ok(
            None,
            &with_finalizers(json!(["a.example/x"])),
            "a",
            T1,
        ));
        let live = apply_ok(
            Some(&live),
            &with_finalizers(json!(["b.example/y"])),
            "b",
            T2,
        );
        assert_eq!(
            live["metadata"]["finalizers"],
            json!(["a.example/x", "b.example/y"])
        );
        let live = apply_ok(Some(&live), &with_finalizers(json!([])), "a", T3);
        assert_eq!(live["metadata"]["finalizers"], json!(["b.example/y"]));
    }

    fn pod_with_status() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "uid": "u"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
            "status": {"phase": "Pending"}
        })
    }

    #[test]
    fn status_subresource_apply_only_touches_status() {
        let schema = BuiltinSchema::for_kind("", "Pod");
        let live = pod_with_status();
        let applied = json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default", "labels": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "changed"}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let request = ApplyRequest {
            live: Some(&live),
            applied: &applied,
            manager: "kubelet",
            force: true,
            scope: Scope::Status,
            now: T1,
        };
        let out = apply(&request, &schema).unwrap().object;
        assert_eq!(out["spec"], live["spec"]);
        assert!(out["metadata"].get("labels").is_none());
        assert_eq!(out["status"]["phase"], json!("Running"));
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{
                "manager": "kubelet", "operation": "Apply", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
                "fieldsV1": {"f:status": {"f:conditions": {"k:{\"type\":\"Ready\"}": {".": {}, "f:status": {}, "f:type": {}}}, "f:phase": {}}},
                "subresource": "status"
            }])
        );
        // The same manager applying to the main endpoint is a separate entry that ignores status.
        let main = ApplyRequest {
            live: Some(&out),
            applied: &applied,
            manager: "kubelet",
            force: true,
            scope: Scope::Main,
            now: T2,
        };
        let out2 = apply(&main, &schema).unwrap().object;
        assert_eq!(out2["status"], out["status"]);
        assert_eq!(out2["spec"]["containers"][0]["image"], json!("changed"));
        assert_eq!(
            out2["metadata"]["managedFields"].as_array().map(Vec::len),
            Some(2)
        );
    }

    #[test]
    fn update_managers_are_tracked_and_conflict_with_appliers() {
        // kubectl create (client side) records an Update entry ...
        let created = record_update(
            &UpdateWrite {
                old: None,
                manager: "kubectl-client-side-apply",
                scope: Scope::Whole,
                now: T1,
            },
            config_map(&json!({"key": "v", "other": "o"})),
            &cm_schema(),
        )
        .unwrap();
        let live = stored(created);
        assert_eq!(
            owners(&live),
            [(
                "kubectl-client-side-apply".into(),
                "Update".into(),
                json!({"f:data": {"f:key": {}, "f:other": {}}})
            )]
        );
        // ... an applier setting the same value shares it, a different value conflicts.
        let shared = apply_ok(Some(&live), &config_map(&json!({"key": "v"})), "ctrl", T2);
        assert_eq!(owners(&shared).len(), 2);
        let err = run(
            Some(&live),
            &config_map(&json!({"key": "new", "other": "new"})),
            "ctrl",
            false,
            T2,
            &cm_schema(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 2 conflicts: conflicts with \"kubectl-client-side-apply\" using v1:\n- .data.key\n- .data.other"
        );
        // A later PUT by someone else takes the field from the applier without conflict.
        let mut edited = shared.clone();
        edited["data"]["key"] = json!("edited");
        let out = record_update(
            &UpdateWrite {
                old: Some(&shared),
                manager: "kubectl-edit",
                scope: Scope::Whole,
                now: T3,
            },
            edited,
            &cm_schema(),
        )
        .unwrap();
        assert_eq!(
            owners(&out),
            [
                (
                    "kubectl-client-side-apply".into(),
                    "Update".into(),
                    json!({"f:data": {"f:other": {}}})
                ),
                (
                    "kubectl-edit".into(),
                    "Update".into(),
                    json!({"f:data": {"f:key": {}}})
                ),
            ]
        );
    }

    #[test]
    fn server_set_metadata_in_the_config_is_ignored() {
        let live = stored(apply_ok(None, &config_map(&json!({"a": "1"})), "m", T1));
        let mut applied = config_map(&json!({"a": "1"}));
        applied["metadata"]["uid"] = json!("forged");
        applied["metadata"]["resourceVersion"] = json!("1");
        let outcome = run(Some(&live), &applied, "m", false, T2, &cm_schema()).unwrap();
        assert!(!outcome.changed);
        assert_eq!(outcome.object["metadata"]["uid"], json!("0000-1111"));
    }

    #[test]
    fn custom_resource_lists_follow_the_openapi_schema() {
        let schema = OpenApiSchema::new(
            json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
                "routes": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["path"],
                           "items": {"type": "object"}},
                "hosts": {"type": "array", "items": {"type": "string"}}
            }}}}),
        );
        let widget = |routes: Value, hosts: Value| {
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
                   "spec": {"routes": routes, "hosts": hosts}})
        };
        let live = stored(
            run(
                None,
                &widget(json!([{"path": "/a", "to": "x"}]), json!(["h1"])),
                "a",
                false,
                T1,
                &schema,
            )
            .unwrap()
            .object,
        );
        let out = run(
            Some(&live),
            &widget(json!([{"path": "/b", "to": "y"}]), json!(["h1"])),
            "b",
            false,
            T2,
            &schema,
        )
        .unwrap()
        .object;
        assert_eq!(
            out["spec"]["routes"],
            json!([{"path": "/a", "to": "x"}, {"path": "/b", "to": "y"}])
        );
        // `hosts` is atomic: b agreed on the whole list, so both own it; a different list conflicts.
        let err = run(
            Some(&out),
            &widget(json!([]), json!(["h2"])),
            "b",
            false,
            T2,
            &schema,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "a": .spec.hosts"#
        );
    }

    #[test]
    fn applies_by_many_managers_keep_entries_sorted_and_stable() {
        let mut live = stored(apply_ok(None, &config_map(&json!({"z": "1"})), "zeta", T1));
        for (manager, key) in [("alpha", "a"), ("mid", "m")] {
            let mut data = live["data"].clone();
            data[key] = json!("1");
            let mut config = config_map(&json!({}));
            config["data"] = json!({ key: "1" });
            live = apply_ok(Some(&live), &config, manager, T2);
            assert_eq!(live["data"], data);
        }
        let managers: Vec<_> = owners(&live).into_iter().map(|o| o.0).collect();
        assert_eq!(
            managers,
            ["zeta", "alpha", "mid"],
            "sorted by time, then manager"
        );
        let again = run(
            Some(&live),
            &config_map(&json!({"m": "1"})),
            "mid",
            false,
            T3,
            &cm_schema(),
        )
        .unwrap();
        assert!(!again.changed);
    }

    #[test]
    fn not_an_object_is_a_bad_request() {
        assert_eq!(
            run(None, &json!([1]), "m", false, T1, &cm_schema())
                .unwrap_err()
                .http_status(),
            400
        );
    }

    #[test]
    fn empty_map_in_config_is_owned_and_pruned_when_replaced() {
        let schema = BuiltinSchema::for_kind("", "Pod");
        let pod = |volume: Value| {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                   "spec": {"volumes": [volume]}})
        };
        let live = stored(
            run(
                None,
                &pod(json!({"name": "v", "emptyDir": {}})),
                "m",
                false,
                T1,
                &schema,
            )
            .unwrap()
            .object,
        );
        assert_eq!(
            live["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:volumes": {"k:{\"name\":\"v\"}": {".": {}, "f:emptyDir": {}, "f:name": {}}}}})
        );
        let out = run(
            Some(&live),
            &pod(json!({"name": "v", "hostPath": {"path": "/x"}})),
            "m",
            false,
            T2,
            &schema,
        )
        .unwrap()
        .object;
        assert_eq!(
            out["spec"]["volumes"],
            json!([{"name": "v", "hostPath": {"path": "/x"}}])
        );
    }

    #[test]
    fn pruning_keeps_a_map_another_manager_writes_into() {
        let with_spec = |spec: Value| json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "spec": spec});
        let live = stored(apply_ok(
            None,
            &with_spec(json!({"opts": {"a": 1}})),
            "alice",
            T1,
        ));
        let live = apply_ok(
            Some(&live),
            &with_spec(json!({"opts": {"b": 2}})),
            "bob",
            T2,
        );
        let out = apply_ok(Some(&live), &with_spec(json!({})), "alice", T3);
        assert_eq!(out["spec"], json!({"opts": {"b": 2}}));
    }

    /// Every config, applied twice (with and without force, over a live object another manager
    /// also wrote), must be a no-op the second time.
    #[test]
    fn second_apply_is_always_a_noop() {
        let pod = BuiltinSchema::for_kind("", "Pod");
        let deploy = BuiltinSchema::for_kind("apps", "Deployment");
        let cm = cm_schema();
        let cases: Vec<(Value, &dyn MergeSchema)> = vec![
            (config_map(&json!({"a": "1"})), &cm),
            (
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "y"},
                       "finalizers": ["f"], "ownerReferences": [{"uid": "u1", "name": "o", "kind": "K", "apiVersion": "v1"}]},
                       "spec": {"nodeSelector": {"disk": "ssd"}, "tolerations": [{"key": "k"}], "volumes": [{"name": "v", "emptyDir": {}}],
                                "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}],
                                                "env": [{"name": "A", "value": "1"}], "args": ["x"]}]}}),
                &pod,
            ),
            (
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                                "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
                &deploy,
            ),
        ];
        for (config, schema) in cases {
            for force in [false, true] {
                let live = stored(
                    run(None, &config, "first", force, T1, schema)
                        .unwrap()
                        .object,
                );
                // Someone else adds a label, so the object has two managers.
                let mut edited = live.clone();
                edited["metadata"]["labels"]["other"] = json!("z");
                let live = record_update(
                    &UpdateWrite {
                        old: Some(&live),
                        manager: "editor",
                        scope: Scope::Whole,
                        now: T2,
                    },
                    edited,
                    schema,
                )
                .unwrap();
                let again = run(Some(&live), &config, "first", force, T3, schema).unwrap();
                assert!(
                    !again.changed,
                    "re-applying {config} (force={force}) changed the object"
                );
                assert_eq!(again.object, live);
            }
        }
    }

    /// `kubectl apply --server-side` sends the manifest as `kubectl`, then only the last-applied
    /// annotation as `kubectl-last-applied`; neither disturbs the other.
    #[test]
    fn kubectl_two_step_server_side_apply() {
        let manifest = config_map(&json!({"key": "v"}));
        let live = stored(apply_ok(None, &manifest, "kubectl", T1));
        let annotation = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{...}"}}});
        let live = apply_ok(Some(&live), &annotation, "kubectl-last-applied", T1);
        assert_eq!(live["data"], json!({"key": "v"}));
        assert_eq!(
            owners(&live),
            [
                (
                    "kubectl".into(),
                    "Apply".into(),
                    json!({"f:data": {"f:key": {}}})
                ),
                (
                    "kubectl-last-applied".into(),
                    "Apply".into(),
                    json!({"f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}})
                ),
            ]
        );
        let again = run(Some(&live), &manifest, "kubectl", false, T2, &cm_schema()).unwrap();
        assert!(!again.changed);
    }

    #[test]
    fn owner_references_merge_by_uid() {
        let with_owner = |uid: &str| {
            let mut o = config_map(&json!({}));
            o["metadata"]["ownerReferences"] =
                json!([{"apiVersion": "v1", "kind": "K", "name": uid, "uid": uid}]);
            o
        };
        let live = stored(apply_ok(None, &with_owner("u1"), "a", T1));
        let live = apply_ok(Some(&live), &with_owner("u2"), "b", T2);
        let uids: Vec<_> = live["metadata"]["ownerReferences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["uid"].clone())
            .collect();
        assert_eq!(uids, [json!("u1"), json!("u2")]);
    }

    #[test]
    fn atomic_map_is_owned_whole_and_conflicts_whole() {
        let schema = BuiltinSchema::for_kind("", "Pod");
        let pod = |selector: Value| json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"nodeSelector": selector}});
        let live = stored(
            run(None, &pod(json!({"a": "1"})), "m1", false, T1, &schema)
                .unwrap()
                .object,
        );
        assert_eq!(
            live["metadata"]["managedFields"][0]["fieldsV1"],
            json!({"f:spec": {"f:nodeSelector": {}}})
        );
        let err = run(
            Some(&live),
            &pod(json!({"b": "2"})),
            "m2",
            false,
            T2,
            &schema,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"Apply failed with 1 conflict: conflict with "m1": .spec.nodeSelector"#
        );
        let out = run(
            Some(&live),
            &pod(json!({"b": "2"})),
            "m2",
            true,
            T2,
            &schema,
        )
        .unwrap()
        .object;
        assert_eq!(
            out["spec"]["nodeSelector"],
            json!({"b": "2"}),
            "atomic maps are replaced, not merged"
        );
    }
}
