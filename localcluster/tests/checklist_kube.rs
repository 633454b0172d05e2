//! reference/apiserver.md closing checklist, items 8-24, with the real kube-rs client.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Env, WAIT, Widget, WidgetSpec, eventually, install_widgets, start, start_with};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

#[allow(clippy::needless_pass_by_value)] // call sites read best with inline json!
fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": labels}, "data": {"k": "v"}}),
    )
    .unwrap()
}

fn api_code(err: kube::Error) -> (u16, kube::core::Status) {
    match err {
        kube::Error::Api(s) => (s.code, *s),
        other => panic!("expected an API error, got {other}"),
    }
}

async fn widget_api(env: &Env) -> Api<Widget> {
    install_widgets(env).await;
    Api::default_namespaced(env.client.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_08_discovery_run_and_run_aggregated_resolve_new_crd() {
    let env = start("c08").await;
    install_widgets(&env).await;
    let gvk = kube::api::GroupVersionKind::gvk("example.com", "v1", "Widget");
    let legacy = kube::Discovery::new(env.client.clone())
        .run()
        .await
        .unwrap();
    let (ar, caps) = legacy
        .resolve_gvk(&gvk)
        .expect("legacy discovery finds Widget");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    let aggregated = kube::Discovery::new(env.client.clone())
        .run_aggregated()
        .await
        .unwrap();
    let (ar, _) = aggregated
        .resolve_gvk(&gvk)
        .expect("aggregated discovery finds Widget");
    assert_eq!(ar.plural, "widgets");
    env.cluster.shutdown().await;
}

async fn watcher_sequence(config: watcher::Config, tag: &str) {
    let env = start(tag).await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    api.create(&PostParams::default(), &cm("before", json!({})))
        .await
        .unwrap();
    let mut stream = watcher::watcher(api.clone(), config).boxed();
    let mut next = async || {
        tokio::time::timeout(WAIT, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
    };
    assert!(matches!(next().await, Event::Init));
    match next().await {
        Event::InitApply(o) => assert_eq!(o.metadata.name.as_deref(), Some("before")),
        other => panic!("expected InitApply, got {other:?}"),
    }
    assert!(matches!(next().await, Event::InitDone));
    api.create(&PostParams::default(), &cm("after", json!({})))
        .await
        .unwrap();
    match next().await {
        Event::Apply(o) => assert_eq!(o.metadata.name.as_deref(), Some("after")),
        other => panic!("expected Apply, got {other:?}"),
    }
    api.patch(
        "after",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "changed"}})),
    )
    .await
    .unwrap();
    match next().await {
        Event::Apply(o) => assert_eq!(o.data.unwrap()["k"], "changed"),
        other => panic!("expected Apply, got {other:?}"),
    }
    api.delete("after", &DeleteParams::default()).await.unwrap();
    match next().await {
        Event::Delete(o) => assert_eq!(o.metadata.name.as_deref(), Some("after")),
        other => panic!("expected Delete, got {other:?}"),
    }
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_09_watcher_init_events_default_config() {
    watcher_sequence(watcher::Config::default(), "c09a").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_09_watcher_init_events_streaming_lists() {
    watcher_sequence(watcher::Config::default().streaming_lists(), "c09b").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_10_compacted_rv_in_stream_410_and_watcher_recovers() {
    let env = start_with("c10", |c| c.history = 4).await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let first = api
        .create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    let old_rv = first.metadata.resource_version.unwrap();
    for i in 0..8 {
        api.create(&PostParams::default(), &cm(&format!("n{i}"), json!({})))
            .await
            .unwrap();
    }
    // HTTP 200, then one ERROR event with code 410.
    let mut raw = api
        .watch(&WatchParams::default().timeout(5), &old_rv)
        .await
        .unwrap()
        .boxed();
    match raw.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected an in-stream 410, got {other:?}"),
    }
    // A watcher whose resume point gets compacted relists by itself.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> =
        Api::default_namespaced(env.client.clone());
    let config = watcher::Config::default().timeout(1).disable_bookmarks();
    let mut stream = watcher::watcher(api.clone(), config).boxed();
    let mut inits = 0;
    let mut churned = false;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut saw_410 = false;
    while inits < 2 {
        // kube-rs surfaces the 410 as one stream error, then relists by itself.
        let ev = match tokio::time::timeout_at(deadline, stream.next())
            .await
            .unwrap()
            .unwrap()
        {
            Ok(ev) => ev,
            Err(watcher::Error::WatchError(status)) if status.code == 410 => {
                saw_410 = true;
                continue;
            }
            Err(e) => panic!("unexpected watcher error {e}"),
        };
        if matches!(ev, Event::InitDone) {
            inits += 1;
            if !churned {
                // Writes to another resource move the history window past the watcher's version.
                for i in 0..8 {
                    let s: k8s_openapi::api::core::v1::Secret =
                        serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}}))
                            .unwrap();
                    secrets.create(&PostParams::default(), &s).await.unwrap();
                }
                churned = true;
            }
        }
    }
    assert!(saw_410);
    api.create(&PostParams::default(), &cm("late", json!({})))
        .await
        .unwrap();
    loop {
        let ev = tokio::time::timeout_at(deadline, stream.try_next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Event::Apply(o) | Event::InitApply(o) = ev
            && o.metadata.name.as_deref() == Some("late")
        {
            break;
        }
    }
    drop(stream);
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_11_bookmarks_timeout_and_line_framing() {
    let env = start_with("c11", |c| c.bookmark_interval = Duration::from_millis(200)).await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let list = api.list(&ListParams::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let started = std::time::Instant::now();
    let mut stream = api
        .watch(&WatchParams::default().timeout(2), &rv)
        .await
        .unwrap()
        .boxed();
    // Events are flushed at once: a create shows up while the watch is open.
    api.create(&PostParams::default(), &cm("flushed", json!({})))
        .await
        .unwrap();
    let mut added = false;
    let mut bookmarks = 0;
    while let Some(ev) = tokio::time::timeout(WAIT, stream.try_next())
        .await
        .unwrap()
        .unwrap()
    {
        match ev {
            WatchEvent::Added(o) => added |= o.metadata.name.as_deref() == Some("flushed"),
            // kube-rs only parses bookmarks that carry apiVersion, kind and a resourceVersion.
            WatchEvent::Bookmark(b) => {
                assert!(!b.metadata.resource_version.is_empty());
                assert_eq!(b.types.kind, "ConfigMap");
                assert_eq!(b.types.api_version, "v1");
                bookmarks += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let elapsed = started.elapsed();
    assert!(added && bookmarks >= 1);
    assert!(
        elapsed >= Duration::from_millis(1900) && elapsed < Duration::from_secs(6),
        "{elapsed:?}"
    );
    // Raw body: one JSON document per line.
    let req = hyper::Request::get(format!("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1&allowWatchBookmarks=true&resourceVersion={rv}"))
        .body(Vec::new())
        .unwrap();
    let text = env.client.request_text(req).await.unwrap();
    assert!(text.ends_with('\n'));
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v["type"].is_string() && v["object"].is_object(), "{line}");
    }
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_12_pagination_consistent_snapshot_and_expired_token() {
    let env = start_with("c12", |c| c.history = 20).await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    for i in 0..5 {
        api.create(&PostParams::default(), &cm(&format!("p{i}"), json!({})))
            .await
            .unwrap();
    }
    let page1 = api.list(&ListParams::default().limit(2)).await.unwrap();
    let rv = page1.metadata.resource_version.clone().unwrap();
    // Writes between pages are invisible to the paginated snapshot.
    api.create(&PostParams::default(), &cm("p9", json!({})))
        .await
        .unwrap();
    api.delete("p3", &DeleteParams::default()).await.unwrap();
    let token = page1.metadata.continue_.clone().unwrap();
    let page2 = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    let page3 = api
        .list(
            &ListParams::default()
                .limit(2)
                .continue_token(page2.metadata.continue_.as_deref().unwrap()),
        )
        .await
        .unwrap();
    let names: Vec<String> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| p.items.iter().map(|i| i.metadata.name.clone().unwrap()))
        .collect();
    assert_eq!(names, ["p0", "p1", "p2", "p3", "p4"]);
    assert!(
        [&page2, &page3]
            .iter()
            .all(|p| p.metadata.resource_version.as_deref() == Some(rv.as_str()))
    );
    assert!(
        page3
            .metadata
            .continue_
            .as_deref()
            .is_none_or(str::is_empty)
    );
    // Once the snapshot leaves the history window, the token is expired.
    for i in 0..25 {
        api.create(&PostParams::default(), &cm(&format!("churn{i}"), json!({})))
            .await
            .unwrap();
    }
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap_err();
    let (code, status) = api_code(err);
    assert_eq!((code, status.reason.as_str()), (410, "Expired"));
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_13_label_and_field_selectors_on_list_and_watch() {
    let env = start("c13").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    api.create(
        &PostParams::default(),
        &cm("a", json!({"app": "web", "tier": "front"})),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &cm("b", json!({"app": "db"})))
        .await
        .unwrap();
    api.create(
        &PostParams::default(),
        &cm("c", json!({"app": "cache", "tier": "back"})),
    )
    .await
    .unwrap();
    let names = |sel: &str| {
        let api = api.clone();
        let sel = sel.to_string();
        async move {
            let l = api.list(&ListParams::default().labels(&sel)).await.unwrap();
            l.items
                .into_iter()
                .map(|i| i.metadata.name.unwrap())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("app=web").await, ["a"]);
    assert_eq!(names("app!=web").await, ["b", "c"]);
    assert_eq!(names("app in (web,db)").await, ["a", "b"]);
    assert_eq!(names("app notin (web,db)").await, ["c"]);
    assert_eq!(names("tier").await, ["a", "c"]);
    assert_eq!(names("!tier").await, ["b"]);
    let by_name = api
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let not_ns = api
        .list(&ListParams::default().fields("metadata.namespace!=default"))
        .await
        .unwrap();
    assert!(not_ns.items.is_empty());
    let (code, _) = api_code(
        api.list(&ListParams::default().fields("data.k=v"))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 400);

    // Pods: spec.nodeName and status.phase.
    let pods: Api<Pod> = Api::default_namespaced(env.client.clone());
    for (name, node) in [("p1", "node-a"), ("p2", "node-b")] {
        let p: Pod = serde_json::from_value(json!({"metadata": {"name": name}, "spec": {"nodeName": node, "containers": [{"name": "c", "image": "i"}]}})).unwrap();
        pods.create(&PostParams::default(), &p).await.unwrap();
    }
    let on_a = pods
        .list(&ListParams::default().fields("spec.nodeName=node-a,status.phase=Pending"))
        .await
        .unwrap();
    assert_eq!(
        on_a.items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect::<Vec<_>>(),
        ["p1"]
    );

    // Watch: an object that stops matching is DELETED for this watcher.
    let rv = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().labels("app=web").timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    api.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "web"}}})),
    )
    .await
    .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "gone"}}})),
    )
    .await
    .unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("b")),
        other => panic!("expected ADDED b, got {other:?}"),
    }
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Deleted(o) => assert_eq!(o.metadata.name.as_deref(), Some("a")),
        other => panic!("expected DELETED a, got {other:?}"),
    }
    let (code, _) = api_code(
        api.watch(&WatchParams::default().fields("spec.x=1"), "0")
            .await
            .map(|_| ())
            .unwrap_err(),
    );
    assert_eq!(code, 400);
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_14_error_statuses_conflict_invalid_exists_notfound() {
    let env = start("c14").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let created = api
        .create(&PostParams::default(), &cm("x", json!({})))
        .await
        .unwrap();
    api.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "2"}})),
    )
    .await
    .unwrap();
    let (code, s) = api_code(
        api.replace("x", &PostParams::default(), &created)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, s.reason.as_str()), (409, "Conflict"));
    assert!(s.message.contains("the object has been modified"));
    let (code, s) = api_code(
        api.create(&PostParams::default(), &cm("x", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!((code, s.reason.as_str()), (409, "AlreadyExists"));
    let (code, s) = api_code(api.get("missing").await.unwrap_err());
    assert_eq!((code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "configmaps \"missing\" not found");

    let widgets = widget_api(&env).await;
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec::default()),
        )
        .await
        .unwrap();
    let mut no_rv = w.clone();
    no_rv.metadata.resource_version = None;
    let (code, s) = api_code(
        widgets
            .replace("w", &PostParams::default(), &no_rv)
            .await
            .unwrap_err(),
    );
    assert_eq!((code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.field == "metadata.resourceVersion")
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_15_server_set_fields_generate_name_and_generation() {
    let env = start("c15").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let template: ConfigMap =
        serde_json::from_value(json!({"metadata": {"generateName": "pre-"}})).unwrap();
    let made = api.create(&PostParams::default(), &template).await.unwrap();
    let name = made.metadata.name.clone().unwrap();
    assert!(name.starts_with("pre-") && name.len() == 9, "{name}");
    assert!(
        name[4..]
            .chars()
            .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
    );
    assert!(made.metadata.uid.is_some() && made.metadata.creation_timestamp.is_some());
    assert!(made.metadata.resource_version.is_some() && made.metadata.managed_fields.is_some());

    let widgets = widget_api(&env).await;
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "w",
                WidgetSpec {
                    size: Some(2),
                    ..WidgetSpec::default()
                },
            ),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(1));
    let w = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    let w = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    let w = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(w.metadata.generation, Some(2));
    assert_eq!(w.status.unwrap().phase.as_deref(), Some("Ready"));
    // The main endpoint ignores status changes.
    let w = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Hacked"}})),
        )
        .await
        .unwrap();
    assert_eq!(w.status.unwrap().phase.as_deref(), Some("Ready"));
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_16_noop_writes_keep_resource_version_and_emit_nothing() {
    let env = start("c16").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let manifest = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "same"}, "data": {"k": "v"}});
    let ssa = PatchParams::apply("tester");
    let first = api
        .patch("same", &ssa, &Patch::Apply(manifest.clone()))
        .await
        .unwrap();
    let rv = first.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    let again = api
        .patch("same", &ssa, &Patch::Apply(manifest))
        .await
        .unwrap();
    assert_eq!(
        again.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    let put = api
        .replace("same", &PostParams::default(), &again)
        .await
        .unwrap();
    assert_eq!(put.metadata.resource_version.as_deref(), Some(rv.as_str()));
    // The next event is the sentinel: the no-op writes emitted nothing.
    api.create(&PostParams::default(), &cm("sentinel", json!({})))
        .await
        .unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("sentinel")),
        other => panic!("expected the sentinel, got {other:?}"),
    }
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_17_controller_with_finalizer_helper() {
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::finalizer::{Event as Fin, finalizer};
    let env = start("c17").await;
    let widgets = widget_api(&env).await;
    let cleaned = Arc::new(AtomicBool::new(false));
    let ctx = (widgets.clone(), cleaned.clone());
    let controller = Controller::new(widgets.clone(), watcher::Config::default())
        .run(
            |w: Arc<Widget>, ctx: Arc<(Api<Widget>, Arc<AtomicBool>)>| async move {
                let (api, cleaned) = (&ctx.0, ctx.1.clone());
                finalizer(api, "example.com/cleanup", w, |ev| async move {
                    match ev {
                        Fin::Apply(_) => Ok::<_, kube::Error>(Action::await_change()),
                        Fin::Cleanup(_) => {
                            cleaned.store(true, Ordering::SeqCst);
                            Ok(Action::await_change())
                        }
                    }
                })
                .await
            },
            |_, _, _| Action::requeue(Duration::from_millis(200)),
            Arc::new(ctx),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("f", WidgetSpec::default()),
        )
        .await
        .unwrap();
    eventually(WAIT, "the finalizer to be added", || async {
        let w = widgets.get("f").await.unwrap();
        w.metadata
            .finalizers
            .unwrap_or_default()
            .contains(&"example.com/cleanup".to_string())
            .then_some(())
    })
    .await;
    widgets.delete("f", &DeleteParams::default()).await.unwrap();
    eventually(WAIT, "the object to be gone", || async {
        widgets.get_opt("f").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(cleaned.load(Ordering::SeqCst));
    handle.abort();
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_18_apply_status_with_force_and_field_removal() {
    let env = start("c18").await;
    let widgets = widget_api(&env).await;
    let mgr = PatchParams::apply("ctrl").force();
    let w = widgets
        .patch("s", &mgr, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"size": 2, "color": "red"}})))
        .await
        .unwrap();
    let spec_before = w.spec.clone();
    let w = widgets
        .patch_status("s", &mgr, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "status": {"phase": "Ready", "replicas": 1}})))
        .await
        .unwrap();
    assert_eq!(w.status.as_ref().unwrap().phase.as_deref(), Some("Ready"));
    assert_eq!(
        serde_json::to_value(&w.spec).unwrap(),
        serde_json::to_value(&spec_before).unwrap()
    );
    // Dropping a field this manager owned alone removes it.
    let w = widgets
        .patch("s", &mgr, &Patch::Apply(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "s"}, "spec": {"size": 2}})))
        .await
        .unwrap();
    assert_eq!(w.spec.color, None);
    assert_eq!(w.spec.size, Some(2));
    assert_eq!(w.status.unwrap().phase.as_deref(), Some("Ready"));
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_19_cr_pruning_defaulting_invalid_and_strict() {
    let env = start("c19").await;
    install_widgets(&env).await;
    let (code, created) = env
        .raw(
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            "application/json",
            serde_json::to_vec(
                &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "p"},
                "spec": {"unknown": 1, "extra": {"kept": true}}, "bogus": 2}),
            )
            .unwrap(),
        )
        .await;
    assert_eq!(code, 200, "{created}");
    assert!(created["spec"].get("unknown").is_none() && created.get("bogus").is_none());
    assert_eq!(created["spec"]["extra"]["kept"], true);
    assert_eq!(created["spec"]["size"], 1);

    let (code, status) = env
        .raw(
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets",
            "application/json",
            serde_json::to_vec(&json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "bad"}, "spec": {"size": 30, "color": "purple"}})).unwrap(),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    let fields: Vec<&str> = status["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields.len(), 2, "{status}");
    assert!(
        fields.contains(&"spec.size") && fields.contains(&"spec.color"),
        "{status}"
    );

    let (code, status) = env
        .raw(
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
            "application/json",
            serde_json::to_vec(&json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "strict"}, "spec": {"unknown": 1}})).unwrap(),
        )
        .await;
    assert_eq!(code, 400, "{status}");
    assert!(
        status["message"]
            .as_str()
            .unwrap()
            .contains("unknown field \"spec.unknown\""),
        "{status}"
    );
    env.cluster.shutdown().await;
}

fn owned_cm(name: &str, owner: &ConfigMap, block: bool) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid, "blockOwnerDeletion": block
    }]}})).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_20_gc_background_foreground_orphan() {
    let env = start("c20").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let pp = PostParams::default();
    let gone = |name: &'static str| {
        let api = api.clone();
        async move { api.get_opt(name).await.unwrap().is_none().then_some(()) }
    };

    let owner = api.create(&pp, &cm("bg-owner", json!({}))).await.unwrap();
    api.create(&pp, &owned_cm("bg-dep", &owner, false))
        .await
        .unwrap();
    api.delete("bg-owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually(WAIT, "background dependent removal", || gone("bg-dep")).await;

    let owner = api.create(&pp, &cm("fg-owner", json!({}))).await.unwrap();
    let mut dep = owned_cm("fg-dep", &owner, true);
    dep.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    api.create(&pp, &dep).await.unwrap();
    api.delete("fg-owner", &DeleteParams::foreground())
        .await
        .unwrap();
    let held = api.get("fg-owner").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    assert!(
        held.metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    eventually(WAIT, "the dependent to be deleting", || async {
        api.get("fg-dep")
            .await
            .unwrap()
            .metadata
            .deletion_timestamp
            .is_some()
            .then_some(())
    })
    .await;
    assert!(
        api.get_opt("fg-owner").await.unwrap().is_some(),
        "owner waits for its blocking dependent"
    );
    api.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(WAIT, "foreground owner removal", || gone("fg-owner")).await;

    let owner = api.create(&pp, &cm("or-owner", json!({}))).await.unwrap();
    api.create(&pp, &owned_cm("or-dep", &owner, false))
        .await
        .unwrap();
    api.delete("or-owner", &DeleteParams::orphan())
        .await
        .unwrap();
    eventually(WAIT, "orphaned owner removal", || gone("or-owner")).await;
    let dep = api.get("or-dep").await.unwrap();
    assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_21_namespace_termination() {
    let env = start("c21").await;
    install_widgets(&env).await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(env.client.clone(), "doomed");
    let mut held = cm("held", json!({}));
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    cms.create(&PostParams::default(), &held).await.unwrap();
    let widgets: Api<Widget> = Api::namespaced(env.client.clone(), "doomed");
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec::default()),
        )
        .await
        .unwrap();

    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let phase = namespaces
        .get("doomed")
        .await
        .unwrap()
        .status
        .unwrap()
        .phase;
    assert_eq!(phase.as_deref(), Some("Terminating"));
    let (code, status) = api_code(
        cms.create(&PostParams::default(), &cm("late", json!({})))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 403);
    assert!(
        status
            .details
            .unwrap()
            .causes
            .iter()
            .any(|c| c.reason == "NamespaceTerminating")
    );
    eventually(
        WAIT,
        "custom resources in the namespace to be deleted",
        || async { widgets.get_opt("w").await.unwrap().is_none().then_some(()) },
    )
    .await;
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(WAIT, "the namespace to be removed", || async {
        namespaces
            .get_opt("doomed")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;

    for protected in ["default", "kube-system", "kube-public"] {
        let (code, _) = api_code(
            namespaces
                .delete(protected, &DeleteParams::default())
                .await
                .unwrap_err(),
        );
        assert_eq!(code, 403);
    }
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_22_bound_pod_stays_terminating_unbound_goes() {
    let env = start("c22").await;
    let pods: Api<Pod> = Api::default_namespaced(env.client.clone());
    let pod = |name: &str, node: Option<&str>| -> Pod {
        let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
    };
    pods.create(&PostParams::default(), &pod("bound", Some("local")))
        .await
        .unwrap();
    pods.create(&PostParams::default(), &pod("unbound", None))
        .await
        .unwrap();
    pods.delete("unbound", &DeleteParams::default())
        .await
        .unwrap();
    assert!(pods.get_opt("unbound").await.unwrap().is_none());
    pods.delete("bound", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = pods.get("bound").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    assert_eq!(terminating.metadata.deletion_grace_period_seconds, Some(30));
    // The node agent's final delete with grace 0.
    pods.delete("bound", &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    assert!(pods.get_opt("bound").await.unwrap().is_none());
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_23_strategic_merge_on_cr_is_415() {
    let env = start("c23").await;
    let widgets = widget_api(&env).await;
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("s", WidgetSpec::default()),
        )
        .await
        .unwrap();
    let (code, status) = api_code(
        widgets
            .patch(
                "s",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"size": 2}})),
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (code, status.reason.as_str()),
        (415, "UnsupportedMediaType")
    );
    assert!(
        status.message.contains("application/merge-patch+json")
            && status.message.contains("application/apply-patch+yaml")
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checklist_24_dry_run_changes_nothing() {
    let env = start("c24").await;
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let real = api
        .create(&PostParams::default(), &cm("real", json!({})))
        .await
        .unwrap();
    let rv = real.metadata.resource_version.clone().unwrap();
    let mut stream = api
        .watch(&WatchParams::default().timeout(10), &rv)
        .await
        .unwrap()
        .boxed();
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let would = api.create(&dry, &cm("ghost", json!({}))).await.unwrap();
    assert_eq!(would.metadata.name.as_deref(), Some("ghost"));
    assert!(api.get_opt("ghost").await.unwrap().is_none());
    let patched = api
        .patch(
            "real",
            &PatchParams::default().dry_run(),
            &Patch::Merge(json!({"data": {"k": "dry"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data.unwrap()["k"], "dry");
    assert_eq!(api.get("real").await.unwrap().data.unwrap()["k"], "v");
    api.delete("real", &DeleteParams::default().dry_run())
        .await
        .unwrap();
    let still = api.get("real").await.unwrap();
    assert_eq!(
        still.metadata.resource_version.as_deref(),
        Some(rv.as_str())
    );
    api.create(&PostParams::default(), &cm("sentinel", json!({})))
        .await
        .unwrap();
    match stream.try_next().await.unwrap().unwrap() {
        WatchEvent::Added(o) => assert_eq!(o.metadata.name.as_deref(), Some("sentinel")),
        other => panic!("expected the sentinel, got {other:?}"),
    }
    env.cluster.shutdown().await;
}
