//! The route table: Fission's gorilla/mux router, rebuilt from HTTPTriggers and Functions.
//!
//! [`RouteTable::build`] is pure: give it the triggers and functions a cache holds, swap the
//! result in atomically (an `Arc`), and resolve each request with [`RouteTable::resolve`].
//! Registration order follows Fission's `getRouter` (reference/fission.md §4.1):
//!
//! 1. user triggers, oldest first (Fission: informer order, which is unspecified);
//!    a prefix `p` ending in `/` is one `PathPrefix(p)` route, any other prefix is `Handle(p)`
//!    then `PathPrefix(p + "/")`; otherwise `Handle(relativeurl)`; methods and host apply;
//! 2. `GET /` answering 200, unless a trigger owns exactly `GET /` (no `prefix` field);
//! 3. the internal routes `/fission-function/[<ns>/]<name>[/...]` (only on the public listener
//!    when [`RouteTableOptions::internal_routes_on_public`] is set; they are always served on the
//!    internal listener);
//! 4. `GET /router-healthz` and `GET /_version`.
//!
//! The first route whose path, host and method match wins. If none does but some matched path and
//! host, the answer is 405 with `Allow`; otherwise 404. Like mux, a path that is not clean
//! (`//a`, `/a/../b`) is redirected (301) to its cleaned form first.

mod conflicts;
mod template;
#[cfg(test)]
pub(crate) mod test_support;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use hyper::http::{Method, request};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rivulet_api::common::function_reference_type;
use rivulet_api::{Function, HTTPTrigger};

use conflicts::{RouteClaim, age_order, route_claim, trigger_host};
pub use conflicts::{RouteConflict, detect_conflicts};
use template::{MatchKind, PathTemplate};

use crate::headers::{FunctionHeaders, PathParam};
use crate::rng::WeightRng;
use crate::urlpath::{clean_path, escape_path, unescape_path};

/// Path prefix of the internal routes.
pub const INTERNAL_PREFIX: &str = "/fission-function";
/// The namespace whose functions have the short internal URL `/fission-function/<name>`.
pub const DEFAULT_NAMESPACE: &str = "default";

/// Namespace and name of an object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Namespace (`default` when the object has none).
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectKey {
    /// The key of an object's metadata.
    pub fn of(meta: &ObjectMeta) -> Self {
        Self {
            namespace: meta
                .namespace
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name: meta.name.clone().unwrap_or_default(),
        }
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Fission's `utils.UrlForFunction`: `/fission-function/<name>` in `default`,
/// `/fission-function/<namespace>/<name>` elsewhere.
pub fn internal_url(namespace: &str, name: &str) -> String {
    if namespace == DEFAULT_NAMESPACE {
        format!("{INTERNAL_PREFIX}/{name}")
    } else {
        format!("{INTERNAL_PREFIX}/{namespace}/{name}")
    }
}

/// A function requests can be routed to, with what the request path needs precomputed.
#[derive(Debug)]
pub struct FunctionTarget {
    /// Namespace and name.
    pub key: ObjectKey,
    /// `metadata.uid`.
    pub uid: String,
    /// `metadata.resourceVersion`.
    pub resource_version: String,
    /// The whole object (executor type, timeouts, limits, package...).
    pub function: Arc<Function>,
    /// `X-Fission-Function-*` values.
    pub headers: FunctionHeaders,
    internal_url: String,
}

impl FunctionTarget {
    /// Target for a function object.
    pub fn new(function: Arc<Function>) -> Self {
        let key = ObjectKey::of(&function.metadata);
        let uid = function.metadata.uid.clone().unwrap_or_default();
        let resource_version = function
            .metadata
            .resource_version
            .clone()
            .unwrap_or_default();
        Self {
            headers: FunctionHeaders::new(&key.namespace, &key.name, &uid, &resource_version),
            internal_url: internal_url(&key.namespace, &key.name),
            key,
            uid,
            resource_version,
            function,
        }
    }
}

/// Which functions a trigger sends requests to.
#[derive(Debug)]
enum Backends {
    Single(Arc<FunctionTarget>),
    /// Cumulative weights in function-name order; `total` is their sum.
    Weighted {
        cumulative: Vec<(u32, Arc<FunctionTarget>)>,
        total: u32,
    },
}

impl Backends {
    /// Weighted choice: uniform `r` in `0..total`, the first function whose cumulative weight
    /// exceeds `r`. A weight of 0 is never chosen; all-zero weights choose the first function
    /// (Fission draws `0..=total`, which gives weight 0 a chance; see docs/router.md).
    fn pick(&self, rng: &mut impl WeightRng) -> &Arc<FunctionTarget> {
        match self {
            Self::Single(f) => f,
            Self::Weighted { cumulative, total } => {
                let first = &cumulative[0].1;
                if *total == 0 {
                    return first;
                }
                let r = rng.below(*total);
                cumulative
                    .iter()
                    .find(|(cum, _)| *cum > r)
                    .map_or(first, |(_, f)| f)
            }
        }
    }
}

/// A routed trigger.
#[derive(Debug)]
struct TriggerRoute {
    key: ObjectKey,
    backends: Backends,
    /// Non-empty `prefix`, trimmed from the upstream path unless `keep_prefix`.
    prefix: Option<String>,
    keep_prefix: bool,
}

/// Requests the router answers itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    /// `GET /`: 200 with an empty body (ingress health checks).
    Home,
    /// `GET /router-healthz`: 200.
    Healthz,
    /// `GET /_version`: build information.
    Version,
}

#[derive(Debug)]
enum Target {
    Trigger(Arc<TriggerRoute>),
    Builtin(Builtin),
    /// The whole block of internal routes, at its place in the order.
    Internal,
}

#[derive(Debug)]
struct Route {
    path: Option<PathTemplate>,
    /// `None`: every method.
    methods: Option<Vec<Method>>,
    host: Option<String>,
    target: Target,
}

impl Route {
    fn builtin(path: &str, builtin: Builtin) -> Self {
        Self {
            path: PathTemplate::parse(path, MatchKind::Exact).ok(),
            methods: Some(vec![Method::GET]),
            host: None,
            target: Target::Builtin(builtin),
        }
    }
}

/// Functions by internal URL.
#[derive(Debug, Default)]
struct InternalRoutes {
    default_namespace: HashMap<String, Arc<FunctionTarget>>,
    namespaced: HashMap<String, HashMap<String, Arc<FunctionTarget>>>,
}

impl InternalRoutes {
    /// The function whose internal route matches. When both a `default` function `a` (prefix
    /// `/fission-function/a/`) and a function `b` in namespace `a` match
    /// `/fission-function/a/b...`, the namespaced one wins (Fission: informer order).
    fn lookup(&self, path: &str) -> Option<&Arc<FunctionTarget>> {
        let rest = path.strip_prefix(INTERNAL_PREFIX)?.strip_prefix('/')?;
        let (first, after) = match rest.split_once('/') {
            Some((first, after)) => (first, Some(after)),
            None => (rest, None),
        };
        if first != DEFAULT_NAMESPACE
            && let Some(after) = after
        {
            let second = after.split_once('/').map_or(after, |(s, _)| s);
            if let Some(f) = self.namespaced.get(first).and_then(|m| m.get(second)) {
                return Some(f);
            }
        }
        self.default_namespace.get(first)
    }
}

/// Why a trigger is not routed (reported in its status by the httptrigger reconciler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteIssue {
    /// An older trigger owns the same route.
    Conflict(RouteConflict),
    /// A referenced function does not exist in the trigger's namespace.
    MissingFunction {
        /// The trigger.
        trigger: ObjectKey,
        /// The missing function's name.
        function: String,
    },
    /// `functionref` cannot be resolved (unknown type, no name, no weights).
    InvalidReference {
        /// The trigger.
        trigger: ObjectKey,
        /// What is wrong.
        message: String,
    },
    /// Neither `relativeurl` nor a non-empty `prefix`.
    NoPath {
        /// The trigger.
        trigger: ObjectKey,
    },
    /// The path template does not compile (mux's message).
    InvalidPath {
        /// The trigger.
        trigger: ObjectKey,
        /// mux's error message.
        message: String,
    },
    /// A method that is not an HTTP method token.
    InvalidMethod {
        /// The trigger.
        trigger: ObjectKey,
        /// The method.
        method: String,
    },
}

impl RouteIssue {
    /// The trigger the issue is about.
    pub fn trigger(&self) -> &ObjectKey {
        match self {
            Self::Conflict(c) => &c.trigger,
            Self::MissingFunction { trigger, .. }
            | Self::InvalidReference { trigger, .. }
            | Self::NoPath { trigger }
            | Self::InvalidPath { trigger, .. }
            | Self::InvalidMethod { trigger, .. } => trigger,
        }
    }
}

impl fmt::Display for RouteIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Conflict(c) => write!(
                f,
                "route conflicts with older HTTPTrigger {} (same host, URL and method)",
                c.conflicts_with
            ),
            Self::MissingFunction { trigger, function } => write!(
                f,
                "function {function:?} not found in namespace {:?}",
                trigger.namespace
            ),
            Self::InvalidReference { message, .. } | Self::InvalidPath { message, .. } => {
                f.write_str(message)
            }
            Self::NoPath { .. } => f.write_str("neither relativeurl nor a non-empty prefix is set"),
            Self::InvalidMethod { method, .. } => write!(f, "invalid HTTP method {method:?}"),
        }
    }
}

/// Build options.
#[derive(Debug, Clone, Copy, Default)]
pub struct RouteTableOptions {
    /// Also serve `/fission-function/...` on the public listener, at Fission's place in the
    /// order (after the triggers and `GET /`). Off by default: internal routes are served on the
    /// internal listener (ARCHITECTURE §5).
    pub internal_routes_on_public: bool,
}

/// Which listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// User traffic: triggers and the router's own endpoints.
    Public,
    /// Deliveries from timers and watchers: `/fission-function/...` only.
    Internal,
}

/// What a request is, for matching.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// Request method (matched case-sensitively, as Go does).
    pub method: &'a Method,
    /// Request host (`Host` header or absolute-form authority), with any port.
    pub host: Option<&'a str>,
    /// Path as received (still percent-encoded).
    pub path: &'a str,
    /// Raw query string, without `?`.
    pub query: Option<&'a str>,
}

impl<'a> RequestInfo<'a> {
    /// Matching input of a request.
    pub fn from_parts(parts: &'a request::Parts) -> Self {
        Self {
            method: &parts.method,
            host: crate::headers::request_host(parts),
            path: parts.uri.path(),
            query: parts.uri.query(),
        }
    }
}

/// A request routed to a function.
#[derive(Debug)]
pub struct FunctionMatch<'t> {
    /// The function chosen (for weighted triggers, the one drawn for this request).
    pub function: &'t Arc<FunctionTarget>,
    /// The trigger that matched; `None` for internal routes.
    pub trigger: Option<&'t ObjectKey>,
    /// Path and query to send to the function (Fission §4.2: `/` for exact triggers, the path
    /// with the prefix trimmed for prefix triggers, the rest after the internal URL).
    pub upstream_path_and_query: String,
    /// Route variables, forwarded as `X-Fission-Params-<name>`.
    pub params: Vec<PathParam<'t>>,
}

/// The outcome of matching a request.
#[derive(Debug)]
pub enum Resolution<'t> {
    /// Proxy to a function.
    Function(FunctionMatch<'t>),
    /// Answer from the router itself.
    Builtin(Builtin),
    /// 301 to the cleaned path (mux's `cleanPath`).
    Redirect {
        /// `Location` value.
        location: String,
    },
    /// 405: the path (and host) matched routes, none with this method.
    MethodNotAllowed {
        /// `Allow` value: the methods of those routes, comma separated.
        allow: String,
    },
    /// 404.
    NotFound,
    /// 400: the path has a malformed percent-escape (Go's server refuses it).
    BadRequest,
}

/// An immutable route table; rebuild and swap on any trigger or function change.
#[derive(Debug, Default)]
pub struct RouteTable {
    public: Vec<Route>,
    internal: InternalRoutes,
    issues: Vec<RouteIssue>,
}

impl RouteTable {
    /// Builds the table from every HTTPTrigger and Function the router sees. Triggers that
    /// cannot be routed are left out and listed in [`RouteTable::issues`].
    pub fn build(
        triggers: &[HTTPTrigger],
        functions: &[Function],
        options: RouteTableOptions,
    ) -> Self {
        let mut by_key: HashMap<(&str, &str), Arc<FunctionTarget>> = HashMap::new();
        let mut internal = InternalRoutes::default();
        for function in functions {
            let target = Arc::new(FunctionTarget::new(Arc::new(function.clone())));
            if target.key.namespace == DEFAULT_NAMESPACE {
                internal
                    .default_namespace
                    .insert(target.key.name.clone(), target.clone());
            } else {
                internal
                    .namespaced
                    .entry(target.key.namespace.clone())
                    .or_default()
                    .insert(target.key.name.clone(), target.clone());
            }
            let namespace = function
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_NAMESPACE);
            let name = function.metadata.name.as_deref().unwrap_or_default();
            by_key.insert((namespace, name), target);
        }

        let mut issues: Vec<RouteIssue> = Vec::new();
        let conflicts = detect_conflicts(triggers);
        let mut ordered: Vec<&HTTPTrigger> = triggers.iter().collect();
        ordered.sort_by(|a, b| age_order(a, b));

        let mut public = Vec::new();
        let mut home_handled = false;
        for trigger in ordered {
            let key = ObjectKey::of(&trigger.metadata);
            if let Some(conflict) = conflicts.iter().find(|c| c.trigger == key) {
                issues.push(RouteIssue::Conflict(conflict.clone()));
                continue;
            }
            match trigger_routes(trigger, key, &by_key) {
                Ok(routes) => {
                    let methods = trigger.spec.effective_methods();
                    if trigger.spec.prefix.is_none()
                        && trigger.spec.relativeurl.as_deref() == Some("/")
                        && methods == ["GET"]
                    {
                        home_handled = true;
                    }
                    public.extend(routes);
                }
                Err(issue) => issues.push(issue),
            }
        }
        if !home_handled {
            public.push(Route::builtin("/", Builtin::Home));
        }
        if options.internal_routes_on_public {
            public.push(Route {
                path: None,
                methods: None,
                host: None,
                target: Target::Internal,
            });
        }
        public.push(Route::builtin("/router-healthz", Builtin::Healthz));
        public.push(Route::builtin("/_version", Builtin::Version));
        Self {
            public,
            internal,
            issues,
        }
    }

    /// Triggers left out of the table, and why.
    pub fn issues(&self) -> &[RouteIssue] {
        &self.issues
    }

    /// Matches a request. `rng` draws the function of weighted triggers.
    pub fn resolve<'t>(
        &'t self,
        listener: Listener,
        request: &RequestInfo<'_>,
        rng: &mut impl WeightRng,
    ) -> Resolution<'t> {
        let Ok(decoded) = unescape_path(request.path) else {
            return Resolution::BadRequest;
        };
        let cleaned = clean_path(&decoded);
        if cleaned != decoded {
            let mut location = escape_path(&cleaned).into_owned();
            if let Some(query) = request.query.filter(|q| !q.is_empty()) {
                location.push('?');
                location.push_str(query);
            }
            return Resolution::Redirect { location };
        }
        let path: &str = &decoded;

        if listener == Listener::Internal {
            return match self.internal.lookup(path) {
                Some(function) => {
                    Resolution::Function(Self::internal_match(function, path, request))
                }
                None => Resolution::NotFound,
            };
        }

        // mux's `Host` matcher ignores the request's port when the template has none.
        let host = request
            .host
            .map(|h| h.split_once(':').map_or(h, |(name, _)| name));
        let mut allow: Vec<&Method> = Vec::new();
        for route in &self.public {
            let internal_function = if let Target::Internal = route.target {
                match self.internal.lookup(path) {
                    Some(f) => Some(f),
                    None => continue,
                }
            } else {
                if !route.path.as_ref().is_some_and(|p| p.is_match(path)) {
                    continue;
                }
                None
            };
            if let Some(want) = &route.host
                && !host.is_some_and(|h| h.eq_ignore_ascii_case(want))
            {
                continue;
            }
            if let Some(methods) = &route.methods
                && !methods.contains(request.method)
            {
                for m in methods {
                    if !allow.contains(&m) {
                        allow.push(m);
                    }
                }
                continue;
            }
            return match &route.target {
                Target::Builtin(b) => Resolution::Builtin(*b),
                Target::Internal => match internal_function {
                    Some(f) => Resolution::Function(Self::internal_match(f, path, request)),
                    None => Resolution::NotFound,
                },
                Target::Trigger(trigger) => {
                    let function = trigger.backends.pick(rng);
                    let params = route
                        .path
                        .as_ref()
                        .map(|p| params(p, path))
                        .unwrap_or_default();
                    let upstream = upstream_path(
                        path,
                        request,
                        trigger.prefix.as_deref().map(|p| (p, trigger.keep_prefix)),
                        &function.internal_url,
                    );
                    Resolution::Function(FunctionMatch {
                        function,
                        trigger: Some(&trigger.key),
                        upstream_path_and_query: upstream,
                        params,
                    })
                }
            };
        }
        if allow.is_empty() {
            Resolution::NotFound
        } else {
            let allow: Vec<&str> = allow.iter().map(|m| m.as_str()).collect();
            Resolution::MethodNotAllowed {
                allow: allow.join(", "),
            }
        }
    }

    fn internal_match<'t>(
        function: &'t Arc<FunctionTarget>,
        path: &str,
        request: &RequestInfo<'_>,
    ) -> FunctionMatch<'t> {
        FunctionMatch {
            function,
            trigger: None,
            upstream_path_and_query: upstream_path(path, request, None, &function.internal_url),
            params: Vec::new(),
        }
    }
}

/// The routes of one trigger, or why it has none.
fn trigger_routes(
    trigger: &HTTPTrigger,
    key: ObjectKey,
    functions: &HashMap<(&str, &str), Arc<FunctionTarget>>,
) -> Result<Vec<Route>, RouteIssue> {
    let backends = resolve_backends(trigger, &key, functions)?;
    let methods = trigger.spec.effective_methods();
    let methods = if methods.is_empty() {
        None
    } else {
        let mut parsed = Vec::with_capacity(methods.len());
        for m in methods {
            match Method::from_bytes(m.to_ascii_uppercase().as_bytes()) {
                Ok(method) => parsed.push(method),
                Err(_) => {
                    return Err(RouteIssue::InvalidMethod {
                        trigger: key,
                        method: m,
                    });
                }
            }
        }
        Some(parsed)
    };
    let host = trigger_host(trigger).map(str::to_owned);
    let Some(claim) = route_claim(trigger) else {
        return Err(RouteIssue::NoPath { trigger: key });
    };
    let templates = match claim {
        RouteClaim::Exact(url) => vec![PathTemplate::parse(url, MatchKind::Exact)],
        RouteClaim::Prefix(prefix) if prefix.ends_with('/') => {
            vec![PathTemplate::parse(prefix, MatchKind::Prefix)]
        }
        RouteClaim::Prefix(prefix) => vec![
            PathTemplate::parse(prefix, MatchKind::Exact),
            PathTemplate::parse(&format!("{prefix}/"), MatchKind::Prefix),
        ],
    };
    let templates = templates
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .map_err(|message| RouteIssue::InvalidPath {
            trigger: key.clone(),
            message,
        })?;
    let prefix = match claim {
        RouteClaim::Prefix(p) => Some(p.to_owned()),
        RouteClaim::Exact(_) => None,
    };
    let route = Arc::new(TriggerRoute {
        key,
        backends,
        prefix,
        keep_prefix: trigger.spec.keep_prefix.unwrap_or(false),
    });
    Ok(templates
        .into_iter()
        .map(|path| Route {
            path: Some(path),
            methods: methods.clone(),
            host: host.clone(),
            target: Target::Trigger(route.clone()),
        })
        .collect())
}

/// Fission's `functionReferenceResolver`: functions are looked up in the trigger's namespace;
/// any missing function leaves the trigger unrouted.
fn resolve_backends(
    trigger: &HTTPTrigger,
    key: &ObjectKey,
    functions: &HashMap<(&str, &str), Arc<FunctionTarget>>,
) -> Result<Backends, RouteIssue> {
    let reference = &trigger.spec.functionref;
    let find = |name: &str| {
        functions
            .get(&(key.namespace.as_str(), name))
            .cloned()
            .ok_or_else(|| RouteIssue::MissingFunction {
                trigger: key.clone(),
                function: name.to_owned(),
            })
    };
    let invalid = |message: &str| RouteIssue::InvalidReference {
        trigger: key.clone(),
        message: message.to_owned(),
    };
    match reference.reference_type.as_str() {
        function_reference_type::NAME => {
            let name = reference.name.as_deref().filter(|n| !n.is_empty());
            Ok(Backends::Single(find(
                name.ok_or_else(|| invalid("functionref.name is empty"))?,
            )?))
        }
        function_reference_type::FUNCTION_WEIGHTS => {
            let weights = reference.functionweights.as_ref().filter(|w| !w.is_empty());
            let weights = weights.ok_or_else(|| invalid("functionref.functionweights is empty"))?;
            let mut cumulative = Vec::with_capacity(weights.len());
            let mut total = 0u32;
            for (name, weight) in weights {
                total = total.saturating_add(u32::try_from(*weight).unwrap_or(0));
                cumulative.push((total, find(name)?));
            }
            Ok(Backends::Weighted { cumulative, total })
        }
        other => Err(invalid(&format!("unknown functionref.type {other:?}"))),
    }
}

/// Route variables of a matching path; a repeated name keeps its last value (Go map semantics).
fn params<'t>(template: &'t PathTemplate, path: &str) -> Vec<PathParam<'t>> {
    if template.vars.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<PathParam<'t>> = Vec::with_capacity(template.vars.len());
    for (var, value) in template.vars.iter().zip(template.values(path)) {
        if let Some(existing) = out.iter_mut().find(|p| p.name == var.name) {
            value.clone_into(&mut existing.value);
        } else {
            out.push(PathParam {
                name: &var.name,
                header: var.header.as_ref(),
                value: value.to_owned(),
            });
        }
    }
    out
}

/// The path and query a function receives (Fission `RetryingRoundTripper.RoundTrip`): a trigger
/// prefix is trimmed unless kept; otherwise the function's own internal URL is trimmed when the
/// path starts with it; otherwise the path is `/`. A leading `/` is ensured and the query kept.
/// An untouched path is sent as received; a rewritten one is re-escaped as Go does.
fn upstream_path(
    decoded: &str,
    request: &RequestInfo<'_>,
    prefix: Option<(&str, bool)>,
    function_url: &str,
) -> String {
    let trimmed: &str = match prefix {
        Some((_, true)) => decoded,
        Some((prefix, false)) => decoded.strip_prefix(prefix).unwrap_or(decoded),
        None => match decoded.strip_prefix(function_url) {
            Some(rest) => rest,
            None => "/",
        },
    };
    let query = request.query.filter(|q| !q.is_empty());
    let mut out = String::with_capacity(trimmed.len() + 1 + query.map_or(0, |q| q.len() + 1));
    if trimmed == decoded {
        out.push_str(request.path);
    } else {
        if !trimmed.starts_with('/') {
            out.push('/');
        }
        out.push_str(&escape_path(trimmed));
    }
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests;
