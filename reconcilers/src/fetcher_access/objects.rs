//! The fetcher-access objects of a namespace (pure builders).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort,
    NetworkPolicySpec,
};
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta, OwnerReference,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Resource;
use rivulet_api::defaults::FETCHER_PORT;
use rivulet_api::function::ExecutorType;
use rivulet_api::keys::{executor_types, fission_labels, rivulet};
use rivulet_api::{Environment, Function};

/// ClusterRole of the fetcher that `deploy/base/rbac.yaml` installs.
pub const DEFAULT_CLUSTER_ROLE: &str = "rivulet-fetcher";
/// Name of the RoleBinding and of the NetworkPolicy in each namespace.
pub const OBJECT_NAME: &str = "rivulet-fetcher";
/// Label of the router's pods (`deploy/base/router.yaml`).
pub const ROUTER_POD_LABEL: (&str, &str) = ("app.kubernetes.io/name", "rivulet-router");
/// Label every object of this module carries (and the watches select on).
pub const COMPONENT_LABEL: (&str, &str) = ("app.kubernetes.io/component", "fetcher-access");

/// Settings of the fetcher-access objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetcherAccessConfig {
    /// ServiceAccount the pods run as (`PoolPodConfig::service_account`); `None`: pods use the
    /// namespace's default account, and neither account nor binding is made.
    pub service_account: Option<String>,
    /// ClusterRole bound to the account in each namespace.
    pub cluster_role: String,
    /// Namespace of the router's pods, the only pods let in on the fetcher port; `None`: no
    /// NetworkPolicy (a router outside the cluster, or a CNI without policies).
    pub router_namespace: Option<String>,
}

impl Default for FetcherAccessConfig {
    fn default() -> Self {
        Self {
            service_account: Some(OBJECT_NAME.into()),
            cluster_role: DEFAULT_CLUSTER_ROLE.into(),
            router_namespace: Some(crate::httptrigger::ingress::DEFAULT_ROUTER_NAMESPACE.into()),
        }
    }
}

/// The desired objects of one namespace.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Desired {
    /// The fetcher's ServiceAccount.
    pub service_account: Option<ServiceAccount>,
    /// Its binding to the fetcher ClusterRole.
    pub role_binding: Option<RoleBinding>,
    /// Port 8000 for the router only.
    pub network_policy: Option<NetworkPolicy>,
}

/// Owner references to the objects of `namespace` whose pods run a fetcher: its Environments
/// and its newdeploy Functions (whose Environment may live elsewhere). Sorted by uid, so an
/// unchanged namespace yields the same list.
pub fn owners<'a>(
    namespace: &str,
    environments: impl IntoIterator<Item = &'a Environment>,
    functions: impl IntoIterator<Item = &'a Function>,
) -> Vec<OwnerReference> {
    let in_namespace = |meta: &ObjectMeta| {
        meta.namespace.as_deref() == Some(namespace) && meta.deletion_timestamp.is_none()
    };
    let envs = environments
        .into_iter()
        .filter(|e| in_namespace(&e.metadata))
        .filter_map(reference);
    let fns = functions
        .into_iter()
        .filter(|f| in_namespace(&f.metadata))
        .filter(|f| f.spec.executor_type() == Some(ExecutorType::Newdeploy))
        .filter_map(reference);
    let mut owners: Vec<OwnerReference> = envs.chain(fns).collect();
    owners.sort_by(|a, b| a.uid.cmp(&b.uid));
    owners
}

/// A plain owner reference (several owners, none the controller; no blockOwnerDeletion, so
/// deleting an Environment never waits on these).
fn reference<K: Resource<DynamicType = ()>>(object: &K) -> Option<OwnerReference> {
    let meta = object.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// The objects `namespace` needs, owned by `owners`; none when there are no owners (the
/// garbage collector removes what is left).
pub fn desired(
    namespace: &str,
    owners: &[OwnerReference],
    config: &FetcherAccessConfig,
) -> Desired {
    if owners.is_empty() {
        return Desired::default();
    }
    let meta = |name: &str| ObjectMeta {
        name: Some(name.to_owned()),
        namespace: Some(namespace.to_owned()),
        labels: Some(BTreeMap::from([
            (
                rivulet::MANAGED_BY_LABEL.to_owned(),
                rivulet::MANAGED_BY_VALUE.to_owned(),
            ),
            (COMPONENT_LABEL.0.to_owned(), COMPONENT_LABEL.1.to_owned()),
        ])),
        owner_references: Some(owners.to_vec()),
        ..ObjectMeta::default()
    };
    let account = config.service_account.as_deref();
    Desired {
        service_account: account.map(|name| ServiceAccount {
            metadata: meta(name),
            ..ServiceAccount::default()
        }),
        role_binding: account.map(|name| RoleBinding {
            metadata: meta(OBJECT_NAME),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: "ClusterRole".into(),
                name: config.cluster_role.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: name.to_owned(),
                namespace: Some(namespace.to_owned()),
                api_group: None,
            }]),
        }),
        network_policy: config
            .router_namespace
            .as_deref()
            .map(|router| NetworkPolicy {
                metadata: meta(OBJECT_NAME),
                spec: Some(fetcher_policy(router)),
            }),
    }
}

/// Pool and newdeploy pods: port 8000 (TCP) only from the router's pods; every other port, TCP
/// or UDP, from anywhere, as without a policy (the runtime's 8888 serves Services and the
/// router alike).
fn fetcher_policy(router_namespace: &str) -> NetworkPolicySpec {
    let port = |protocol: &str, port: Option<i32>, end: Option<i32>| NetworkPolicyPort {
        protocol: Some(protocol.to_owned()),
        port: port.map(IntOrString::Int),
        end_port: end,
    };
    let fetcher = i32::from(FETCHER_PORT);
    let labels = |(k, v): (&str, &str)| Some(BTreeMap::from([(k.to_owned(), v.to_owned())]));
    NetworkPolicySpec {
        pod_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: fission_labels::EXECUTOR_TYPE.into(),
                operator: "In".into(),
                values: Some(vec![
                    executor_types::POOLMGR.into(),
                    executor_types::NEWDEPLOY.into(),
                ]),
            }]),
            match_labels: None,
        }),
        policy_types: Some(vec!["Ingress".into()]),
        ingress: Some(vec![
            NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(LabelSelector {
                        match_labels: labels(("kubernetes.io/metadata.name", router_namespace)),
                        match_expressions: None,
                    }),
                    pod_selector: Some(LabelSelector {
                        match_labels: labels(ROUTER_POD_LABEL),
                        match_expressions: None,
                    }),
                    ip_block: None,
                }]),
                ports: Some(vec![port("TCP", Some(fetcher), None)]),
            },
            NetworkPolicyIngressRule {
                from: None,
                ports: Some(vec![
                    port("TCP", Some(1), Some(fetcher - 1)),
                    port("TCP", Some(fetcher + 1), Some(65535)),
                    port("UDP", None, None),
                ]),
            },
        ]),
        egress: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(namespace: &str, name: &str, uid: &str) -> Environment {
        let mut env: Environment = serde_json::from_value(json!({
            "apiVersion": "fission.io/v1", "kind": "Environment",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {"version": 2, "runtime": {"image": "fission/python-env"}}
        }))
        .unwrap();
        env.metadata.uid = Some(uid.into());
        env
    }

    fn function(namespace: &str, name: &str, uid: &str, executor: &str) -> Function {
        serde_json::from_value(json!({
            "apiVersion": "fission.io/v1", "kind": "Function",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "spec": {
                "environment": {"name": "python", "namespace": "elsewhere"},
                "package": {"packageref": {"name": "p"}},
                "InvokeStrategy": {"StrategyType": "execution",
                    "ExecutionStrategy": {"ExecutorType": executor}}
            }
        }))
        .unwrap()
    }

    #[test]
    fn owners_are_the_namespaces_environments_and_newdeploy_functions() {
        let envs: Vec<Environment> = [("fns", "python", "u-2"), ("other", "node", "u-0")]
            .into_iter()
            .map(|(namespace, name, uid)| env(namespace, name, uid))
            .collect();
        let mut gone = env("fns", "going", "u-9");
        gone.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let fns: Vec<Function> = [
            ("deployed", "u-1", "newdeploy"),
            ("pooled", "u-3", "poolmgr"),
            ("image", "u-4", "container"),
        ]
        .into_iter()
        .map(|(name, uid, executor)| function("fns", name, uid, executor))
        .collect();
        let owners = owners("fns", envs.iter().chain([&gone]), &fns);
        let seen: Vec<_> = owners
            .iter()
            .map(|o| {
                (
                    o.kind.as_str(),
                    o.name.as_str(),
                    o.controller,
                    o.block_owner_deletion,
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("Function", "deployed", None, None),
                ("Environment", "python", None, None)
            ]
        );
        assert_eq!(owners[0].api_version, "fission.io/v1");
    }

    #[test]
    fn no_owners_no_objects() {
        assert_eq!(
            desired("fns", &[], &FetcherAccessConfig::default()),
            Desired::default()
        );
    }

    #[test]
    fn the_objects_of_a_namespace() {
        let owners = owners("fns", [&env("fns", "python", "u-1")], []);
        let desired = desired("fns", &owners, &FetcherAccessConfig::default());
        insta::assert_yaml_snapshot!(
            "fetcher_access_objects",
            (
                desired.service_account,
                desired.role_binding,
                desired.network_policy
            )
        );
    }

    #[test]
    fn without_an_account_or_a_router_namespace_those_objects_are_left_out() {
        let owners = owners("fns", [&env("fns", "python", "u-1")], []);
        let config = FetcherAccessConfig {
            service_account: None,
            router_namespace: None,
            ..FetcherAccessConfig::default()
        };
        assert_eq!(desired("fns", &owners, &config), Desired::default());
        let config = FetcherAccessConfig {
            service_account: None,
            ..FetcherAccessConfig::default()
        };
        let only_policy = desired("fns", &owners, &config);
        assert!(only_policy.service_account.is_none() && only_policy.role_binding.is_none());
        assert!(only_policy.network_policy.is_some());
    }
}
