//! Authorization on the request path: the attributes of a request, the RBAC decision against
//! the stored policy (crate::rbac), kube-apiserver's 403, the `authorization.k8s.io` reviews
//! (`kubectl auth can-i`) and the bootstrap ClusterRoles kept at start.
//!
//! The admin caller never gets here: its requests skip authorization, as system:masters'.

use serde_json::{Value, json};

use crate::api::Ctx;
use crate::api::options::WriteOpts;
use crate::api::status::{ApiError, ApiResult, Cause};
use crate::api::write::{self, Step};
use crate::exchange::Req;
use crate::rbac::{self, Attributes, Policy, PolicyRule, User};
use crate::resources::ResourceInfo;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// The stored policy, read now: RBAC changes apply to the next request.
pub fn policy(ctx: &Ctx) -> Policy {
    let list = |plural: &str| {
        ctx.store
            .list(&format!("{RBAC_GROUP}/{plural}"), None, None, None)
            .map(|(items, _)| items)
            .unwrap_or_default()
    };
    let (roles, cluster_roles, role_bindings, cluster_role_bindings) = (
        list("roles"),
        list("clusterroles"),
        list("rolebindings"),
        list("clusterrolebindings"),
    );
    Policy::from_objects(
        roles.iter().map(|s| &s.value),
        cluster_roles.iter().map(|s| &s.value),
        role_bindings.iter().map(|s| &s.value),
        cluster_role_bindings.iter().map(|s| &s.value),
    )
}

/// What a resource request asks, as kube-apiserver's RequestInfo resolves it.
pub fn attributes(
    info: &ResourceInfo,
    verb: &str,
    namespace: Option<&str>,
    name: Option<&str>,
    subresource: Option<&str>,
    req: &Req,
) -> Attributes {
    let mut name = name.unwrap_or_default().to_string();
    // A list or watch of one object by name is authorized as that object (informers with
    // resourceNames rules rely on it).
    if name.is_empty()
        && matches!(verb, "list" | "watch")
        && let Some(selector) = req.query.get("fieldSelector")
        && let Some(n) = selector.split(',').find_map(|r| {
            r.strip_prefix("metadata.name==")
                .or_else(|| r.strip_prefix("metadata.name="))
        })
    {
        name = n.to_string();
    }
    // `/api/v1/namespaces/<name>` is in namespace `<name>`: a RoleBinding there may grant it.
    let namespace = if info.group.is_empty() && info.plural == "namespaces" {
        name.clone()
    } else {
        namespace.unwrap_or_default().to_string()
    };
    Attributes {
        verb: verb.to_string(),
        group: info.group.clone(),
        resource: info.plural.clone(),
        subresource: subresource.unwrap_or_default().to_string(),
        name,
        namespace,
    }
}

/// kube-apiserver's 403 for a denied request (`responsewriters.Forbidden`): details name the
/// resource (without subresource) as `kind`, its group and the object's name.
pub fn forbidden(user: &str, a: &Attributes) -> ApiError {
    let group_resource = if a.group.is_empty() {
        a.resource.clone()
    } else {
        format!("{}.{}", a.resource, a.group)
    };
    let why = a.forbidden_message(user);
    let e = if a.name.is_empty() {
        ApiError::new(
            403,
            "Forbidden",
            format!("{group_resource} is forbidden: {why}"),
        )
    } else {
        ApiError::forbidden(&group_resource, &a.name, &why)
    };
    e.with_target(&a.group, &a.resource)
}

/// Allowed, or the 403 to answer.
pub fn check(ctx: &Ctx, user: &User, a: &Attributes) -> ApiResult<()> {
    if rbac::authorize(&policy(ctx), user, a).allowed {
        Ok(())
    } else {
        Err(forbidden(&user.name, a))
    }
}

/// The impersonation an admin may do and nobody else: the 403 a ServiceAccount gets for
/// `Impersonate-User: <name>`, as kube-apiserver words it.
pub fn impersonation_forbidden(caller: &str, target: &str) -> ApiError {
    let a = match target
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'))
    {
        Some((ns, sa)) => Attributes {
            verb: "impersonate".into(),
            resource: "serviceaccounts".into(),
            name: sa.into(),
            namespace: ns.into(),
            ..Attributes::default()
        },
        None => Attributes {
            verb: "impersonate".into(),
            resource: "users".into(),
            name: target.into(),
            ..Attributes::default()
        },
    };
    forbidden(caller, &a)
}

/// kube's escalation check for a non-admin writing RBAC objects: a Role or ClusterRole may
/// hold only rules its writer holds (unless it may `escalate` it), a binding may reference
/// only a role whose rules its writer holds (unless it may `bind` that role). Without it, an
/// account allowed to write bindings could bind itself to anything.
pub fn no_escalation(
    ctx: &Ctx,
    user: &User,
    info: &ResourceInfo,
    namespace: &str,
    obj: &Value,
) -> ApiResult<()> {
    if info.group != RBAC_GROUP {
        return Ok(());
    }
    let namespace = if info.namespaced { namespace } else { "" };
    let policy = policy(ctx);
    let name = text(&obj["metadata"]["name"]);
    let (verb, resource, target, granted) = match info.plural.as_str() {
        "roles" | "clusterroles" => (
            "escalate",
            info.plural.clone(),
            name.clone(),
            serde_json::from_value::<Vec<PolicyRule>>(obj["rules"].clone()).unwrap_or_default(),
        ),
        _ => {
            let (kind, role) = (text(&obj["roleRef"]["kind"]), text(&obj["roleRef"]["name"]));
            let (resource, stored) = if kind == "Role" {
                (
                    "roles",
                    ctx.store.get(&crate::storage::Key {
                        resource: format!("{RBAC_GROUP}/roles"),
                        namespace: namespace.to_string(),
                        name: role.clone(),
                    }),
                )
            } else {
                (
                    "clusterroles",
                    ctx.store.get(&crate::storage::Key {
                        resource: format!("{RBAC_GROUP}/clusterroles"),
                        namespace: String::new(),
                        name: role.clone(),
                    }),
                )
            };
            let rules = stored
                .and_then(|s| serde_json::from_value(s.value["rules"].clone()).ok())
                .unwrap_or_default();
            ("bind", resource.to_string(), role, rules)
        }
    };
    let may = Attributes {
        verb: verb.into(),
        group: RBAC_GROUP.into(),
        resource,
        name: target,
        namespace: namespace.to_string(),
        ..Attributes::default()
    };
    if rbac::authorize(&policy, user, &may).allowed {
        return Ok(());
    }
    let missing = rbac::uncovered(&rbac::rules_for(&policy, user, namespace), &granted);
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let lines: Vec<String> = missing.iter().map(rbac::compact).collect();
    Err(ApiError::forbidden(
        &info.group_resource(),
        &name,
        &format!(
            "user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            groups.join(" "),
            lines.join("\n")
        ),
    )
    .with_target(&info.group, &info.plural))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn invalid(info: &ResourceInfo, field: &str, message: &str) -> ApiError {
    ApiError::invalid(
        &info.kind_group(),
        "",
        vec![Cause {
            kind: "FieldValueRequired".into(),
            message: message.into(),
            field: field.into(),
        }],
    )
}

/// Discovery and health paths: open to every authenticated caller.
fn open_path(path: &str) -> bool {
    matches!(
        path,
        "/api" | "/apis" | "/version" | "/healthz" | "/livez" | "/readyz" | "/openapi"
    ) || ["/api/", "/apis/", "/openapi/", "/version/"]
        .iter()
        .any(|p| path.starts_with(p))
}

/// `status` of an access review of `spec` for `user` (`None` = the admin).
fn access_status(
    ctx: &Ctx,
    info: &ResourceInfo,
    user: Option<&User>,
    spec: &Value,
    namespace_override: Option<&str>,
) -> ApiResult<Value> {
    let decision = if let Some(ra) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        let a = Attributes {
            verb: text(&ra["verb"]),
            group: text(&ra["group"]),
            resource: text(&ra["resource"]),
            subresource: text(&ra["subresource"]),
            name: text(&ra["name"]),
            namespace: namespace_override.map_or_else(|| text(&ra["namespace"]), str::to_string),
        };
        match user {
            None => rbac::Decision {
                allowed: true,
                reason: String::new(),
            },
            Some(u) => rbac::authorize(&policy(ctx), u, &a),
        }
    } else if let Some(nra) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        rbac::Decision {
            allowed: user.is_none()
                || (text(&nra["verb"]) == "get" && open_path(&text(&nra["path"]))),
            reason: String::new(),
        }
    } else {
        return Err(invalid(
            info,
            "spec.resourceAttributes",
            "exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    };
    let mut status = json!({"allowed": decision.allowed});
    if !decision.reason.is_empty() {
        status["reason"] = json!(decision.reason);
    }
    Ok(status)
}

/// `status` of a SelfSubjectRulesReview: the rules that apply in `namespace`.
fn rules_status(ctx: &Ctx, user: Option<&User>, namespace: &str) -> Value {
    let rules = match user {
        Some(u) => rbac::rules_for(&policy(ctx), u, namespace),
        None => rbac::rules_for(
            &Policy::default(),
            &User::impersonated("admin", vec![rbac::MASTERS.into()]),
            namespace,
        ),
    };
    let resource_rules: Vec<PolicyRule> = rules
        .iter()
        .filter(|r| !r.resources.is_empty())
        .map(|r| PolicyRule {
            non_resource_urls: Vec::new(),
            ..r.clone()
        })
        .collect();
    let non_resource_rules: Vec<Value> = rules
        .iter()
        .filter(|r| !r.non_resource_urls.is_empty())
        .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
        .collect();
    json!({
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": false,
    })
}

/// Answer an `authorization.k8s.io` review (`body` is the posted object): the object with its
/// `status`, never stored.
pub fn review(
    ctx: &Ctx,
    info: &ResourceInfo,
    namespace: &str,
    req: &Req,
    mut body: Value,
) -> ApiResult<Value> {
    let me = req.caller.user();
    let spec = body["spec"].clone();
    let status = match info.kind.as_str() {
        "SelfSubjectAccessReview" => access_status(ctx, info, me.as_ref(), &spec, None)?,
        "SelfSubjectRulesReview" => rules_status(ctx, me.as_ref(), &text(&spec["namespace"])),
        kind @ ("SubjectAccessReview" | "LocalSubjectAccessReview") => {
            let (name, groups) = (text(&spec["user"]), strings(&spec["groups"]));
            if name.is_empty() && groups.is_empty() {
                return Err(invalid(
                    info,
                    "spec.user",
                    "at least one of user or group must be specified",
                ));
            }
            // Taken as given (no groups added), as kube-apiserver does.
            let subject = User { name, groups };
            let local = kind == "LocalSubjectAccessReview";
            if local {
                let asked = text(&spec["resourceAttributes"]["namespace"]);
                if !asked.is_empty() && asked != namespace {
                    return Err(invalid(
                        info,
                        "spec.resourceAttributes.namespace",
                        "must match metadata.namespace",
                    ));
                }
            }
            access_status(ctx, info, Some(&subject), &spec, local.then_some(namespace))?
        }
        _ => return Err(ApiError::path_not_found()),
    };
    body["apiVersion"] = json!(info.api_version());
    body["kind"] = json!(info.kind);
    if !body["metadata"].is_object() {
        body["metadata"] = json!({});
    }
    body["metadata"]["creationTimestamp"] = Value::Null;
    if info.namespaced {
        body["metadata"]["namespace"] = json!(namespace);
    }
    body["status"] = status;
    Ok(body)
}

/// Create or reconcile the bootstrap ClusterRoles and ClusterRoleBindings (crate::rbac::
/// bootstrap_objects) as kube-apiserver does at start; one whose
/// `rbac.authorization.kubernetes.io/autoupdate` annotation is `"false"` is left alone.
/// Also run when CRDs change, so the reader's list/watch rule names every served group.
pub async fn ensure_bootstrap(ctx: &Ctx) {
    let catalog = ctx.registry.catalog();
    let core: Vec<String> = catalog
        .in_group_version("", "v1")
        .map(|r| r.plural.clone())
        .collect();
    let groups: Vec<String> = catalog
        .groups()
        .into_iter()
        .map(|(g, _)| g)
        .filter(|g| !g.is_empty())
        .collect();
    let opts = WriteOpts {
        field_manager: Some("rivulet-localcluster".into()),
        ..WriteOpts::default()
    };
    for obj in rbac::bootstrap_objects(ctx.bootstrap_service_account_reader, &core, &groups) {
        let plural = if obj["kind"] == "ClusterRole" {
            "clusterroles"
        } else {
            "clusterrolebindings"
        };
        let Some(info) = catalog.get(RBAC_GROUP, "v1", plural) else {
            continue;
        };
        let name = text(&obj["metadata"]["name"]);
        let fields = ["rules", "roleRef", "subjects"];
        let current = ctx.store.get(&Ctx::key(&info, "", &name));
        let result = match current {
            None => write::create(ctx, &info, "", obj, &opts).await.map(|_| ()),
            Some(cur)
                if cur.value["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"]
                    == "false"
                    || fields.iter().all(|f| cur.value[*f] == obj[*f]) =>
            {
                Ok(())
            }
            Some(_) => write::update(ctx, &info, "", &name, None, &opts, &|cur| {
                let mut next = cur.cloned().unwrap_or_else(|| obj.clone());
                for f in fields {
                    if let Some(v) = obj.get(f) {
                        next[f] = v.clone();
                    }
                }
                Ok(Step::Replace(next))
            })
            .await
            .map(|_| ()),
        };
        if let Err(e) = result
            && e.code != 409
        {
            tracing::warn!(name, error = %e.message, "reconciling a bootstrap RBAC object failed");
        }
    }
}
