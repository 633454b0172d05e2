//! Issue 18.4, the install test: `deploy/` (through the test overlay `deploy/overlays/test`)
//! applied with `kubectl apply --server-side -k` to `rivulet localcluster`, whose node agent runs
//! the Deployments' pods as local processes (the image table maps the deploy/ image to the built
//! `rivulet`), then least privilege checked with `kubectl auth can-i` as each ServiceAccount.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `rivulet localcluster` in a temp dir, killed (with its pods) on drop.
struct LocalCluster {
    child: Child,
    kubeconfig: PathBuf,
    cache: tempfile::TempDir,
    _dir: tempfile::TempDir,
}

impl LocalCluster {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let rivulet = Path::new(env!("CARGO_BIN_EXE_rivulet"));
        // The deploy/ image (any tag) is this build's binary; the pod's args pick the subcommand.
        let agent_dir = dir.path().join("agent");
        std::fs::create_dir_all(&agent_dir).unwrap();
        std::fs::write(
            agent_dir.join("images.yaml"),
            format!(
                "images:\n- image: ghcr.io/rivulet-dev/rivulet\n  command: [{:?}]\n",
                rivulet.display().to_string()
            ),
        )
        .unwrap();
        // Pool pods' fetcher sidecar runs `rivulet fetcher` (a command, found on PATH as in the
        // image), so this build's binary comes first on the agent's PATH, which pods inherit.
        let path = std::env::join_paths(
            std::iter::once(rivulet.parent().unwrap().to_path_buf()).chain(std::env::split_paths(
                &std::env::var_os("PATH").unwrap_or_default(),
            )),
        )
        .unwrap();
        let mut child = Command::new(rivulet)
            // RBAC as on a real cluster: no bootstrap read access for ServiceAccounts.
            .args([
                "localcluster",
                "--no-service-account-reader",
                // Fission's python-env image runs this repository's Python runtime.
                "--local-runtimes",
                "--api-port",
                "0",
                "--data-dir",
            ])
            .arg(dir.path())
            .env("PATH", path)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        // It prints `export KUBECONFIG=<path>` once the API server and the agent run.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let kubeconfig = loop {
            let line = lines
                .next()
                .expect("rivulet localcluster exited before it was ready")
                .unwrap();
            if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
                break PathBuf::from(path);
            }
        };
        LocalCluster {
            child,
            kubeconfig,
            cache: tempfile::tempdir().unwrap(),
            _dir: dir,
        }
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("KUBECACHEDIR", self.cache.path())
            .output()
            .expect("kubectl runs")
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// `kubectl auth can-i` as `user`: yes (exit 0) or no (exit 1).
    fn can_i(&self, user: &str, args: &[&str]) -> bool {
        let mut all = vec!["auth", "can-i", "--as", user];
        all.extend_from_slice(args);
        let out = self.kubectl(&all);
        match out.status.code() {
            Some(0) => true,
            Some(1) => false,
            _ => panic!("kubectl {all:?}: {out:?}"),
        }
    }

    /// Polls `check` until it holds, or fails with `what` and the pods' state after `timeout`.
    fn wait_for(&self, timeout: Duration, what: &str, mut check: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + timeout;
        while !check(self) {
            if Instant::now() > deadline {
                let pods = self.kubectl(&["get", "pods", "-A", "-o", "wide"]);
                panic!(
                    "timed out waiting for {what}; pods:\n{}",
                    String::from_utf8_lossy(&pods.stdout)
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        // SIGTERM: the agent stops every pod before the process exits.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr` over HTTP/1.1: (status, body), or the I/O error's text.
fn http_get(addr: &str, path: &str) -> Result<(u16, String), String> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not HTTP: {response:?}"))?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

const CONTROLLER: &str = "system:serviceaccount:fission:rivulet-controller";
const ROUTER: &str = "system:serviceaccount:fission:rivulet-router";

/// `kubectl auth can-i --list` rows, sorted, so the snapshot does not depend on rule order.
fn rules_of(cluster: &LocalCluster, user: &str, namespace: &str) -> String {
    let out = cluster.kubectl_ok(&["auth", "can-i", "--list", "--as", user, "-n", namespace]);
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let header = lines.remove(0);
    lines.sort();
    lines.insert(0, header);
    lines.join("\n")
}

#[test]
#[allow(clippy::too_many_lines)] // one install, checked step by step
fn deploy_installs_on_localcluster_with_least_privilege() {
    let cluster = LocalCluster::start();
    let overlay = repo().join("deploy/overlays/test");
    cluster.kubectl_ok(&["apply", "--server-side", "-k", overlay.to_str().unwrap()]);

    // The controller runs as a Deployment: its pods start from the image table, pass their
    // /readyz probe and the Deployment reports Available.
    cluster.wait_for(
        Duration::from_mins(2),
        "the controller Deployment to be Available",
        |c| {
            c.kubectl(&[
                "wait",
                "--for=condition=Available",
                "deployment/rivulet-controller",
                "-n",
                "fission",
                "--timeout=5s",
            ])
            .status
            .success()
        },
    );
    cluster.kubectl_ok(&[
        "rollout",
        "status",
        "deployment/rivulet-controller",
        "-n",
        "fission",
        "--timeout=30s",
    ]);
    // It did its first job: the fetcher key Secret the router mounts.
    cluster.wait_for(Duration::from_mins(1), "the fetcher key Secret", |c| {
        c.kubectl(&["get", "secret", "rivulet-fetcher-key", "-n", "fission"])
            .status
            .success()
    });

    cluster.wait_for(
        Duration::from_mins(2),
        "the router Deployment to be Available",
        |c| {
            c.kubectl(&[
                "wait",
                "--for=condition=Available",
                "deployment/rivulet-router",
                "-n",
                "fission",
                "--timeout=5s",
            ])
            .status
            .success()
        },
    );

    // The quickstart, through the installed router: one of the router Service's pods, at its
    // address (localcluster has no Service proxy).
    cluster.kubectl_ok(&[
        "apply",
        "-f",
        repo().join("examples/hello-python").to_str().unwrap(),
    ]);
    let router = cluster.kubectl_ok(&[
        "get",
        "pods",
        "-n",
        "fission",
        "-l",
        "app.kubernetes.io/name=rivulet-router",
        "-o",
        "jsonpath={.items[0].status.podIP}",
    ]);
    let router = format!("{}:8888", router.trim());
    let mut last = String::new();
    cluster.wait_for(
        Duration::from_mins(3),
        "Hello, World! through the router",
        |_| match http_get(&router, "/hello") {
            Ok((200, body)) if body.contains("Hello, World!") => true,
            other => {
                last = format!("{other:?}");
                false
            }
        },
    );
    eprintln!("last non-hello answer before success: {last}");

    // Least privilege, answered by localcluster's RBAC from the installed roles.
    assert!(!cluster.can_i(ROUTER, &["list", "secrets", "-n", "default"]));
    assert!(!cluster.can_i(ROUTER, &["get", "secrets", "-n", "default"]));
    assert!(!cluster.can_i(ROUTER, &["create", "pods", "-n", "default"]));
    assert!(!cluster.can_i(ROUTER, &["delete", "deployments", "-n", "fission"]));
    assert!(!cluster.can_i(CONTROLLER, &["update", "clusterroles"]));
    assert!(!cluster.can_i(CONTROLLER, &["impersonate", "users"]));
    assert!(cluster.can_i(CONTROLLER, &["create", "pods", "-n", "default"]));
    assert!(cluster.can_i(
        CONTROLLER,
        &[
            "patch",
            "environments.fission.io",
            "--subresource=status",
            "-n",
            "default"
        ]
    ));
    assert!(!cluster.can_i(CONTROLLER, &["delete", "secrets", "-n", "default"]));

    insta::assert_snapshot!(
        "controller_in_fission",
        rules_of(&cluster, CONTROLLER, "fission")
    );
    insta::assert_snapshot!(
        "controller_in_default",
        rules_of(&cluster, CONTROLLER, "default")
    );
    insta::assert_snapshot!("router_in_fission", rules_of(&cluster, ROUTER, "fission"));
    insta::assert_snapshot!("router_in_default", rules_of(&cluster, ROUTER, "default"));
}
