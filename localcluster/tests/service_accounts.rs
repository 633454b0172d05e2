//! Issue 16.4: ServiceAccount tokens. Every namespace gets a `default` ServiceAccount; the
//! TokenRequest API (`serviceaccounts/<name>/token`) issues pod-bound tokens; such a token reads
//! but cannot write or list Secrets, and stops working when its pod is deleted.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::client_with;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

async fn default_account(client: &kube::Client, ns: &str) -> ServiceAccount {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    common::eventually(common::WAIT, "the default ServiceAccount", || {
        let api = api.clone();
        async move { api.get_opt("default").await.unwrap() }
    })
    .await
}

fn request(seconds: i64, pod: Option<(&str, &str)>) -> TokenRequest {
    TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(seconds),
            bound_object_ref: pod.map(|(name, uid)| BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: Some(name.into()),
                uid: Some(uid.into()),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_get_a_default_account_that_comes_back_when_deleted() {
    let env = common::start("sa-default").await;
    default_account(&env.client, "default").await;
    let namespaces: Api<Namespace> = Api::all(env.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team-a"}})).unwrap(),
        )
        .await
        .unwrap();
    let first = default_account(&env.client, "team-a").await;
    let api: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "team-a");
    api.delete("default", &DeleteParams::default())
        .await
        .unwrap();
    common::eventually(common::WAIT, "a new default ServiceAccount", || {
        let api = api.clone();
        let old = first.metadata.uid.clone();
        async move {
            api.get_opt("default")
                .await
                .unwrap()
                .filter(|sa| sa.metadata.uid != old)
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_token_reads_but_cannot_write_or_list_secrets_and_dies_with_its_pod() {
    let env = common::start("sa-token").await;
    default_account(&env.client, "default").await;
    let pods: Api<Pod> = Api::namespaced(env.client.clone(), "default");
    let pod = pods
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "p"},
                "spec": {"containers": [{"name": "c", "image": "x"}]}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let uid = pod.metadata.uid.clone().unwrap();
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "default");
    let issued = accounts
        .create_token_request(
            "default",
            &PostParams::default(),
            &request(3607, Some(("p", &uid))),
        )
        .await
        .unwrap();
    let token = issued.status.unwrap().token.unwrap();
    assert_ne!(token, env.cluster.token(), "not the admin token");
    let client = client_with(&env, &token);

    // Reads work.
    let as_pod: Api<Pod> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        as_pod
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    // Writes and Secrets are refused with a reason naming the account.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let err = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "c"}})).unwrap(),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(e) = err else {
        panic!("{err}")
    };
    assert_eq!(e.code, 403);
    assert!(
        e.message.contains("system:serviceaccount:default:default"),
        "{}",
        e.message
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    let err = secrets.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );
    // A pod token cannot mint more tokens.
    let as_accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let err = as_accounts
        .create_token_request("default", &PostParams::default(), &request(3600, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 403),
        "{err}"
    );

    // Deleting the pod ends the token.
    pods.delete(
        "p",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..DeleteParams::default()
        },
    )
    .await
    .unwrap();
    common::eventually(common::WAIT, "the pod gone", || {
        let pods = pods.clone();
        async move { pods.get_opt("p").await.unwrap().is_none().then_some(()) }
    })
    .await;
    let err = as_pod.list(&ListParams::default()).await.unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref e) if e.code == 401),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_token_requests_name_the_field_and_the_rule() {
    let env = common::start("sa-bad").await;
    default_account(&env.client, "default").await;
    let accounts: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "default");
    let code_and_message = |r: Result<TokenRequest, kube::Error>| match r.unwrap_err() {
        kube::Error::Api(e) => (e.code, e.message),
        other => panic!("{other}"),
    };
    let (code, message) = code_and_message(
        accounts
            .create_token_request("default", &PostParams::default(), &request(60, None))
            .await,
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec.expirationSeconds") && message.contains("10 minutes"),
        "{message}"
    );
    let (code, message) = code_and_message(
        accounts
            .create_token_request("nobody", &PostParams::default(), &request(3600, None))
            .await,
    );
    assert_eq!(code, 404, "{message}");
    let (code, message) = code_and_message(
        accounts
            .create_token_request(
                "default",
                &PostParams::default(),
                &request(3600, Some(("missing", "u"))),
            )
            .await,
    );
    assert_eq!(code, 404, "{message}");
    assert!(message.contains("missing"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_token_works_and_its_token_only_reads() {
    let env = common::start("sa-kubectl").await;
    default_account(&env.client, "default").await;
    // kubectl sends this TokenRequest as protobuf.
    let token = env.kubectl_ok(&["create", "token", "default"], None);
    let token = token.trim();
    assert!(token.starts_with("rivulet-sa."), "{token}");
    let listed = env.kubectl_ok(&["--token", token, "get", "sa", "-o", "name"], None);
    assert_eq!(listed.trim(), "serviceaccount/default");
    let out = env.kubectl(&["--token", token, "delete", "sa", "default"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot delete resource \"serviceaccounts\""),
        "{out:?}"
    );
}
