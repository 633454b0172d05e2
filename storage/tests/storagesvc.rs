//! The storage service end to end on 127.0.0.1:0: Fission's protocol through the client and raw
//! requests, the fetcher's download of an archive URL with its checksum, and the pruner and
//! discovery against a localcluster.

// Tests: a failed setup step should abort loudly.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use kube::Api;
use kube::api::PostParams;
use rivulet_api::package::{Archive, Checksum, Package, PackageSpec};
use rivulet_storage::discovery::{self, Access};
use rivulet_storage::{ArchiveId, Client, PrunerConfig, Server, ServerConfig, StorageError, Store};
use sha2::Digest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(dir: &std::path::Path, max: u64) -> rivulet_storage::ServerHandle {
    let config = ServerConfig {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        max_archive_bytes: max,
    };
    Server::start(config, Store::local(dir).unwrap())
        .await
        .unwrap()
}

/// Pseudo-random bytes (not compressible, not all one value), deterministic.
fn archive_bytes(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// One raw HTTP/1.1 request; returns the status and the body.
async fn raw(addr: SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn multipart(boundary: &str, content: &[u8]) -> Vec<u8> {
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"uploadfile\"; filename=\"a.zip\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    body
}

fn status_of(err: &StorageError) -> u16 {
    match err {
        StorageError::Status { status, .. } => status.as_u16(),
        other => panic!("expected an HTTP status error, got {other}"),
    }
}

#[tokio::test]
async fn a_5_mb_archive_round_trips_through_the_client_and_the_fetcher_then_404s() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("archives"), 8 << 20).await;
    let client = Client::new(&server.url()).unwrap();
    client.healthy().await.unwrap();

    let content = archive_bytes(5 << 20);
    let file = dir.path().join("deploy.zip");
    std::fs::write(&file, &content).unwrap();
    let uploaded = client.upload_file(&file).await.unwrap();
    let sum = hex(&sha2::Sha256::digest(&content));
    assert_eq!(uploaded.sha256, sum);
    assert_eq!(uploaded.size, 5 << 20);
    assert_eq!(
        uploaded.url,
        format!("{}/v1/archive?id={}", server.url(), uploaded.id)
    );
    ArchiveId::parse(&uploaded.id).unwrap();

    assert_eq!(
        client.list().await.unwrap(),
        std::slice::from_ref(&uploaded.id)
    );
    let info = client.info(&uploaded.id).await.unwrap();
    assert_eq!(info.storage_type, "local");
    assert_eq!(info.bucket, None);

    let copy = dir.path().join("copy.zip");
    assert_eq!(client.download(&uploaded.id, &copy).await.unwrap(), sum);
    assert!(
        std::fs::read(&copy).unwrap() == content,
        "downloaded bytes differ"
    );

    // The fetcher downloads the URL a Package records and checks it against the checksum.
    let fetched = dir.path().join("fetched");
    let http = rivulet_fetcher::http::client().unwrap();
    let actual = rivulet_fetcher::http::download(
        &http,
        &uploaded.url,
        &fetched,
        rivulet_fetcher::http::DownloadLimits::default(),
    )
    .await
    .unwrap();
    let expected = rivulet_fetcher::checksum::Checksum {
        kind: rivulet_fetcher::checksum::SHA256.into(),
        sum: uploaded.sha256.clone(),
    };
    rivulet_fetcher::checksum::verify(&expected, &actual, &uploaded.url).unwrap();
    assert!(std::fs::read(&fetched).unwrap() == content);

    // Small uploads from memory, then deletion: 404 afterwards for every verb.
    let small = client
        .upload_bytes("s.zip", Bytes::from_static(b"tiny"))
        .await
        .unwrap();
    assert_eq!(
        client.get(&small.id).await.unwrap(),
        Bytes::from_static(b"tiny")
    );
    let mut ids = client.list().await.unwrap();
    ids.sort();
    let mut want = vec![uploaded.id.clone(), small.id.clone()];
    want.sort();
    assert_eq!(ids, want);
    client.delete(&uploaded.id).await.unwrap();
    assert_eq!(status_of(&client.get(&uploaded.id).await.unwrap_err()), 404);
    assert_eq!(
        status_of(&client.delete(&uploaded.id).await.unwrap_err()),
        404
    );
    assert_eq!(
        status_of(&client.info(&uploaded.id).await.unwrap_err()),
        404
    );
    let err = client
        .download(&uploaded.id, &dir.path().join("none"))
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404);
    assert!(err.to_string().contains("not found"), "{err}");
    assert!(!dir.path().join("none").exists());
    assert_eq!(client.list().await.unwrap(), [small.id]);
    server.shutdown().await;
}

#[tokio::test]
async fn uploads_breaking_a_rule_are_refused_with_a_message_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 8 << 20).await;
    let client = Client::new(&server.url()).unwrap();
    // Fission's rules on upload, each answered with a message naming it.
    let addr = server.local_addrs()[0];
    let body = multipart("b0undary", b"abc");
    let head = |extra: &str| {
        format!(
            "POST /v1/archive HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=b0undary\r\nContent-Length: {}\r\n{extra}\r\n",
            body.len()
        )
    };
    let (status, message) = raw(addr, &head(""), &body).await;
    assert_eq!(
        (status, message.contains("missing X-File-Size header")),
        (400, true),
        "{message}"
    );
    let (status, message) = raw(addr, &head("X-File-Size: 4\r\n"), &body).await;
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains("size mismatch: X-File-Size says 4 bytes, the uploaded file has 3"),
        "{message}"
    );
    let (status, message) = raw(addr, &head("X-File-Size: 2\r\n"), &body).await;
    assert!(
        status == 400 && message.contains("size mismatch"),
        "{status} {message}"
    );
    let (status, message) = raw(addr, &head("X-File-Size: 999999999\r\n"), &body).await;
    assert!(
        status == 413 && message.contains("limit of 8388608 bytes"),
        "{status} {message}"
    );
    let wrong_field = String::from_utf8(multipart("b0undary", b"abc"))
        .unwrap()
        .replace("uploadfile", "other");
    let (status, message) = raw(addr, &head("X-File-Size: 3\r\n"), wrong_field.as_bytes()).await;
    assert!(
        status == 400 && message.contains("no field \"uploadfile\""),
        "{status} {message}"
    );
    let (status, message) = raw(
        addr,
        "GET /v1/archive?id=../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert!(
        status == 400 && message.contains("invalid archive id"),
        "{status} {message}"
    );
    let (status, message) = raw(
        addr,
        "DELETE /v1/archive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"",
    )
    .await;
    assert!(
        status == 400 && message.contains("missing `id'"),
        "{status} {message}"
    );
    // Refused uploads left nothing behind.
    assert!(client.list().await.unwrap().is_empty());
    server.shutdown().await;
}

fn package(name: &str, url: &str) -> Package {
    Package::new(
        name,
        PackageSpec {
            deployment: Some(Archive {
                archive_type: Some("url".into()),
                url: Some(url.into()),
                checksum: Some(Checksum {
                    checksum_type: Some("sha256".into()),
                    sum: Some("00".into()),
                }),
                ..Archive::default()
            }),
            ..PackageSpec::default()
        },
    )
}

fn age(store_dir: &std::path::Path, id: &ArchiveId, by: Duration) {
    let file = std::fs::File::options()
        .write(true)
        .open(store_dir.join(id.as_str()))
        .unwrap();
    file.set_modified(SystemTime::now() - by).unwrap();
}

#[tokio::test]
async fn the_pruner_keeps_referenced_and_young_archives_and_deletes_old_orphans() {
    let cluster = rivulet_testing::TestCluster::start().await.unwrap();
    rivulet_testing::install_crds(&cluster.client, rivulet_api::crds::fission_crds()).await;
    let store_dir = cluster.dir.path().join("archives");
    let store = Store::local(&store_dir).unwrap();
    let [referenced, orphan, young] = [(); 3].map(|()| ArchiveId::generate().unwrap());
    for id in [&referenced, &orphan, &young] {
        store.put(id, Bytes::from_static(b"zip")).await.unwrap();
    }
    age(&store_dir, &referenced, Duration::from_hours(2));
    age(&store_dir, &orphan, Duration::from_hours(2));

    let packages: Api<Package> = Api::namespaced(cluster.client.clone(), "default");
    let url = rivulet_storage::archive_url("http://storagesvc.fission", referenced.as_str());
    packages
        .create(&PostParams::default(), &package("uses-it", &url))
        .await
        .unwrap();
    // A Package pointing elsewhere references nothing here.
    packages
        .create(
            &PostParams::default(),
            &package("elsewhere", "https://example.com/a.zip"),
        )
        .await
        .unwrap();

    let pruner = rivulet_storage::Pruner::new(
        cluster.client.clone(),
        store.clone(),
        PrunerConfig {
            interval: Duration::from_hours(1),
            grace: Duration::from_hours(1),
        },
    );
    let report = pruner.run_once().await.unwrap();
    assert_eq!(report.deleted, std::slice::from_ref(&orphan));
    assert_eq!((report.referenced, report.young), (1, 1));
    let mut left: Vec<ArchiveId> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    left.sort();
    let mut want = vec![referenced.clone(), young.clone()];
    want.sort();
    assert_eq!(left, want);

    // Once its Package is gone, the old archive goes too; the young one stays.
    packages
        .delete("uses-it", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    rivulet_testing::eventually(Duration::from_secs(10), "the Package to be deleted", || {
        let packages = packages.clone();
        async move {
            match packages.get_opt("uses-it").await {
                Ok(None) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        }
    })
    .await;
    let report = pruner.run_once().await.unwrap();
    assert_eq!(report.deleted, [referenced]);
    let left: Vec<ArchiveId> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.id)
        .collect();
    assert_eq!(left, [young]);

    // What `rivulet up` runs: the CLI discovers it through the Service it publishes.
    let local = rivulet_storage::LocalStorage::start(
        &cluster.client,
        rivulet_storage::LocalConfig::new(
            &cluster.dir.path().join("up"),
            vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        ),
    )
    .await
    .unwrap();
    let endpoint = discovery::discover(&cluster.client).await.unwrap();
    assert_eq!(endpoint.archive_base, local.url());
    if std::env::var(discovery::URL_ENV).is_err() {
        assert_eq!(endpoint.access, Access::Direct(local.url().to_owned()));
    }
    let uploaded = Client::new(&endpoint.archive_base)
        .unwrap()
        .upload_bytes("a.zip", Bytes::from_static(b"zip"))
        .await
        .unwrap();
    assert!(
        cluster
            .dir
            .path()
            .join("up/archives")
            .join(&uploaded.id)
            .is_file()
    );
    local.shutdown().await;
    cluster.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}
