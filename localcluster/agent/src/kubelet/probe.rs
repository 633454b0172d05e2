//! Probes: HTTP GET (a status in 200..400 passes), TCP connect, and exec (exit code 0 passes),
//! each bounded by `timeoutSeconds`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Everything a probe needs besides its spec.
#[derive(Clone, Debug)]
pub struct Target {
    pub ip: String,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    /// A sandboxed container: exec handlers run inside its namespaces (`sandbox::Inside`).
    pub inside: Option<super::sandbox::Inside>,
}

/// The resolved numeric port of `port` for `container`.
pub fn port_of(port: &IntOrString, container: &Container) -> Option<u16> {
    match port {
        IntOrString::Int(p) => u16::try_from(*p).ok(),
        IntOrString::String(name) => name.parse().ok().or_else(|| {
            container
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(name))
                .and_then(|p| u16::try_from(p.container_port).ok())
        }),
    }
}

/// Runs the probe once: `Ok(())` on success, else why it failed.
pub async fn run(probe: &Probe, container: &Container, target: &Target) -> Result<(), String> {
    let timeout =
        Duration::from_secs(u64::try_from(probe.timeout_seconds.unwrap_or(1).max(1)).unwrap_or(1));
    match tokio::time::timeout(timeout, run_inner(probe, container, target)).await {
        Ok(r) => r,
        Err(_) => Err(format!("probe timed out after {}s", timeout.as_secs())),
    }
}

async fn run_inner(probe: &Probe, container: &Container, target: &Target) -> Result<(), String> {
    if let Some(http) = &probe.http_get {
        let port = port_of(&http.port, container).ok_or("unresolvable port")?;
        let host = http
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.ip.clone());
        let path = http
            .path
            .clone()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "/".into());
        let mut stream = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| {
                format!("Get \"http://{host}:{port}{path}\": dial tcp {host}:{port}: {e}")
            })?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
        );
        for h in http.http_headers.iter().flatten() {
            let _ = write!(request, "{}: {}\r\n", h.name, h.value);
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = [0u8; 32];
        let mut n = 0;
        while n < 12 {
            let read = stream
                .read(&mut head[n..])
                .await
                .map_err(|e| e.to_string())?;
            if read == 0 {
                break;
            }
            n += read;
        }
        let line = String::from_utf8_lossy(&head[..n]);
        let code: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("malformed HTTP response {line:?}"))?;
        return if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        };
    }
    if let Some(tcp) = &probe.tcp_socket {
        let port = port_of(&tcp.port, container).ok_or("unresolvable port")?;
        let host = tcp
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| target.ip.clone());
        return TcpStream::connect((host.as_str(), port))
            .await
            .map(|_| ())
            .map_err(|e| format!("dial tcp {host}:{port}: {e}"));
    }
    if let Some(exec) = &probe.exec {
        return exec_command(exec.command.as_deref().unwrap_or(&[]), target).await;
    }
    Err("probe has no handler".into())
}

/// Runs `command` with the container's environment; exit code 0 passes.
pub async fn exec_command(command: &[String], target: &Target) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("empty exec command".into());
    };
    let mut cmd = match &target.inside {
        // As `kubectl exec` would: in the container's filesystem, processes and network.
        Some(inside) => {
            let prefix = inside.nsenter_args()?;
            let mut cmd = tokio::process::Command::new(&inside.nsenter);
            cmd.args(prefix).arg(program);
            cmd
        }
        None => tokio::process::Command::new(program),
    };
    cmd.args(args)
        .env_clear()
        .envs(&target.env)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let (Some(cwd), None) = (&target.cwd, &target.inside) {
        cmd.current_dir(cwd);
    }
    let out = cmd
        .output()
        .await
        .map_err(|e| format!("exec {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "command {command:?} exited with {}: {}",
            super::process::exit_code(out.status),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
