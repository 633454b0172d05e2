//! Test harness: one local cluster per test in a fresh temp dir on port 0, a kube-rs client and
//! a kubectl runner pointed at it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use kube::config::{KubeConfigOptions, Kubeconfig};
use rivulet_localcluster::{Config, LocalCluster};

/// A fresh, empty directory under the system temp dir (removed on drop).
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("lc-{tag}-{}-{n}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running cluster with its client.
pub struct Env {
    pub cluster: LocalCluster,
    pub client: kube::Client,
    pub dir: TempDir,
    pub cache: TempDir,
}

pub async fn client_for(kubeconfig: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

pub async fn start_with(tag: &str, tweak: impl FnOnce(&mut Config)) -> Env {
    let dir = TempDir::new(tag);
    let mut config = Config::new(dir.path());
    tweak(&mut config);
    let cluster = LocalCluster::start(config).await.unwrap();
    let client = client_for(cluster.kubeconfig_path()).await;
    Env {
        cluster,
        client,
        dir,
        cache: TempDir::new(&format!("{tag}-kubecache")),
    }
}

pub async fn start(tag: &str) -> Env {
    start_with(tag, |_| {}).await
}

impl Env {
    /// Run kubectl against the cluster; `stdin` is piped in when given.
    pub fn kubectl(&self, args: &[&str], stdin: Option<&str>) -> Output {
        use std::io::Write;
        let mut cmd = std::process::Command::new("kubectl");
        cmd.args(args)
            .env("KUBECONFIG", self.cluster.kubeconfig_path())
            .env("KUBECACHEDIR", self.cache.path())
            .env("HOME", self.cache.path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl is installed");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        child.wait_with_output().unwrap()
    }

    /// kubectl that must succeed; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.kubectl(args, stdin);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A raw HTTPS request with the bearer token; returns (status, body).
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", content_type)
            .body(body)
            .unwrap();
        match self.client.request_text(req).await {
            Ok(text) => (
                200,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            ),
            Err(kube::Error::Api(status)) => (status.code, serde_json::to_value(&*status).unwrap()),
            Err(e) => panic!("request failed: {e}"),
        }
    }
}

/// Poll `check` until it returns Some, or panic after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub const WAIT: Duration = Duration::from_secs(10);

/// A namespaced CRD used by several tests: `widgets.example.com`, status+scale subresources,
/// printer columns, a defaulted and bounded `spec.size`.
pub const WIDGET_CRD: &str = r"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Color, type: string, jsonPath: .spec.color, priority: 1}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, maximum: 10, default: 1}
              color: {type: string, enum: [red, blue, green]}
              replicas: {type: integer}
              tags: {type: array, items: {type: string}}
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            properties:
              replicas: {type: integer}
              phase: {type: string}
";

/// The typed Widget custom resource.
#[derive(
    kube::CustomResource,
    serde::Serialize,
    serde::Deserialize,
    Clone,
    Debug,
    Default,
    schemars::JsonSchema,
)]
#[kube(
    group = "example.com",
    version = "v1",
    kind = "Widget",
    namespaced,
    status = "WidgetStatus"
)]
pub struct WidgetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
}

#[derive(serde::Serialize, serde::Deserialize, Clone, Debug, Default, schemars::JsonSchema)]
pub struct WidgetStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// Install the Widget CRD through the API and wait until it is served.
pub async fn install_widgets(env: &Env) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::api::{Api, PostParams};
    let crd: CustomResourceDefinition = serde_yaml_ng::from_str(WIDGET_CRD).unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(env.client.clone());
    api.create(&PostParams::default(), &crd).await.unwrap();
}

/// A client of the cluster speaking with `token` instead of the admin's.
pub fn client_with(env: &Env, token: &str) -> kube::Client {
    let mut config = kube::Config::new(format!("https://{}", env.cluster.addr()).parse().unwrap());
    config.root_cert = Some(vec![
        rustls::pki_types::pem::PemObject::from_pem_slice(env.cluster.ca_pem().as_bytes())
            .map(|c: rustls::pki_types::CertificateDer<'_>| c.to_vec())
            .unwrap(),
    ]);
    config.auth_info.token = Some(token.to_string().into());
    kube::Client::try_from(config).unwrap()
}
