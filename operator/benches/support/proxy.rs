//! The proxies compared: nginx in front of a pod, and `rivulet router` as its own process; the
//! CPU a process (and its children) spent, read from `/proc`.
#![allow(dead_code, clippy::cast_precision_loss)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rivulet_api::Function;
use rivulet_testing::free_port;

/// A running proxy process, stopped with SIGTERM when dropped (nginx's master then stops its
/// workers).
pub struct Proxy {
    pub child: Child,
    /// `http://127.0.0.1:<port>`
    pub url: String,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Proxy {
    /// CPU time (user + system) this proxy and its children used so far, in microseconds.
    pub fn cpu_us(&self) -> f64 {
        // Clock ticks are 10 ms on Linux (USER_HZ = 100).
        cpu_ticks(self.child.id()) as f64 * 10_000.0
    }
}

/// nginx in front of `upstream` (keep-alive 64 to it, `worker_processes auto`), with `extra`
/// directives in its `location`. Request bodies are streamed, not buffered to disk, and have
/// no size limit, as through the router.
pub fn nginx(dir: &Path, upstream: &str, extra: &str) -> Proxy {
    let port = free_port().unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes auto;\nworker_rlimit_nofile 8192;\npid {pid};\nerror_log stderr error;\nevents {{ worker_connections 4096; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp};\n  proxy_temp_path {tmp};\n  client_max_body_size 0;\n  proxy_request_buffering off;\n  upstream fn {{ server {upstream}; keepalive 64; }}\n  server {{\n    listen 127.0.0.1:{port} backlog=4096;\n    location / {{ proxy_pass http://fn; proxy_http_version 1.1; proxy_set_header Connection \"\"; {extra} }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            tmp = dir.display(),
        ),
    )
    .unwrap();
    let child = Command::new("nginx")
        .args(["-c", conf.to_str().unwrap(), "-p", dir.to_str().unwrap()])
        .spawn()
        .expect("nginx is not installed: sudo apt-get install -y nginx-light");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Proxy {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

/// The headers Fission's router adds (and so ours does), set by nginx: the Python runtime
/// parses every one of them, which costs it about a tenth of its throughput.
pub fn router_headers(function: &Function) -> String {
    let meta = &function.metadata;
    [
        ("X-Fission-Full-Url", "$request_uri".to_owned()),
        ("X-Fission-Function-Uid", meta.uid.clone().unwrap()),
        ("X-Fission-Function-Name", meta.name.clone().unwrap()),
        (
            "X-Fission-Function-Namespace",
            meta.namespace.clone().unwrap(),
        ),
        (
            "X-Fission-Function-Resourceversion",
            meta.resource_version.clone().unwrap(),
        ),
        ("Forwarded", "\"host=$http_host;\"".to_owned()),
        ("X-Forwarded-Host", "$http_host".to_owned()),
        ("X-Forwarded-For", "$remote_addr".to_owned()),
    ]
    .iter()
    .map(|(name, value)| format!("proxy_set_header {name} {value};"))
    .collect::<Vec<_>>()
    .join(" ")
}

/// CPU time (user + system) used so far by process `pid` and its child processes (nginx's
/// workers), in clock ticks.
pub fn cpu_ticks(pid: u32) -> u64 {
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
            let rest = &stat[stat.rfind(')')? + 2..];
            let fields: Vec<&str> = rest.split_whitespace().collect();
            Some(fields[11].parse::<u64>().ok()? + fields[12].parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    let children =
        std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap_or_default();
    own + children
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .map(cpu_ticks)
        .sum::<u64>()
}

/// `rivulet router` as its own process on free ports (as deployed in a cluster: not sharing a
/// process with the API server, node agent and reconcilers of local mode).
pub fn standalone_router(kubeconfig: &Path, fetcher_key: &Path) -> Proxy {
    let (public, internal) = (free_port().unwrap(), free_port().unwrap());
    let child = Command::new(env!("CARGO_BIN_EXE_rivulet"))
        .args(["router", "--port", &public.to_string(), "--internal-addr"])
        .arg(format!("127.0.0.1:{internal}"))
        // It specializes the pods it serves again (recovery): it needs `up`'s key.
        .arg("--fetcher-key-file")
        .arg(fetcher_key)
        .env("KUBECONFIG", kubeconfig)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proxy {
        child,
        url: format!("http://127.0.0.1:{public}"),
    }
}
