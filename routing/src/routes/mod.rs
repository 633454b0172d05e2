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

use http::{Method, request};
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
mod tests {
    use super::test_support::{function, trigger};
    use super::*;
    use crate::rng::SplitMix64;

    fn table(triggers: &[HTTPTrigger], functions: &[Function]) -> RouteTable {
        RouteTable::build(triggers, functions, RouteTableOptions::default())
    }

    fn fns(names: &[&str]) -> Vec<Function> {
        names.iter().map(|n| function("default", n)).collect()
    }

    /// Resolves `method host path?query` on the public listener.
    fn go<'t>(t: &'t RouteTable, method: &str, host: Option<&str>, target: &str) -> Resolution<'t> {
        go_on(t, Listener::Public, method, host, target)
    }

    fn go_on<'t>(
        t: &'t RouteTable,
        listener: Listener,
        method: &str,
        host: Option<&str>,
        target: &str,
    ) -> Resolution<'t> {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        let req = RequestInfo {
            method: &method,
            host,
            path,
            query,
        };
        t.resolve(listener, &req, &mut SplitMix64::seeded(1))
    }

    /// (function name, upstream path, params) of a function match; panics otherwise.
    fn hit(r: Resolution<'_>) -> (String, String, Vec<(String, String)>) {
        match r {
            Resolution::Function(m) => (
                m.function.key.name.clone(),
                m.upstream_path_and_query,
                m.params
                    .iter()
                    .map(|p| (p.name.to_owned(), p.value.clone()))
                    .collect(),
            ),
            other => panic!("expected a function, got {other:?}"),
        }
    }

    #[test]
    fn exact_url_sends_slash_upstream_with_the_query() {
        let t = table(
            &[trigger("a", 1).url("/hello").methods(&["GET"]).build()],
            &fns(&["fn-a"]),
        );
        let (f, up, params) = hit(go(&t, "GET", None, "/hello?x=1&y"));
        assert_eq!((f.as_str(), up.as_str()), ("fn-a", "/?x=1&y"));
        assert!(params.is_empty());
        assert!(matches!(
            go(&t, "GET", None, "/hello/"),
            Resolution::NotFound
        ));
        assert!(matches!(
            go(&t, "GET", None, "/hellox"),
            Resolution::NotFound
        ));
    }

    #[test]
    fn template_variables_become_params() {
        let t = table(
            &[trigger("a", 1)
                .url("/users/{userID}/files/{path:.*}")
                .methods(&["GET"])
                .build()],
            &fns(&["fn-a"]),
        );
        let (_, up, params) = hit(go(&t, "GET", None, "/users/7/files/a/b%20c"));
        assert_eq!(up, "/");
        assert_eq!(
            params,
            vec![
                ("userID".into(), "7".into()),
                ("path".into(), "a/b c".into())
            ]
        );
        let Resolution::Function(m) = go(&t, "GET", None, "/users/7/files/x") else {
            panic!()
        };
        assert_eq!(m.params[0].header.unwrap(), "x-fission-params-userid");
    }

    #[test]
    fn repeated_variable_names_keep_the_last_value() {
        let t = table(
            &[trigger("a", 1).url("/{id}/{id}").build()],
            &fns(&["fn-a"]),
        );
        let (_, _, params) = hit(go(&t, "GET", None, "/1/2"));
        assert_eq!(params, vec![("id".into(), "2".into())]);
    }

    #[test]
    fn matching_uses_the_decoded_path() {
        let t = table(&[trigger("a", 1).url("/a b/{x}").build()], &fns(&["fn-a"]));
        // Like Go's default mux, %2F decodes to '/', so `{x}` cannot match "c/d".
        assert!(matches!(
            go(&t, "GET", None, "/a%20b/c%2Fd"),
            Resolution::NotFound
        ));
        let (_, _, params) = hit(go(&t, "GET", None, "/a%20b/%C3%A9"));
        assert_eq!(params, vec![("x".into(), "é".into())]);
        assert!(matches!(
            go(&t, "GET", None, "/a%zz"),
            Resolution::BadRequest
        ));
    }

    #[test]
    fn prefix_is_trimmed_unless_kept() {
        let t = table(
            &[
                trigger("a", 1).prefix("/api").methods(&["GET"]).build(),
                trigger("b", 2)
                    .prefix("/keep")
                    .keep_prefix()
                    .methods(&["GET"])
                    .build(),
                trigger("c", 3).prefix("/slash/").methods(&["GET"]).build(),
            ],
            &fns(&["fn-a", "fn-b", "fn-c"]),
        );
        let up = |target| hit(go(&t, "GET", None, target)).1;
        assert_eq!(up("/api"), "/");
        assert_eq!(up("/api/"), "/");
        assert_eq!(up("/api/v1/items?q=1"), "/v1/items?q=1");
        assert_eq!(up("/keep/x%20y?q"), "/keep/x%20y?q");
        assert_eq!(up("/slash/x"), "/x");
        assert_eq!(up("/slash/"), "/");
        // `/api` is Handle("/api") + PathPrefix("/api/"): "/apix" is not under it.
        assert!(matches!(go(&t, "GET", None, "/apix"), Resolution::NotFound));
        // A prefix ending in '/' is only PathPrefix: "/slash" does not match.
        assert!(matches!(
            go(&t, "GET", None, "/slash"),
            Resolution::NotFound
        ));
    }

    #[test]
    fn rewritten_paths_are_re_escaped_like_go() {
        let t = table(&[trigger("a", 1).prefix("/api").build()], &fns(&["fn-a"]));
        assert_eq!(hit(go(&t, "GET", None, "/api/a%20b")).1, "/a%20b");
        assert_eq!(hit(go(&t, "GET", None, "/api/caf%C3%A9")).1, "/caf%C3%A9");
        assert_eq!(hit(go(&t, "GET", None, "/api/a%2Fb")).1, "/a/b");
    }

    #[test]
    fn prefix_wins_over_relativeurl_and_empty_prefix_is_ignored() {
        let t = table(
            &[
                trigger("a", 1).url("/exact").prefix("/pre").build(),
                trigger("b", 2).url("/other").prefix("").build(),
            ],
            &fns(&["fn-a", "fn-b"]),
        );
        assert_eq!(hit(go(&t, "GET", None, "/pre/x")).0, "fn-a");
        assert!(matches!(
            go(&t, "GET", None, "/exact"),
            Resolution::NotFound
        ));
        assert_eq!(hit(go(&t, "GET", None, "/other")).0, "fn-b");
    }

    #[test]
    fn methods_give_405_with_allow() {
        let t = table(
            &[
                trigger("a", 1).url("/x").methods(&["GET", "POST"]).build(),
                trigger("b", 2)
                    .url("/x")
                    .methods(&["PUT"])
                    .method("DELETE")
                    .build(),
            ],
            &fns(&["fn-a", "fn-b"]),
        );
        assert_eq!(hit(go(&t, "POST", None, "/x")).0, "fn-a");
        assert_eq!(hit(go(&t, "DELETE", None, "/x")).0, "fn-b");
        match go(&t, "PATCH", None, "/x") {
            Resolution::MethodNotAllowed { allow } => assert_eq!(allow, "GET, POST, PUT, DELETE"),
            other => panic!("{other:?}"),
        }
        // HEAD is not GET for mux.
        assert!(matches!(
            go(&t, "HEAD", None, "/x"),
            Resolution::MethodNotAllowed { .. }
        ));
        assert!(matches!(go(&t, "PATCH", None, "/y"), Resolution::NotFound));
    }

    #[test]
    fn no_methods_means_every_method() {
        let t = table(&[trigger("a", 1).url("/any").build()], &fns(&["fn-a"]));
        for m in ["GET", "POST", "OPTIONS", "BREW"] {
            assert_eq!(hit(go(&t, m, None, "/any")).0, "fn-a", "{m}");
        }
    }

    #[test]
    fn host_matching_ignores_the_port_and_case() {
        let t = table(
            &[
                trigger("a", 1).url("/h").host("a.example.com").build(),
                trigger("b", 2).url("/h").host("b.example.com").build(),
            ],
            &fns(&["fn-a", "fn-b"]),
        );
        assert_eq!(
            hit(go(&t, "GET", Some("a.example.com:8888"), "/h")).0,
            "fn-a"
        );
        assert_eq!(hit(go(&t, "GET", Some("B.Example.com"), "/h")).0, "fn-b");
        assert!(matches!(
            go(&t, "GET", Some("c.example.com"), "/h"),
            Resolution::NotFound
        ));
        assert!(matches!(go(&t, "GET", None, "/h"), Resolution::NotFound));
    }

    #[test]
    fn a_host_mismatch_does_not_count_for_405() {
        let t = table(
            &[trigger("a", 1)
                .url("/h")
                .host("a.example")
                .methods(&["POST"])
                .build()],
            &fns(&["fn-a"]),
        );
        assert!(matches!(
            go(&t, "GET", Some("other"), "/h"),
            Resolution::NotFound
        ));
        assert!(matches!(
            go(&t, "GET", Some("a.example"), "/h"),
            Resolution::MethodNotAllowed { .. }
        ));
    }

    #[test]
    fn older_triggers_take_precedence() {
        // Overlapping but not conflicting (different route text): the older one wins.
        let t = table(
            &[
                trigger("new", 5).url("/users/{name}").build(),
                trigger("old", 1).url("/users/{id:[0-9]+}").build(),
            ],
            &fns(&["fn-new", "fn-old"]),
        );
        assert_eq!(hit(go(&t, "GET", None, "/users/42")).0, "fn-old");
        assert_eq!(hit(go(&t, "GET", None, "/users/bob")).0, "fn-new");
    }

    #[test]
    fn conflicting_triggers_are_left_out_and_reported() {
        let t = table(
            &[
                trigger("b", 2).url("/x").methods(&["GET", "POST"]).build(),
                trigger("a", 1).url("/x").methods(&["GET"]).build(),
            ],
            &fns(&["fn-a", "fn-b"]),
        );
        assert_eq!(hit(go(&t, "GET", None, "/x")).0, "fn-a");
        // b is not routed at all, so POST is not served by it.
        assert!(matches!(
            go(&t, "POST", None, "/x"),
            Resolution::MethodNotAllowed { .. }
        ));
        assert_eq!(t.issues().len(), 1);
        assert_eq!(t.issues()[0].trigger().name, "b");
        assert!(t.issues()[0].to_string().contains("default/a"));
    }

    #[test]
    fn unroutable_triggers_are_reported() {
        let mut no_ref = trigger("d", 4).url("/d").build();
        no_ref.spec.functionref.reference_type = "bogus".into();
        let t = table(
            &[
                trigger("a", 1).url("/a").function("missing").build(),
                trigger("b", 2).build(),
                trigger("c", 3).url("/c/{x").build(),
                no_ref,
                trigger("e", 5).url("/e").methods(&["GE T"]).build(),
                trigger("f", 6).url("relative").build(),
                trigger("g", 7)
                    .url("/g")
                    .weights(&[("fn-a", 50), ("gone", 50)])
                    .build(),
            ],
            &fns(&["fn-a", "fn-b", "fn-c", "fn-d", "fn-e", "fn-f"]),
        );
        let issues: Vec<String> = t
            .issues()
            .iter()
            .map(|i| format!("{}: {i}", i.trigger().name))
            .collect();
        assert_eq!(
            issues,
            vec![
                "a: function \"missing\" not found in namespace \"default\"",
                "b: neither relativeurl nor a non-empty prefix is set",
                "c: mux: unbalanced braces in \"/c/{x\"",
                "d: unknown functionref.type \"bogus\"",
                "e: invalid HTTP method \"GE T\"",
                "f: mux: path must start with a slash, got \"relative\"",
                "g: function \"gone\" not found in namespace \"default\"",
            ]
        );
        assert!(matches!(go(&t, "GET", None, "/a"), Resolution::NotFound));
    }

    #[test]
    fn functions_resolve_in_the_trigger_namespace_only() {
        let t = table(
            &[trigger("a", 1)
                .namespace("team")
                .url("/t")
                .function("hello")
                .build()],
            &[function("default", "hello")],
        );
        assert!(matches!(go(&t, "GET", None, "/t"), Resolution::NotFound));
        let t = table(
            &[trigger("a", 1)
                .namespace("team")
                .url("/t")
                .function("hello")
                .build()],
            &[function("default", "hello"), function("team", "hello")],
        );
        let Resolution::Function(m) = go(&t, "GET", None, "/t") else {
            panic!()
        };
        assert_eq!(m.function.key.namespace, "team");
        assert_eq!(m.trigger.unwrap().to_string(), "team/a");
    }

    #[test]
    fn default_home_unless_a_trigger_owns_get_slash() {
        let t = table(&[], &[]);
        assert!(matches!(
            go(&t, "GET", None, "/"),
            Resolution::Builtin(Builtin::Home)
        ));
        assert!(matches!(
            go(&t, "POST", None, "/"),
            Resolution::MethodNotAllowed { .. }
        ));
        assert!(matches!(
            go(&t, "GET", None, "/router-healthz"),
            Resolution::Builtin(Builtin::Healthz)
        ));
        assert!(matches!(
            go(&t, "GET", None, "/_version"),
            Resolution::Builtin(Builtin::Version)
        ));

        // A host-restricted `GET /` trigger still removes the default home (Fission's homeHandled).
        let t = table(
            &[trigger("a", 1)
                .url("/")
                .methods(&["GET"])
                .host("a.example")
                .build()],
            &fns(&["fn-a"]),
        );
        assert!(matches!(
            go(&t, "GET", Some("other"), "/"),
            Resolution::NotFound
        ));
        // With other methods it does not.
        let t = table(
            &[trigger("a", 1)
                .url("/")
                .methods(&["GET", "POST"])
                .host("a.example")
                .build()],
            &fns(&["fn-a"]),
        );
        assert!(matches!(
            go(&t, "GET", Some("other"), "/"),
            Resolution::Builtin(Builtin::Home)
        ));
        // Triggers come first: a trigger can shadow the router's own endpoints, as in Fission.
        let t = table(
            &[trigger("a", 1).url("/router-healthz").build()],
            &fns(&["fn-a"]),
        );
        assert_eq!(hit(go(&t, "GET", None, "/router-healthz")).0, "fn-a");
    }

    #[test]
    fn unclean_paths_redirect_like_mux() {
        let t = table(&[trigger("a", 1).url("/hello").build()], &fns(&["fn-a"]));
        for (target, want) in [
            ("//hello", "/hello"),
            ("/x/../hello?q=1", "/hello?q=1"),
            ("/./hello/", "/hello/"),
            ("/a b/../c%20d", "/c%20d"),
        ] {
            match go(&t, "GET", None, target) {
                Resolution::Redirect { location } => assert_eq!(location, want, "{target}"),
                other => panic!("{target}: {other:?}"),
            }
        }
    }

    #[test]
    fn internal_routes_follow_fission_urls() {
        let t = table(
            &[],
            &[
                function("default", "hello"),
                function("team", "calc"),
                function("default", "team"),
            ],
        );
        let internal = |target| go_on(&t, Listener::Internal, "POST", None, target);
        let (f, up, _) = hit(internal("/fission-function/hello"));
        assert_eq!((f.as_str(), up.as_str()), ("hello", "/"));
        assert_eq!(hit(internal("/fission-function/hello/")).1, "/");
        assert_eq!(
            hit(internal("/fission-function/hello/a/b?x=1")).1,
            "/a/b?x=1"
        );
        assert!(matches!(
            internal("/fission-function/hellox"),
            Resolution::NotFound
        ));
        // Namespaced function.
        let Resolution::Function(m) = internal("/fission-function/team/calc/add") else {
            panic!()
        };
        assert_eq!(m.function.key.to_string(), "team/calc");
        assert_eq!(m.upstream_path_and_query, "/add");
        assert!(m.trigger.is_none());
        // `default` function "team" catches the rest of /fission-function/team/...
        let Resolution::Function(m) = internal("/fission-function/team/other") else {
            panic!()
        };
        assert_eq!(m.function.key.to_string(), "default/team");
        assert_eq!(m.upstream_path_and_query, "/other");
        // Functions in `default` have no /fission-function/default/<name> URL.
        assert!(matches!(
            internal("/fission-function/default/hello"),
            Resolution::NotFound
        ));
        assert!(matches!(
            internal("/fission-function"),
            Resolution::NotFound
        ));
        assert!(matches!(internal("/hello"), Resolution::NotFound));
    }

    #[test]
    fn internal_routes_are_off_the_public_listener_unless_asked() {
        let functions = [function("default", "hello")];
        let t = table(&[], &functions);
        assert!(matches!(
            go(&t, "GET", None, "/fission-function/hello"),
            Resolution::NotFound
        ));

        let options = RouteTableOptions {
            internal_routes_on_public: true,
        };
        let triggers = [trigger("a", 1)
            .prefix("/fission-function/hello/sub")
            .build()];
        let t = RouteTable::build(
            &triggers,
            &[function("default", "hello"), function("default", "fn-a")],
            options,
        );
        assert_eq!(
            hit(go(&t, "DELETE", None, "/fission-function/hello/x")).0,
            "hello"
        );
        // Triggers are registered before internal routes, so they shadow them (Fission order).
        assert_eq!(
            hit(go(&t, "GET", None, "/fission-function/hello/sub/y")).0,
            "fn-a"
        );
    }

    #[test]
    fn exact_trigger_on_its_function_internal_url_trims_it() {
        // Fission trims the function's internal URL from any path that starts with it.
        let t = table(
            &[trigger("a", 1).url("/fission-function/fn-a/x").build()],
            &fns(&["fn-a"]),
        );
        assert_eq!(hit(go(&t, "GET", None, "/fission-function/fn-a/x")).1, "/x");
    }

    #[test]
    fn weighted_backends_split_by_weight() {
        let t = table(
            &[trigger("canary", 1)
                .url("/c")
                .weights(&[("v1", 80), ("v2", 20), ("v3", 0)])
                .build()],
            &fns(&["v1", "v2", "v3"]),
        );
        let method = Method::GET;
        let req = RequestInfo {
            method: &method,
            host: None,
            path: "/c",
            query: None,
        };
        let mut rng = SplitMix64::seeded(42);
        let mut counts: HashMap<String, u32> = HashMap::new();
        for _ in 0..10_000 {
            let Resolution::Function(m) = t.resolve(Listener::Public, &req, &mut rng) else {
                panic!()
            };
            *counts.entry(m.function.key.name.clone()).or_default() += 1;
        }
        assert!((7_700..8_300).contains(&counts["v1"]), "{counts:?}");
        assert!((1_700..2_300).contains(&counts["v2"]), "{counts:?}");
        assert!(
            !counts.contains_key("v3"),
            "weight 0 is never chosen: {counts:?}"
        );
    }

    #[test]
    fn weighted_choice_uses_the_injected_rng() {
        struct Fixed(u32);
        impl WeightRng for Fixed {
            fn below(&mut self, bound: u32) -> u32 {
                self.0.min(bound - 1)
            }
        }
        let t = table(
            &[trigger("canary", 1)
                .url("/c")
                .weights(&[("a", 30), ("b", 70)])
                .build()],
            &fns(&["a", "b"]),
        );
        let method = Method::GET;
        let req = RequestInfo {
            method: &method,
            host: None,
            path: "/c",
            query: None,
        };
        let pick = |r| match t.resolve(Listener::Public, &req, &mut Fixed(r)) {
            Resolution::Function(m) => m.function.key.name.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(pick(0), "a");
        assert_eq!(pick(29), "a");
        assert_eq!(pick(30), "b");
        assert_eq!(pick(99), "b");
        let zero = table(
            &[trigger("z", 1)
                .url("/z")
                .weights(&[("b", 0), ("a", 0)])
                .build()],
            &fns(&["a", "b"]),
        );
        let req = RequestInfo {
            method: &method,
            host: None,
            path: "/z",
            query: None,
        };
        let Resolution::Function(m) = zero.resolve(Listener::Public, &req, &mut Fixed(0)) else {
            panic!()
        };
        assert_eq!(
            m.function.key.name, "a",
            "all-zero weights pick the first by name"
        );
    }

    #[test]
    fn function_headers_and_identity_come_from_metadata() {
        let t = table(&[trigger("a", 1).url("/x").build()], &fns(&["fn-a"]));
        let Resolution::Function(m) = go(&t, "GET", None, "/x") else {
            panic!()
        };
        assert_eq!(m.function.uid, "uid-fn-a");
        assert_eq!(m.function.resource_version, "7");
        let mut headers = http::HeaderMap::new();
        crate::headers::set_function_headers(&mut headers, &m.function.headers);
        assert_eq!(headers["x-fission-function-name"], "fn-a");
        assert_eq!(headers["x-fission-function-uid"], "uid-fn-a");
    }

    #[test]
    fn request_info_reads_host_header_or_authority() {
        let req = http::Request::builder()
            .method("PUT")
            .uri("/p/a?b=c")
            .header("host", "h.example:1")
            .body(())
            .unwrap();
        let (parts, ()) = req.into_parts();
        let info = RequestInfo::from_parts(&parts);
        assert_eq!(info.method, Method::PUT);
        assert_eq!(info.host, Some("h.example:1"));
        assert_eq!(info.path, "/p/a");
        assert_eq!(info.query, Some("b=c"));
    }
}
