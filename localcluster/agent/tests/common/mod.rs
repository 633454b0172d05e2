//! A localcluster with the agent's extensions, a client, and the agent itself, per test.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use rivulet_localcluster::{Config, LocalCluster};
use rivulet_localcluster_agent::{Agent, AgentConfig};
pub use rivulet_testing::eventually;

pub const WAIT: Duration = Duration::from_secs(30);

pub struct Env {
    pub cluster: LocalCluster,
    pub client: kube::Client,
    pub agent: Option<Agent>,
    pub config: AgentConfig,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn start(tune: impl FnOnce(&mut AgentConfig)) -> Env {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let dir = tempfile::Builder::new()
            .prefix("rivulet-agent-test-")
            .tempdir()
            .unwrap();
        let mut config = AgentConfig::new(dir.path().join("agent"));
        config.backoff_base = Duration::from_millis(200);
        config.backoff_max = Duration::from_secs(2);
        tune(&mut config);
        let mut server = Config::new(dir.path().join("server"));
        let ext = rivulet_localcluster_agent::server_extensions(&config);
        server.create_hooks = ext.create_hooks;
        server.pod_logs = Some(ext.pod_logs);
        let cluster = LocalCluster::start(server).await.unwrap();
        let client = rivulet_testing::client_for(cluster.kubeconfig_path())
            .await
            .unwrap();
        config.kubeconfig = Some(cluster.kubeconfig_path().to_path_buf());
        let agent = Agent::start(client.clone(), config.clone()).await.unwrap();
        Env {
            cluster,
            client,
            agent: Some(agent),
            config,
            dir,
        }
    }

    pub fn kubeconfig(&self) -> std::path::PathBuf {
        self.cluster.kubeconfig_path().to_path_buf()
    }

    pub async fn restart_agent(&mut self) {
        if let Some(a) = self.agent.take() {
            a.shutdown().await;
        }
        self.agent = Some(
            Agent::start(self.client.clone(), self.config.clone())
                .await
                .unwrap(),
        );
    }

    pub async fn stop(mut self) {
        if let Some(a) = self.agent.take() {
            a.shutdown().await;
        }
        self.cluster.shutdown().await;
    }

    pub fn pods(&self, ns: &str) -> Api<Pod> {
        Api::namespaced(self.client.clone(), ns)
    }
}

pub fn pod(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

/// The pod once `check` accepts it.
pub async fn pod_when(api: &Api<Pod>, name: &str, what: &str, check: impl Fn(&Pod) -> bool) -> Pod {
    eventually(WAIT, what, || async {
        match api.get_opt(name).await {
            Ok(Some(p)) if check(&p) => Ok(p),
            Ok(p) => Err(format!("{:?}", p.and_then(|p| p.status))),
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

pub fn condition(pod: &Pod, type_: &str) -> Option<String> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

pub fn is_ready(pod: &Pod) -> bool {
    condition(pod, "Ready").as_deref() == Some("True")
}

pub fn pod_ip(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .unwrap_or_default()
}

/// A plain HTTP/1.0 GET; the body, or an error.
pub async fn http_get(addr: &str, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .await
        .map_err(|e| e.to_string())?;
    let (head, body) = out.split_once("\r\n\r\n").ok_or("no body")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(head.to_string());
    }
    Ok(body.to_string())
}

/// Processes whose command line contains `token`.
pub fn processes_with(token: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = stat
            .rsplit_once(") ")
            .is_some_and(|(_, r)| r.starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmd).contains(token) {
            out.push(pid);
        }
    }
    out
}

/// A unique token for process command lines.
pub fn token(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
