//! The mqtrigger reconciler against localcluster: without KEDA the trigger says so; once KEDA's
//! CRDs are served the connector Deployment, ScaledObject and TriggerAuthentication are applied,
//! owned by the trigger, follow its updates; a missing Secret, an unsupported kind and an invalid
//! spec are reported with the field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)] // test code

mod common;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::{Api, Client};
use rivulet_api::MessageQueueTrigger;
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::support::shared::Caches;
use rivulet_reconcilers::triggers::delivery::DeliveryConfig;
use rivulet_reconcilers::triggers::mqtrigger::objects::ConnectorConfig;
use rivulet_reconcilers::triggers::tasks::TriggerCalls;
use rivulet_testing::{TestCluster, eventually};
use serde_json::{Value, json};

fn mqt(name: &str, kind: &str, queue: &str, secret: Option<&str>) -> Value {
    let mut spec = json!({
        "mqtkind": kind, "messageQueueType": queue, "topic": "orders",
        "metadata": {"bootstrapServers": "kafka:9092", "consumerGroup": "g", "topic": "orders"},
        "minReplicaCount": 0, "maxReplicaCount": 3,
        "functionref": {"type": "name", "name": "handle"}
    });
    if let Some(secret) = secret {
        spec["secret"] = secret.into();
    }
    json!({"apiVersion": "fission.io/v1", "kind": "MessageQueueTrigger",
           "metadata": {"name": name}, "spec": spec})
}

async fn install_keda(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for (kind, plural) in [
        ("ScaledObject", "scaledobjects"),
        ("TriggerAuthentication", "triggerauthentications"),
    ] {
        let crd: CustomResourceDefinition = serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": format!("{plural}.keda.sh")},
            "spec": {"group": "keda.sh", "scope": "Namespaced",
                     "names": {"kind": kind, "plural": plural, "singular": kind.to_ascii_lowercase(), "listKind": format!("{kind}List")},
                     "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                                   "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                                       "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                                       "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}}]}
        }))
        .unwrap();
        crds.create(&PostParams::default(), &crd).await.unwrap();
    }
}

fn keda(client: &Client, kind: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("keda.sh", "v1alpha1", kind);
    let resource =
        ApiResource::from_gvk_with_plural(&gvk, &format!("{}s", kind.to_ascii_lowercase()));
    Api::namespaced_with(client.clone(), "default", &resource)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keda_connectors_follow_triggers_and_report_every_problem() {
    let cluster = TestCluster::start().await.unwrap();
    let client = cluster.client.clone();
    install_crds(&client).await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let caches = Caches::new(&client);
    let reconciler = rivulet_reconcilers::triggers::mqtrigger::reconciler::run(
        client.clone(),
        &caches,
        TriggerCalls {
            router_url: "http://router.fission:8889".into(),
            delivery: DeliveryConfig::default(),
            authorization: None,
            metrics: Metrics::new(),
        },
        ConnectorConfig::default(),
        Metrics::new(),
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    );
    let reconciler = tokio::spawn(caches.serve(reconciler));

    create::<MessageQueueTrigger>(
        &client,
        "default",
        mqt("orders", "keda", "kafka", Some("kafka-auth")),
    )
    .await;
    let message =
        ready_reason::<MessageQueueTrigger>(&client, "default", "orders", "KedaNotInstalled").await;
    assert!(message.contains("keda.sh/v1alpha1"), "{message}");
    create::<MessageQueueTrigger>(&client, "default", mqt("legacy", "fission", "kafka", None))
        .await;
    let message =
        ready_reason::<MessageQueueTrigger>(&client, "default", "legacy", "UnsupportedMqtKind")
            .await;
    assert!(message.contains("spec.mqtkind"), "{message}");
    create::<MessageQueueTrigger>(
        &client,
        "default",
        mqt("pigeon", "keda", "carrier-pigeon", None),
    )
    .await;
    let message =
        ready_reason::<MessageQueueTrigger>(&client, "default", "pigeon", "InvalidSpec").await;
    assert!(message.contains("spec.messageQueueType"), "{message}");

    // KEDA arrives: the trigger moves on at once, and waits for its Secret.
    install_keda(&client).await;
    let message =
        ready_reason::<MessageQueueTrigger>(&client, "default", "orders", "SecretNotFound").await;
    assert!(
        message.contains("spec.secret") && message.contains("kafka-auth"),
        "{message}"
    );
    create::<Secret>(
        &client,
        "default",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "kafka-auth"},
               "stringData": {"sasl": "plain", "password": "hunter2"}}),
    )
    .await;
    ready_reason::<MessageQueueTrigger>(&client, "default", "orders", "ConnectorDeployed").await;

    let trigger: MessageQueueTrigger = Api::namespaced(client.clone(), "default")
        .get("orders")
        .await
        .unwrap();
    let uid = trigger.metadata.uid.clone().unwrap();
    let deployment = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("orders")
        .await
        .unwrap();
    assert_eq!(
        deployment.metadata.owner_references.as_ref().unwrap()[0].uid,
        uid
    );
    let env = serde_json::to_value(&deployment).unwrap()["spec"]["template"]["spec"]["containers"]
        [0]["env"]
        .clone();
    assert!(
        env.to_string()
            .contains("http://router.fission:8889/fission-function/handle"),
        "{env}"
    );
    assert!(
        env.to_string()
            .contains(r#""secretKeyRef":{"key":"password","name":"kafka-auth"}"#),
        "{env}"
    );
    let scaled = keda(&client, "ScaledObject").get("orders").await.unwrap();
    assert_eq!(
        scaled.metadata.owner_references.as_ref().unwrap()[0].uid,
        uid
    );
    assert_eq!(scaled.data["spec"]["maxReplicaCount"], 3);
    assert_eq!(
        scaled.data["spec"]["triggers"][0]["authenticationRef"]["name"],
        "orders-auth-trigger"
    );
    let auth = keda(&client, "TriggerAuthentication")
        .get("orders-auth-trigger")
        .await
        .unwrap();
    let keys: Vec<&str> = auth.data["spec"]["secretTargetRef"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["password", "sasl"]);

    // An update reaches the ScaledObject; dropping the secret removes our TriggerAuthentication.
    Api::<MessageQueueTrigger>::namespaced(client.clone(), "default")
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"maxReplicaCount": 7, "secret": null}})),
        )
        .await
        .unwrap();
    eventually(
        WAIT,
        "ScaledObject updated and authentication removed",
        || async {
            let scaled = keda(&client, "ScaledObject")
                .get("orders")
                .await
                .map_err(|e| e.to_string())?;
            let auth = keda(&client, "TriggerAuthentication")
                .get_opt("orders-auth-trigger")
                .await
                .map_err(|e| e.to_string())?;
            if scaled.data["spec"]["maxReplicaCount"] == 7
                && scaled.data["spec"]["triggers"][0]
                    .get("authenticationRef")
                    .is_none()
                && auth.is_none()
            {
                Ok(())
            } else {
                Err(format!(
                    "{} / auth present: {}",
                    scaled.data["spec"],
                    auth.is_some()
                ))
            }
        },
    )
    .await;

    // A deleted connector is put back.
    let before = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("orders")
        .await
        .unwrap()
        .metadata
        .uid;
    Api::<Deployment>::namespaced(client.clone(), "default")
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    eventually(WAIT, "connector re-applied", || async {
        match Api::<Deployment>::namespaced(client.clone(), "default")
            .get_opt("orders")
            .await
        {
            Ok(Some(d)) if d.metadata.uid != before => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    // A name someone else holds is never taken over.
    create::<Deployment>(
        &client,
        "default",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "taken", "labels": {"owner": "someone"}},
               "spec": {"selector": {"matchLabels": {"app": "x"}},
                        "template": {"metadata": {"labels": {"app": "x"}},
                                     "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    )
    .await;
    create::<MessageQueueTrigger>(&client, "default", mqt("taken", "keda", "kafka", None)).await;
    let message =
        ready_reason::<MessageQueueTrigger>(&client, "default", "taken", "NameConflict").await;
    assert!(message.contains("Deployment taken"), "{message}");
    let foreign = Api::<Deployment>::namespaced(client.clone(), "default")
        .get("taken")
        .await
        .unwrap();
    assert!(foreign.metadata.owner_references.is_none(), "{foreign:?}");
    assert!(
        keda(&client, "ScaledObject")
            .get_opt("taken")
            .await
            .unwrap()
            .is_none()
    );

    // Switching away from keda stops the connector: its objects go, the trigger says why.
    Api::<MessageQueueTrigger>::namespaced(client.clone(), "default")
        .patch(
            "orders",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"mqtkind": "fission"}})),
        )
        .await
        .unwrap();
    ready_reason::<MessageQueueTrigger>(&client, "default", "orders", "UnsupportedMqtKind").await;
    eventually(WAIT, "connector objects of orders removed", || async {
        let deployment = Api::<Deployment>::namespaced(client.clone(), "default")
            .get_opt("orders")
            .await
            .map_err(|e| e.to_string())?;
        let scaled = keda(&client, "ScaledObject")
            .get_opt("orders")
            .await
            .map_err(|e| e.to_string())?;
        if deployment.is_none() && scaled.is_none() {
            Ok(())
        } else {
            Err("still there".to_owned())
        }
    })
    .await;

    stop.send(true).unwrap();
    reconciler.await.unwrap();
    cluster.shutdown().await;
}
