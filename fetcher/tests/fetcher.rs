//! The fetcher over real HTTP on loopback: in-memory Kubernetes objects, a fake runtime, a local
//! archive server.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use hyper::StatusCode;
use rivulet_fetcher::FetcherError;
use rivulet_fetcher::checksum::sha256_hex;
use rivulet_fetcher::package::Archive;
use serde_json::json;
use support::*;

const HELLO: &[u8] = b"def main():\n    return 'Hello, World!'\n";
const LIMIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn literal_file_is_written_and_the_runtime_gets_the_load_request() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");

    let request = specialize_request("hello-pkg", 3);
    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let code = fetcher.host_path("/userfunc/deployarchive");
    assert_eq!(std::fs::read(&code).unwrap(), HELLO);
    let calls = runtime.seen();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].method, "POST");
    assert_eq!(calls[0].path, "/v2/specialize");
    assert_eq!(calls[0].content_type, "application/json");
    // The runtime gets the in-pod path, untouched by RIVULET_ROOT.
    let sent: serde_json::Value = serde_json::from_slice(&calls[0].body).unwrap();
    assert_eq!(sent, request["LoadReq"]);
    // No temporary files are left next to the code.
    assert_eq!(listing(&fetcher.host_path("/userfunc")), ["deployarchive"]);
}

#[tokio::test]
async fn literal_zip_is_extracted_into_a_directory() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let archive = zip_of(&[("hello.py", HELLO), ("lib/util.py", b"X = 1\n")]);
    fetcher.add_package("zipped", Archive::literal(archive), "none");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("zipped", 2))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let dir = fetcher.host_path("/userfunc/deployarchive");
    assert_eq!(std::fs::read(dir.join("hello.py")).unwrap(), HELLO);
    assert_eq!(std::fs::read(dir.join("lib/util.py")).unwrap(), b"X = 1\n");
}

#[tokio::test]
async fn keeparchive_keeps_the_zip_as_a_file() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let archive = zip_of(&[("hello.py", HELLO)]);
    fetcher.add_package("kept", Archive::literal(archive.clone()), "succeeded");
    let mut request = specialize_request("kept", 2);
    request["FetchReq"]["keeparchive"] = json!(true);

    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        std::fs::read(fetcher.host_path("/userfunc/deployarchive")).unwrap(),
        archive
    );
}

#[tokio::test]
async fn url_archive_with_good_checksum_is_downloaded_through_a_redirect() {
    let archive = zip_of(&[("hello.py", HELLO)]);
    let server = archive_server(archive.clone()).await;
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let url = format!("http://{}/moved", server.addr);
    fetcher.add_package(
        "remote",
        Archive::url(&url, sha256_hex(&archive)),
        "succeeded",
    );

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("remote", 2))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let code = fetcher.host_path("/userfunc/deployarchive/hello.py");
    assert_eq!(std::fs::read(code).unwrap(), HELLO);
    let paths: Vec<String> = server.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(paths, ["/moved", "/code.zip"]);

    // A second specialize finds the code in place and downloads nothing (Fission's rule).
    let (status, body) = fetcher
        .post("/specialize", &specialize_request("remote", 2))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(server.seen().len(), 2);
    assert_eq!(runtime.seen().len(), 2);
}

#[tokio::test]
async fn url_archive_with_bad_checksum_is_refused_naming_both_sums() {
    let archive = zip_of(&[("hello.py", HELLO)]);
    let server = archive_server(archive.clone()).await;
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let url = format!("http://{}/code.zip", server.addr);
    let wrong = sha256_hex(b"something else");
    fetcher.add_package("tampered", Archive::url(&url, &wrong), "succeeded");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("tampered", 2))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains(&format!("expected sha256 {wrong}")), "{body}");
    assert!(body.contains(&sha256_hex(&archive)), "{body}");
    assert!(runtime.seen().is_empty(), "the runtime must not be called");
    assert!(
        listing(&fetcher.host_path("/userfunc")).is_empty(),
        "nothing left behind"
    );
}

#[tokio::test]
async fn url_archive_without_sum_is_not_verified() {
    let server = archive_server(HELLO.to_vec()).await;
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let url = format!("http://{}/code.zip", server.addr);
    fetcher.add_package("unsummed", Archive::url(&url, ""), "succeeded");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("unsummed", 2))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        std::fs::read(fetcher.host_path("/userfunc/deployarchive")).unwrap(),
        HELLO
    );
}

#[tokio::test]
async fn url_that_answers_404_is_a_clear_error() {
    let server = archive_server(Vec::new()).await;
    let fetcher = TestFetcher::start(free_port()).await;
    let url = format!("http://{}/gone.zip", server.addr);
    fetcher.add_package("gone", Archive::url(&url, ""), "succeeded");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("gone", 2))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains(&url) && body.contains("404"), "{body}");
}

#[tokio::test]
async fn a_stalled_download_fails_instead_of_holding_the_pod() {
    // A server that accepts the connection and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let (_stream, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let fetcher = TestFetcher::start_with(free_port(), |config| {
        config.download.idle_timeout = Duration::from_millis(200);
    })
    .await;
    let url = format!("http://{addr}/code.zip");
    fetcher.add_package("slow", Archive::url(&url, ""), "succeeded");

    let request = specialize_request("slow", 2);
    let (status, body) = tokio::time::timeout(LIMIT, fetcher.post("/specialize", &request))
        .await
        .expect("the fetcher must give up on its own");
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body.contains(&url) && body.contains("no data for 200ms"),
        "{body}"
    );
    silent.abort();
}

#[tokio::test]
async fn secrets_and_configmaps_are_written_as_files() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");
    fetcher.source.insert_secret(
        "default",
        "creds",
        data(&[("password", "s3cret"), ("user", "me")]),
    );
    fetcher
        .source
        .insert_config_map("default", "settings", data(&[("greeting", "hi")]));
    let mut request = specialize_request("hello-pkg", 2);
    request["FetchReq"]["secretList"] = json!([{"namespace": "default", "name": "creds"}]);
    request["FetchReq"]["configMapList"] = json!([{"namespace": "default", "name": "settings"}]);

    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let password = fetcher.host_path("/secrets/default/creds/password");
    assert_eq!(std::fs::read_to_string(&password).unwrap(), "s3cret");
    let mode = std::fs::metadata(&password).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "secret mode {mode:o}");
    assert_eq!(
        std::fs::read_to_string(fetcher.host_path("/secrets/default/creds/user")).unwrap(),
        "me"
    );
    assert_eq!(
        std::fs::read_to_string(fetcher.host_path("/configs/default/settings/greeting")).unwrap(),
        "hi"
    );
}

#[tokio::test]
async fn a_reference_without_namespace_means_the_functions_namespace() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");
    fetcher
        .source
        .insert_secret("team-a", "token", data(&[("value", "t")]));
    let mut request = specialize_request("hello-pkg", 2);
    request["LoadReq"]["FunctionMetadata"]["namespace"] = json!("team-a");
    request["FetchReq"]["secretList"] = json!([{"name": "token"}]);

    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let value = fetcher.host_path("/secrets/team-a/token/value");
    assert_eq!(std::fs::read_to_string(value).unwrap(), "t");
}

#[tokio::test]
async fn a_missing_secret_is_404_naming_it() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");
    let mut request = specialize_request("hello-pkg", 2);
    request["FetchReq"]["secretList"] = json!([{"namespace": "default", "name": "absent"}]);

    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("secret default/absent not found"), "{body}");
    assert!(runtime.seen().is_empty());
}

#[tokio::test]
async fn a_package_that_is_not_built_is_refused() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("building", Archive::literal(HELLO.to_vec()), "pending");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("building", 2))
        .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(
        body.contains("build status was not \"succeeded\""),
        "{body}"
    );
    assert!(
        body.contains("default/building") && body.contains("pending"),
        "{body}"
    );
    assert!(runtime.seen().is_empty());
}

#[tokio::test]
async fn a_missing_package_is_404_naming_it() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("nope", 2))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("package default/nope not found"), "{body}");
}

#[tokio::test]
async fn a_malicious_zip_is_refused_naming_the_entry() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let archive = zip_of(&[
        ("ok.py", b"x"),
        ("../../etc/cron.d/evil", b"* * * * * root sh"),
    ]);
    fetcher.add_package("evil", Archive::literal(archive), "succeeded");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("evil", 2))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body.contains("../../etc/cron.d/evil"), "{body}");
    assert!(
        listing(&fetcher.host_path("/userfunc")).is_empty(),
        "nothing left behind"
    );
    assert!(!fetcher.root.path().join("etc").exists());
    assert!(runtime.seen().is_empty());
}

#[tokio::test]
async fn a_runtime_error_reaches_the_caller_with_its_body() {
    let runtime = fake_runtime(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ModuleNotFoundError: No module named 'hello'",
    )
    .await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("hello-pkg", 2))
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.contains("No module named 'hello'"), "{body}");
    assert!(body.contains("500"), "{body}");
    assert_eq!(runtime.seen().len(), 1, "an answer is final: no retry");
}

#[tokio::test]
async fn version_one_environments_get_an_empty_post_to_specialize() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("v1", Archive::literal(HELLO.to_vec()), "succeeded");
    let mut request = specialize_request("v1", 1);
    request["FetchReq"]["filename"] = json!("user");

    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        std::fs::read(fetcher.host_path("/userfunc/user")).unwrap(),
        HELLO
    );
    let calls = runtime.seen();
    assert_eq!(calls[0].path, "/specialize");
    assert_eq!(calls[0].content_type, "text/plain");
    assert!(calls[0].body.is_empty());
}

#[tokio::test]
async fn a_runtime_that_starts_late_is_waited_for() {
    let port = free_port();
    let fetcher = TestFetcher::start(port).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");

    let call = {
        let (client, addr) = (fetcher.client.clone(), fetcher.addr);
        tokio::spawn(async move {
            let uri = format!("http://{addr}/specialize").parse().unwrap();
            rivulet_fetcher::http::post(
                &client,
                &uri,
                "application/json",
                specialize_request("hello-pkg", 2).to_string().into(),
            )
            .await
        })
    };
    let observed = fetcher.fetcher.clone();
    wait_until(LIMIT, "two refused attempts", || {
        observed.runtime_attempts() >= 2
    })
    .await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let runtime = FakeServer::start_on(listener, runtime_handler(StatusCode::OK, ""));

    match call.await.unwrap() {
        rivulet_fetcher::http::PostOutcome::Answered { status, body } => {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(runtime.seen().len(), 1);
    assert!(fetcher.fetcher.runtime_attempts() >= 3);
}

#[tokio::test]
async fn a_runtime_that_never_listens_is_503_after_bounded_attempts() {
    let fetcher =
        TestFetcher::start_with(free_port(), |config| config.runtime_retry.attempts = 3).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("hello-pkg", 2))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("after 3 attempts"), "{body}");
    assert_eq!(fetcher.fetcher.runtime_attempts(), 3);
}

#[tokio::test]
async fn fetch_endpoint_downloads_a_plain_url_without_calling_the_runtime() {
    let server = archive_server(HELLO.to_vec()).await;
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    let request = json!({"fetchType": 2, "url": format!("http://{}/code.zip", server.addr),
                         "filename": "src-pkg", "secretList": null, "configMapList": null});

    let (status, body) = fetcher.post("/fetch", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        std::fs::read(fetcher.host_path("/userfunc/src-pkg")).unwrap(),
        HELLO
    );
    assert!(runtime.seen().is_empty());
}

#[tokio::test]
async fn a_filename_that_escapes_is_refused() {
    let fetcher = TestFetcher::start(free_port()).await;
    let request =
        json!({"fetchType": 2, "url": "http://127.0.0.1:1/x", "filename": "../../etc/passwd"});
    let (status, body) = fetcher.post("/fetch", &request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("single path component"), "{body}");
}

#[tokio::test]
async fn routes_methods_and_probes() {
    let fetcher = TestFetcher::start(free_port()).await;
    assert_eq!(fetcher.get("/healthz").await.0, StatusCode::OK);
    assert_eq!(fetcher.get("/readiness-healthz").await.0, StatusCode::OK);
    let (status, body) = fetcher.get("/specialize").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(fetcher.get("/nope").await.0, StatusCode::NOT_FOUND);
    let (status, body) = fetcher.get("/version").await;
    assert_eq!(status, StatusCode::OK);
    let version: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(version["Version"], env!("CARGO_PKG_VERSION"));
    let (status, body) = fetcher
        .post("/specialize", &json!({"FetchReq": {"fetchType": 9}}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("unknown fetchType 9"), "{body}");
}

#[tokio::test]
async fn specialize_on_startup_becomes_ready_once_the_runtime_is_loaded() {
    let port = free_port();
    let request = serde_json::from_value(specialize_request("hello-pkg", 2)).unwrap();
    let fetcher = TestFetcher::start_with(port, |config| {
        config.specialize_on_startup = Some(request);
        config.package_retry.attempts = 30;
    })
    .await;
    // Not ready while the package is missing and the runtime is not up.
    assert_eq!(
        fetcher.get("/readiness-healthz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");
    let observed = fetcher.fetcher.clone();
    wait_until(LIMIT, "a refused runtime attempt", || {
        observed.runtime_attempts() >= 1
    })
    .await;
    assert_eq!(
        fetcher.get("/readiness-healthz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let runtime = FakeServer::start_on(listener, runtime_handler(StatusCode::OK, ""));
    let deadline = std::time::Instant::now() + LIMIT;
    while fetcher.get("/readiness-healthz").await.0 != StatusCode::OK {
        assert!(std::time::Instant::now() < deadline, "never became ready");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(runtime.seen()[0].path, "/v2/specialize");
    assert_eq!(
        std::fs::read(fetcher.host_path("/userfunc/deployarchive")).unwrap(),
        HELLO
    );
}

#[tokio::test]
async fn a_failed_startup_specialization_ends_the_server_with_the_cause() {
    let request = serde_json::from_value(specialize_request("missing", 2)).unwrap();
    let fetcher = TestFetcher::start_with(free_port(), |config| {
        config.specialize_on_startup = Some(request);
    })
    .await;
    let result = tokio::time::timeout(LIMIT, fetcher.served)
        .await
        .unwrap()
        .unwrap();
    let err = result.unwrap_err();
    assert!(
        matches!(&err, FetcherError::StartupSpecialization(inner)
            if matches!(**inner, FetcherError::PackageNotFound { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("package default/missing not found")
    );
}

#[tokio::test]
async fn specialize_and_upload_need_the_pods_token() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start_with(runtime.addr.port(), |config| {
        config.token = Some(b"s3cret-token".to_vec());
    })
    .await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");
    let request = specialize_request("hello-pkg", 2);

    for (authorization, why) in [
        (None, "no Authorization header"),
        (Some("Bearer wrong-token!"), "wrong token"),
        (Some("Bearer s3cret-toke"), "wrong token"),
        (Some("Basic s3cret-token"), "not a Bearer token"),
    ] {
        for path in ["/specialize", "/fetch", "/upload"] {
            let (status, body) = fetcher.post_authorized(path, authorization, &request).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} {authorization:?}: {body}"
            );
            assert!(
                body.contains("unauthorized") && body.contains(why),
                "{body}"
            );
        }
    }
    // The pod is untouched: no code, no runtime call.
    assert!(!fetcher.host_path("/userfunc/deployarchive").exists());
    assert!(runtime.seen().is_empty());
    assert!(!fetcher.fetcher.is_specialized());

    let (status, body) = fetcher
        .post_authorized("/specialize", Some("Bearer s3cret-token"), &request)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(runtime.seen().len(), 1);
}

#[tokio::test]
async fn a_second_different_specialize_is_refused_but_the_same_claim_may_retry() {
    let runtime = fake_runtime(StatusCode::OK, "").await;
    let fetcher = TestFetcher::start(runtime.addr.port()).await;
    fetcher.add_package("hello-pkg", Archive::literal(HELLO.to_vec()), "succeeded");
    fetcher.add_package("evil-pkg", Archive::literal(b"evil".to_vec()), "succeeded");

    let request = specialize_request("hello-pkg", 2);
    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Same claim retrying: accepted.
    let (status, body) = fetcher.post("/specialize", &request).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let (status, body) = fetcher
        .post("/specialize", &specialize_request("evil-pkg", 2))
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.contains("already specialized"), "{body}");
    assert_eq!(
        std::fs::read(fetcher.host_path("/userfunc/deployarchive")).unwrap(),
        HELLO
    );
    assert_eq!(runtime.seen().len(), 2);
}
