//! Test support for Rivulet's integration tests: a fresh localcluster per test (temp data dir,
//! port 0), a kube client for it, and waiting on a condition with a deadline (never a fixed sleep).

mod up;

pub use up::{UpProcess, kubectl_apply};

use std::future::Future;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rivulet_localcluster::{Config, LocalCluster};

/// A running localcluster, its client, and the data directory it lives in (removed on drop).
pub struct TestCluster {
    /// The embedded API server.
    pub cluster: LocalCluster,
    /// A kube client authenticated against it.
    pub client: kube::Client,
    /// Data directory; removed when the test ends.
    pub dir: tempfile::TempDir,
}

impl std::fmt::Debug for TestCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCluster")
            .field("url", &self.cluster.url())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Why the test cluster could not start.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

impl TestCluster {
    /// Starts a localcluster on a free port in a new temp dir, with a client for it.
    pub async fn start() -> Result<Self, StartError> {
        let dir = tempfile::Builder::new()
            .prefix("rivulet-test-")
            .tempdir()
            .map_err(|e| StartError(e.to_string()))?;
        let mut config = Config::new(dir.path());
        config.api_port = 0;
        let cluster = LocalCluster::start(config)
            .await
            .map_err(|e| StartError(e.to_string()))?;
        let client = client_for(cluster.kubeconfig_path()).await?;
        Ok(Self {
            cluster,
            client,
            dir,
        })
    }

    /// Stops the API server.
    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}

/// Creates `crds` and waits until each is Established; panics naming the CRD otherwise (a test
/// helper).
pub async fn install_crds(
    client: &kube::Client,
    crds: impl IntoIterator<
        Item = k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    >,
) {
    use kube::runtime::wait::{await_condition, conditions};
    let api: kube::Api<
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    > = kube::Api::all(client.clone());
    for crd in crds {
        let name = crd.metadata.name.clone().unwrap_or_default();
        if let Err(e) = api.create(&kube::api::PostParams::default(), &crd).await {
            panic!("creating the CRD {name}: {e}");
        }
        let established = await_condition(api.clone(), &name, conditions::is_crd_established());
        match tokio::time::timeout(Duration::from_secs(30), established).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("waiting for the CRD {name}: {e}"),
            Err(elapsed) => panic!("the CRD {name} was not Established: {elapsed}"),
        }
    }
}

/// A client for the cluster described by a kubeconfig file.
pub async fn client_for(kubeconfig: &std::path::Path) -> Result<kube::Client, StartError> {
    let kc = Kubeconfig::read_from(kubeconfig).map_err(|e| StartError(e.to_string()))?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(|e| StartError(e.to_string()))?;
    kube::Client::try_from(config).map_err(|e| StartError(e.to_string()))
}

/// A TCP port that was free on 127.0.0.1 a moment ago, for a process that binds it itself.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout` naming `what` and
/// the last observation.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last observation: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A minimal HTTP/1.1 request (`Connection: close`) to `http://host:port/path`; returns the
/// status code and the body. Enough for end-to-end checks without a client library.
pub async fn http(method: &str, url: &str, body: &str) -> std::io::Result<(u16, String)> {
    http_response(method, url, body)
        .await
        .map(|response| (response.status, response.body))
}

/// An HTTP answer as [`http_response`] reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code (0 when the status line is unreadable).
    pub status: u16,
    /// Header names (lowercase) and values, in order.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub body: String,
}

impl Response {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Like [`http`], with the answer's headers.
pub async fn http_response(method: &str, url: &str, body: &str) -> std::io::Result<Response> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other(format!("not an http URL: {url}")))?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut stream = tokio::net::TcpStream::connect(host).await?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, payload) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(payload)
    } else {
        payload.to_owned()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut payload: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = payload.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        payload = rest[size..].trim_start_matches("\r\n");
    }
    out
}
