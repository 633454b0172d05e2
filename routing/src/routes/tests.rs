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
    let mut headers = hyper::http::HeaderMap::new();
    crate::headers::set_function_headers(&mut headers, &m.function.headers);
    assert_eq!(headers["x-fission-function-name"], "fn-a");
    assert_eq!(headers["x-fission-function-uid"], "uid-fn-a");
}

#[test]
fn request_info_reads_host_header_or_authority() {
    let req = hyper::http::Request::builder()
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
