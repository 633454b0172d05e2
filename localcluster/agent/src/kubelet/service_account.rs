//! A pod's Kubernetes credentials, the way a kubelet gives them (issue 16.4): a token of the
//! pod's ServiceAccount, bound to the pod (TokenRequest API), with the cluster's CA and the
//! namespace in `<pod-dir>/serviceaccount/`, which a sandboxed container sees at
//! `/var/run/secrets/kubernetes.io/serviceaccount`, plus `KUBERNETES_SERVICE_HOST/PORT`. That is
//! what kube-rs, client-go and Fission's fetcher read in a cluster; the admin token never reaches
//! a pod.
//!
//! A plain process cannot see that fixed path, so it gets `KUBECONFIG` naming a kubeconfig in the
//! same directory that carries the same pod token.
//!
//! Kubernetes injects a projected volume for this at admission; the agent writes the files
//! itself instead, so pod specs stay as their authors wrote them (docs/localcluster-agent.md).

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Pod, ServiceAccount};
use kube::ResourceExt;
use kube::api::{Api, PostParams};

use super::volumes::VolumeContent;

/// Where a container finds the files.
pub const MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";

/// The kubeconfig a plain process gets, next to the token.
pub const KUBECONFIG_FILE: &str = "kubeconfig";

/// How pods reach the API server, from the agent's own kubeconfig.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiAccess {
    pub host: String,
    pub port: u16,
    pub ca_pem: String,
}

impl ApiAccess {
    /// The API server and CA of the kubeconfig at `path`. `Err` says what is missing.
    pub fn from_kubeconfig(path: &Path) -> Result<ApiAccess, String> {
        use base64::Engine as _;
        let kc = kube::config::Kubeconfig::read_from(path).map_err(|e| e.to_string())?;
        let cluster = kc
            .clusters
            .first()
            .and_then(|c| c.cluster.as_ref())
            .ok_or("no cluster in it")?;
        let server = cluster.server.as_deref().ok_or("no server")?;
        let (host, port) = host_port(server).ok_or_else(|| format!("server {server:?}"))?;
        let ca = cluster
            .certificate_authority_data
            .as_deref()
            .ok_or("no certificate-authority-data")?;
        let ca_pem = base64::engine::general_purpose::STANDARD
            .decode(ca)
            .map_err(|e| format!("certificate-authority-data: {e}"))?;
        Ok(ApiAccess {
            host,
            port,
            ca_pem: String::from_utf8_lossy(&ca_pem).into_owned(),
        })
    }

    /// The variables a kubelet sets for the `kubernetes` Service.
    pub fn env(&self) -> BTreeMap<String, String> {
        let (host, port) = (&self.host, self.port);
        BTreeMap::from([
            ("KUBERNETES_SERVICE_HOST".into(), host.clone()),
            ("KUBERNETES_SERVICE_PORT".into(), port.to_string()),
            ("KUBERNETES_SERVICE_PORT_HTTPS".into(), port.to_string()),
            ("KUBERNETES_PORT".into(), format!("tcp://{host}:{port}")),
            (
                format!("KUBERNETES_PORT_{port}_TCP"),
                format!("tcp://{host}:{port}"),
            ),
            (format!("KUBERNETES_PORT_{port}_TCP_ADDR"), host.clone()),
            (format!("KUBERNETES_PORT_{port}_TCP_PORT"), port.to_string()),
            (format!("KUBERNETES_PORT_{port}_TCP_PROTO"), "tcp".into()),
        ])
    }
}

/// Host and port of an `https://host[:port][/...]` URL.
fn host_port(server: &str) -> Option<(String, u16)> {
    let authority = server.strip_prefix("https://")?.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(':') => (h, p.parse().ok()?),
        _ => (authority, 443),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Whether `pod` gets a token (`automountServiceAccountToken`, pod first, then its account).
fn wanted(pod: &Pod, account: Option<&ServiceAccount>) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.automount_service_account_token)
        .or_else(|| account.and_then(|a| a.automount_service_account_token))
        .unwrap_or(true)
}

/// The pod's ServiceAccount name (`default` when it names none).
pub fn account_name(pod: &Pod) -> String {
    pod.spec
        .as_ref()
        .and_then(|s| {
            s.service_account_name
                .clone()
                .or_else(|| s.service_account.clone())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "default".into())
}

/// The files of `<pod-dir>/serviceaccount`: `token` (owner-only), `ca.crt`, `namespace`, and for
/// a plain process the kubeconfig carrying the token (pure).
pub fn files(token: &str, access: &ApiAccess, namespace: &str, plain: bool) -> VolumeContent {
    let mut files = vec![
        ("token".to_string(), token.as_bytes().to_vec(), 0o600),
        (
            "ca.crt".to_string(),
            access.ca_pem.as_bytes().to_vec(),
            0o644,
        ),
        (
            "namespace".to_string(),
            namespace.as_bytes().to_vec(),
            0o644,
        ),
    ];
    if plain {
        let server = format!("https://{}:{}", access.host, access.port);
        let kubeconfig = rivulet_localcluster::kubeconfig::render(&server, &access.ca_pem, token);
        files.push((KUBECONFIG_FILE.to_string(), kubeconfig.into_bytes(), 0o600));
    }
    VolumeContent::Files(files)
}

/// A token of the pod's ServiceAccount bound to the pod, or `None` when the pod opts out. `Err`
/// is the message for the pod's `FailedMount` Event (an account that does not exist).
pub async fn token(client: &kube::Client, pod: &Pod) -> Result<Option<String>, String> {
    let ns = pod.namespace().unwrap_or_default();
    let name = account_name(pod);
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let account = api
        .get_opt(&name)
        .await
        .map_err(|e| format!("reading serviceaccount \"{name}\": {e}"))?
        .ok_or_else(|| {
            format!(
                "serviceaccount \"{name}\" not found in namespace \"{ns}\" (spec.serviceAccountName)"
            )
        })?;
    if !wanted(pod, Some(&account)) {
        return Ok(None);
    }
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            // Kubernetes' kubelet value: valid while the pod lives (localcluster::tokens).
            expiration_seconds: Some(3607),
            bound_object_ref: Some(BoundObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
            }),
            ..TokenRequestSpec::default()
        }),
        ..TokenRequest::default()
    };
    let issued = api
        .create_token_request(&name, &PostParams::default(), &request)
        .await
        .map_err(|e| format!("requesting a token of serviceaccount \"{name}\": {e}"))?;
    issued
        .status
        .and_then(|s| s.token)
        .map(Some)
        .ok_or_else(|| format!("the token request of serviceaccount \"{name}\" returned no token"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::needless_pass_by_value)] // json! literals
    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": spec}))
            .unwrap()
    }

    #[test]
    fn the_account_and_the_opt_out_follow_kubernetes() {
        assert_eq!(account_name(&pod(json!({"containers": []}))), "default");
        assert_eq!(
            account_name(&pod(
                json!({"containers": [], "serviceAccountName": "fetcher"})
            )),
            "fetcher"
        );
        let opted_out: ServiceAccount =
            serde_json::from_value(json!({"automountServiceAccountToken": false})).unwrap();
        assert!(!wanted(&pod(json!({"containers": []})), Some(&opted_out)));
        assert!(wanted(
            &pod(json!({"containers": [], "automountServiceAccountToken": true})),
            Some(&opted_out)
        ));
        assert!(wanted(&pod(json!({"containers": []})), None));
    }

    #[test]
    fn the_token_is_owner_only_and_plain_processes_get_a_kubeconfig() {
        let access = ApiAccess {
            host: "127.0.0.1".into(),
            port: 6443,
            ca_pem: "CA".into(),
        };
        let VolumeContent::Files(plain) = files("tok", &access, "ns", true) else {
            panic!("files")
        };
        let mode = |n: &str| plain.iter().find(|f| f.0 == n).map(|f| f.2);
        assert_eq!(mode("token"), Some(0o600));
        assert_eq!(mode(KUBECONFIG_FILE), Some(0o600));
        let kc = &plain.iter().find(|f| f.0 == KUBECONFIG_FILE).unwrap().1;
        let kc = String::from_utf8_lossy(kc);
        assert!(
            kc.contains("token: tok") && kc.contains("https://127.0.0.1:6443"),
            "{kc}"
        );
        let VolumeContent::Files(sandboxed) = files("tok", &access, "ns", false) else {
            panic!("files")
        };
        assert!(sandboxed.iter().all(|f| f.0 != KUBECONFIG_FILE));
        assert_eq!(access.env()["KUBERNETES_SERVICE_PORT"], "6443");
        assert_eq!(access.env()["KUBERNETES_PORT_6443_TCP_ADDR"], "127.0.0.1");
    }

    #[test]
    fn servers_parse_to_host_and_port() {
        assert_eq!(
            host_port("https://127.0.0.1:6443"),
            Some(("127.0.0.1".into(), 6443))
        );
        assert_eq!(
            host_port("https://api.example/"),
            Some(("api.example".into(), 443))
        );
        assert_eq!(
            host_port("https://[::1]:8443/x"),
            Some(("::1".into(), 8443))
        );
        assert_eq!(host_port("http://127.0.0.1:80"), None);
    }
}
