//! HTTP transport: loopback listener, bearer-token check, body limit, content negotiation and
//! routing of the non-resource paths. Resource paths go to [`crate::api::handlers`]; the request
//! they get and the responses they build are in [`crate::exchange`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::Value;
use tokio::net::TcpListener;

use crate::api::status::{ApiError, ApiResult};
use crate::api::{Ctx, Query, discovery, handlers, openapi};
use crate::connections::{ClientSlots, ConnectionLimits};
use crate::exchange::{Body, Caller, Req, bytes_response, error_response, json_response};

/// Request bodies above this size get 413 (kube-apiserver's limit).
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// Accept TLS connections until `shutdown` flips, within `limits` (crate::connections).
pub async fn serve(
    ctx: Arc<Ctx>,
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    limits: ConnectionLimits,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(ClientSlots::default());
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = crate::api::stopped(&mut shutdown) => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                continue;
            }
        };
        let Some(slot) = slots.acquire(peer.ip(), limits.max_per_client) else {
            // Closed at once: the client sees a reset, not a hang.
            tracing::warn!(
                client = %peer.ip(),
                max = limits.max_per_client,
                "connection refused: too many open connections from this address"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let ctx_stop = ctx.shutdown.clone();
        let acceptor = acceptor.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let stream =
                match tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream)).await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(client = %peer.ip(), "TLS handshake timed out");
                        return;
                    }
                };
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(handle(ctx, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            let mut stop = ctx_stop;
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = crate::api::stopped(&mut stop) => {
                    // Finish the request in flight (watches end on shutdown), then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}

fn caller(ctx: &Ctx, req: &Request<Incoming>) -> Result<Caller, ApiError> {
    let unauthorized = || ApiError::new(401, "Unauthorized", "Unauthorized");
    let authenticated = bearer(ctx, req).ok_or_else(unauthorized)?;
    let headers = req.headers();
    let user = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let groups: Vec<String> = headers
        .get_all("impersonate-group")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let Some(user) = user else {
        if groups.is_empty() {
            return Ok(authenticated);
        }
        return Err(ApiError::bad_request(format!(
            "requested {groups:?} without impersonating a user"
        )));
    };
    // Only the admin may impersonate (kube-apiserver would ask RBAC for the `impersonate`
    // verb; no ServiceAccount here needs it).
    match &authenticated {
        Caller::Admin => Ok(Caller::Impersonated(crate::rbac::User::impersonated(
            &user, groups,
        ))),
        other => Err(crate::api::authz::impersonation_forbidden(
            &other.user().map(|u| u.name).unwrap_or_default(),
            &user,
        )),
    }
}

fn bearer(ctx: &Ctx, req: &Request<Incoming>) -> Option<Caller> {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())?
        .strip_prefix("Bearer ")?;
    // Constant-time comparison: the token is the only secret.
    if bool::from(subtle::ConstantTimeEq::ct_eq(
        token.as_bytes(),
        ctx.token.as_bytes(),
    )) {
        return Some(Caller::Admin);
    }
    let claims = ctx.signer.verify(token, crate::util::unix_now())?;
    if let Some((_, uid)) = &claims.pod
        && !ctx.store.uid_exists(uid)
    {
        return None;
    }
    // The account must still be the one the token was issued for: deleting (or recreating) a
    // ServiceAccount revokes its tokens. A token without the uid (issued before it was recorded)
    // needs an account of that name.
    let account = crate::storage::Key {
        resource: "/serviceaccounts".into(),
        namespace: claims.namespace.clone(),
        name: claims.service_account.clone(),
    };
    let live = match &claims.service_account_uid {
        Some(uid) => ctx.store.key_of_uid(uid).as_ref() == Some(&account),
        None => ctx.store.get(&account).is_some(),
    };
    live.then_some(Caller::ServiceAccount(claims))
}

async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>) -> Response<Body> {
    let caller = match caller(&ctx, &req) {
        Ok(c) => c,
        Err(e) => return error_response(&e),
    };
    let header = |name: header::HeaderName| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let accept = header(header::ACCEPT);
    let content_type = header(header::CONTENT_TYPE);
    let user_agent = header(header::USER_AGENT);
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let body = match read_body(req.into_body()).await {
        Ok(b) => b,
        Err(e) => return error_response(&e),
    };
    let req = Req {
        method,
        path,
        query,
        accept,
        content_type,
        user_agent,
        body,
        caller,
    };
    match route(&ctx, &req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

/// Bodies beyond this are not even drained: the connection is dropped.
const MAX_DRAIN: usize = 64 * 1024 * 1024;

/// Read the request body; over [`MAX_BODY`] answers 413 after draining the rest (up to
/// [`MAX_DRAIN`]), so the client finishes sending and reads the Status instead of a reset.
async fn read_body(mut body: Incoming) -> ApiResult<Bytes> {
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if total > MAX_DRAIN {
                break;
            }
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {MAX_BODY}"),
        ));
    }
    Ok(buf.freeze())
}

async fn route(ctx: &Arc<Ctx>, req: &Req) -> ApiResult<Response<Body>> {
    let segs: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let catalog = ctx.registry.catalog();
    let get_only = |r: Response<Body>| {
        if req.method == Method::GET {
            Ok(r)
        } else {
            Err(ApiError::method_not_allowed(req.method.as_str(), &req.path))
        }
    };
    match segs.as_slice() {
        ["version"] => get_only(json_response(200, &discovery::version())),
        ["healthz" | "livez" | "readyz"] => {
            get_only(bytes_response(200, "text/plain", Bytes::from_static(b"ok")))
        }
        ["api"] => get_only(match discovery::wants_aggregated(&req.accept) {
            Some(v) => aggregated(&discovery::aggregated(&catalog, true, v), v),
            None => json_response(200, &discovery::api_versions(&ctx_addr(ctx))),
        }),
        ["apis"] => get_only(match discovery::wants_aggregated(&req.accept) {
            Some(v) => aggregated(&discovery::aggregated(&catalog, false, v), v),
            None => json_response(200, &discovery::api_group_list(&catalog)),
        }),
        ["api", "v1"] => discovery::api_resource_list(&catalog, "", "v1")
            .map(|v| json_response(200, &v))
            .ok_or_else(ApiError::path_not_found),
        ["apis", group] => discovery::api_group(&catalog, group)
            .map(|v| json_response(200, &v))
            .ok_or_else(ApiError::path_not_found),
        ["apis", group, version] => discovery::api_resource_list(&catalog, group, version)
            .map(|v| json_response(200, &v))
            .ok_or_else(ApiError::path_not_found),
        // Protobuf (what kubectl asks for) is served as an empty document: kubectl then skips
        // client-side validation (reference §1.3 PROBE) and the server validates fields. JSON
        // clients get the schemas.
        ["openapi", "v2"] if req.accept.contains("protobuf") => get_only(bytes_response(
            200,
            "application/octet-stream",
            Bytes::new(),
        )),
        ["openapi", "v2"] => get_only(json_response(200, &openapi::v2(&catalog, &crd_values(ctx)))),
        ["openapi", "v3"] => get_only(json_response(
            200,
            &openapi::v3_root(&catalog, &crd_values(ctx)),
        )),
        ["openapi", "v3", "api", version] => openapi_v3(ctx, &catalog, "", version, req),
        ["openapi", "v3", "apis", group, version] => openapi_v3(ctx, &catalog, group, version, req),
        ["api", "v1", rest @ ..] => handlers::resource(ctx, &catalog, "", "v1", rest, req).await,
        ["apis", group, version, rest @ ..] => {
            handlers::resource(ctx, &catalog, group, version, rest, req).await
        }
        _ => Err(ApiError::path_not_found()),
    }
}

fn crd_values(ctx: &Ctx) -> Vec<Value> {
    ctx.crds().iter().map(|c| c.value.clone()).collect()
}

fn openapi_v3(
    ctx: &Ctx,
    catalog: &crate::registry::Catalog,
    group: &str,
    version: &str,
    req: &Req,
) -> ApiResult<Response<Body>> {
    if req.method != Method::GET {
        return Err(ApiError::method_not_allowed(req.method.as_str(), &req.path));
    }
    let (bytes, _) = openapi::v3_document_bytes(catalog, &crd_values(ctx), group, version)
        .ok_or_else(ApiError::path_not_found)?;
    Ok(bytes_response(200, "application/json", Bytes::from(bytes)))
}

fn aggregated(doc: &Value, version: &str) -> Response<Body> {
    let ct = if version == "v2" {
        discovery::AGGREGATED_CONTENT_TYPE.to_string()
    } else {
        discovery::AGGREGATED_CONTENT_TYPE.replace("v=v2", "v=v2beta1")
    };
    bytes_response(
        200,
        &ct,
        Bytes::from(serde_json::to_vec(doc).unwrap_or_default()),
    )
}

fn ctx_addr(ctx: &Ctx) -> String {
    let _ = ctx;
    "127.0.0.1".to_string()
}

/// Bind the loopback listener.
pub async fn bind(port: u16) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}
