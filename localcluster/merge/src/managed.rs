//! `metadata.managedFields`: entries, what part of an object counts for ownership, and
//! tracking of non-apply writes (create, update, every non-apply patch) as `Update` entries.

use serde_json::{Map, Value};

use crate::fieldset::{FieldSet, FieldsV1Error};
use crate::schema::MergeSchema;
use crate::typed::compare;

/// The operation a managedFields entry records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply.
    Apply,
    /// Any other write: create, update (PUT), or a non-apply patch.
    Update,
}

impl Operation {
    /// The wire name, `Apply` or `Update`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Apply => "Apply",
            Self::Update => "Update",
        }
    }
}

/// One `metadata.managedFields` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`fieldManager` query parameter, or the User-Agent).
    pub manager: String,
    /// `Apply` or `Update`.
    pub operation: Operation,
    /// The apiVersion the fields were written with.
    pub api_version: String,
    /// RFC 3339 time of the last change of this entry, as given by the caller.
    pub time: Option<String>,
    /// `status` (or another subresource) when written through one.
    pub subresource: Option<String>,
    /// The owned fields (`fieldsV1`).
    pub fields: FieldSet,
}

/// A managedFields value that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManagedFieldsError {
    /// `metadata.managedFields` is not a list of objects.
    #[error("metadata.managedFields must be a list of objects")]
    NotAList,
    /// An entry has a bad field.
    #[error("metadata.managedFields[{index}]: {message}")]
    BadEntry {
        /// Position of the entry.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// An entry's `fieldsV1` is malformed.
    #[error("metadata.managedFields[{index}].fieldsV1: {source}")]
    FieldsV1 {
        /// Position of the entry.
        index: usize,
        /// The parse error.
        source: FieldsV1Error,
    },
}

impl ManagedFieldsEntry {
    /// Reads an entry. Missing `operation` reads as `Update` and missing `fieldsV1` as empty, so
    /// that the upstream reset idiom `managedFields: [{}]` decodes (to an entry that is dropped).
    pub fn from_value(value: &Value, index: usize) -> Result<Self, ManagedFieldsError> {
        let bad = |message: &str| ManagedFieldsError::BadEntry {
            index,
            message: message.to_owned(),
        };
        let Value::Object(map) = value else {
            return Err(ManagedFieldsError::NotAList);
        };
        let text = |name: &str| -> Result<Option<String>, ManagedFieldsError> {
            match map.get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(&format!("{name} must be a string"))),
            }
        };
        let operation = match text("operation")?.as_deref() {
            None | Some("Update") => Operation::Update,
            Some("Apply") => Operation::Apply,
            Some(other) => return Err(bad(&format!("unknown operation {other:?}"))),
        };
        if let Some(kind) = text("fieldsType")?
            && kind != "FieldsV1"
        {
            return Err(bad(&format!("unsupported fieldsType {kind:?}")));
        }
        let fields = match map.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v)
                .map_err(|source| ManagedFieldsError::FieldsV1 { index, source })?,
        };
        Ok(Self {
            manager: text("manager")?.unwrap_or_default(),
            operation,
            api_version: text("apiVersion")?.unwrap_or_default(),
            time: text("time")?,
            subresource: text("subresource")?.filter(|s| !s.is_empty()),
            fields,
        })
    }

    /// Writes the entry in the wire format (`fieldsType: FieldsV1`).
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert("manager".into(), Value::String(self.manager.clone()));
        map.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        map.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(time) = &self.time {
            map.insert("time".into(), Value::String(time.clone()));
        }
        map.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        map.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            map.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(map)
    }

    /// True when `self` is the entry of this writer: same manager, operation and subresource,
    /// and for `Update` also the same apiVersion (upstream `BuildManagerIdentifier`).
    pub fn is_writer(
        &self,
        manager: &str,
        operation: Operation,
        subresource: Option<&str>,
        api_version: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
            && (operation == Operation::Apply || self.api_version == api_version)
    }
}

/// Reads `metadata.managedFields` of `object` (absent reads as empty).
pub fn read_managed_fields(object: &Value) -> Result<Vec<ManagedFieldsEntry>, ManagedFieldsError> {
    match object.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(entries)) => entries
            .iter()
            .enumerate()
            .map(|(i, e)| ManagedFieldsEntry::from_value(e, i))
            .collect(),
        Some(_) => Err(ManagedFieldsError::NotAList),
    }
}

/// Most `Update` entries kept per object (upstream `DefaultMaxUpdateManagers`).
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// Manager name of the entry that absorbs the oldest `Update` entries beyond the cap.
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// Writes `entries` into `object`'s `metadata.managedFields`, dropping entries without fields,
/// merging the oldest `Update` entries into [`ANCIENT_CHANGES`] (one per apiVersion) when there
/// are more than [`MAX_UPDATE_MANAGERS`], and sorting like upstream (operation, time, manager,
/// apiVersion, subresource); removes the field when nothing is left.
pub fn write_managed_fields(object: &mut Value, mut entries: Vec<ManagedFieldsEntry>) {
    entries.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut entries);
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    let Value::Object(root) = object else {
        return;
    };
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(meta) = meta else {
        return;
    };
    if entries.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert(
            "managedFields".into(),
            Value::Array(entries.iter().map(ManagedFieldsEntry::to_value).collect()),
        );
    }
}

/// Upstream `capManagersManager`: oldest `Update` entries first, each merged into the bucket
/// of its apiVersion (the first entry seen for that version becomes the bucket) until at most
/// [`MAX_UPDATE_MANAGERS`] remain. The bucket takes the time of the latest entry merged in.
fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>) {
    let mut order: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == Operation::Update)
        .collect();
    if order.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    order.sort_by(|&a, &b| {
        (&entries[a].time, &entries[a].manager).cmp(&(&entries[b].time, &entries[b].manager))
    });
    let is_bucket = |e: &ManagedFieldsEntry, version: &str| {
        e.manager == ANCIENT_CHANGES
            && e.operation == Operation::Update
            && e.subresource.is_none()
            && e.api_version == version
    };
    let mut remaining = order.len();
    let mut first_by_version: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    let mut merged_away = Vec::new();
    for &i in &order {
        if remaining <= MAX_UPDATE_MANAGERS {
            break;
        }
        let version = entries[i].api_version.clone();
        let Some(&first) = first_by_version.get(&version) else {
            first_by_version.insert(version, i);
            continue;
        };
        let bucket = (0..entries.len())
            .find(|&b| !merged_away.contains(&b) && is_bucket(&entries[b], &version))
            .unwrap_or(first);
        if bucket == i {
            continue;
        }
        let (fields, time) = (entries[i].fields.clone(), entries[i].time.clone());
        let target = &mut entries[bucket];
        ANCIENT_CHANGES.clone_into(&mut target.manager);
        target.subresource = None;
        target.fields.union_in_place(&fields);
        target.time = time;
        merged_away.push(i);
        remaining -= 1;
    }
    merged_away.sort_unstable();
    for i in merged_away.into_iter().rev() {
        entries.remove(i);
    }
}

/// Which part of an object a write may touch and own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The main endpoint of a kind without a status subresource: the whole object.
    Whole,
    /// The main endpoint of a kind with a status subresource: `.status` is not the writer's
    /// (apply ignores it; ownership tracking skips it).
    Main,
    /// The `/status` subresource: only `.status`; entries record `subresource: status`.
    Status,
    /// The `/scale` subresource, applied to the parent object: only `.spec.replicas`; entries
    /// record `subresource: scale`.
    Scale,
}

impl Scope {
    /// The `subresource` recorded in managedFields entries.
    pub fn subresource(self) -> Option<&'static str> {
        match self {
            Self::Status => Some("status"),
            Self::Scale => Some("scale"),
            Self::Whole | Self::Main => None,
        }
    }

    /// True when this scope covers `metadata` (only the main endpoint does).
    pub(crate) fn covers_metadata(self) -> bool {
        matches!(self, Self::Whole | Self::Main)
    }

    /// The part of top-level field `key` (holding `value`) that this scope covers, if any.
    /// `apiVersion`, `kind` and `metadata` are the callers' business.
    pub(crate) fn part_of(self, key: &str, value: &Value) -> Option<Value> {
        let covered = match self {
            Self::Whole => true,
            Self::Main => key != "status",
            Self::Status => key == "status",
            Self::Scale => {
                let replicas = value.get("replicas").filter(|_| key == "spec")?;
                return Some(Value::Object(Map::from_iter([(
                    "replicas".to_owned(),
                    replicas.clone(),
                )])));
            }
        };
        covered.then(|| value.clone())
    }
}

/// Metadata fields the server sets: never merged from an applied configuration.
pub(crate) const SERVER_SET_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "selfLink",
    "managedFields",
];

/// The part of `object` whose fields can be owned in `scope`: without `apiVersion`, `kind`,
/// `metadata.name`/`namespace` and the server-set metadata (upstream `stripMeta`).
pub(crate) fn ownable_view(object: &Value, scope: Scope) -> Value {
    let mut out = Map::new();
    if let Value::Object(map) = object {
        for (key, value) in map {
            if matches!(key.as_str(), "apiVersion" | "kind") {
                continue;
            }
            if key == "metadata" {
                let Value::Object(meta) = value else {
                    continue;
                };
                if !scope.covers_metadata() {
                    continue;
                }
                let kept: Map<String, Value> = meta
                    .iter()
                    .filter(|(k, _)| {
                        !matches!(k.as_str(), "name" | "namespace")
                            && !SERVER_SET_METADATA.contains(&k.as_str())
                    })
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                // Nothing ownable left (only name/namespace/server fields): no `.metadata` leaf.
                if !kept.is_empty() {
                    out.insert(key.clone(), Value::Object(kept));
                }
                continue;
            }
            if let Some(part) = scope.part_of(key, value) {
                out.insert(key.clone(), part);
            }
        }
    }
    Value::Object(out)
}

/// ObjectMeta collections that Go serializes with `omitempty`.
const OMIT_EMPTY_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// Removes empty (or `null`) `metadata.labels`, `annotations`, `finalizers` and
/// `ownerReferences`, as upstream's typed round trip (`omitempty`) does. This matters to
/// clients: kube-rs's finalizer helper sends `test /metadata/finalizers == null` whenever it
/// sees no finalizers, which an empty list would fail forever. [`record_update`] and
/// [`crate::apply()`] call it on their results; call it on objects stored by other paths.
pub fn drop_empty_metadata(object: &mut Value) {
    if let Some(Value::Object(meta)) = object.get_mut("metadata") {
        meta.retain(|key, value| {
            let empty = match value {
                Value::Null => true,
                Value::Object(map) => map.is_empty(),
                Value::Array(items) => items.is_empty(),
                _ => false,
            };
            !(empty && OMIT_EMPTY_METADATA.contains(&key.as_str()))
        });
    }
}

/// Everything except `metadata.managedFields`, for "did the object change" checks.
pub(crate) fn without_managed_fields(object: &Value) -> Value {
    let mut out = object.clone();
    if let Some(Value::Object(meta)) = out.get_mut("metadata") {
        meta.remove("managedFields");
    }
    out
}

/// One non-apply write to record: create (`old` is `None`), update or patch.
#[derive(Clone, Copy, Debug)]
pub struct UpdateWrite<'a> {
    /// The stored object before the write; `None` for a create.
    pub old: Option<&'a Value>,
    /// The field manager (`fieldManager`, else the User-Agent as upstream does).
    pub manager: &'a str,
    /// Which endpoint wrote.
    pub scope: Scope,
    /// RFC 3339 timestamp for changed entries, e.g. `2026-11-23T08:00:00Z`.
    pub now: &'a str,
}

/// Records a non-apply write: returns `new` with `metadata.managedFields` updated.
///
/// The fields that the write added or changed become owned by `(manager, Update, apiVersion,
/// subresource)` — merged into that writer's existing entry — and are taken away from every
/// other manager (updates never conflict); removed fields are dropped from every entry. The
/// entry's time is set to `now` only when the object or the entry changed, so an identical PUT
/// leaves the object byte-for-byte equal (the caller can then skip the write).
///
/// managedFields sent by the client replace the stored ones unless absent or `[]` (upstream
/// keeps the stored ones then, so unaware clients cannot wipe them); `[{}]` resets them.
/// Server-set metadata and `apiVersion`/`kind`/`name`/`namespace` are never owned.
pub fn record_update(
    write: &UpdateWrite<'_>,
    mut new: Value,
    schema: &dyn MergeSchema,
) -> Result<Value, ManagedFieldsError> {
    let sent = match new.pointer("/metadata/managedFields") {
        Some(Value::Array(entries)) if !entries.is_empty() => read_managed_fields(&new).ok(),
        _ => None,
    };
    let mut entries = match sent {
        Some(entries) if !entries.is_empty() => entries,
        _ => write
            .old
            .map(read_managed_fields)
            .transpose()?
            .unwrap_or_default(),
    };
    drop_empty_metadata(&mut new);
    let empty = Value::Object(Map::new());
    let before = write
        .old
        .map_or(empty, |old| ownable_view(old, write.scope));
    let after = ownable_view(&new, write.scope);
    let cmp = compare(&before, &after, schema);
    let changed = cmp.added.union(&cmp.modified);
    let api_version = new
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let subresource = write.scope.subresource();

    let mut mine = None;
    for (i, entry) in entries.iter_mut().enumerate() {
        if entry.is_writer(write.manager, Operation::Update, subresource, &api_version) {
            mine = Some(i);
        } else {
            entry.fields = entry.fields.difference(&changed).difference(&cmp.removed);
        }
    }
    let index = mine.unwrap_or_else(|| {
        entries.push(ManagedFieldsEntry {
            manager: write.manager.to_owned(),
            operation: Operation::Update,
            api_version,
            time: None,
            subresource: subresource.map(str::to_owned),
            fields: FieldSet::new(),
        });
        entries.len() - 1
    });
    let entry = &mut entries[index];
    let fields = entry.fields.difference(&cmp.removed).union(&changed);
    if mine.is_none() || fields != entry.fields || !cmp.is_empty() {
        entry.time = Some(write.now.to_owned());
    }
    entry.fields = fields;
    write_managed_fields(&mut new, entries);
    Ok(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::BuiltinSchema;
    use serde_json::json;

    const T1: &str = "2026-11-23T08:00:00Z";
    const T2: &str = "2026-11-23T09:00:00Z";

    fn cm() -> BuiltinSchema {
        BuiltinSchema::for_kind("", "ConfigMap")
    }

    #[allow(clippy::needless_pass_by_value)]
    fn config_map(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "c", "namespace": "d", "uid": "u", "resourceVersion": "5"}, "data": data})
    }

    fn write<'a>(old: Option<&'a Value>, manager: &'a str, now: &'a str) -> UpdateWrite<'a> {
        UpdateWrite {
            old,
            manager,
            scope: Scope::Whole,
            now,
        }
    }

    #[test]
    fn entries_round_trip_and_reject_garbage() {
        let v = json!({"manager": "m", "operation": "Apply", "apiVersion": "v1", "time": T1,
                       "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}, "subresource": "status"});
        let entry = ManagedFieldsEntry::from_value(&v, 0).unwrap();
        assert_eq!(entry.to_value(), v);
        assert!(ManagedFieldsEntry::from_value(&json!({"operation": "Patch"}), 0).is_err());
        assert!(ManagedFieldsEntry::from_value(&json!({"fieldsType": "FieldsV2"}), 0).is_err());
        assert!(ManagedFieldsEntry::from_value(&json!({"fieldsV1": {"x": {}}}), 0).is_err());
        assert!(read_managed_fields(&json!({"metadata": {"managedFields": {}}})).is_err());
    }

    #[test]
    fn create_gives_the_creator_every_field_but_server_metadata() {
        let obj = config_map(json!({"a": "1"}));
        let out = record_update(&write(None, "kubectl-create", T1), obj, &cm()).unwrap();
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{"manager": "kubectl-create", "operation": "Update", "apiVersion": "v1", "time": T1,
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}])
        );
    }

    #[test]
    fn update_takes_changed_fields_from_others_and_merges_own_entry() {
        let created = record_update(
            &write(None, "creator", T1),
            config_map(json!({"a": "1", "b": "2"})),
            &cm(),
        )
        .unwrap();
        let mut next = created.clone();
        next["data"] = json!({"a": "1", "b": "3", "c": "4"});
        let updated = record_update(&write(Some(&created), "editor", T2), next, &cm()).unwrap();
        let entries = read_managed_fields(&updated).unwrap();
        assert_eq!(entries.len(), 2);
        let creator = entries.iter().find(|e| e.manager == "creator").unwrap();
        let editor = entries.iter().find(|e| e.manager == "editor").unwrap();
        assert_eq!(
            creator.fields.to_fields_v1(),
            json!({"f:data": {"f:a": {}}})
        );
        assert_eq!(creator.time.as_deref(), Some(T1));
        assert_eq!(
            editor.fields.to_fields_v1(),
            json!({"f:data": {"f:b": {}, "f:c": {}}})
        );
        assert_eq!(editor.time.as_deref(), Some(T2));

        // The editor's next write merges into its existing entry.
        let mut again = updated.clone();
        again["data"]["a"] = json!("9");
        let out = record_update(&write(Some(&updated), "editor", T2), again, &cm()).unwrap();
        let entries = read_managed_fields(&out).unwrap();
        assert_eq!(
            entries.len(),
            1,
            "creator lost its last field and its entry: {entries:?}"
        );
        assert_eq!(
            entries[0].fields.to_fields_v1(),
            json!({"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}})
        );
    }

    #[test]
    fn identical_update_is_byte_for_byte_noop() {
        let created = record_update(
            &write(None, "creator", T1),
            config_map(json!({"a": "1"})),
            &cm(),
        )
        .unwrap();
        let out = record_update(
            &write(Some(&created), "creator", T2),
            created.clone(),
            &cm(),
        )
        .unwrap();
        assert_eq!(out, created);
        // Another manager re-sending the same object owns nothing and adds no entry.
        let out =
            record_update(&write(Some(&created), "other", T2), created.clone(), &cm()).unwrap();
        assert_eq!(out, created);
    }

    #[test]
    fn removed_fields_leave_every_entry() {
        let created = record_update(
            &write(None, "creator", T1),
            config_map(json!({"a": "1", "b": "2"})),
            &cm(),
        )
        .unwrap();
        let mut next = created.clone();
        next["data"] = json!({"a": "1"});
        let out = record_update(&write(Some(&created), "janitor", T2), next, &cm()).unwrap();
        let entries = read_managed_fields(&out).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].manager, "creator");
        assert_eq!(
            entries[0].fields.to_fields_v1(),
            json!({"f:data": {"f:a": {}}})
        );
    }

    #[test]
    fn client_sent_managed_fields() {
        let created = record_update(
            &write(None, "creator", T1),
            config_map(json!({"a": "1"})),
            &cm(),
        )
        .unwrap();
        // `[]` keeps the stored entries.
        let mut keep = created.clone();
        keep["metadata"]["managedFields"] = json!([]);
        assert_eq!(
            record_update(&write(Some(&created), "creator", T2), keep, &cm()).unwrap(),
            created
        );
        // `[{}]` resets them.
        let mut reset = created.clone();
        reset["metadata"]["managedFields"] = json!([{}]);
        let out = record_update(&write(Some(&created), "creator", T2), reset, &cm()).unwrap();
        assert!(out["metadata"].get("managedFields").is_none());
    }

    #[test]
    fn update_managers_beyond_ten_merge_into_ancient_changes() {
        let mut object = config_map(json!({}));
        let mut data = Map::new();
        for i in 0..12 {
            data.insert(format!("k{i:02}"), json!("v"));
        }
        object["data"] = Value::Object(data);
        let entries: Vec<ManagedFieldsEntry> = (0..12)
            .map(|i| ManagedFieldsEntry {
                manager: format!("m{i:02}"),
                operation: Operation::Update,
                api_version: "v1".into(),
                time: Some(format!("2026-11-23T08:00:{i:02}Z")),
                subresource: None,
                fields: FieldSet::from_fields_v1(&json!({"f:data": {format!("f:k{i:02}"): {}}}))
                    .unwrap(),
            })
            .collect();
        write_managed_fields(&mut object, entries);
        let out = read_managed_fields(&object).unwrap();
        let managers: Vec<_> = out.iter().map(|e| e.manager.as_str()).collect();
        assert_eq!(
            managers,
            [
                "ancient-changes",
                "m03",
                "m04",
                "m05",
                "m06",
                "m07",
                "m08",
                "m09",
                "m10",
                "m11"
            ]
        );
        assert_eq!(
            out[0].fields.to_fields_v1(),
            json!({"f:data": {"f:k00": {}, "f:k01": {}, "f:k02": {}}})
        );
        assert_eq!(out[0].time.as_deref(), Some("2026-11-23T08:00:02Z"));
    }

    #[test]
    fn empty_metadata_collections_are_dropped() {
        let old =
            record_update(&write(None, "c", T1), config_map(json!({"a": "1"})), &cm()).unwrap();
        let mut new = old.clone();
        new["metadata"]["finalizers"] = json!([]);
        new["metadata"]["labels"] = json!({});
        new["metadata"]["annotations"] = Value::Null;
        let out = record_update(&write(Some(&old), "c", T2), new, &cm()).unwrap();
        assert_eq!(
            out, old,
            "an update that only adds empty collections is a no-op"
        );
    }

    #[test]
    fn scale_scope_only_tracks_replicas() {
        let old = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                         "spec": {"replicas": 1, "paused": false}});
        let mut new = old.clone();
        new["spec"]["replicas"] = json!(3);
        new["spec"]["paused"] = json!(true);
        let w = UpdateWrite {
            old: Some(&old),
            manager: "kubectl",
            scope: Scope::Scale,
            now: T1,
        };
        let out = record_update(&w, new, &BuiltinSchema::for_kind("apps", "Deployment")).unwrap();
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1", "time": T1,
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}])
        );
    }

    #[test]
    fn status_scope_only_tracks_status() {
        let old =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}});
        let mut new = old.clone();
        new["status"] = json!({"phase": "Running"});
        new["spec"]["x"] = json!(2);
        let w = UpdateWrite {
            old: Some(&old),
            manager: "kubelet",
            scope: Scope::Status,
            now: T1,
        };
        let out = record_update(&w, new, &BuiltinSchema::for_kind("", "Pod")).unwrap();
        assert_eq!(
            out["metadata"]["managedFields"],
            json!([{"manager": "kubelet", "operation": "Update", "apiVersion": "v1", "time": T1, "fieldsType": "FieldsV1",
                    "fieldsV1": {"f:status": {"f:phase": {}}}, "subresource": "status"}])
        );
    }
}
