//! `KubeSource` against a real API server (Rivulet's localcluster on 127.0.0.1:0): the typed
//! Package decodes as the fetcher needs, Secret and ConfigMap data arrive whole, and a missing
//! object is `NotFound`.

// Fixture helpers: a failed setup step should abort the test loudly.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use kube::config::KubeConfigOptions;
use rivulet_fetcher::source::SourceError;
use rivulet_fetcher::{ClusterSource, KubeSource};

async fn client_for(cluster: &rivulet_localcluster::LocalCluster) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(cluster.kubeconfig_path()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

fn package(name: &str, literal: &[u8], build_status: &str) -> rivulet_api::Package {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "fission.io/v1", "kind": "Package",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"environment": {"name": "python", "namespace": "default"},
                 "deployment": {"type": "literal", "literal": ByteString(literal.to_vec())}},
        "status": {"buildstatus": build_status}
    }))
    .unwrap()
}

#[tokio::test]
async fn reads_packages_secrets_and_configmaps_from_an_api_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = rivulet_localcluster::Config::new(dir.path().join("cluster"));
    config.api_port = 0;
    let cluster = rivulet_localcluster::LocalCluster::start(config)
        .await
        .unwrap();
    let client = client_for(&cluster).await;

    let crd = rivulet_api::crds::fission_crds()
        .into_iter()
        .find(|crd| crd.spec.names.kind == "Package")
        .unwrap();
    Api::<CustomResourceDefinition>::all(client.clone())
        .create(&PostParams::default(), &crd)
        .await
        .unwrap();
    let packages: Api<rivulet_api::Package> = Api::namespaced(client.clone(), "default");
    let deadline = Instant::now() + Duration::from_secs(10);
    while packages.list(&ListParams::default()).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "the Package CRD was never served"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    packages
        .create(
            &PostParams::default(),
            &package("hello-pkg", b"def main(): pass\n", "none"),
        )
        .await
        .unwrap();
    let meta = |name: &str| ObjectMeta {
        name: Some(name.into()),
        namespace: Some("default".into()),
        ..ObjectMeta::default()
    };
    let secret = Secret {
        metadata: meta("creds"),
        data: Some(BTreeMap::from([(
            "password".to_owned(),
            ByteString(b"s3cret".to_vec()),
        )])),
        ..Secret::default()
    };
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let config_map = ConfigMap {
        metadata: meta("settings"),
        data: Some(BTreeMap::from([("greeting".to_owned(), "hi".to_owned())])),
        binary_data: Some(BTreeMap::from([(
            "logo".to_owned(),
            ByteString(vec![0, 159, 146, 150]),
        )])),
        ..ConfigMap::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &config_map)
        .await
        .unwrap();

    let source = KubeSource::new(client);
    let found = source.package("default", "hello-pkg").await.unwrap();
    assert_eq!(found.deployment.literal, b"def main(): pass\n");
    assert_eq!(found.build_status, "none");
    assert!(found.resource_version.is_some());
    assert_eq!(
        source.package("default", "absent").await.unwrap_err(),
        SourceError::NotFound
    );

    let secret = source.secret("default", "creds").await.unwrap();
    assert_eq!(secret["password"], b"s3cret");
    assert_eq!(
        source.secret("default", "absent").await.unwrap_err(),
        SourceError::NotFound
    );
    let config_map = source.config_map("default", "settings").await.unwrap();
    assert_eq!(config_map["greeting"], b"hi");
    assert_eq!(config_map["logo"], [0, 159, 146, 150]);

    cluster.shutdown().await;
}
