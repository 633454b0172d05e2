//! The fetcher-access reconciler against a real API server (localcluster) with RBAC enforced,
//! running as the controller's ServiceAccount bound to deploy/base/rbac.yaml's ClusterRole: the
//! fetcher ServiceAccount, its RoleBinding and the NetworkPolicy appear in a namespace with an
//! Environment, come back when deleted, drift is corrected, the Environment's deletion takes
//! them away, and the controller's role grants no more on these kinds than the reconciler uses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use rivulet_api::Environment;
use rivulet_reconcilers::fetcher_access::objects::FetcherAccessConfig;
use rivulet_reconcilers::fetcher_access::reconciler::run;
use rivulet_reconcilers::support::Metrics;
use rivulet_reconcilers::support::shared::Caches;
use rivulet_testing::{TestCluster, eventually};
use serde_json::{Value, json};

mod common;

use common::*;

const RBAC: &str = include_str!("../../deploy/base/rbac.yaml");

/// Installs deploy/base/rbac.yaml's ClusterRoles and ClusterRoleBindings and returns a client
/// holding a token of `fission/rivulet-controller`.
async fn controller_client(tc: &TestCluster) -> Client {
    let client = &tc.client;
    add_namespace(client, "fission").await;
    for doc in serde_yaml_ng::Deserializer::from_str(RBAC) {
        let value: Value = serde::Deserialize::deserialize(doc).unwrap();
        let post = PostParams::default();
        match value["kind"].as_str() {
            Some("ClusterRole") => {
                let role: ClusterRole = serde_json::from_value(value).unwrap();
                Api::all(client.clone()).create(&post, &role).await.unwrap();
            }
            Some("ClusterRoleBinding") => {
                let binding: ClusterRoleBinding = serde_json::from_value(value).unwrap();
                Api::all(client.clone())
                    .create(&post, &binding)
                    .await
                    .unwrap();
            }
            _ => {}
        }
    }
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "fission");
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "rivulet-controller"}})).unwrap();
    accounts
        .create(&PostParams::default(), &account)
        .await
        .unwrap();
    let request = TokenRequest {
        spec: Some(TokenRequestSpec::default()),
        ..TokenRequest::default()
    };
    let token = accounts
        .create_token_request("rivulet-controller", &PostParams::default(), &request)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(tc.cluster.kubeconfig_path()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..kube::config::AuthInfo::default()
    };
    Client::try_from(config).unwrap()
}

async fn allowed(client: &Client, verb: &str, group: &str, resource: &str) -> bool {
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                verb: Some(verb.into()),
                group: Some(group.into()),
                resource: Some(resource.into()),
                namespace: Some("fns".into()),
                ..ResourceAttributes::default()
            }),
            non_resource_attributes: None,
        },
        ..SelfSubjectAccessReview::default()
    };
    Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap()
        .status
        .is_some_and(|s| s.allowed)
}

/// The uid of `name` in `fns` once it exists and `check` holds.
async fn wait_for<K>(client: &Client, name: &str, what: &str, check: impl Fn(&K) -> bool) -> String
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), "fns");
    eventually(WAIT, what, || {
        let api = api.clone();
        let check = &check;
        async move {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                Some(o) if check(&o) => Ok(o.uid().unwrap_or_default()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await
}

async fn gone<K>(client: &Client, name: &str)
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), "fns");
    eventually(WAIT, &format!("{name} collected"), || {
        let api = api.clone();
        async move {
            match api.get_opt(name).await.map_err(|e| e.to_string())? {
                None => Ok(()),
                Some(o) => Err(format!("still there: {:?}", o.meta().owner_references)),
            }
        }
    })
    .await;
}

fn owned_by(meta: &kube::api::ObjectMeta, uids: &[&str]) -> bool {
    let mut owners: Vec<&str> = meta
        .owner_references
        .iter()
        .flatten()
        .map(|o| o.uid.as_str())
        .collect();
    owners.sort_unstable();
    let mut uids = uids.to_vec();
    uids.sort_unstable();
    owners == uids
}

/// A localcluster whose ServiceAccounts have only what stored RBAC grants them (no bootstrap
/// reader role).
async fn strict_cluster() -> TestCluster {
    let dir = tempfile::Builder::new()
        .prefix("rivulet-test-")
        .tempdir()
        .unwrap();
    let mut config = rivulet_localcluster::Config::new(dir.path());
    config.api_port = 0;
    config.bootstrap_service_account_reader = false;
    let cluster = rivulet_localcluster::LocalCluster::start(config)
        .await
        .unwrap();
    let client = rivulet_testing::client_for(cluster.kubeconfig_path())
        .await
        .unwrap();
    TestCluster {
        cluster,
        client,
        dir,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_role_allows_on_these_kinds_only_what_the_reconciler_does() {
    let tc = strict_cluster().await;
    add_namespace(&tc.client, "fns").await;
    let controller = controller_client(&tc).await;
    // On these kinds the controller may do what the reconciler does, and nothing else.
    for (group, resource) in [
        ("", "serviceaccounts"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("networking.k8s.io", "networkpolicies"),
    ] {
        for verb in ["list", "watch", "create", "patch"] {
            assert!(
                allowed(&controller, verb, group, resource).await,
                "{verb} {resource}"
            );
        }
        for verb in [
            "get",
            "update",
            "delete",
            "deletecollection",
            "escalate",
            "bind",
        ] {
            assert!(
                !allowed(&controller, verb, group, resource).await,
                "{verb} {resource}"
            );
        }
    }

    tc.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_function_namespace_gets_its_fetcher_account_binding_and_policy_back() {
    let tc = strict_cluster().await;
    let admin = tc.client.clone();
    install_crds(&admin).await;
    add_namespace(&admin, "fns").await;
    let controller = controller_client(&tc).await;

    let (stop, stopped) = tokio::sync::watch::channel(false);
    let caches = Caches::new(&controller);
    let reconciler = run(
        controller.clone(),
        &caches,
        FetcherAccessConfig::default(),
        Metrics::new(),
        async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        },
    );
    let task = tokio::spawn(caches.serve(reconciler));

    let env: Environment = create(
        &admin,
        "fns",
        json!({"apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": "python"},
            "spec": {"version": 2, "runtime": {"image": "fission/python-env"}}}),
    )
    .await;
    let env_uid = env.uid().unwrap();
    let by_env = |meta: &kube::api::ObjectMeta| owned_by(meta, &[env_uid.as_str()]);
    let account = wait_for::<ServiceAccount>(&admin, "rivulet-fetcher", "fetcher account", |o| {
        by_env(&o.metadata)
    })
    .await;
    wait_for::<RoleBinding>(&admin, "rivulet-fetcher", "fetcher binding", |o| {
        by_env(&o.metadata)
            && o.role_ref.name == "rivulet-fetcher"
            && o.subjects.as_ref().is_some_and(|s| {
                s.len() == 1
                    && s[0].name == "rivulet-fetcher"
                    && s[0].namespace.as_deref() == Some("fns")
            })
    })
    .await;
    let desired_policy = |o: &NetworkPolicy| {
        let spec = serde_json::to_value(&o.spec).unwrap();
        by_env(&o.metadata)
            && spec["ingress"][0]["ports"] == json!([{"port": 8000, "protocol": "TCP"}])
            && spec["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]
                == json!({"kubernetes.io/metadata.name": "fission"})
    };
    wait_for::<NetworkPolicy>(&admin, "rivulet-fetcher", "fetcher policy", desired_policy).await;

    // Deleted: re-created at once (a new object).
    Api::<ServiceAccount>::namespaced(admin.clone(), "fns")
        .delete("rivulet-fetcher", &DeleteParams::default())
        .await
        .unwrap();
    wait_for::<ServiceAccount>(&admin, "rivulet-fetcher", "account re-created", |o| {
        o.uid().as_deref() != Some(account.as_str()) && by_env(&o.metadata)
    })
    .await;
    Api::<RoleBinding>::namespaced(admin.clone(), "fns")
        .delete("rivulet-fetcher", &DeleteParams::default())
        .await
        .unwrap();
    wait_for::<RoleBinding>(&admin, "rivulet-fetcher", "binding re-created", |o| {
        by_env(&o.metadata)
    })
    .await;

    // Drift: someone opens port 8000 to every pod; the policy is put back.
    let opened = json!({"spec": {"ingress": [{"ports": [{"port": 8000, "protocol": "TCP"}]}]}});
    Api::<NetworkPolicy>::namespaced(admin.clone(), "fns")
        .patch(
            "rivulet-fetcher",
            &PatchParams::default(),
            &Patch::Merge(&opened),
        )
        .await
        .unwrap();
    wait_for::<NetworkPolicy>(
        &admin,
        "rivulet-fetcher",
        "policy corrected",
        desired_policy,
    )
    .await;

    Box::pin(second_owner_keeps_them(&admin, &env_uid)).await;

    // The last one goes: the garbage collector takes all three.
    let envs: Api<Environment> = Api::namespaced(admin.clone(), "fns");
    envs.delete("node", &DeleteParams::default()).await.unwrap();
    gone::<ServiceAccount>(&admin, "rivulet-fetcher").await;
    gone::<RoleBinding>(&admin, "rivulet-fetcher").await;
    gone::<NetworkPolicy>(&admin, "rivulet-fetcher").await;

    let _ = stop.send(true);
    task.await.unwrap();
    tc.shutdown().await;
}

/// A second Environment joins the owners; the first goes and the objects stay, owned by the
/// one left (then deleted by the caller).
async fn second_owner_keeps_them(admin: &Client, env_uid: &str) {
    // A second owner, then the first goes: the objects stay, owned by the one left.
    let node: Environment = create(
        admin,
        "fns",
        json!({"apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": "node"},
            "spec": {"version": 2, "runtime": {"image": "fission/node-env"}}}),
    )
    .await;
    let node_uid = node.uid().unwrap();
    wait_for::<ServiceAccount>(admin, "rivulet-fetcher", "two owners", |o| {
        owned_by(&o.metadata, &[env_uid, node_uid.as_str()])
    })
    .await;
    let envs: Api<Environment> = Api::namespaced(admin.clone(), "fns");
    envs.delete("python", &DeleteParams::default())
        .await
        .unwrap();
    for what in ["account", "binding", "policy"] {
        let only_node = |meta: &kube::api::ObjectMeta| owned_by(meta, &[node_uid.as_str()]);
        match what {
            "account" => {
                wait_for::<ServiceAccount>(admin, "rivulet-fetcher", what, |o| {
                    only_node(&o.metadata)
                })
                .await
            }
            "binding" => {
                wait_for::<RoleBinding>(admin, "rivulet-fetcher", what, |o| only_node(&o.metadata))
                    .await
            }
            _ => {
                wait_for::<NetworkPolicy>(admin, "rivulet-fetcher", what, |o| {
                    only_node(&o.metadata)
                })
                .await
            }
        };
    }
}
