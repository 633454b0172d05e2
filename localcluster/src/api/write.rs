//! Writes: create, update (PUT and patches), delete. Each runs as an optimistic transaction
//! against the store: read the current object, compute the new one, commit if unchanged meanwhile.

use serde_json::{Value, json};

use crate::api::status::{ApiError, ApiResult};
use crate::api::{Ctx, Query, events, objects, view_value};
use crate::resources::ResourceInfo;
use crate::storage::{CommitError, Expect, Key, Stored};
use crate::util;

/// How many times a write is recomputed when another writer got in first.
const MAX_RETRIES: usize = 32;
/// generateName collisions are retried this often (AS store.go).
const NAME_ATTEMPTS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

/// Options every write accepts.
#[derive(Debug, Clone, Default)]
pub struct WriteOpts {
    pub dry_run: bool,
    pub field_manager: Option<String>,
    pub validation: FieldValidation,
    pub force: bool,
    /// A server-side apply: managed fields come from the apply itself.
    pub apply: bool,
    /// The write goes through the `/status` subresource.
    pub status_subresource: bool,
}

impl WriteOpts {
    pub fn from_query(q: &Query) -> ApiResult<WriteOpts> {
        let dry_run = match q.get("dryRun") {
            None => false,
            Some("All") => true,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "unsupported dryRun value {other:?}: only \"All\""
                )));
            }
        };
        let validation = match q.get("fieldValidation") {
            None | Some("Warn") => FieldValidation::Warn,
            Some("Ignore") => FieldValidation::Ignore,
            Some("Strict") => FieldValidation::Strict,
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "fieldValidation parameter unsupported: {other}; valid values are Ignore, Warn, Strict"
                )));
            }
        };
        let field_manager = q.get("fieldManager").map(str::to_string);
        if field_manager.as_ref().is_some_and(|m| m.len() > 128) {
            return Err(
                ApiError::invalid("PatchOptions", "", Vec::new()).with_cause(
                    "FieldValueTooLong",
                    "Too long: may not be more than 128 bytes",
                    "fieldManager",
                ),
            );
        }
        Ok(WriteOpts {
            dry_run,
            field_manager,
            validation,
            force: q.flag("force"),
            apply: false,
            status_subresource: false,
        })
    }
}

/// A storage-form body from a request body in the endpoint's form.
pub fn incoming(info: &ResourceInfo, mut body: Value) -> ApiResult<Value> {
    if !body.is_object() {
        return Err(ApiError::bad_request("the body must be a JSON object"));
    }
    objects::check_type(info, &mut body)?;
    if info.group == "events.k8s.io" {
        body = events::to_core(&body);
    } else if info.custom {
        // Stored under the request's version: versions share one schema-less storage (`None` conversion).
        body["apiVersion"] = Value::String(info.api_version());
    }
    Ok(body)
}

/// Refuse content in a missing or terminating namespace.
fn check_namespace_open(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: &str,
    name: &str,
) -> ApiResult<()> {
    if !info.namespaced {
        return Ok(());
    }
    let key = Key {
        resource: "/namespaces".into(),
        namespace: String::new(),
        name: namespace.into(),
    };
    match ctx.store.get(&key) {
        None => Err(ApiError::not_found("namespaces", namespace)),
        Some(ns) if ns.value["metadata"].get("deletionTimestamp").is_some() => Err(ApiError::forbidden(
            &info.group_resource(),
            name,
            &format!("unable to create new content in namespace {namespace} because it is being terminated"),
        )
        .with_cause(
            "NamespaceTerminating",
            &format!("namespace {namespace} is being terminated"),
            "metadata.namespace",
        )),
        Some(_) => Ok(()),
    }
}

fn shutting_down() -> ApiError {
    ApiError::new(503, "ServiceUnavailable", "the server is shutting down")
}

/// Result of a committed (or dry-run) write, in storage form.
#[derive(Debug)]
pub struct Outcome {
    pub object: Value,
    pub rv: u64,
}

async fn durable(ctx: &Ctx, outcome: Outcome) -> Outcome {
    ctx.store.wait_durable(outcome.rv).await;
    outcome
}

/// Create `body` (storage form) in `namespace`.
pub async fn create(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: &str,
    mut body: Value,
    opts: &WriteOpts,
) -> ApiResult<Outcome> {
    objects::check_namespace(info, &mut body, namespace)?;
    let shown_name = body["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    check_namespace_open(ctx, info, namespace, &shown_name)?;
    for _ in 0..NAME_ATTEMPTS {
        let mut obj = body.clone();
        let generated = objects::prepare_create(info, &mut obj)?;
        for hook in ctx
            .create_hooks
            .iter()
            .filter(|h| h.applies_to(&info.group, &info.plural))
        {
            hook.mutate(&mut obj, ctx).map_err(|m| {
                ApiError::new(500, "InternalError", format!("admission hook failed: {m}"))
            })?;
        }
        objects::validate(info, &obj)?;
        crate::api::admission::admit(info, None, &mut obj, opts)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = Ctx::key(info, namespace, &name);
        if opts.dry_run {
            if ctx.store.get(&key).is_some() {
                return Err(ApiError::already_exists(&info.group_resource(), &name)
                    .with_target(&info.group, &info.kind));
            }
            return Ok(Outcome { object: obj, rv: 0 });
        }
        let is_crd = info.storage == "apiextensions.k8s.io/customresourcedefinitions";
        if is_crd {
            // Serve the new kind before anyone can observe the CRD as Established.
            ctx.serve_crd_as(&name, Some(&obj));
        }
        match ctx.store.commit(&key, Expect::Absent, Some(obj)) {
            Ok(ev) => {
                return Ok(durable(
                    ctx,
                    Outcome {
                        object: ev.object.value.clone(),
                        rv: ev.rv,
                    },
                )
                .await);
            }
            Err(CommitError::Closed) => return Err(shutting_down()),
            Err(CommitError::Mismatch { .. }) => {
                if is_crd {
                    ctx.rebuild_registry();
                }
                if generated.is_none() {
                    return Err(ApiError::already_exists(&info.group_resource(), &name)
                        .with_target(&info.group, &info.kind));
                }
            }
        }
    }
    Err(ApiError::new(
        500,
        "AlreadyExists",
        "could not generate a unique name",
    ))
}

/// What an update step decided.
#[derive(Debug)]
pub enum Step {
    /// Store this object (storage form, before the update rules).
    Replace(Value),
    /// Create this object (apply on a missing object).
    Create(Value),
}

/// Run `compute` against the current object until the commit succeeds. `compute` sees the
/// current object (None if absent) and returns the next step.
pub async fn update(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: &str,
    name: &str,
    subresource: Option<&str>,
    opts: &WriteOpts,
    compute: &(dyn Fn(Option<&Value>) -> ApiResult<Step> + Send + Sync),
) -> ApiResult<(Outcome, bool)> {
    let key = Ctx::key(info, namespace, name);
    for _ in 0..MAX_RETRIES {
        let current = ctx.store.get(&key);
        let step = compute(current.as_ref().map(|c| &c.value))?;
        let (current, new) = match (step, current) {
            (Step::Create(obj), _) => {
                return create(ctx, info, namespace, obj, opts)
                    .await
                    .map(|o| (o, true));
            }
            (Step::Replace(_), None) => {
                return Err(ApiError::not_found(&info.group_resource(), name)
                    .with_target(&info.group, &info.kind));
            }
            (Step::Replace(new), Some(current)) => (current, new),
        };
        if let Some(rv) = new["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            && rv != current.rv.to_string()
        {
            return Err(
                ApiError::stale(&info.group_resource(), name).with_target(&info.group, &info.kind)
            );
        }
        let mut obj = objects::prepare_update(info, subresource, &current.value, new)?;
        objects::validate(info, &obj)?;
        crate::api::admission::admit(info, Some(&current.value), &mut obj, opts)?;
        if obj == current.value {
            // No-op: no new version, no event (reference §2.1).
            ctx.store.wait_durable(current.rv).await;
            return Ok((
                Outcome {
                    object: current.value.clone(),
                    rv: current.rv,
                },
                false,
            ));
        }
        let remove = finalized(&obj);
        if opts.dry_run {
            return Ok((
                Outcome {
                    object: obj,
                    rv: current.rv,
                },
                false,
            ));
        }
        let is_crd = info.storage == "apiextensions.k8s.io/customresourcedefinitions";
        if is_crd {
            ctx.serve_crd_as(name, (!remove).then_some(&obj));
        }
        let committed = if remove {
            ctx.store.commit(&key, Expect::Version(current.rv), None)
        } else {
            ctx.store
                .commit(&key, Expect::Version(current.rv), Some(obj))
        };
        match committed {
            Ok(ev) => {
                return Ok((
                    durable(
                        ctx,
                        Outcome {
                            object: ev.object.value.clone(),
                            rv: ev.rv,
                        },
                    )
                    .await,
                    false,
                ));
            }
            Err(CommitError::Mismatch { .. }) => {
                if is_crd {
                    ctx.rebuild_registry();
                }
            }
            Err(CommitError::Closed) => return Err(shutting_down()),
        }
    }
    Err(ApiError::conflict(
        &info.group_resource(),
        name,
        "too many concurrent writers; try again",
    ))
}

/// A deleting object whose finalizers are all gone (and, for graceful kinds, whose grace is
/// over) is removed by the update that cleared them.
fn finalized(obj: &Value) -> bool {
    let meta = &obj["metadata"];
    meta.get("deletionTimestamp").is_some_and(|d| !d.is_null())
        && meta["finalizers"].as_array().is_none_or(Vec::is_empty)
        && meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0) == 0
        && obj["spec"]["finalizers"]
            .as_array()
            .is_none_or(Vec::is_empty)
}

/// Parsed DeleteOptions (body or query).
#[derive(Debug, Clone, Default)]
pub struct DeleteOpts {
    pub propagation: Option<String>,
    pub grace: Option<i64>,
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

impl DeleteOpts {
    pub fn parse(q: &Query, body: Option<&Value>) -> ApiResult<DeleteOpts> {
        let mut o = DeleteOpts {
            propagation: q.get("propagationPolicy").map(str::to_string),
            grace: q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
            dry_run: q.get("dryRun") == Some("All"),
            ..DeleteOpts::default()
        };
        if q.get("orphanDependents") == Some("true") {
            o.propagation = Some("Orphan".into());
        }
        if let Some(b) = body.filter(|b| b.is_object()) {
            if let Some(p) = b["propagationPolicy"].as_str() {
                o.propagation = Some(p.into());
            }
            if b["orphanDependents"].as_bool() == Some(true) {
                o.propagation = Some("Orphan".into());
            }
            if let Some(g) = b["gracePeriodSeconds"].as_i64() {
                o.grace = Some(g);
            }
            if b["dryRun"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == "All"))
            {
                o.dry_run = true;
            }
            o.precondition_uid = b["preconditions"]["uid"].as_str().map(str::to_string);
            o.precondition_rv = b["preconditions"]["resourceVersion"]
                .as_str()
                .map(str::to_string);
        }
        match o.propagation.as_deref() {
            None | Some("Background" | "Foreground" | "Orphan") => Ok(o),
            Some(p) => Err(ApiError::bad_request(format!(
                "unsupported propagationPolicy {p:?}"
            ))),
        }
    }
}

/// Namespaces that may never be deleted.
const PROTECTED_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public"];

/// Result of a delete: the object as it is now, and whether it is gone.
#[derive(Debug)]
pub struct Deleted {
    pub object: Value,
    pub gone: bool,
}

fn add_finalizer(obj: &mut Value, f: &str) {
    let list = obj["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if !list.iter().any(|x| x == f) {
        let mut l = list;
        l.push(json!(f));
        obj["metadata"]["finalizers"] = Value::Array(l);
    }
}

/// The grace period of a delete: pods bound to a node and still running wait for the node
/// agent (KK pod strategy `CheckGracefulDelete`); everything else goes at once.
fn grace_period(info: &ResourceInfo, current: &Value, opts: &DeleteOpts) -> i64 {
    let is_pod = info.group.is_empty() && info.plural == "pods";
    let bound = current["spec"]["nodeName"]
        .as_str()
        .is_some_and(|n| !n.is_empty());
    let done = matches!(
        current["status"]["phase"].as_str(),
        Some("Succeeded" | "Failed")
    );
    if !is_pod || !bound || done {
        return 0;
    }
    opts.grace
        .or_else(|| current["spec"]["terminationGracePeriodSeconds"].as_i64())
        .unwrap_or(30)
        .max(0)
}

/// What a delete does to `current`: `None` = nothing (already deleting), else the object to
/// store and whether it is removed instead.
fn plan_delete(
    info: &ResourceInfo,
    name: &str,
    current: &Value,
    opts: &DeleteOpts,
) -> ApiResult<Option<(Value, bool)>> {
    let meta = &current["metadata"];
    let deleting = meta.get("deletionTimestamp").is_some_and(|d| !d.is_null());
    let mut next = current.clone();
    let now = util::unix_now();
    if info.group.is_empty() && info.plural == "namespaces" {
        if PROTECTED_NAMESPACES.contains(&name) {
            return Err(ApiError::forbidden(
                &info.group_resource(),
                name,
                "this namespace may not be deleted",
            ));
        }
        if deleting {
            return Ok(None);
        }
        next["metadata"]["deletionTimestamp"] = json!(util::rfc3339(now));
        next["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        next["status"]["phase"] = json!("Terminating");
        return Ok(Some((next, false)));
    }
    let grace = grace_period(info, current, opts);
    if deleting {
        // A second delete can only shorten the grace period (the node agent's grace-0 delete).
        let old_grace = meta["deletionGracePeriodSeconds"].as_i64().unwrap_or(0);
        if grace >= old_grace || !(info.group.is_empty() && info.plural == "pods") {
            return Ok(None);
        }
        next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
        next["metadata"]["deletionTimestamp"] = json!(util::rfc3339(now + grace));
        let remove = grace == 0 && meta["finalizers"].as_array().is_none_or(Vec::is_empty);
        return Ok(Some((next, remove)));
    }
    match opts.propagation.as_deref() {
        Some("Orphan") => add_finalizer(&mut next, "orphan"),
        Some("Foreground") => add_finalizer(&mut next, "foregroundDeletion"),
        _ => {}
    }
    if info.storage == "apiextensions.k8s.io/customresourcedefinitions" {
        add_finalizer(&mut next, objects::CRD_CLEANUP_FINALIZER);
    }
    let has_finalizers = next["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|f| !f.is_empty());
    if !has_finalizers && grace == 0 {
        return Ok(Some((next, true)));
    }
    next["metadata"]["deletionTimestamp"] = json!(util::rfc3339(now + grace));
    next["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
    if let Some(g) = next["metadata"]["generation"].as_i64().filter(|g| *g > 0) {
        next["metadata"]["generation"] = json!(g + 1);
    }
    Ok(Some((next, false)))
}

/// Delete one object following the options (finalizers, grace, propagation).
pub async fn delete(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: &str,
    name: &str,
    opts: &DeleteOpts,
) -> ApiResult<Deleted> {
    let key = Ctx::key(info, namespace, name);
    let gr = info.group_resource();
    for _ in 0..MAX_RETRIES {
        let Some(current) = ctx.store.get(&key) else {
            return Err(ApiError::not_found(&gr, name).with_target(&info.group, &info.kind));
        };
        let meta = &current.value["metadata"];
        if opts
            .precondition_uid
            .as_ref()
            .is_some_and(|u| meta["uid"].as_str() != Some(u))
        {
            return Err(ApiError::conflict(
                &gr,
                name,
                "Precondition failed: UID in precondition does not match the UID in record",
            ));
        }
        if opts
            .precondition_rv
            .as_ref()
            .is_some_and(|r| *r != current.rv.to_string())
        {
            return Err(ApiError::conflict(
                &gr,
                name,
                "Precondition failed: ResourceVersion in precondition does not match the ResourceVersion in record",
            ));
        }
        let Some((next, remove_now)) = plan_delete(info, name, &current.value, opts)? else {
            return Ok(Deleted {
                object: current.value.clone(),
                gone: false,
            });
        };
        if opts.dry_run {
            return Ok(Deleted {
                object: next,
                gone: remove_now,
            });
        }
        let is_crd = info.storage == "apiextensions.k8s.io/customresourcedefinitions";
        if is_crd {
            ctx.serve_crd_as(name, (!remove_now).then_some(&next));
        }
        let committed = if remove_now {
            ctx.store.commit(&key, Expect::Version(current.rv), None)
        } else {
            ctx.store
                .commit(&key, Expect::Version(current.rv), Some(next))
        };
        match committed {
            Ok(ev) => {
                ctx.store.wait_durable(ev.rv).await;
                return Ok(Deleted {
                    object: ev.object.value.clone(),
                    gone: remove_now,
                });
            }
            Err(CommitError::Mismatch { .. }) => {
                if is_crd {
                    ctx.rebuild_registry();
                }
            }
            Err(CommitError::Closed) => return Err(shutting_down()),
        }
    }
    Err(ApiError::conflict(
        &gr,
        name,
        "too many concurrent writers; try again",
    ))
}

/// The object as returned to the client of `info`.
pub fn shown(info: &ResourceInfo, value: Value) -> Value {
    view_value(
        info,
        &Stored {
            rv: 0,
            value,
            json: bytes::Bytes::new(),
        },
    )
}
