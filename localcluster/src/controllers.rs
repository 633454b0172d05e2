//! Built-in controllers of the API server: ownerReference garbage collection (background,
//! foreground, orphan), namespace termination, CRD instance cleanup, and the `default`
//! ServiceAccount of every namespace (what kube-controller-manager's serviceaccount controller
//! keeps, so a pod without `serviceAccountName` can get a token). They react to committed
//! events and write through the same code paths as clients do.

use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::api::options::{DeleteOpts, WriteOpts};
use crate::api::write::{self, Step};
use crate::api::{Ctx, objects};
use crate::resources::ResourceInfo;
use crate::storage::{Event, EventType, Key, Stored};

const MANAGER: &str = "rivulet-localcluster";

/// Run until shutdown.
pub async fn run(ctx: Arc<Ctx>) {
    let mut shutdown = ctx.shutdown.clone();
    let Ok((_, mut rx)) = ctx.store.watch_from(ctx.store.current_rv()) else {
        return;
    };
    sweep(&ctx).await;
    loop {
        tokio::select! {
            received = rx.recv() => match received {
                Ok(ev) => handle(&ctx, &ev).await,
                Err(RecvError::Lagged(_)) => sweep(&ctx).await,
                Err(RecvError::Closed) => return,
            },
            () = crate::api::stopped(&mut shutdown) => return,
        }
    }
}

fn info_for(ctx: &Ctx, storage: &str) -> Option<Arc<ResourceInfo>> {
    ctx.registry.catalog().by_storage(storage)
}

fn deleting(obj: &Value) -> bool {
    obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|d| !d.is_null())
}

fn has_finalizer(obj: &Value, f: &str) -> bool {
    obj["metadata"]["finalizers"]
        .as_array()
        .is_some_and(|l| l.iter().any(|x| x == f))
}

fn owner_refs(obj: &Value) -> Vec<Value> {
    obj["metadata"]["ownerReferences"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Look at every object once (startup, or after missing events).
async fn sweep(ctx: &Ctx) {
    for info in ctx.registry.catalog().storage_resources() {
        let Ok((items, _)) = ctx.store.list(&info.storage, None, None, None) else {
            continue;
        };
        for stored in items {
            let ev = Event {
                rv: stored.rv,
                kind: EventType::Modified,
                key: Key {
                    resource: info.storage.clone(),
                    namespace: stored.value["metadata"]["namespace"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                    name: stored.value["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .into(),
                },
                object: stored.clone(),
                prev: None,
                encoded: std::sync::OnceLock::new(),
            };
            handle(ctx, &ev).await;
        }
    }
    for uid in ctx.store.dangling_owners() {
        collect_dependents(ctx, &uid).await;
    }
}

async fn handle(ctx: &Ctx, ev: &Event) {
    let obj = &ev.object.value;
    let ns = ev.key.namespace.clone();
    match (ev.key.resource.as_str(), ev.kind == EventType::Deleted) {
        ("/namespaces", false) if !deleting(obj) => ensure_default_account(ctx, &ev.key.name).await,
        ("/serviceaccounts", true) if ev.key.name == DEFAULT_ACCOUNT => {
            ensure_default_account(ctx, &ns).await;
        }
        // New or removed API groups change the bootstrap reader's list/watch rule.
        ("apiextensions.k8s.io/customresourcedefinitions", _) => {
            crate::api::authz::ensure_bootstrap(ctx).await;
        }
        _ => {}
    }
    if ev.kind == EventType::Deleted {
        if let Some(uid) = obj["metadata"]["uid"].as_str() {
            collect_dependents(ctx, uid).await;
        }
        for owner in owner_refs(obj) {
            if let Some(uid) = owner["uid"].as_str() {
                recheck_foreground(ctx, uid).await;
            }
        }
        if !ns.is_empty() {
            recheck_namespace(ctx, &ns, false).await;
        }
        if let Some(crd) = owning_crd(ctx, &ev.key.resource) {
            recheck_crd(ctx, &crd, false).await;
        }
        return;
    }
    if deleting(obj) {
        if has_finalizer(obj, "orphan") {
            orphan(ctx, ev).await;
        }
        if has_finalizer(obj, "foregroundDeletion")
            && let Some(uid) = obj["metadata"]["uid"].as_str()
        {
            for dep in ctx.store.dependents_of(uid) {
                delete_key(ctx, &dep).await;
            }
            recheck_foreground(ctx, uid).await;
        }
        if ev.key.resource == "/namespaces" {
            recheck_namespace(ctx, &ev.key.name, true).await;
        }
        if ev.key.resource == "apiextensions.k8s.io/customresourcedefinitions" {
            recheck_crd(ctx, &ev.object, true).await;
        }
    }
    // Dependents whose owners are all gone are collected; a dependent that changed may unblock
    // a foreground deletion.
    let mut owners: Vec<String> = owner_refs(obj)
        .iter()
        .filter_map(|o| o["uid"].as_str().map(str::to_string))
        .collect();
    if !owners.is_empty() && owners.iter().all(|u| !ctx.store.uid_exists(u)) {
        delete_key(ctx, &ev.key).await;
    }
    if let Some(prev) = &ev.prev {
        owners.extend(
            owner_refs(&prev.value)
                .iter()
                .filter_map(|o| o["uid"].as_str().map(str::to_string)),
        );
    }
    for uid in owners {
        recheck_foreground(ctx, &uid).await;
    }
}

const DEFAULT_ACCOUNT: &str = "default";

/// Creates namespace `ns`'s `default` ServiceAccount when it is missing and the namespace is
/// open (a terminating namespace refuses it, which is fine).
async fn ensure_default_account(ctx: &Ctx, ns: &str) {
    let Some(info) = ctx.registry.catalog().get("", "v1", "serviceaccounts") else {
        return;
    };
    if ctx
        .store
        .get(&Ctx::key(&info, ns, DEFAULT_ACCOUNT))
        .is_some()
    {
        return;
    }
    let account = json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": DEFAULT_ACCOUNT, "namespace": ns},
    });
    match write::create(ctx, &info, ns, account, &opts()).await {
        Ok(_) => {}
        Err(e) if matches!(e.code, 403 | 404 | 409) => {}
        Err(e) => {
            tracing::warn!(namespace = ns, error = %e.message, "creating the default ServiceAccount failed");
        }
    }
}

/// Delete every dependent of a vanished owner whose owners are all gone.
async fn collect_dependents(ctx: &Ctx, owner_uid: &str) {
    if ctx.store.uid_exists(owner_uid) {
        return;
    }
    for dep in ctx.store.dependents_of(owner_uid) {
        let Some(stored) = ctx.store.get(&dep) else {
            continue;
        };
        let alive = owner_refs(&stored.value)
            .iter()
            .filter_map(|o| o["uid"].as_str())
            .any(|u| ctx.store.uid_exists(u));
        if !alive {
            delete_key(ctx, &dep).await;
        }
    }
}

async fn delete_key(ctx: &Ctx, key: &Key) {
    let Some(info) = info_for(ctx, &key.resource) else {
        return;
    };
    if ctx.store.get(key).is_some_and(|s| deleting(&s.value)) {
        return;
    }
    if let Err(e) = write::delete(
        ctx,
        &info,
        &key.namespace,
        &key.name,
        &DeleteOpts::default(),
    )
    .await
        && e.code != 404
    {
        tracing::warn!(resource = %key.resource, name = %key.name, error = %e.message, "garbage collection delete failed");
    }
}

fn opts() -> WriteOpts {
    WriteOpts {
        field_manager: Some(MANAGER.into()),
        ..WriteOpts::default()
    }
}

/// Rewrite one object with `change`; absent objects are ignored.
async fn modify(ctx: &Ctx, key: &Key, change: &(dyn Fn(&mut Value) + Send + Sync)) {
    let Some(info) = info_for(ctx, &key.resource) else {
        return;
    };
    let result = write::update(
        ctx,
        &info,
        &key.namespace,
        &key.name,
        None,
        &opts(),
        &|current| {
            let mut next = current.cloned().unwrap_or_else(|| json!({}));
            change(&mut next);
            Ok(Step::Replace(next))
        },
    )
    .await;
    if let Err(e) = result
        && e.code != 404
    {
        tracing::warn!(resource = %key.resource, name = %key.name, error = %e.message, "controller update failed");
    }
}

fn remove_finalizer(obj: &mut Value, f: &str) {
    if let Some(list) = obj["metadata"]["finalizers"].as_array_mut() {
        list.retain(|x| x != f);
    }
}

async fn orphan(ctx: &Ctx, ev: &Event) {
    let Some(uid) = ev.object.value["metadata"]["uid"]
        .as_str()
        .map(str::to_string)
    else {
        return;
    };
    for dep in ctx.store.dependents_of(&uid) {
        let u = uid.clone();
        modify(ctx, &dep, &move |obj| {
            if let Some(refs) = obj["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"].as_str() != Some(u.as_str()));
            }
        })
        .await;
    }
    modify(ctx, &ev.key, &|obj| remove_finalizer(obj, "orphan")).await;
}

/// Finish a foreground deletion once no dependent blocks it.
async fn recheck_foreground(ctx: &Ctx, owner_uid: &str) {
    let Some(owner_key) = key_of_uid(ctx, owner_uid) else {
        return;
    };
    let Some(owner) = ctx.store.get(&owner_key) else {
        return;
    };
    if !deleting(&owner.value) || !has_finalizer(&owner.value, "foregroundDeletion") {
        return;
    }
    let blocked = ctx.store.dependents_of(owner_uid).iter().any(|dep| {
        ctx.store.get(dep).is_some_and(|d| {
            owner_refs(&d.value).iter().any(|r| {
                r["uid"].as_str() == Some(owner_uid)
                    && r["blockOwnerDeletion"].as_bool() == Some(true)
            })
        })
    });
    if !blocked {
        modify(ctx, &owner_key, &|obj| {
            remove_finalizer(obj, "foregroundDeletion");
        })
        .await;
    }
}

fn key_of_uid(ctx: &Ctx, uid: &str) -> Option<Key> {
    ctx.store.key_of_uid(uid)
}

/// Delete the content of a terminating namespace, then finalize it.
async fn recheck_namespace(ctx: &Ctx, name: &str, delete_content: bool) {
    let key = Key {
        resource: "/namespaces".into(),
        namespace: String::new(),
        name: name.into(),
    };
    let Some(ns) = ctx.store.get(&key) else {
        return;
    };
    if !deleting(&ns.value) {
        return;
    }
    let resources: Vec<_> = ctx
        .registry
        .catalog()
        .storage_resources()
        .into_iter()
        .filter(|r| r.namespaced)
        .collect();
    if delete_content {
        for info in &resources {
            let Ok((items, _)) = ctx.store.list(&info.storage, Some(name), None, None) else {
                continue;
            };
            for stored in items.iter().filter(|s| !deleting(&s.value)) {
                let n = stored.value["metadata"]["name"]
                    .as_str()
                    .unwrap_or_default();
                let _ = write::delete(ctx, info, name, n, &DeleteOpts::default()).await;
            }
        }
    }
    // Cheap emptiness check: this runs on every delete inside a terminating namespace.
    if resources
        .iter()
        .all(|r| !ctx.store.has_objects(&r.storage, Some(name)))
    {
        modify(ctx, &key, &|obj| {
            if let Some(list) = obj["spec"]["finalizers"].as_array_mut() {
                list.retain(|f| f != objects::NAMESPACE_FINALIZER);
            }
        })
        .await;
    }
}

/// The CRD object serving a storage key, if that key belongs to a custom resource.
fn owning_crd(ctx: &Ctx, storage: &str) -> Option<Arc<Stored>> {
    let (group, plural) = storage.split_once('/')?;
    if group.is_empty() || !group.contains('.') {
        return None;
    }
    let key = Key {
        resource: "apiextensions.k8s.io/customresourcedefinitions".into(),
        namespace: String::new(),
        name: format!("{plural}.{group}"),
    };
    ctx.store.get(&key)
}

/// Delete every instance of a terminating CRD, then drop its cleanup finalizer.
async fn recheck_crd(ctx: &Ctx, crd: &Stored, delete_content: bool) {
    if !deleting(&crd.value) || !has_finalizer(&crd.value, objects::CRD_CLEANUP_FINALIZER) {
        return;
    }
    let group = crd.value["spec"]["group"].as_str().unwrap_or_default();
    let plural = crd.value["spec"]["names"]["plural"]
        .as_str()
        .unwrap_or_default();
    let storage = format!("{group}/{plural}");
    if delete_content
        && let (Some(info), Ok((items, _))) = (
            info_for(ctx, &storage),
            ctx.store.list(&storage, None, None, None),
        )
    {
        for stored in items.iter().filter(|s| !deleting(&s.value)) {
            let meta = &stored.value["metadata"];
            let ns = meta["namespace"].as_str().unwrap_or_default();
            let _ = write::delete(
                ctx,
                &info,
                ns,
                meta["name"].as_str().unwrap_or_default(),
                &DeleteOpts::default(),
            )
            .await;
        }
    }
    // Cheap emptiness check: this runs on every delete of an instance.
    if !ctx.store.has_objects(&storage, None) {
        let key = Key {
            resource: "apiextensions.k8s.io/customresourcedefinitions".into(),
            namespace: String::new(),
            name: format!("{plural}.{group}"),
        };
        modify(ctx, &key, &|obj| {
            remove_finalizer(obj, objects::CRD_CLEANUP_FINALIZER);
        })
        .await;
    }
}
