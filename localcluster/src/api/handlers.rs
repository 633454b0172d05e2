//! Resource endpoints: `/api/v1/...` and `/apis/<group>/<version>/...` paths, by verb.

use std::sync::Arc;

use hyper::{Method, Response};
use serde_json::{Value, json};

use crate::api::options::{DeleteOpts, WriteOpts};
use crate::api::read::{self, Page};
use crate::api::status::{ApiError, ApiResult};
use crate::api::table;
use crate::api::watch::{self, WatchSpec};
use crate::api::write::{self, Step};
use crate::api::{Ctx, authz, patch, protobuf, view_json, view_value};
use crate::exchange::{Body, Req, bytes_response, json_response, stream_response};
use crate::registry::Catalog;
use crate::resources::ResourceInfo;
use crate::selectors::{get_path, set_path};

/// A parsed resource path.
#[derive(Debug)]
struct Target<'a> {
    namespace: Option<&'a str>,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

fn split<'a>(rest: &[&'a str]) -> ApiResult<(&'a str, Target<'a>)> {
    // `namespaces/<ns>/<resource>...` unless it is the namespace object or one of its subresources.
    let (namespace, rest) = match rest {
        ["namespaces", ns, r, tail @ ..]
            if !(tail.is_empty() && matches!(*r, "status" | "finalize")) =>
        {
            (Some(*ns), {
                let mut v = vec![*r];
                v.extend_from_slice(tail);
                v
            })
        }
        _ => (None, rest.to_vec()),
    };
    match rest.as_slice() {
        [plural] => Ok((
            plural,
            Target {
                namespace,
                name: None,
                subresource: None,
            },
        )),
        [plural, name] => Ok((
            plural,
            Target {
                namespace,
                name: Some(name),
                subresource: None,
            },
        )),
        [plural, name, sub] => Ok((
            plural,
            Target {
                namespace,
                name: Some(name),
                subresource: Some(sub),
            },
        )),
        _ => Err(ApiError::path_not_found()),
    }
}

fn parse_body(req: &Req) -> ApiResult<Value> {
    if req.body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let ct = media_type(&req.content_type);
    if ct == protobuf::MEDIA_TYPE {
        return protobuf::decode(&req.body);
    }
    if ct.contains("protobuf") || ct.contains("cbor") {
        return Err(ApiError::unsupported_media_type(
            &ct,
            &["application/json", "application/yaml"],
        ));
    }
    if ct.contains("yaml") {
        let text = std::str::from_utf8(&req.body)
            .map_err(|_| ApiError::bad_request("the body is not valid UTF-8"))?;
        let v: Value = serde_yaml_ng::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
        return Ok(v);
    }
    serde_json::from_slice(&req.body)
        .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))
}

/// The media type without parameters (`; charset=...`).
pub fn media_type(ct: &str) -> String {
    ct.split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn object_response(code: u16, info: &ResourceInfo, req: &Req, obj: &Value) -> Response<Body> {
    if req.accept.contains("as=Table") {
        let t = table::table(
            info,
            std::slice::from_ref(obj),
            &json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
            table::include(req.query.get("includeObject")),
        );
        return json_response(code, &t);
    }
    if req.accept.contains("as=PartialObjectMetadata") {
        return json_response(code, &read::partial_metadata(obj));
    }
    json_response(code, obj)
}

/// Dispatch a request for a resource path of `group/version`.
pub async fn resource(
    ctx: &Arc<Ctx>,
    catalog: &Catalog,
    group: &str,
    version: &str,
    rest: &[&str],
    req: &Req,
) -> ApiResult<Response<Body>> {
    let (plural, target) = split(rest)?;
    let info = catalog
        .get(group, version, plural)
        .ok_or_else(ApiError::path_not_found)?;
    // Scope mismatch is a 404 (AX customresource_handler.go); cluster-wide collections of
    // namespaced kinds are fine.
    if !info.namespaced && target.namespace.is_some() {
        return Err(ApiError::path_not_found());
    }
    if info.namespaced && target.namespace.is_none() && target.name.is_some() {
        return Err(ApiError::path_not_found());
    }
    if let Some(sub) = target.subresource
        && !info.subresources().contains(&sub)
    {
        return Err(ApiError::path_not_found());
    }
    let ns = target.namespace.unwrap_or_default();
    if let Some(user) = req.caller.user() {
        let verb = verb(&req.method, target.name.is_some(), req.query.flag("watch"));
        let attrs = authz::attributes(
            &info,
            verb,
            target.namespace,
            target.name,
            target.subresource,
            req,
        );
        authz::check(ctx, &user, &attrs)?;
    }
    if info.is_review() {
        if req.method != Method::POST || target.name.is_some() {
            return Err(ApiError::method_not_allowed(
                req.method.as_str(),
                &info.group_resource(),
            ));
        }
        let answer = authz::review(ctx, &info, ns, req, parse_body(req)?)?;
        return Ok(json_response(201, &answer));
    }
    match (target.name, &req.method) {
        (None, &Method::GET) => collection_get(ctx, &info, target.namespace, req).await,
        (None, &Method::POST) => {
            if info.namespaced && target.namespace.is_none() {
                return Err(ApiError::path_not_found());
            }
            create(ctx, &info, ns, req).await
        }
        (None, &Method::DELETE) => delete_collection(ctx, &info, target.namespace, req).await,
        (Some(name), &Method::GET) => get(ctx, &info, ns, name, target.subresource, req).await,
        (Some(name), &Method::PUT) => update(ctx, &info, ns, name, target.subresource, req).await,
        (Some(name), &Method::PATCH) => {
            patch_object(ctx, &info, ns, name, target.subresource, req).await
        }
        (Some(name), &Method::DELETE) if target.subresource.is_none() => {
            delete(ctx, &info, ns, name, req).await
        }
        (Some(name), &Method::POST) if target.subresource == Some("binding") => {
            bind(ctx, &info, ns, name, req).await
        }
        (Some(name), &Method::POST) if target.subresource == Some("token") => {
            token_request(ctx, &info, ns, name, req)
        }
        _ => Err(ApiError::method_not_allowed(
            req.method.as_str(),
            &info.group_resource(),
        )),
    }
}

async fn collection_get(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    req: &Req,
) -> ApiResult<Response<Body>> {
    if req.query.flag("watch") {
        let spec = WatchSpec::parse(info, namespace, &req.query)?;
        let rx = watch::start(ctx, info.clone(), spec);
        return Ok(stream_response("application/json", rx));
    }
    let page: Page = read::list_page(ctx, info, namespace, &req.query).await?;
    if req.accept.contains("as=Table") {
        return Ok(json_response(
            200,
            &read::list_table(info, &page, table::include(req.query.get("includeObject"))),
        ));
    }
    if req.accept.contains("as=PartialObjectMetadataList") {
        return Ok(json_response(200, &read::list_partial(info, &page)));
    }
    Ok(bytes_response(
        200,
        "application/json",
        read::list_json(info, &page),
    ))
}

async fn get(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let stored = read::get(ctx, info, ns, name).await?;
    match sub {
        Some("scale") => Ok(json_response(200, &scale_of(info, &stored.value))),
        Some("log") => pod_log(ctx, name, &stored.value, req),
        Some(sub @ ("binding" | "token")) => Err(ApiError::method_not_allowed(
            "GET",
            &format!("{}/{sub}", info.group_resource()),
        )),
        _ if req.accept.contains("as=Table") || req.accept.contains("as=PartialObjectMetadata") => {
            Ok(object_response(200, info, req, &view_value(info, &stored)))
        }
        _ => Ok(bytes_response(
            200,
            "application/json",
            view_json(info, &stored),
        )),
    }
}

fn opts_for(info: &ResourceInfo, req: &Req) -> ApiResult<WriteOpts> {
    let mut opts = WriteOpts::from_query(&req.query)?;
    if opts.field_manager.is_none() {
        // Upstream derives the manager from the User-Agent's program name.
        let ua = req.user_agent.split('/').next().unwrap_or_default();
        if !ua.is_empty() {
            opts.field_manager = Some(ua.chars().take(128).collect());
        }
    }
    let _ = info;
    Ok(opts)
}

async fn create(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let opts = opts_for(info, req)?;
    if opts.force {
        return Err(ApiError::bad_request(
            "force is only allowed for apply patches",
        ));
    }
    let body = write::incoming(info, parse_body(req)?)?;
    no_escalation(ctx, info, ns, req, &body)?;
    let out = write::create(ctx, info, ns, body, &opts).await?;
    Ok(object_response(
        201,
        info,
        req,
        &write::shown(info, out.object),
    ))
}

/// A non-admin writing an RBAC object must not grant more than it holds (authz::no_escalation).
fn no_escalation(
    ctx: &Ctx,
    info: &ResourceInfo,
    ns: &str,
    req: &Req,
    obj: &Value,
) -> ApiResult<()> {
    match req.caller.user() {
        Some(user) if info.group == "rbac.authorization.k8s.io" => {
            authz::no_escalation(ctx, &user, info, ns, obj)
        }
        _ => Ok(()),
    }
}

async fn update(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let mut opts = opts_for(info, req)?;
    opts.status_subresource = sub == Some("status");
    if opts.force {
        return Err(ApiError::bad_request(
            "force is only allowed for apply patches",
        ));
    }
    let body = parse_body(req)?;
    if sub == Some("scale") {
        return scale_update(ctx, info, ns, name, &opts, &|_| Ok(body.clone()), req).await;
    }
    if sub == Some("finalize") {
        return finalize_namespace(ctx, info, name, body, &opts, req).await;
    }
    let body = write::incoming(info, body)?;
    if let Some(n) = body["metadata"]["name"].as_str()
        && n != name
    {
        return Err(ApiError::bad_request(format!(
            "the name of the object ({n}) does not match the name on the URL ({name})"
        )));
    }
    let has_rv = body["metadata"]["resourceVersion"]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    if !has_rv && !info.allow_unconditional_update() {
        return Err(
            ApiError::invalid(&info.kind_group(), name, Vec::new()).with_cause(
                "FieldValueInvalid",
                "Invalid value: 0x0: must be specified for an update",
                "metadata.resourceVersion",
            ),
        );
    }
    no_escalation(ctx, info, ns, req, &body)?;
    let (out, created) = write::update(ctx, info, ns, name, sub, &opts, &|current| {
        let Some(current) = current else {
            return Ok(Step::Replace(body.clone()));
        };
        let mut next = body.clone();
        if !has_rv {
            next["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"].clone();
        }
        Ok(Step::Replace(next))
    })
    .await?;
    Ok(object_response(
        if created { 201 } else { 200 },
        info,
        req,
        &write::shown(info, out.object),
    ))
}

/// `namespaces/<n>/finalize`: only `spec.finalizers` may change.
async fn finalize_namespace(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    name: &str,
    body: Value,
    opts: &WriteOpts,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let (out, _) = write::update(ctx, info, "", name, None, opts, &|current| {
        let Some(current) = current else {
            return Ok(Step::Replace(body.clone()));
        };
        let mut next = current.clone();
        next["spec"]["finalizers"] = body["spec"]["finalizers"].clone();
        Ok(Step::Replace(next))
    })
    .await?;
    Ok(object_response(
        200,
        info,
        req,
        &write::shown(info, out.object),
    ))
}

async fn patch_object(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let mut opts = opts_for(info, req)?;
    opts.status_subresource = sub == Some("status");
    let kind = patch::PatchKind::from_content_type(&media_type(&req.content_type), info)?;
    if kind == patch::PatchKind::Apply {
        if req.query.get("fieldManager").is_none() {
            return Err(
                ApiError::invalid("PatchOptions", "", Vec::new()).with_cause(
                    "FieldValueRequired",
                    "Required value: is required for apply patch",
                    "fieldManager",
                ),
            );
        }
        opts.apply = true;
    } else if opts.force {
        return Err(
            ApiError::invalid("PatchOptions", "", Vec::new()).with_cause(
                "FieldValueForbidden",
                "Forbidden: may not be specified for non-apply patch",
                "force",
            ),
        );
    }
    let body = patch::parse(kind, &req.body)?;
    if sub == Some("scale") {
        return scale_update(
            ctx,
            info,
            ns,
            name,
            &opts,
            &|scale| patch::apply_to(kind, info, scale, &body),
            req,
        )
        .await;
    }
    let (out, created) = write::update(ctx, info, ns, name, sub, &opts, &|current| {
        let step = patch::step(kind, info, name, sub, &opts, current, &body)?;
        // The patched object is what must not escalate, so the check runs on each attempt.
        let (Step::Replace(next) | Step::Create(next)) = &step;
        no_escalation(ctx, info, ns, req, next)?;
        Ok(step)
    })
    .await?;
    Ok(object_response(
        if created { 201 } else { 200 },
        info,
        req,
        &write::shown(info, out.object),
    ))
}

async fn delete(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let body = if req.body.is_empty() {
        None
    } else {
        Some(parse_body(req)?)
    };
    let opts = DeleteOpts::parse(&req.query, body.as_ref())?;
    let deleted = write::delete(ctx, info, ns, name, &opts).await?;
    let code = if deleted.gone { 200 } else { 202 };
    Ok(object_response(
        if code == 202 && opts.propagation.is_none() {
            200
        } else {
            code
        },
        info,
        req,
        &write::shown(info, deleted.object),
    ))
}

async fn delete_collection(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    namespace: Option<&str>,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let body = if req.body.is_empty() {
        None
    } else {
        Some(parse_body(req)?)
    };
    let opts = DeleteOpts::parse(&req.query, body.as_ref())?;
    let mut q = req.query.clone();
    q.0.remove("limit");
    q.0.remove("continue");
    let page = read::list_page(ctx, info, namespace, &q).await?;
    let mut items = Vec::new();
    for stored in &page.items {
        let meta = &stored.value["metadata"];
        let (ns, name) = (
            meta["namespace"].as_str().unwrap_or_default(),
            meta["name"].as_str().unwrap_or_default(),
        );
        match write::delete(ctx, info, ns, name, &opts).await {
            Ok(d) => items.push(write::shown(info, d.object)),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(json_response(
        200,
        &json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": {}, "items": items}),
    ))
}

/// Kubernetes' verb of a request (the word RBAC rules name).
fn verb(method: &Method, named: bool, watch: bool) -> &'static str {
    match (method, named) {
        (&Method::GET, _) if watch => "watch",
        (&Method::GET, true) => "get",
        (&Method::GET, false) => "list",
        (&Method::POST, _) => "create",
        (&Method::PUT, _) => "update",
        (&Method::PATCH, _) => "patch",
        (&Method::DELETE, true) => "delete",
        (&Method::DELETE, false) => "deletecollection",
        _ => "unknown",
    }
}

/// The uid of ServiceAccount `ns/name` (404 when it does not exist): tokens die with it.
fn account_uid(ctx: &Ctx, info: &ResourceInfo, ns: &str, name: &str) -> ApiResult<Option<String>> {
    let account = ctx
        .store
        .get(&Ctx::key(info, ns, name))
        .ok_or_else(|| ApiError::not_found(&info.group_resource(), name))?;
    Ok(account.value["metadata"]["uid"]
        .as_str()
        .map(str::to_string))
}

/// `serviceaccounts/<name>/token`: a TokenRequest, answered with a signed token
/// (crate::tokens) for the ServiceAccount, bound to a pod when the request names one.
fn token_request(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    req: &Req,
) -> ApiResult<Response<Body>> {
    use crate::tokens::{self, Claims};
    const KIND: &str = "TokenRequest.authentication.k8s.io";
    let account_uid = account_uid(ctx, info, ns, name)?;
    let body = parse_body(req)?;
    let spec = &body["spec"];
    let invalid = |field: &str, message: &str| {
        let cause = crate::api::status::Cause {
            kind: "FieldValueInvalid".into(),
            message: message.into(),
            field: field.into(),
        };
        ApiError::invalid(KIND, name, vec![cause])
    };
    let seconds = match spec.get("expirationSeconds") {
        None | Some(Value::Null) => 3600,
        Some(v) => v.as_i64().ok_or_else(|| {
            invalid(
                "spec.expirationSeconds",
                "Invalid value: must be an integer",
            )
        })?,
    };
    if seconds < tokens::MIN_EXPIRATION_SECONDS {
        return Err(invalid(
            "spec.expirationSeconds",
            &format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        ));
    }
    let bound = &spec["boundObjectRef"];
    let pod = if bound.is_null() {
        None
    } else {
        if bound["kind"] != "Pod" {
            return Err(invalid(
                "spec.boundObjectRef.kind",
                &format!(
                    "Unsupported value: {}: supported values: \"Pod\"",
                    bound["kind"]
                ),
            ));
        }
        let pod_name = bound["name"].as_str().unwrap_or_default();
        let pods = ctx
            .registry
            .catalog()
            .get("", "v1", "pods")
            .ok_or_else(ApiError::path_not_found)?;
        let stored = ctx
            .store
            .get(&Ctx::key(&pods, ns, pod_name))
            .ok_or_else(|| ApiError::not_found("pods", pod_name))?;
        let uid = stored.value["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(wanted) = bound["uid"].as_str().filter(|u| !u.is_empty())
            && wanted != uid
        {
            return Err(ApiError::conflict(
                "pods",
                pod_name,
                &format!(
                    "the UID in the bound object reference ({wanted}) does not match the UID in \
                     record ({uid}); the pod may have been deleted and recreated"
                ),
            ));
        }
        Some((pod_name.to_string(), uid))
    };
    let now = crate::util::unix_now();
    let (expires, reported) = tokens::expiry(now, seconds, pod.is_some());
    let mut bound_ref = bound.clone();
    if let Some((_, uid)) = &pod {
        bound_ref["uid"] = json!(uid);
    }
    let token = ctx.signer.issue(&Claims {
        namespace: ns.to_string(),
        service_account: name.to_string(),
        service_account_uid: account_uid,
        pod,
        expires,
    });
    Ok(json_response(
        201,
        &json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": {
                "audiences": spec.get("audiences").cloned().unwrap_or(json!([])),
                "expirationSeconds": seconds,
                "boundObjectRef": bound_ref,
            },
            "status": {"token": token, "expirationTimestamp": crate::util::rfc3339(reported)},
        }),
    ))
}

/// `pods/<name>/binding`: assign the pod to a node once.
async fn bind(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    req: &Req,
) -> ApiResult<Response<Body>> {
    let body = parse_body(req)?;
    let node = body["target"]["name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::invalid("Binding", name, Vec::new()).with_cause(
                "FieldValueRequired",
                "Required value",
                "target.name",
            )
        })?;
    let opts = opts_for(info, req)?;
    write::update(ctx, info, ns, name, None, &opts, &|current| {
        let Some(current) = current else {
            return Ok(Step::Replace(json!({})));
        };
        if current["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty())
        {
            return Err(ApiError::conflict(
                "pods/binding",
                name,
                &format!(
                    "pod {name} is already assigned to node {:?}",
                    current["spec"]["nodeName"].as_str().unwrap_or_default()
                ),
            ));
        }
        if current["metadata"].get("deletionTimestamp").is_some() {
            return Err(ApiError::conflict(
                "pods/binding",
                name,
                "pod is being deleted, cannot be assigned to a host",
            ));
        }
        let mut next = current.clone();
        next["spec"]["nodeName"] = json!(node);
        Ok(Step::Replace(next))
    })
    .await?;
    Ok(json_response(
        201,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    ))
}

/// The `autoscaling/v1 Scale` view of an object.
fn scale_of(info: &ResourceInfo, obj: &Value) -> Value {
    let paths = info.scale.as_ref();
    let spec = paths
        .and_then(|p| get_path(obj, &p.spec_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let status = paths
        .and_then(|p| get_path(obj, &p.status_replicas))
        .cloned()
        .unwrap_or(json!(0));
    let selector = paths
        .and_then(|p| p.label_selector.as_ref())
        .and_then(|p| get_path(obj, p))
        .cloned();
    let selector = match selector {
        Some(Value::String(s)) => Some(s),
        Some(Value::Object(m)) if info.group == "apps" => Some(
            m.get("matchLabels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default(),
        ),
        _ => None,
    };
    let apps_selector = if info.group == "apps" {
        obj["spec"]["selector"]["matchLabels"].as_object().map(|l| {
            l.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
    } else {
        None
    };
    let m = &obj["metadata"];
    let mut s = json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"], "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"]},
        "spec": {"replicas": spec},
        "status": {"replicas": status},
    });
    if let Some(sel) = apps_selector.or(selector) {
        s["status"]["selector"] = json!(sel);
    }
    s
}

/// Write a new Scale (computed from the current one) back into the object's replicas path.
async fn scale_update(
    ctx: &Arc<Ctx>,
    info: &Arc<ResourceInfo>,
    ns: &str,
    name: &str,
    opts: &WriteOpts,
    next_scale: &(dyn Fn(&Value) -> ApiResult<Value> + Send + Sync),
    req: &Req,
) -> ApiResult<Response<Body>> {
    let Some(paths) = info.scale.clone() else {
        return Err(ApiError::path_not_found());
    };
    let mut plain = opts.clone();
    plain.apply = false;
    let (out, _) = write::update(ctx, info, ns, name, None, &plain, &|current| {
        let Some(current) = current else {
            return Ok(Step::Replace(json!({})));
        };
        let scale = next_scale(&scale_of(info, current))?;
        if let Some(rv) = scale["metadata"]["resourceVersion"]
            .as_str()
            .filter(|s| !s.is_empty())
            && Some(rv) != current["metadata"]["resourceVersion"].as_str()
        {
            return Err(ApiError::stale(&info.group_resource(), name));
        }
        let replicas = scale["spec"]["replicas"].as_i64().ok_or_else(|| {
            ApiError::invalid("Scale", name, Vec::new()).with_cause(
                "FieldValueInvalid",
                "Invalid value: must be an integer",
                "spec.replicas",
            )
        })?;
        if replicas < 0 {
            return Err(ApiError::invalid("Scale", name, Vec::new()).with_cause(
                "FieldValueInvalid",
                "Invalid value: must be greater than or equal to 0",
                "spec.replicas",
            ));
        }
        let mut next = current.clone();
        set_path(&mut next, &paths.spec_replicas, json!(replicas));
        Ok(Step::Replace(next))
    })
    .await?;
    let _ = req;
    Ok(json_response(200, &scale_of(info, &out.object)))
}

/// `pods/<name>/log`, served by the node agent's [`crate::hooks::PodLogs`].
fn pod_log(ctx: &Ctx, name: &str, pod: &Value, req: &Req) -> ApiResult<Response<Body>> {
    let Some(logs) = &ctx.pod_logs else {
        return Err(ApiError::bad_request(format!(
            "container logs of pod \"{name}\" are not available: no node agent serves them"
        )));
    };
    let containers: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let container = match (req.query.get("container"), containers.as_slice()) {
        (Some(c), _) => c.to_string(),
        (None, [only]) => (*only).to_string(),
        (None, _) => {
            return Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}, choose one of: [{}]",
                containers.join(" ")
            )));
        }
    };
    let number = |k: &str| req.query.get(k).and_then(|v| v.parse::<i64>().ok());
    let options = crate::hooks::LogOptions {
        follow: req.query.flag("follow"),
        previous: req.query.flag("previous"),
        tail_lines: number("tailLines"),
        since_seconds: number("sinceSeconds"),
        limit_bytes: number("limitBytes"),
        timestamps: req.query.flag("timestamps"),
    };
    let meta = &pod["metadata"];
    let stream = logs
        .logs(
            meta["namespace"].as_str().unwrap_or_default(),
            name,
            meta["uid"].as_str().unwrap_or_default(),
            &container,
            &options,
        )
        .map_err(|e| match e {
            crate::hooks::LogError::NotFound(m) => ApiError::new(404, "NotFound", m),
            crate::hooks::LogError::BadRequest(m) => ApiError::bad_request(m),
        })?;
    Ok(crate::exchange::log_response(stream))
}
