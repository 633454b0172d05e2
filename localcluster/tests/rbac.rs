//! Issue 18.3: localcluster authorizes ServiceAccount callers with RBAC, as kube-apiserver does:
//! Roles, ClusterRoles and their bindings from the store, 403s in kube-apiserver's words,
//! `kubectl auth can-i` (SelfSubjectAccessReview, SelfSubjectRulesReview, impersonation by the
//! admin), and the bootstrap reader role that keeps ServiceAccounts reading by default.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::client_with;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, ServiceAccount};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

/// A cluster whose ServiceAccounts get no bootstrap read access: only stored RBAC counts.
async fn strict(tag: &str) -> common::Env {
    common::start_with(tag, |c| c.bootstrap_service_account_reader = false).await
}

/// Creates ServiceAccount `name` in `ns` (and `ns`) and returns a token for it.
async fn account(env: &common::Env, ns: &str, name: &str) -> String {
    env.kubectl(&["create", "namespace", ns], None);
    let api: Api<ServiceAccount> = Api::namespaced(env.client.clone(), ns);
    if api.get_opt(name).await.unwrap().is_none() {
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": name}})).unwrap(),
        )
        .await
        .unwrap();
    }
    let req = TokenRequest {
        spec: Some(TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    api.create_token_request(name, &PostParams::default(), &req)
        .await
        .unwrap()
        .status
        .unwrap()
        .token
        .unwrap()
}

fn api_error<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(e)) => *e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn apply(env: &common::Env, yaml: &str) {
    env.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(yaml));
}

/// `kubectl auth can-i ...` answering "yes" (exit 0) or "no" (exit 1).
fn can_i(env: &common::Env, args: &[&str]) -> bool {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let out = env.kubectl(&all, None);
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match (out.status.code(), stdout.split(' ').next()) {
        (Some(0), Some("yes")) => true,
        (Some(1), Some("no")) => false,
        _ => panic!(
            "kubectl {all:?}: {out:?} {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

const TEAM_A_POLICY: &str = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: pod-reader, namespace: team-a}
rules:
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [pods/status]
  verbs: [update, patch]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [one]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: sa-reads-pods, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-reader}
subjects:
- {kind: ServiceAccount, name: sa, namespace: team-a}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_bindings_a_token_is_denied_in_kube_apiservers_words() {
    let env = strict("rbac-deny").await;
    let token = account(&env, "default", "x").await;
    let client = client_with(&env, &token);

    let e = api_error(
        Api::<Pod>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(e.code, 403);
    assert_eq!(e.reason, "Forbidden");
    assert_eq!(
        e.message,
        "pods is forbidden: User \"system:serviceaccount:default:x\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
    );
    let e = api_error(
        Api::<Deployment>::all(client.clone())
            .list(&ListParams::default())
            .await,
    );
    assert_eq!(
        e.message,
        "deployments.apps is forbidden: User \"system:serviceaccount:default:x\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
    );
    let e = api_error(
        Api::<ConfigMap>::namespaced(client.clone(), "default")
            .get("c")
            .await,
    );
    assert_eq!(
        e.message,
        "configmaps \"c\" is forbidden: User \"system:serviceaccount:default:x\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"default\""
    );
    // details: {name, group (when not core), kind = the resource}, as kube-apiserver's.
    let (code, status) = raw(
        &client,
        "GET",
        "/apis/apps/v1/namespaces/default/deployments/d",
        None,
    )
    .await;
    assert_eq!(code, 403);
    assert_eq!(
        status["details"],
        json!({"name": "d", "group": "apps", "kind": "deployments"})
    );
    // Discovery stays open to every authenticated caller.
    client.list_api_groups().await.unwrap();
    // So does asking about oneself (system:basic-user, bootstrapped like kube-apiserver's).
    assert!(!can_i(&env, &["--token", &token, "list", "pods"]));
}

/// A request with `client`'s credentials; (status code, body): 200 for any success.
async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(
            body.map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default(),
        )
        .unwrap();
    match client.request_text(req).await {
        Ok(text) => (200, serde_json::from_str(&text).unwrap()),
        Err(kube::Error::Api(status)) => (status.code, serde_json::to_value(&*status).unwrap()),
        Err(e) => panic!("request failed: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_binding_grants_exactly_its_rules_in_its_namespace() {
    let env = strict("rbac-role").await;
    let token = account(&env, "team-a", "sa").await;
    env.kubectl(&["create", "namespace", "team-b"], None);
    apply(&env, TEAM_A_POLICY);
    for ns in ["team-a", "team-b"] {
        env.kubectl_ok(&["-n", ns, "run", "p", "--image=x"], None);
        for name in ["one", "two"] {
            env.kubectl_ok(&["-n", ns, "create", "secret", "generic", name], None);
        }
    }
    let client = client_with(&env, &token);
    let pods_a: Api<Pod> = Api::namespaced(client.clone(), "team-a");
    assert_eq!(
        pods_a
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let pod = pods_a.get("p").await.unwrap();
    // Its namespace only, and not cluster-wide.
    let e = api_error(
        Api::<Pod>::namespaced(client.clone(), "team-b")
            .list(&ListParams::default())
            .await,
    );
    assert!(
        e.message.ends_with("in the namespace \"team-b\""),
        "{}",
        e.message
    );
    api_error(
        Api::<Pod>::all(client.clone())
            .list(&ListParams::default())
            .await,
    );
    // Its verbs only: pods/status may be written, the pod itself not.
    pods_a
        .replace_status("p", &PostParams::default(), &pod)
        .await
        .unwrap();
    let e = api_error(pods_a.replace("p", &PostParams::default(), &pod).await);
    assert!(
        e.message.contains("cannot update resource \"pods\""),
        "{}",
        e.message
    );
    let e = api_error(pods_a.delete("p", &DeleteParams::default()).await);
    assert!(
        e.message.contains("cannot delete resource \"pods\""),
        "{}",
        e.message
    );
    // resourceNames: one Secret by name, no other, no list.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "team-a");
    secrets.get("one").await.unwrap();
    let e = api_error(secrets.get("two").await);
    assert_eq!(
        e.message,
        "secrets \"two\" is forbidden: User \"system:serviceaccount:team-a:sa\" cannot get resource \"secrets\" in API group \"\" in the namespace \"team-a\""
    );
    api_error(secrets.list(&ListParams::default()).await);
    // Revoking the binding takes effect on the next request.
    env.kubectl_ok(
        &["-n", "team-a", "delete", "rolebinding", "sa-reads-pods"],
        None,
    );
    api_error(pods_a.list(&ListParams::default()).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_role_binding_grants_cluster_wide_and_a_role_binding_can_name_a_cluster_role() {
    let env = strict("rbac-cluster").await;
    let token = account(&env, "team-a", "sa").await;
    apply(
        &env,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "rivulet:configmap-reader"}
rules:
- {apiGroups: [""], resources: [configmaps], verbs: [list]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: deployment-editor}
rules:
- {apiGroups: [apps], resources: ["*"], verbs: ["*"]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "rivulet:configmap-reader"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "rivulet:configmap-reader"}
subjects:
- {kind: Group, name: "system:serviceaccounts:team-a", apiGroup: rbac.authorization.k8s.io}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: edit-deployments, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: deployment-editor}
subjects:
- {kind: ServiceAccount, name: sa, namespace: team-a}
"#,
    );
    let client = client_with(&env, &token);
    Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default())
        .await
        .unwrap();
    api_error(
        Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
            .get("x")
            .await,
    );
    // The ClusterRole through a RoleBinding: all of apps, in default only.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deployments
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "d"},
                "spec": {"selector": {"matchLabels": {"a": "b"}},
                         "template": {"metadata": {"labels": {"a": "b"}},
                                      "spec": {"containers": [{"name": "c", "image": "x"}]}}}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    api_error(
        Api::<Deployment>::namespaced(client.clone(), "team-a")
            .list(&ListParams::default())
            .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_auth_can_i_answers_for_tokens_and_for_impersonated_accounts() {
    let env = strict("rbac-can-i").await;
    let token = account(&env, "team-a", "sa").await;
    apply(&env, TEAM_A_POLICY);
    let sa = "--as=system:serviceaccount:team-a:sa";
    for who in [vec!["--token", token.as_str()], vec![sa]] {
        let ask = |args: &[&str]| {
            let mut all = who.clone();
            all.extend_from_slice(args);
            can_i(&env, &all)
        };
        assert!(ask(&["list", "pods", "-n", "team-a"]), "{who:?}");
        assert!(!ask(&[
            "get",
            "pods",
            "--subresource=status",
            "-n",
            "team-a"
        ]));
        assert!(ask(&[
            "update",
            "pods",
            "--subresource=status",
            "-n",
            "team-a"
        ]));
        assert!(!ask(&["delete", "pods", "-n", "team-a"]));
        assert!(!ask(&["list", "pods", "-n", "team-b"]));
        assert!(!ask(&["list", "pods", "-A"]));
        assert!(ask(&["get", "secret/one", "-n", "team-a"]));
        assert!(!ask(&["get", "secret/two", "-n", "team-a"]));
    }
    // The admin may do anything.
    assert!(can_i(&env, &["delete", "nodes"]));
    // `--list` prints the rules that apply in the namespace.
    let listed = env.kubectl_ok(&["auth", "can-i", "--list", sa, "-n", "team-a"], None);
    let line = |resource: &str| {
        listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(resource))
            .unwrap_or_else(|| panic!("{resource} in {listed}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(line("pods"), ["pods", "[]", "[]", "[get", "list", "watch]"]);
    assert_eq!(
        line("pods/status"),
        ["pods/status", "[]", "[]", "[update", "patch]"]
    );
    assert_eq!(line("secrets"), ["secrets", "[]", "[one]", "[get]"]);
    assert!(
        listed.contains("selfsubjectaccessreviews.authorization.k8s.io"),
        "{listed}"
    );
    let elsewhere = env.kubectl_ok(&["auth", "can-i", "--list", sa, "-n", "team-b"], None);
    assert!(!elsewhere.contains("pods"), "{elsewhere}");
    // A ServiceAccount may not impersonate.
    let out = env.kubectl(
        &[
            "--token",
            &token,
            "--as=system:serviceaccount:kube-system:default",
            "get",
            "pods",
        ],
        None,
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "serviceaccounts \"default\" is forbidden: User \"system:serviceaccount:team-a:sa\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"kube-system\""
        ),
        "{stderr}"
    );
    let client = client_with(&env, &token);
    let req = hyper::Request::builder()
        .uri("/api/v1/namespaces/team-a/pods")
        .header("impersonate-user", "admin")
        .header("impersonate-group", "system:masters")
        .body(Vec::new())
        .unwrap();
    let e = api_error(client.request_text(req).await);
    assert_eq!(e.code, 403);
    assert!(
        e.message.starts_with("users \"admin\" is forbidden"),
        "{}",
        e.message
    );
    // The admin impersonating a group of masters may do anything.
    assert!(can_i(
        &env,
        &[
            "--as=someone",
            "--as-group=system:masters",
            "delete",
            "nodes"
        ]
    ));
    assert!(!can_i(&env, &["--as=someone", "delete", "nodes"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subject_access_reviews_answer_for_anyone_and_need_permission() {
    let env = strict("rbac-sar").await;
    let token = account(&env, "team-a", "sa").await;
    apply(&env, TEAM_A_POLICY);
    let review = |verb: &str, ns: &str| {
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": "system:serviceaccount:team-a:sa", "groups": ["system:serviceaccounts"],
                     "resourceAttributes": {"verb": verb, "resource": "pods", "namespace": ns}}
        })
    };
    let path = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
    let (code, allowed) = raw(&env.client, "POST", path, Some(review("list", "team-a"))).await;
    assert_eq!(code, 200);
    assert_eq!(allowed["status"]["allowed"], true);
    assert_eq!(
        allowed["status"]["reason"],
        "RBAC: allowed by RoleBinding \"sa-reads-pods/team-a\" of Role \"pod-reader\" to ServiceAccount \"sa/team-a\""
    );
    let (_, denied) = raw(&env.client, "POST", path, Some(review("list", "team-b"))).await;
    assert_eq!(denied["status"], json!({"allowed": false}));
    // Asking about others is itself a permission.
    let (code, status) = raw(
        &client_with(&env, &token),
        "POST",
        path,
        Some(review("list", "team-a")),
    )
    .await;
    assert_eq!(code, 403, "{status}");
    let (code, _) = raw(
        &env.client,
        "POST",
        path,
        Some(
            json!({"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                    "spec": {"resourceAttributes": {"verb": "get"}}}),
        ),
    )
    .await;
    assert_eq!(code, 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_bootstrap_reader_service_accounts_read_everything_but_secret_lists() {
    let env = common::start("rbac-bootstrap").await;
    let token = account(&env, "default", "x").await;
    let sa = ["--token", token.as_str()];
    let ask = |args: &[&str]| {
        let mut all = sa.to_vec();
        all.extend_from_slice(args);
        can_i(&env, &all)
    };
    assert!(ask(&["list", "pods", "-A"]));
    assert!(ask(&["watch", "deployments.apps", "-n", "x"]));
    assert!(ask(&["get", "secrets/s"]));
    assert!(!ask(&["list", "secrets"]));
    assert!(!ask(&["create", "configmaps"]));
    // A CRD's group joins the list/watch rule once it is served.
    common::install_widgets(&env).await;
    common::eventually(common::WAIT, "widgets listable", || async {
        ask(&["list", "widgets.example.com"]).then_some(())
    })
    .await;
    let reader = env.kubectl_ok(
        &[
            "get",
            "clusterrole",
            "rivulet:service-account-reader",
            "-o",
            "json",
        ],
        None,
    );
    assert!(reader.contains("example.com"), "{reader}");
    // Off, the same account reads nothing.
    let strict = strict("rbac-bootstrap-off").await;
    let token = account(&strict, "default", "x").await;
    assert!(!can_i(&strict, &["--token", &token, "get", "pods/p"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_network_policy_and_pdb_objects_apply_server_side() {
    let env = strict("rbac-apply").await;
    let manifests = r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "fission:controller"}
rules:
- {apiGroups: [fission.io], resources: [functions, functions/status], verbs: [get, list, watch, update]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "fission:controller"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "fission:controller"}
subjects: [{kind: ServiceAccount, name: controller, namespace: default}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: fetcher, namespace: default}
rules:
- {apiGroups: [""], resources: [secrets, configmaps], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: fetcher, namespace: default}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: fetcher}
subjects: [{kind: ServiceAccount, name: fetcher}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: only-router, namespace: default}
spec:
  podSelector: {matchLabels: {app: fn}}
  policyTypes: [Ingress]
  ingress:
  - from: [{podSelector: {matchLabels: {app: router}}}]
    ports: [{port: 8888, protocol: TCP}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: router, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: router}}
"#;
    let out = env.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(manifests));
    assert_eq!(
        out.lines()
            .filter(|l| l.ends_with("serverside-applied"))
            .count(),
        6,
        "{out}"
    );
    // Applying again changes nothing.
    let rv = env.cluster.resource_version();
    env.kubectl_ok(&["apply", "--server-side", "-f", "-"], Some(manifests));
    assert_eq!(env.cluster.resource_version(), rv);
    let got = env.kubectl_ok(&["get", "netpol,pdb,role,rolebinding", "-o", "name"], None);
    for want in [
        "networkpolicy.networking.k8s.io/only-router",
        "poddisruptionbudget.policy/router",
        "role.rbac.authorization.k8s.io/fetcher",
        "rolebinding.rbac.authorization.k8s.io/fetcher",
    ] {
        assert!(got.contains(want), "{want} in {got}");
    }
    // A ServiceAccount subject without namespace means the RoleBinding's.
    let token = account(&env, "default", "fetcher").await;
    assert!(can_i(&env, &["--token", &token, "get", "secrets/any"]));
    assert!(!can_i(&env, &["--token", &token, "list", "secrets"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_that_writes_rbac_cannot_grant_more_than_it_holds() {
    let env = strict("rbac-escalate").await;
    let token = account(&env, "team-a", "manager").await;
    apply(
        &env,
        r#"
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: manager, namespace: team-a}
rules:
- {apiGroups: [rbac.authorization.k8s.io], resources: [roles, rolebindings], verbs: [create, update, patch, get]}
- {apiGroups: [""], resources: [pods], verbs: [get, list]}
- {apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [bind], resourceNames: [big-but-bindable]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: manager, namespace: team-a}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: manager}
subjects: [{kind: ServiceAccount, name: manager}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: big}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: big-but-bindable}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
"#,
    );
    let client = client_with(&env, &token);
    let post = |path: &'static str, body: serde_json::Value| {
        let client = client.clone();
        async move { raw(&client, "POST", path, Some(body)).await }
    };
    let roles = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/roles";
    let bindings = "/apis/rbac.authorization.k8s.io/v1/namespaces/team-a/rolebindings";
    let role = |name: &str, verbs: &[&str]| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
               "metadata": {"name": name},
               "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": verbs}]})
    };
    let binding = |name: &str, kind: &str, role: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": name},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": role},
               "subjects": [{"kind": "ServiceAccount", "name": "worker", "namespace": "team-a"}]})
    };
    assert_eq!(post(roles, role("reader", &["get"])).await.0, 200);
    let (code, status) = post(roles, role("deleter", &["get", "delete"])).await;
    assert_eq!(code, 403, "{status}");
    assert_eq!(
        status["message"],
        "roles.rbac.authorization.k8s.io \"deleter\" is forbidden: user \"system:serviceaccount:team-a:manager\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:team-a\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\"]}"
    );
    assert_eq!(post(bindings, binding("r", "Role", "reader")).await.0, 200);
    let (code, status) = post(bindings, binding("b", "ClusterRole", "big")).await;
    assert_eq!(code, 403, "{status}");
    // `bind` on a role lets its holder bind it without holding its rules.
    assert_eq!(
        post(bindings, binding("bb", "ClusterRole", "big-but-bindable"))
            .await
            .0,
        200
    );
    // A patch is checked on the patched object.
    let patched = hyper::Request::builder()
        .method("PATCH")
        .uri(format!("{roles}/reader"))
        .header("content-type", "application/merge-patch+json")
        .body(
            serde_json::to_vec(&json!({"rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}]}))
                .unwrap(),
        )
        .unwrap();
    assert_eq!(api_error(client.request_text(patched).await).code, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_role_and_bindings_work() {
    let env = strict("rbac-kubectl-create").await;
    let token = account(&env, "team-a", "sa").await;
    // kubectl sends these as protobuf.
    env.kubectl_ok(
        &[
            "-n",
            "team-a",
            "create",
            "role",
            "cm-reader",
            "--verb=get,list",
            "--resource=configmaps",
        ],
        None,
    );
    env.kubectl_ok(
        &[
            "-n",
            "team-a",
            "create",
            "rolebinding",
            "cm-reader",
            "--role=cm-reader",
            "--serviceaccount=team-a:sa",
        ],
        None,
    );
    env.kubectl_ok(
        &[
            "create",
            "clusterrole",
            "node-reader",
            "--verb=get",
            "--resource=nodes",
            "--resource-name=n1",
        ],
        None,
    );
    env.kubectl_ok(
        &[
            "create",
            "clusterrolebinding",
            "node-reader",
            "--clusterrole=node-reader",
            "--group=system:serviceaccounts:team-a",
        ],
        None,
    );
    let sa = ["--token", token.as_str()];
    let ask = |args: &[&str]| {
        let mut all = sa.to_vec();
        all.extend_from_slice(args);
        can_i(&env, &all)
    };
    assert!(ask(&["list", "configmaps", "-n", "team-a"]));
    assert!(!ask(&["list", "configmaps", "-n", "default"]));
    assert!(ask(&["get", "nodes/n1"]));
    assert!(!ask(&["get", "nodes/n2"]));
}

/// A token dies with its ServiceAccount: deleted, or deleted and recreated under the same name
/// (a new uid), the token is refused with 401 as kube-apiserver refuses it; a new token for the
/// new account works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_revoked_with_its_service_account() {
    let env = common::start("rbac-revoke").await;
    let api: Api<ServiceAccount> = Api::namespaced(env.client.clone(), "team-a");
    let token = account(&env, "team-a", "sa").await;
    let sa_client = client_with(&env, &token);
    let pods = || Api::<Pod>::namespaced(sa_client.clone(), "team-a");
    // The bootstrap reader lets the account list pods while it exists.
    pods().list(&ListParams::default()).await.unwrap();

    api.delete("sa", &DeleteParams::default()).await.unwrap();
    let e = api_error(pods().list(&ListParams::default()).await);
    assert_eq!((e.code, e.message.as_str()), (401, "Unauthorized"));

    // Same name, new uid: the old token stays revoked.
    let fresh = account(&env, "team-a", "sa").await;
    let e = api_error(pods().list(&ListParams::default()).await);
    assert_eq!(e.code, 401);
    let out = env.kubectl(&["--token", &token, "get", "pods", "-n", "team-a"], None);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("You must be logged in to the server"),
        "{stderr}"
    );
    Api::<Pod>::namespaced(client_with(&env, &fresh), "team-a")
        .list(&ListParams::default())
        .await
        .unwrap();
}

/// Impersonation headers from a ServiceAccount are refused with kube-apiserver's 403, for a
/// user, a ServiceAccount user and with groups; nothing is done under the impersonated name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_cannot_impersonate() {
    let env = strict("rbac-impersonate").await;
    let token = account(&env, "team-a", "sa").await;
    apply(&env, TEAM_A_POLICY);
    let client = client_with(&env, &token);
    let send = |headers: Vec<(&'static str, &'static str)>| {
        let client = client.clone();
        async move {
            let mut req = hyper::Request::builder()
                .method("DELETE")
                .uri("/api/v1/namespaces/team-a/configmaps/c");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            api_error(client.request_text(req.body(Vec::new()).unwrap()).await)
        }
    };
    let e = send(vec![("impersonate-user", "alice")]).await;
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "users \"alice\" is forbidden: User \"system:serviceaccount:team-a:sa\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope"
    );
    let e = send(vec![
        ("impersonate-user", "system:serviceaccount:team-a:other"),
        ("impersonate-group", "system:masters"),
    ])
    .await;
    assert_eq!(e.code, 403);
    assert_eq!(
        e.message,
        "serviceaccounts \"other\" is forbidden: User \"system:serviceaccount:team-a:sa\" cannot impersonate resource \"serviceaccounts\" in API group \"\" in the namespace \"team-a\""
    );
    assert_eq!(e.reason, "Forbidden");
    let details = e.details.unwrap();
    assert_eq!(
        (details.name.as_str(), details.kind.as_str()),
        ("other", "serviceaccounts")
    );
}
