//! Writes: create, update (PUT and patches), delete. Each runs as an optimistic transaction
//! against the store: read the current object, compute the new one, commit if unchanged meanwhile.

use serde_json::{Value, json};

use crate::api::conform;
use crate::api::options::{DeleteOpts, WriteOpts};
use crate::api::status::{ApiError, ApiResult};
use crate::api::{Ctx, events, objects, view_value};
use crate::resources::ResourceInfo;
use crate::storage::{CommitError, Expect, Key, Stored};
use crate::util;

/// How many times a write is recomputed when another writer got in first.
const MAX_RETRIES: usize = 32;
/// generateName collisions are retried this often (AS store.go).
const NAME_ATTEMPTS: usize = 8;

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

/// Where the store keeps CRDs: writes to them change what the registry serves.
const CRD_STORAGE: &str = "apiextensions.k8s.io/customresourcedefinitions";

/// What one attempt of a write decided, from the store as it was when the attempt read it.
// One per attempt, matched at once: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Attempt<T> {
    /// Answer without committing (dry run, no-op, nothing to do), once the version `durable`
    /// names (if any) is on disk.
    Answer { answer: T, durable: Option<u64> },
    /// Commit this change; another attempt follows if a concurrent writer got in first.
    Commit(Change),
}

impl<T> Attempt<T> {
    /// Answer at once (nothing to wait for).
    fn answer(answer: T) -> Self {
        Attempt::Answer {
            answer,
            durable: None,
        }
    }

    /// Replace the object at version `rv` with `next`, or remove it.
    fn replace(key: &Key, rv: u64, next: Value, remove: bool) -> Self {
        Attempt::Commit(Change {
            key: key.clone(),
            expect: Expect::Version(rv),
            new: (!remove).then_some(next),
            taken: None,
        })
    }
}

/// A change committed under `key` only if the object there is still as `expect`.
struct Change {
    key: Key,
    expect: Expect,
    /// The object to store, or `None` to remove it.
    new: Option<Value>,
    /// Fail with this, instead of attempting again, when another writer got in first (a
    /// create under a name the client chose).
    taken: Option<ApiError>,
}

/// The one commit loop of every write: run `attempt` until its change commits, at most
/// `attempts` times. `committed` turns the stored object (and whether it was removed) into the
/// answer once it is durable; `exhausted` is the error when every attempt lost a race.
async fn commit_with_retries<T>(
    ctx: &Ctx,
    info: &ResourceInfo,
    attempts: usize,
    mut attempt: impl FnMut() -> ApiResult<Attempt<T>>,
    committed: impl Fn(Outcome, bool) -> T,
    exhausted: impl FnOnce() -> ApiError,
) -> ApiResult<T> {
    let is_crd = info.storage == CRD_STORAGE;
    for _ in 0..attempts {
        let change = match attempt()? {
            Attempt::Answer { answer, durable } => {
                if let Some(rv) = durable {
                    ctx.store.wait_durable(rv).await;
                }
                return Ok(answer);
            }
            Attempt::Commit(change) => change,
        };
        if is_crd {
            // Serve the kinds as they will be before anyone can observe the CRD changed.
            ctx.serve_crd_as(&change.key.name, change.new.as_ref());
        }
        let removed = change.new.is_none();
        match ctx.store.commit(&change.key, change.expect, change.new) {
            Ok(ev) => {
                let outcome = Outcome {
                    object: ev.object.value.clone(),
                    rv: ev.rv,
                };
                ctx.store.wait_durable(outcome.rv).await;
                return Ok(committed(outcome, removed));
            }
            Err(CommitError::Closed) => return Err(shutting_down()),
            Err(CommitError::Mismatch { .. }) => {
                if is_crd {
                    // Undo serve_crd_as: the CRD stays as the other writer left it.
                    ctx.rebuild_registry();
                }
                if let Some(err) = change.taken {
                    return Err(err);
                }
            }
        }
    }
    Err(exhausted())
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
    let attempt = || {
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
        conform::to_kind(info, None, &mut obj, opts)?;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = Ctx::key(info, namespace, &name);
        let exists = || {
            ApiError::already_exists(&info.group_resource(), &name)
                .with_target(&info.group, &info.kind)
        };
        if opts.dry_run {
            if ctx.store.get(&key).is_some() {
                return Err(exists());
            }
            return Ok(Attempt::answer(Outcome { object: obj, rv: 0 }));
        }
        // A generated name that clashed is generated again; a chosen one is taken.
        let taken = generated.is_none().then(exists);
        Ok(Attempt::Commit(Change {
            key,
            expect: Expect::Absent,
            new: Some(obj),
            taken,
        }))
    };
    commit_with_retries(
        ctx,
        info,
        NAME_ATTEMPTS,
        attempt,
        |outcome, _| outcome,
        || ApiError::new(500, "AlreadyExists", "could not generate a unique name"),
    )
    .await
}

/// What an update step decided.
#[derive(Debug)]
pub enum Step {
    /// Store this object (storage form, before the update rules).
    Replace(Value),
    /// Create this object (apply on a missing object).
    Create(Value),
}

/// How an update ends: written (or answered) here, or handed to [`create`].
enum Updated {
    Done(Outcome),
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
    let attempt = || {
        let current = ctx.store.get(&key);
        let step = compute(current.as_ref().map(|c| &c.value))?;
        let (current, new) = match (step, current) {
            (Step::Create(obj), _) => {
                return Ok(Attempt::answer(Updated::Create(obj)));
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
        conform::to_kind(info, Some(&current.value), &mut obj, opts)?;
        if obj == current.value {
            // No-op: no new version, no event (reference §2.1).
            return Ok(Attempt::Answer {
                answer: Updated::Done(Outcome {
                    object: current.value.clone(),
                    rv: current.rv,
                }),
                durable: Some(current.rv),
            });
        }
        let remove = finalized(&obj);
        if opts.dry_run {
            return Ok(Attempt::answer(Updated::Done(Outcome {
                object: obj,
                rv: current.rv,
            })));
        }
        Ok(Attempt::replace(&key, current.rv, obj, remove))
    };
    let updated = commit_with_retries(
        ctx,
        info,
        MAX_RETRIES,
        attempt,
        |outcome, _| Updated::Done(outcome),
        || too_many_writers(info, name),
    )
    .await?;
    match updated {
        Updated::Done(outcome) => Ok((outcome, false)),
        Updated::Create(obj) => create(ctx, info, namespace, obj, opts)
            .await
            .map(|o| (o, true)),
    }
}

fn too_many_writers(info: &ResourceInfo, name: &str) -> ApiError {
    ApiError::conflict(
        &info.group_resource(),
        name,
        "too many concurrent writers; try again",
    )
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
    if info.storage == CRD_STORAGE {
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
    let attempt = || {
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
            return Ok(Attempt::answer(Deleted {
                object: current.value.clone(),
                gone: false,
            }));
        };
        if opts.dry_run {
            return Ok(Attempt::answer(Deleted {
                object: next,
                gone: remove_now,
            }));
        }
        Ok(Attempt::replace(&key, current.rv, next, remove_now))
    };
    commit_with_retries(
        ctx,
        info,
        MAX_RETRIES,
        attempt,
        |outcome, removed| Deleted {
            object: outcome.object,
            gone: removed,
        },
        || too_many_writers(info, name),
    )
    .await
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
