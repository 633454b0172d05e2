//! CRD lifecycle beyond the checklist: deleting a CRD deletes its instances first, then the
//! resource stops being served; state survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{WAIT, Widget, WidgetSpec, client_for, eventually, install_widgets, start};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, PostParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_delete_removes_instances_then_stops_serving() {
    let env = start("crddel").await;
    install_widgets(&env).await;
    let widgets: Api<Widget> = Api::default_namespaced(env.client.clone());
    widgets
        .create(
            &PostParams::default(),
            &Widget::new("w", WidgetSpec::default()),
        )
        .await
        .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "the CRD to be gone", || async {
        crds.get_opt("widgets.example.com")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let (code, _) = env
        .raw(
            "GET",
            "/apis/example.com/v1/namespaces/default/widgets",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 404);
    // Re-created, the kind starts empty.
    install_widgets(&env).await;
    assert!(
        widgets
            .list(&kube::api::ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_objects_crds_and_increasing_versions() {
    let env = start("restart").await;
    install_widgets(&env).await;
    let widgets: Api<Widget> = Api::default_namespaced(env.client.clone());
    let w = widgets
        .create(
            &PostParams::default(),
            &Widget::new(
                "w",
                WidgetSpec {
                    size: Some(4),
                    ..WidgetSpec::default()
                },
            ),
        )
        .await
        .unwrap();
    let rv: u64 = w.metadata.resource_version.unwrap().parse().unwrap();
    let dir = env.dir;
    env.cluster.shutdown().await;
    let started = std::time::Instant::now();
    let cluster =
        rivulet_localcluster::LocalCluster::start(rivulet_localcluster::Config::new(dir.path()))
            .await
            .unwrap();
    let startup = started.elapsed();
    assert!(startup < std::time::Duration::from_secs(2), "{startup:?}");
    let client = client_for(cluster.kubeconfig_path()).await;
    let widgets: Api<Widget> = Api::default_namespaced(client);
    assert_eq!(widgets.get("w").await.unwrap().spec.size, Some(4));
    let w2 = widgets
        .create(
            &PostParams::default(),
            &Widget::new("w2", WidgetSpec::default()),
        )
        .await
        .unwrap();
    assert!(
        w2.metadata
            .resource_version
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > rv
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_update_takes_effect_at_once() {
    let env = start("crdupd").await;
    env.kubectl_ok(&["apply", "-f", "-"], Some(common::WIDGET_CRD));
    env.kubectl_ok(&["apply", "-f", "-"], Some("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\nspec:\n  size: 3\n  color: red\n"));
    let changed = common::WIDGET_CRD.replace(
        "- {name: Size, type: integer, jsonPath: .spec.size}",
        "- {name: Tint, type: string, jsonPath: .spec.color}",
    );
    env.kubectl_ok(&["apply", "-f", "-"], Some(&changed));
    let out = env.kubectl_ok(&["get", "widgets"], None);
    assert!(
        out.lines().next().unwrap().contains("TINT") && out.contains("red"),
        "{out}"
    );
    env.cluster.shutdown().await;
}
