//! Bad input: none of it may crash the server or corrupt storage (issue 3, "Bad input").

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

mod common;

use common::start;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};

fn curl(url: &str, token: Option<&str>) -> String {
    let mut cmd = std::process::Command::new("curl");
    cmd.args(["-sk", "-o", "/dev/null", "-w", "%{http_code}", url]);
    if let Some(t) = token {
        cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    String::from_utf8(cmd.output().unwrap().stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_401_without_or_with_wrong_token() {
    let env = start("bad401").await;
    let url = format!("{}/api/v1/namespaces", env.cluster.url());
    assert_eq!(curl(&url, None), "401");
    assert_eq!(curl(&url, Some("wrong")), "401");
    assert_eq!(curl(&url, Some(env.cluster.token())), "200");
    assert!(env.cluster.url().starts_with("https://127.0.0.1:"));
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(env.cluster.kubeconfig_path())
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    env.cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_400_404_409_413_415_422() {
    let env = start("bad4xx").await;
    let cms = "/api/v1/namespaces/default/configmaps";
    let (code, status) = env
        .raw("POST", cms, "application/json", b"{not json".to_vec())
        .await;
    assert_eq!((code, status["reason"].as_str()), (400, Some("BadRequest")));
    let (code, _) = env
        .raw(
            "PATCH",
            &format!("{cms}/x?fieldManager=t"),
            "application/apply-patch+yaml",
            b"a: [unclosed".to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    let (code, _) = env
        .raw(
            "GET",
            "/apis/nope.example.com/v1/things",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 404);
    let (code, _) = env
        .raw(
            "GET",
            "/api/v1/namespaces/default/nothings",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 404);
    let big = serde_json::to_vec(&serde_json::json!({"metadata": {"name": "big"}, "data": {"k": "x".repeat(4 * 1024 * 1024)}})).unwrap();
    let (code, status) = env.raw("POST", cms, "application/json", big).await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (413, Some("RequestEntityTooLarge"))
    );
    let (code, _) = env
        .raw(
            "POST",
            cms,
            "application/vnd.kubernetes.protobuf",
            b"\x00".to_vec(),
        )
        .await;
    assert_eq!(code, 400);
    // Protobuf is understood for the kinds `kubectl create` sends that way, not for others.
    let job = b"k8s\x00\x0a\x0f\x0a\x08batch/v1\x12\x03Job".to_vec();
    let (code, _) = env
        .raw(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            "application/vnd.kubernetes.protobuf",
            job,
        )
        .await;
    assert_eq!(code, 415);
    let (code, _) = env
        .raw("PATCH", &format!("{cms}/x"), "text/plain", b"{}".to_vec())
        .await;
    assert_eq!(code, 415);
    let (code, status) = env
        .raw(
            "POST",
            cms,
            "application/json",
            br#"{"metadata":{"name":"Bad_Name"}}"#.to_vec(),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (422, Some("Invalid")));
    assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
    let (code, _) = env
        .raw(
            "POST",
            cms,
            "application/json",
            br#"{"metadata":{"name":"ok","labels":{"bad key!":"v"}}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 422);
    let (code, _) = env
        .raw(
            "POST",
            cms,
            "application/json",
            br#"{"metadata":{"name":"d"}}"#.to_vec(),
        )
        .await;
    assert_eq!(code, 200);
    let (code, status) = env
        .raw(
            "POST",
            cms,
            "application/json",
            br#"{"metadata":{"name":"d"}}"#.to_vec(),
        )
        .await;
    assert_eq!(
        (code, status["reason"].as_str()),
        (409, Some("AlreadyExists"))
    );
    let (code, status) = env
        .raw(
            "PUT",
            &format!("{cms}/d"),
            "application/json",
            br#"{"metadata":{"name":"d","resourceVersion":"1"}}"#.to_vec(),
        )
        .await;
    assert_eq!((code, status["reason"].as_str()), (409, Some("Conflict")));
    let (code, _) = env
        .raw(
            "GET",
            &format!("{cms}?labelSelector=a%20in%20b"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 400);
    let (code, _) = env
        .raw(
            "GET",
            &format!("{cms}?limit=abc"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 400);
    let (code, _) = env
        .raw(
            "GET",
            &format!("{cms}?watch=true&sendInitialEvents=true"),
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(code, 422);
    // Still healthy, nothing stored by the failures.
    let api: Api<ConfigMap> = Api::default_namespaced(env.client.clone());
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| c.metadata.name.unwrap())
        .collect();
    assert_eq!(names, ["d"]);
    env.cluster.shutdown().await;
}
