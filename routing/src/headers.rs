//! Request and response header rewriting, as Fission's router does it (reference/fission.md
//! §4.2): `functionHandler.handler`, `setPathInfoToHeader`, `setFunctionMetadataToHeader`,
//! `addForwardedHostHeader`, plus what Go's `httputil.ReverseProxy` adds (`X-Forwarded-For`) and
//! removes (hop-by-hop headers).
//!
//! Everything here is pure: functions over `HeaderMap`s and request parts.

use std::fmt::Write as _;
use std::net::IpAddr;

use http::header::{CONNECTION, HOST, TE, TRAILER, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Uri, request};

/// Prefix of the per-variable headers, lower case (`x-fission-params-<name>`).
pub const PARAMS_HEADER_PREFIX: &str = "x-fission-params-";
/// On the router's own 404 (no route matched): tells callers such as trigger deliveries that the
/// function is not routed (yet), as opposed to a 404 the function itself answered.
pub const NO_ROUTE: HeaderName = HeaderName::from_static("x-rivulet-no-route");
/// UID of the function serving the request.
pub const FUNCTION_UID: HeaderName = HeaderName::from_static("x-fission-function-uid");
/// Name of the function serving the request.
pub const FUNCTION_NAME: HeaderName = HeaderName::from_static("x-fission-function-name");
/// Namespace of the function serving the request.
pub const FUNCTION_NAMESPACE: HeaderName = HeaderName::from_static("x-fission-function-namespace");
/// resourceVersion of the function serving the request.
pub const FUNCTION_RESOURCE_VERSION: HeaderName =
    HeaderName::from_static("x-fission-function-resourceversion");
/// The request's original path and query (Go's `request.URL.String()`).
pub const FULL_URL: HeaderName = HeaderName::from_static("x-fission-full-url");
/// RFC 7239 `Forwarded`.
pub const FORWARDED: HeaderName = HeaderName::from_static("forwarded");
/// `X-Forwarded-Host`.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Hop-by-hop headers Go's `httputil.ReverseProxy` removes in both directions (RFC 7230 §6.1).
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The four `X-Fission-Function-*` values of one function, built once per route-table rebuild so
/// the request path only clones them.
#[derive(Debug, Clone)]
pub struct FunctionHeaders {
    uid: HeaderValue,
    name: HeaderValue,
    namespace: HeaderValue,
    resource_version: HeaderValue,
}

impl FunctionHeaders {
    /// Header values for a function's metadata. Kubernetes names, UIDs and resourceVersions are
    /// always valid header values; anything that is not becomes empty rather than failing.
    pub fn new(namespace: &str, name: &str, uid: &str, resource_version: &str) -> Self {
        let value = |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static(""));
        Self {
            uid: value(uid),
            name: value(name),
            namespace: value(namespace),
            resource_version: value(resource_version),
        }
    }
}

/// Removes hop-by-hop headers and the headers the `Connection` header names. On requests,
/// `TE: trailers` survives, as in Go.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, is_request: bool) {
    if headers.contains_key(CONNECTION) {
        let named: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
            .collect();
        for name in named {
            headers.remove(name);
        }
    }
    let keep_te_trailers = is_request
        && headers
            .get_all(TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("trailers"));
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    if keep_te_trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    debug_assert!(!headers.contains_key(TRANSFER_ENCODING) && !headers.contains_key(UPGRADE));
    debug_assert!(!headers.contains_key(TRAILER));
}

/// Sets `X-Fission-Function-{Uid,Name,Namespace,ResourceVersion}`, replacing client values.
pub fn set_function_headers(headers: &mut HeaderMap, function: &FunctionHeaders) {
    headers.insert(FUNCTION_UID, function.uid.clone());
    headers.insert(FUNCTION_NAME, function.name.clone());
    headers.insert(FUNCTION_NAMESPACE, function.namespace.clone());
    headers.insert(FUNCTION_RESOURCE_VERSION, function.resource_version.clone());
}

/// Sets one `X-Fission-Params-<name>` header per route variable, replacing client values. A
/// value that cannot be a header value (a decoded control character) is skipped.
pub fn set_params<'a>(
    headers: &mut HeaderMap,
    params: impl IntoIterator<Item = (&'a HeaderName, &'a str)>,
) {
    for (name, value) in params {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name.clone(), value);
        }
    }
}

/// Sets `X-Fission-Full-Url` to the request target as received: path and query for the usual
/// origin form, the whole URL for the absolute form (Go's `URL.String()`).
pub fn set_full_url(headers: &mut HeaderMap, uri: &Uri) {
    let value = if uri.scheme().is_some() {
        HeaderValue::from_str(&uri.to_string())
    } else {
        HeaderValue::from_str(uri.path_and_query().map_or("/", |pq| pq.as_str()))
    };
    if let Ok(value) = value {
        headers.insert(FULL_URL, value);
    }
}

/// Sets `Forwarded: host=<host>;` and `X-Forwarded-Host: <host>` unless either header already
/// has a value (an outer proxy set them). An IPv6 literal host is quoted, as Fission intends and
/// RFC 7239 requires. A missing host gives empty values, as Go's empty `req.Host` does.
pub fn set_forwarded_host(headers: &mut HeaderMap, host: Option<&HeaderValue>) {
    let present = |h: &HeaderMap, name: &HeaderName| h.get(name).is_some_and(|v| !v.is_empty());
    if present(headers, &FORWARDED) || present(headers, &X_FORWARDED_HOST) {
        return;
    }
    let empty = HeaderValue::from_static("");
    let host = host.unwrap_or(&empty);
    let Ok(text) = host.to_str() else { return };
    let forwarded = if text.starts_with('[') {
        format!("host=\"{text}\";")
    } else {
        format!("host={text};")
    };
    if let Ok(forwarded) = HeaderValue::from_str(&forwarded) {
        headers.insert(FORWARDED, forwarded);
        headers.insert(X_FORWARDED_HOST, host.clone());
    }
}

/// Appends the client address to `X-Forwarded-For`, folding earlier values into one header
/// (`httputil.ReverseProxy`).
pub fn append_forwarded_for(headers: &mut HeaderMap, client: Option<IpAddr>) {
    let Some(client) = client else { return };
    let mut value = String::new();
    for prior in headers.get_all(X_FORWARDED_FOR) {
        if let Ok(prior) = prior.to_str() {
            value.push_str(prior);
            value.push_str(", ");
        }
    }
    let _ = write!(value, "{client}");
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// The host a request was sent to: the authority of an absolute-form target (and of HTTP/2's
/// `:authority`), else the `Host` header (Go's `getHost`).
pub fn request_host(parts: &request::Parts) -> Option<&str> {
    parts
        .uri
        .authority()
        .map(http::uri::Authority::as_str)
        .or_else(|| parts.headers.get(HOST).and_then(|h| h.to_str().ok()))
}

/// A route variable of a matched request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParam<'t> {
    /// Variable name as written in the template.
    pub name: &'t str,
    /// `x-fission-params-<name>`; `None` when the name cannot be a header name (Go would fail
    /// the request; Rivulet forwards it without that header).
    pub header: Option<&'t HeaderName>,
    /// The decoded value.
    pub value: String,
}

/// Everything the router adds to a request bound for a function.
#[derive(Debug, Clone, Copy)]
pub struct Rewrite<'a> {
    /// The chosen function's metadata headers.
    pub function: &'a FunctionHeaders,
    /// Route variables.
    pub params: &'a [PathParam<'a>],
    /// The client's address, for `X-Forwarded-For`.
    pub client: Option<IpAddr>,
}

/// Rewrites a request's headers for its function, before its URI is pointed at the pod: removes
/// hop-by-hop headers, then sets `X-Fission-Params-*`, `X-Fission-Full-Url`,
/// `X-Fission-Function-*`, `Forwarded`/`X-Forwarded-Host` and `X-Forwarded-For`.
pub fn rewrite_request(parts: &mut request::Parts, rewrite: &Rewrite<'_>) {
    // A clone of the Host header shares its bytes: no copy on the common path.
    let host = match parts.uri.authority() {
        Some(authority) => HeaderValue::from_str(authority.as_str()).ok(),
        None => parts.headers.get(HOST).cloned(),
    };
    let headers = &mut parts.headers;
    remove_hop_by_hop(headers, true);
    set_params(
        headers,
        rewrite
            .params
            .iter()
            .filter_map(|p| p.header.map(|h| (h, p.value.as_str()))),
    );
    set_full_url(headers, &parts.uri);
    set_function_headers(headers, rewrite.function);
    set_forwarded_host(headers, host.as_ref());
    append_forwarded_for(headers, rewrite.client);
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> request::Parts {
        let mut builder = Request::builder().uri(uri);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(()).unwrap().into_parts().0
    }

    fn fh() -> FunctionHeaders {
        FunctionHeaders::new("default", "hello", "uid-1", "42")
    }

    #[test]
    fn full_rewrite_sets_every_fission_header() {
        let mut p = parts(
            "/users/7?x=1",
            &[
                ("host", "example.com:8888"),
                ("x-fission-function-name", "spoofed"),
            ],
        );
        let id = HeaderName::from_static("x-fission-params-id");
        let f = fh();
        let params = [
            PathParam {
                name: "id",
                header: Some(&id),
                value: "7".into(),
            },
            PathParam {
                name: "bad name",
                header: None,
                value: "x".into(),
            },
        ];
        rewrite_request(
            &mut p,
            &Rewrite {
                function: &f,
                params: &params,
                client: Some("10.0.0.9".parse().unwrap()),
            },
        );
        let h = &p.headers;
        assert_eq!(h["x-fission-params-id"], "7");
        assert_eq!(h["x-fission-full-url"], "/users/7?x=1");
        assert_eq!(h["x-fission-function-uid"], "uid-1");
        assert_eq!(h["x-fission-function-name"], "hello");
        assert_eq!(h.get_all("x-fission-function-name").iter().count(), 1);
        assert_eq!(h["x-fission-function-namespace"], "default");
        assert_eq!(h["x-fission-function-resourceversion"], "42");
        assert_eq!(h["forwarded"], "host=example.com:8888;");
        assert_eq!(h["x-forwarded-host"], "example.com:8888");
        assert_eq!(h["x-forwarded-for"], "10.0.0.9");
    }

    #[test]
    fn forwarded_headers_from_an_outer_proxy_are_kept() {
        let mut h = HeaderMap::new();
        h.insert(X_FORWARDED_HOST, HeaderValue::from_static("outer.example"));
        set_forwarded_host(&mut h, Some(&HeaderValue::from_static("inner:8888")));
        assert_eq!(h["x-forwarded-host"], "outer.example");
        assert!(h.get(FORWARDED).is_none());

        let mut h = HeaderMap::new();
        h.insert(FORWARDED, HeaderValue::from_static("host=outer"));
        set_forwarded_host(&mut h, Some(&HeaderValue::from_static("inner")));
        assert_eq!(h["forwarded"], "host=outer");
        assert!(h.get(X_FORWARDED_HOST).is_none());

        // An empty value does not count as present (Go's `Header.Get(...) != ""`).
        let mut h = HeaderMap::new();
        h.insert(FORWARDED, HeaderValue::from_static(""));
        set_forwarded_host(&mut h, Some(&HeaderValue::from_static("inner")));
        assert_eq!(h["forwarded"], "host=inner;");
    }

    #[test]
    fn ipv6_hosts_are_quoted_and_missing_hosts_are_empty() {
        let mut h = HeaderMap::new();
        set_forwarded_host(&mut h, Some(&HeaderValue::from_static("[::1]:8888")));
        assert_eq!(h["forwarded"], "host=\"[::1]:8888\";");
        assert_eq!(h["x-forwarded-host"], "[::1]:8888");
        let mut h = HeaderMap::new();
        set_forwarded_host(&mut h, None);
        assert_eq!(h["forwarded"], "host=;");
        assert_eq!(h["x-forwarded-host"], "");
    }

    #[test]
    fn forwarded_for_folds_prior_values() {
        let mut h = HeaderMap::new();
        h.append(X_FORWARDED_FOR, HeaderValue::from_static("1.1.1.1"));
        h.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("2.2.2.2, 3.3.3.3"),
        );
        append_forwarded_for(&mut h, Some("::1".parse().unwrap()));
        assert_eq!(h.get_all(X_FORWARDED_FOR).iter().count(), 1);
        assert_eq!(h[X_FORWARDED_FOR], "1.1.1.1, 2.2.2.2, 3.3.3.3, ::1");
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, None);
        assert!(h.is_empty());
    }

    #[test]
    fn hop_by_hop_headers_and_connection_tokens_go() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("te", "gzip, trailers"),
            ("trailer", "x-t"),
            ("transfer-encoding", "chunked"),
            ("content-type", "text/plain"),
        ] {
            h.append(k, HeaderValue::from_static(v));
        }
        let mut response = h.clone();
        remove_hop_by_hop(&mut h, true);
        let mut names: Vec<_> = h.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, vec!["content-type", "te"]);
        assert_eq!(h["te"], "trailers");
        remove_hop_by_hop(&mut response, false);
        let names: Vec<_> = response.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, vec!["content-type"]);
    }

    #[test]
    fn full_url_of_an_absolute_target_is_the_whole_url() {
        let mut h = HeaderMap::new();
        set_full_url(&mut h, &"http://example.com/a?b=1".parse().unwrap());
        assert_eq!(h[FULL_URL], "http://example.com/a?b=1");
        let mut h = HeaderMap::new();
        set_full_url(&mut h, &"/a%20b?".parse().unwrap());
        assert_eq!(h[FULL_URL], "/a%20b?");
    }

    #[test]
    fn request_host_prefers_the_absolute_authority() {
        let p = parts("http://abs.example:81/x", &[("host", "header.example")]);
        assert_eq!(request_host(&p), Some("abs.example:81"));
        let p = parts("/x", &[("host", "header.example")]);
        assert_eq!(request_host(&p), Some("header.example"));
        assert_eq!(request_host(&parts("/x", &[])), None);
    }

    #[test]
    fn params_with_unrepresentable_values_are_skipped() {
        let mut h = HeaderMap::new();
        let a = HeaderName::from_static("x-fission-params-a");
        let b = HeaderName::from_static("x-fission-params-b");
        set_params(&mut h, [(&a, "ok"), (&b, "bad\nvalue")]);
        assert_eq!(h[&a], "ok");
        assert!(h.get(&b).is_none());
    }
}
