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
mod tests;
