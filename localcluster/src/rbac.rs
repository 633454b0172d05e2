//! RBAC evaluation, as kube-apiserver's RBAC authorizer does it
//! (`plugin/pkg/auth/authorizer/rbac`): pure functions from a [`Policy`] (the stored Roles,
//! ClusterRoles and bindings), a [`User`] and the [`Attributes`] of a request to an allowed or
//! denied [`Decision`]. No aggregation: a ClusterRole's `aggregationRule` is ignored, its
//! `rules` are what it grants.
//!
//! The bootstrap policy localcluster keeps (like kube-apiserver's bootstrap roles) is here too,
//! as data: [`bootstrap_objects`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Members of this group may do anything (kube-apiserver's privileged group).
pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
const SA_PREFIX: &str = "system:serviceaccount:";

/// The ClusterRole (and ClusterRoleBinding) that gives every ServiceAccount read access.
pub const READER: &str = "rivulet:service-account-reader";

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub groups: Vec<String>,
}

impl User {
    /// A ServiceAccount's user with the groups its token carries.
    pub fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: format!("{SA_PREFIX}{namespace}:{name}"),
            groups: vec![
                SERVICE_ACCOUNTS.to_string(),
                format!("{SERVICE_ACCOUNTS}:{namespace}"),
                AUTHENTICATED.to_string(),
            ],
        }
    }

    /// The user an admin impersonates (`Impersonate-User`/`Impersonate-Group`): a ServiceAccount
    /// name without groups gets its fixed groups, and everyone but anonymous is authenticated,
    /// as kube-apiserver's impersonation filter does.
    pub fn impersonated(name: &str, groups: Vec<String>) -> User {
        if groups.is_empty()
            && let Some((ns, sa)) = name.strip_prefix(SA_PREFIX).and_then(|r| r.split_once(':'))
        {
            return User::service_account(ns, sa);
        }
        let mut groups = groups;
        if name != "system:anonymous" && !groups.iter().any(|g| g == AUTHENTICATED) {
            groups.push(AUTHENTICATED.to_string());
        }
        User {
            name: name.to_string(),
            groups,
        }
    }

    fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == MASTERS)
    }
}

/// What a resource request does (kube's `authorizer.Attributes`, resource requests only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Empty = cluster scope.
    pub namespace: String,
}

impl Attributes {
    /// `resource/subresource`, the form rules name.
    pub fn combined_resource(&self) -> String {
        if self.subresource.is_empty() {
            self.resource.clone()
        } else {
            format!("{}/{}", self.resource, self.subresource)
        }
    }

    /// kube-apiserver's reason for a denied request (`responsewriters.forbiddenMessage`).
    pub fn forbidden_message(&self, user: &str) -> String {
        let scope = if self.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace \"{}\"", self.namespace)
        };
        format!(
            "User \"{user}\" cannot {} resource \"{}\" in API group \"{}\" {scope}",
            self.verb,
            self.combined_resource(),
            self.group
        )
    }
}

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyRule {
    #[serde(default)]
    pub verbs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_groups: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resource_names: Vec<String>,
    #[serde(
        default,
        rename = "nonResourceURLs",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub non_resource_urls: Vec<String>,
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

impl PolicyRule {
    /// kube's `RuleAllows`: verb, group, resource (`*`, exact `res/sub`, or `*/sub`) and, when
    /// the rule names some, the object's name.
    pub fn allows(&self, a: &Attributes) -> bool {
        let combined = a.combined_resource();
        let resource = self.resources.iter().any(|r| {
            r == "*"
                || *r == combined
                || (!a.subresource.is_empty()
                    && r.strip_prefix("*/") == Some(a.subresource.as_str()))
        });
        has(&self.verbs, &a.verb)
            && has(&self.api_groups, &a.group)
            && resource
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleRef {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct Subject {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    namespace: String,
}

impl Subject {
    /// kube's `appliesToUser`; a ServiceAccount subject without namespace means the binding's.
    fn applies_to(&self, user: &User, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                user.name == format!("{SA_PREFIX}{ns}:{}", self.name)
            }
            _ => false,
        }
    }

    /// As kube's allow reasons name it.
    fn describe(&self, binding_namespace: &str) -> String {
        if self.kind == "ServiceAccount" {
            let ns = if self.namespace.is_empty() {
                binding_namespace
            } else {
                &self.namespace
            };
            format!("ServiceAccount \"{}/{ns}\"", self.name)
        } else {
            format!("{} \"{}\"", self.kind, self.name)
        }
    }
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    /// Empty for a ClusterRoleBinding.
    namespace: String,
    role_ref: RoleRef,
    subjects: Vec<Subject>,
}

/// The stored RBAC objects, indexed for evaluation.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    roles: HashMap<(String, String), Vec<PolicyRule>>,
    cluster_roles: HashMap<String, Vec<PolicyRule>>,
    role_bindings: Vec<Binding>,
    cluster_role_bindings: Vec<Binding>,
}

fn meta(obj: &Value) -> (String, String) {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or_default().to_string(),
        m["name"].as_str().unwrap_or_default().to_string(),
    )
}

fn rules(obj: &Value) -> Vec<PolicyRule> {
    obj["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| serde_json::from_value(r.clone()).ok())
        .collect()
}

fn binding(obj: &Value) -> Option<Binding> {
    let (namespace, name) = meta(obj);
    Some(Binding {
        name,
        namespace,
        role_ref: serde_json::from_value(obj["roleRef"].clone()).ok()?,
        subjects: obj["subjects"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| serde_json::from_value(s.clone()).ok())
            .collect(),
    })
}

impl Policy {
    /// From the stored objects (JSON as served); malformed parts are skipped, so they grant
    /// nothing.
    pub fn from_objects<'a>(
        roles: impl IntoIterator<Item = &'a Value>,
        cluster_roles: impl IntoIterator<Item = &'a Value>,
        role_bindings: impl IntoIterator<Item = &'a Value>,
        cluster_role_bindings: impl IntoIterator<Item = &'a Value>,
    ) -> Policy {
        Policy {
            roles: roles.into_iter().map(|r| (meta(r), rules(r))).collect(),
            cluster_roles: cluster_roles
                .into_iter()
                .map(|r| (meta(r).1, rules(r)))
                .collect(),
            role_bindings: role_bindings.into_iter().filter_map(binding).collect(),
            cluster_role_bindings: cluster_role_bindings
                .into_iter()
                .filter_map(binding)
                .collect(),
        }
    }

    /// The rules a binding's roleRef points at (none when it is dangling).
    fn role_rules(&self, b: &Binding) -> &[PolicyRule] {
        let found = match b.role_ref.kind.as_str() {
            "ClusterRole" => self.cluster_roles.get(&b.role_ref.name),
            // A RoleBinding's Role lives in the binding's namespace.
            "Role" if !b.namespace.is_empty() => self
                .roles
                .get(&(b.namespace.clone(), b.role_ref.name.clone())),
            _ => None,
        };
        found.map_or(&[], Vec::as_slice)
    }

    /// The bindings that apply to `user` in `namespace` (empty = cluster scope: only
    /// ClusterRoleBindings), with the subject that matched.
    fn bindings_for<'a>(
        &'a self,
        user: &'a User,
        namespace: &'a str,
    ) -> impl Iterator<Item = (&'a Binding, &'a Subject)> + 'a {
        let namespaced = self
            .role_bindings
            .iter()
            .filter(move |b| !namespace.is_empty() && b.namespace == namespace);
        self.cluster_role_bindings
            .iter()
            .chain(namespaced)
            .filter_map(move |b| {
                b.subjects
                    .iter()
                    .find(|s| s.applies_to(user, &b.namespace))
                    .map(|s| (b, s))
            })
    }
}

/// The answer for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Which binding allowed it, in kube's words; empty when denied (RBAC has no opinion then).
    pub reason: String,
}

/// Whether `user` may do `attrs` under `policy`.
pub fn authorize(policy: &Policy, user: &User, attrs: &Attributes) -> Decision {
    if user.is_master() {
        return Decision {
            allowed: true,
            reason: String::new(),
        };
    }
    for (b, subject) in policy.bindings_for(user, &attrs.namespace) {
        if policy.role_rules(b).iter().any(|r| r.allows(attrs)) {
            let binding = if b.namespace.is_empty() {
                format!("ClusterRoleBinding \"{}\"", b.name)
            } else {
                format!("RoleBinding \"{}/{}\"", b.name, b.namespace)
            };
            return Decision {
                allowed: true,
                reason: format!(
                    "RBAC: allowed by {binding} of {} \"{}\" to {}",
                    b.role_ref.kind,
                    b.role_ref.name,
                    subject.describe(&b.namespace)
                ),
            };
        }
    }
    Decision {
        allowed: false,
        reason: String::new(),
    }
}

/// Every rule that applies to `user` in `namespace` (SelfSubjectRulesReview): the
/// ClusterRoleBindings' and the namespace's RoleBindings', duplicates removed.
pub fn rules_for(policy: &Policy, user: &User, namespace: &str) -> Vec<PolicyRule> {
    if user.is_master() {
        return vec![
            PolicyRule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..PolicyRule::default()
            },
            PolicyRule {
                verbs: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
                ..PolicyRule::default()
            },
        ];
    }
    let mut out: Vec<PolicyRule> = Vec::new();
    for (b, _) in policy.bindings_for(user, namespace) {
        for r in policy.role_rules(b) {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

/// The parts of `servant` no rule of `owner` covers (kube's `validation.Covers`, used against
/// privilege escalation): every servant rule is broken into one verb, group, resource and name
/// (or URL) at a time, and a part is covered when some owner rule allows it. A servant `*` needs
/// an owner `*`.
pub fn uncovered(owner: &[PolicyRule], servant: &[PolicyRule]) -> Vec<PolicyRule> {
    let one = |v: &str| vec![v.to_string()];
    let mut missing = Vec::new();
    for rule in servant {
        let names: Vec<Option<&String>> = if rule.resource_names.is_empty() {
            vec![None]
        } else {
            rule.resource_names.iter().map(Some).collect()
        };
        for verb in &rule.verbs {
            for group in &rule.api_groups {
                for resource in &rule.resources {
                    for name in &names {
                        let covered = owner.iter().any(|o| {
                            has(&o.verbs, verb)
                                && has(&o.api_groups, group)
                                && o.resources.iter().any(|r| {
                                    r == "*"
                                        || r == resource
                                        || resource.split_once('/').is_some_and(|(_, sub)| {
                                            r.strip_prefix("*/") == Some(sub)
                                        })
                                })
                                && (o.resource_names.is_empty()
                                    || name.is_some_and(|n| o.resource_names.contains(n)))
                        });
                        if !covered {
                            missing.push(PolicyRule {
                                verbs: one(verb),
                                api_groups: one(group),
                                resources: one(resource),
                                resource_names: name.map(|n| one(n)).unwrap_or_default(),
                                ..PolicyRule::default()
                            });
                        }
                    }
                }
            }
            for url in &rule.non_resource_urls {
                let covered = owner.iter().any(|o| {
                    has(&o.verbs, verb)
                        && o.non_resource_urls.iter().any(|u| {
                            u == url || u.strip_suffix('*').is_some_and(|p| url.starts_with(p))
                        })
                });
                if !covered {
                    missing.push(PolicyRule {
                        verbs: one(verb),
                        non_resource_urls: one(url),
                        ..PolicyRule::default()
                    });
                }
            }
        }
    }
    missing
}

/// A rule as kube's escalation errors print it (`compactString`).
pub fn compact(rule: &PolicyRule) -> String {
    let list = |name: &str, v: &[String]| {
        (!v.is_empty()).then(|| {
            let quoted: Vec<String> = v.iter().map(|x| format!("{x:?}")).collect();
            format!("{name}:[{}]", quoted.join(", "))
        })
    };
    let parts: Vec<String> = [
        list("APIGroups", &rule.api_groups),
        list("Resources", &rule.resources),
        list("ResourceNames", &rule.resource_names),
        list("NonResourceURLs", &rule.non_resource_urls),
        list("Verbs", &rule.verbs),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{{{}}}", parts.join(", "))
}

/// The bootstrap ClusterRoles and ClusterRoleBindings, as kube-apiserver reconciles its own at
/// start: `system:basic-user` (anyone authenticated may ask access reviews about itself),
/// `system:discovery` (discovery paths; informational, discovery is never refused) and, when
/// `reader` is set, [`READER`] for every ServiceAccount. `groups` are the served API groups
/// besides core, for the reader's list/watch rule; `core` the core resources.
pub fn bootstrap_objects(reader: bool, core: &[String], groups: &[String]) -> Vec<Value> {
    let role = |name: &str, rules: Value| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "rules": rules,
        })
    };
    let bind = |name: &str, group: &str| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
                         "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}],
        })
    };
    let mut out = vec![
        role(
            "system:basic-user",
            json!([{"verbs": ["create"], "apiGroups": ["authorization.k8s.io"],
                    "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]}]),
        ),
        bind("system:basic-user", AUTHENTICATED),
        role(
            "system:discovery",
            json!([{"verbs": ["get"], "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*",
                    "/healthz", "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"]}]),
        ),
        bind("system:discovery", AUTHENTICATED),
    ];
    if reader {
        out.push(role(READER, json!(reader_rules(core, groups))));
        out.push(bind(READER, SERVICE_ACCOUNTS));
    }
    out
}

/// What ServiceAccount tokens could always do, as RBAC rules: get anything; list and watch
/// anything but Secrets (a fetcher gets the Secrets its function names, one by one). RBAC has
/// no "except", so the core resources and the other groups are named; the role is reconciled
/// when CRDs add groups.
pub fn reader_rules(core: &[String], groups: &[String]) -> Vec<PolicyRule> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
    let mut out = vec![PolicyRule {
        verbs: s(&["get"]),
        api_groups: s(&["*"]),
        resources: s(&["*"]),
        ..PolicyRule::default()
    }];
    let core: Vec<String> = core.iter().filter(|r| *r != "secrets").cloned().collect();
    if !core.is_empty() {
        out.push(PolicyRule {
            verbs: s(&["list", "watch"]),
            api_groups: s(&[""]),
            resources: core,
            ..PolicyRule::default()
        });
    }
    if !groups.is_empty() {
        out.push(PolicyRule {
            verbs: s(&["list", "watch"]),
            api_groups: groups.to_vec(),
            resources: s(&["*"]),
            ..PolicyRule::default()
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, group: &str, resource: &str, name: &str, ns: &str) -> Attributes {
        let (resource, sub) = resource.split_once('/').unwrap_or((resource, ""));
        Attributes {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: ns.into(),
        }
    }

    fn policy() -> Policy {
        let roles = [json!({
            "metadata": {"namespace": "a", "name": "pod-reader"},
            "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]},
                      {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["one"]}]
        })];
        let cluster_roles = [
            json!({"metadata": {"name": "status-writer"},
                   "rules": [{"verbs": ["update"], "apiGroups": [""], "resources": ["pods/status"]}]}),
            json!({"metadata": {"name": "lease-all"},
                   "rules": [{"verbs": ["*"], "apiGroups": ["coordination.k8s.io"], "resources": ["*"]}]}),
        ];
        let role_bindings = [
            json!({"metadata": {"namespace": "a", "name": "rb"},
                   "roleRef": {"kind": "Role", "name": "pod-reader"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa"}]}),
            json!({"metadata": {"namespace": "a", "name": "rb-cr"},
                   "roleRef": {"kind": "ClusterRole", "name": "status-writer"},
                   "subjects": [{"kind": "ServiceAccount", "name": "sa", "namespace": "a"}]}),
        ];
        let crbs = [json!({"metadata": {"name": "crb"},
                           "roleRef": {"kind": "ClusterRole", "name": "lease-all"},
                           "subjects": [{"kind": "Group", "name": "system:serviceaccounts:a"}]})];
        Policy::from_objects(&roles, &cluster_roles, &role_bindings, &crbs)
    }

    fn allowed(user: &User, a: &Attributes) -> bool {
        authorize(&policy(), user, a).allowed
    }

    #[test]
    fn a_role_binding_grants_its_verbs_in_its_namespace_only() {
        let sa = User::service_account("a", "sa");
        assert!(allowed(&sa, &attrs("list", "", "pods", "", "a")));
        assert!(allowed(&sa, &attrs("get", "", "pods", "p", "a")));
        assert!(!allowed(&sa, &attrs("delete", "", "pods", "p", "a")));
        assert!(!allowed(&sa, &attrs("list", "", "pods", "", "b")));
        assert!(
            !allowed(&sa, &attrs("list", "", "pods", "", "")),
            "cluster-wide"
        );
        assert!(!allowed(
            &User::service_account("b", "sa"),
            &attrs("list", "", "pods", "", "a")
        ));
        let reason = authorize(&policy(), &sa, &attrs("list", "", "pods", "", "a")).reason;
        assert_eq!(
            reason,
            "RBAC: allowed by RoleBinding \"rb/a\" of Role \"pod-reader\" to ServiceAccount \"sa/a\""
        );
    }

    #[test]
    fn resource_names_and_subresources_are_separate() {
        let sa = User::service_account("a", "sa");
        assert!(allowed(&sa, &attrs("get", "", "secrets", "one", "a")));
        assert!(!allowed(&sa, &attrs("get", "", "secrets", "two", "a")));
        assert!(!allowed(&sa, &attrs("list", "", "secrets", "", "a")));
        assert!(allowed(&sa, &attrs("update", "", "pods/status", "p", "a")));
        assert!(!allowed(&sa, &attrs("update", "", "pods", "p", "a")));
        assert!(!allowed(&sa, &attrs("get", "", "pods/log", "p", "b")));
    }

    #[test]
    fn cluster_role_bindings_apply_everywhere_and_wildcards_match() {
        let sa = User::service_account("a", "other");
        assert!(allowed(
            &sa,
            &attrs("delete", "coordination.k8s.io", "leases", "l", "z")
        ));
        assert!(allowed(
            &sa,
            &attrs("list", "coordination.k8s.io", "leases", "", "")
        ));
        assert!(!allowed(&sa, &attrs("list", "", "pods", "", "a")));
        let rule = PolicyRule {
            verbs: vec!["get".into()],
            api_groups: vec!["*".into()],
            resources: vec!["*/scale".into()],
            ..PolicyRule::default()
        };
        assert!(rule.allows(&attrs("get", "apps", "deployments/scale", "d", "a")));
        assert!(!rule.allows(&attrs("get", "apps", "deployments", "d", "a")));
    }

    #[test]
    fn masters_may_do_anything_and_others_nothing_without_bindings() {
        let admin = User::impersonated("me", vec![MASTERS.into()]);
        assert!(
            authorize(
                &Policy::default(),
                &admin,
                &attrs("delete", "x", "y", "", "")
            )
            .allowed
        );
        let nobody = User::impersonated("me", vec![]);
        assert_eq!(nobody.groups, vec![AUTHENTICATED.to_string()]);
        assert!(
            !authorize(
                &Policy::default(),
                &nobody,
                &attrs("get", "", "pods", "p", "a")
            )
            .allowed
        );
        assert_eq!(
            User::impersonated("system:serviceaccount:ns:x", vec![]),
            User::service_account("ns", "x")
        );
    }

    #[test]
    fn denials_read_like_kube_apiserver() {
        let a = attrs("list", "", "pods", "", "default");
        assert_eq!(
            a.forbidden_message("system:serviceaccount:default:x"),
            "User \"system:serviceaccount:default:x\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""
        );
        assert!(
            attrs("get", "", "nodes/status", "n", "")
                .forbidden_message("u")
                .ends_with("resource \"nodes/status\" in API group \"\" at the cluster scope")
        );
    }

    #[test]
    fn coverage_breaks_rules_down_and_wildcards_need_wildcards() {
        let rule = |verbs: &[&str], groups: &[&str], resources: &[&str], names: &[&str]| {
            let v = |x: &[&str]| x.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
            PolicyRule {
                verbs: v(verbs),
                api_groups: v(groups),
                resources: v(resources),
                resource_names: v(names),
                ..PolicyRule::default()
            }
        };
        let owner = [
            rule(&["get", "list"], &[""], &["pods", "*/status"], &[]),
            rule(&["get"], &[""], &["secrets"], &["one"]),
        ];
        assert!(
            uncovered(
                &owner,
                &[rule(&["get"], &[""], &["pods", "pods/status"], &[])]
            )
            .is_empty()
        );
        assert!(uncovered(&owner, &[rule(&["get"], &[""], &["secrets"], &["one"])]).is_empty());
        let missing = uncovered(
            &owner,
            &[rule(&["get", "delete"], &[""], &["pods", "secrets"], &[])],
        );
        assert_eq!(
            missing.iter().map(compact).collect::<Vec<_>>(),
            [
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}"#,
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete"]}"#,
                r#"{APIGroups:[""], Resources:["secrets"], Verbs:["delete"]}"#,
            ]
        );
        assert_eq!(
            uncovered(&owner, &[rule(&["get"], &[""], &["*"], &[])]).len(),
            1
        );
    }

    #[test]
    fn the_reader_is_todays_fixed_policy() {
        let objects = bootstrap_objects(
            true,
            &["pods".into(), "secrets".into()],
            &["fission.io".into()],
        );
        let (roles, bindings): (Vec<_>, Vec<_>) =
            objects.iter().partition(|o| o["kind"] == "ClusterRole");
        let p = Policy::from_objects([], roles, [], bindings);
        let sa = User::service_account("default", "default");
        let can = |verb: &str, group: &str, resource: &str, name: &str| {
            authorize(&p, &sa, &attrs(verb, group, resource, name, "default")).allowed
        };
        assert!(can("get", "fission.io", "packages", "p"));
        assert!(can("watch", "", "pods", ""));
        assert!(can("get", "", "secrets", "s"));
        assert!(can("list", "fission.io", "functions", ""));
        assert!(!can("watch", "", "secrets", ""));
        assert!(!can("list", "", "secrets", ""));
        assert!(!can("create", "", "pods", ""));
        assert!(!can("patch", "fission.io", "functions", "f"));
        assert!(can(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            ""
        ));
        let off = bootstrap_objects(false, &[], &[]);
        assert!(off.iter().all(|o| o["metadata"]["name"] != READER));
    }
}
