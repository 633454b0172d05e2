//! Issue 16.3: with `--pod-network bridge` every pod has a network namespace of its own: three
//! pods bind `0.0.0.0:8888` at once and each answers on its pod IP; the containers of one pod
//! meet on `localhost`; the API server answers inside at `127.0.0.1:<port>` (relayed); the
//! host's loopback services are out of reach; the namespaces go with their pods.
//!
//! Needs root (CAP_NET_ADMIN) and bubblewrap, as `.ci/run` has.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use rivulet_localcluster_agent::kubelet::network::NetworkMode;
use rivulet_localcluster_agent::kubelet::sandbox::SandboxMode;
use serde_json::json;

async fn bridged() -> Env {
    assert!(
        nix::unistd::geteuid().is_root(),
        "pod network namespaces need root: run this test as root (CI does)"
    );
    Env::start(|c| {
        c.pod_sandbox = SandboxMode::Bwrap;
        c.pod_network = NetworkMode::Bridge;
    })
    .await
}

/// A runtime the way Fission's images have it: binds all addresses on 8888.
const SERVER: &str = "import http.server, socket, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = os.environ['POD'].encode()
        self.send_response(200); self.send_header('Content-Length', str(len(body))); self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(('0.0.0.0', 8888), H).serve_forever()";

#[tokio::test]
async fn three_pods_bind_the_same_port_and_each_answers_on_its_own_address() {
    let env = bridged().await;
    let api = env.pods("default");
    for name in ["a", "b", "c"] {
        api.create(
            &PostParams::default(),
            &pod(json!({
                "metadata": {"name": name},
                "spec": {"containers": [{
                    "name": "server", "image": "local/exec", "command": ["python3", "-c", SERVER],
                    "env": [{"name": "POD", "value": name}],
                    "readinessProbe": {"tcpSocket": {"port": 8888}, "periodSeconds": 1}}]}
            })),
        )
        .await
        .unwrap();
    }
    let mut ips = Vec::new();
    for name in ["a", "b", "c"] {
        let ready = pod_when(&api, name, "pod Ready", is_ready).await;
        let ip = pod_ip(&ready);
        assert!(ip.starts_with("169.254."), "{ip}");
        let body = http_get(&format!("{ip}:8888"), "/").await.unwrap();
        assert_eq!(body, name);
        ips.push(ip);
    }
    ips.dedup();
    assert_eq!(ips.len(), 3, "{ips:?}");
    // Pod a's namespace file: `rivulet-<block>-<uid>` (network.rs).
    let uid = api.get("a").await.unwrap().metadata.uid.unwrap();
    let netns = std::fs::read_dir("/run/netns")
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(&uid))
        .expect("pod a's namespace");
    api.delete("a", &DeleteParams::default()).await.unwrap();
    eventually(WAIT, "pod a and its namespace gone", || async {
        if api.get_opt("a").await.unwrap().is_none() && !netns.exists() {
            Ok(())
        } else {
            Err(format!("{} still there", netns.display()))
        }
    })
    .await;
    env.stop().await;
}

#[tokio::test]
async fn containers_of_a_pod_meet_on_localhost_and_reach_the_api_but_not_the_hosts_loopback() {
    let env = bridged().await;
    // A service on the host's loopback that a pod must not reach.
    let host_only = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let host_port = host_only.local_addr().unwrap().port();
    let api_port = env.cluster.addr().port();
    let client = format!(
        "import socket, time, urllib.request
for _ in range(250):
    try:
        print(urllib.request.urlopen('http://localhost:8888/').read().decode()); break
    except OSError:
        time.sleep(0.1)
else:
    print('the server never answered on localhost')
for port in ({api_port}, {host_port}):
    s = socket.socket(); s.settimeout(2)
    print(port == {api_port} and 'api' or 'host', s.connect_ex(('127.0.0.1', port)) == 0)"
    );
    let api = env.pods("default");
    api.create(
        &PostParams::default(),
        &pod(json!({
            "metadata": {"name": "pair"},
            "spec": {"restartPolicy": "Never", "containers": [
                {"name": "server", "image": "local/exec", "command": ["python3", "-c", SERVER],
                 "env": [{"name": "POD", "value": "from the other container"}]},
                {"name": "client", "image": "local/exec", "command": ["python3", "-c", client]}]}
        })),
    )
    .await
    .unwrap();
    let log = eventually(2 * WAIT, "the client's three lines", || async {
        let log = api
            .logs(
                "pair",
                &LogParams {
                    container: Some("client".into()),
                    ..LogParams::default()
                },
            )
            .await
            .unwrap_or_default();
        if log.lines().count() >= 3 {
            Ok(log)
        } else {
            Err(log)
        }
    })
    .await;
    assert_eq!(log, "from the other container\napi True\nhost False\n");
    drop(host_only);
    assert!(
        api.list(&ListParams::default()).await.unwrap().items.len() == 1,
        "one pod"
    );
    env.stop().await;
}
