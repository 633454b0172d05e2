//! A network of its own for each pod (issue 16.3), the way a CNI bridge plugin gives one to a
//! pod in a cluster: a network namespace per pod, joined to the host by a veth pair whose host
//! end sits on one bridge per agent, `rivulet<B>` with `169.254.B.1/24` (B: the agent's address
//! block, `ipam.rs`). Inside, the pod has its loopback and `eth0` with its pod IP `169.254.B.n`;
//! every container of the pod joins the same namespace (`nsenter --net`), so a runtime may bind
//! `0.0.0.0:8888`, the fetcher reaches it on `localhost`, and three pods do so at once. The host
//! (router, probes) reaches each pod at its pod IP through the bridge.
//!
//! The pod reaches the host only at the gateway `169.254.B.1` (services bound to `0.0.0.0` or
//! to that address), never the host's loopback, as in a cluster. The API server, which listens
//! on the host's loopback and whose certificate names `127.0.0.1`, is relayed into the pod's
//! own `127.0.0.1:<port>` ([`relay_api`]), so `KUBERNETES_SERVICE_HOST=127.0.0.1` holds in both
//! network modes.
//!
//! Link-local addresses because they are never routed beyond a link: the per-agent /24 cannot
//! shadow a network the host really uses (block 169 is never handed out: 169.254.169.254 is the
//! cloud metadata address). This needs root (CAP_NET_ADMIN) and iproute2's `ip`; without them
//! pods share the host's network, each on its own 127.B.x.y address (`--pod-network host`).
//! Why veth and not pasta: docs/localcluster-agent.md "Pod network".

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// How pods are networked (`rivulet up --pod-network`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NetworkMode {
    /// Own namespaces when this agent can make them (root, `ip`, sandboxed pods), else the host's
    /// network (said once at start).
    #[default]
    Auto,
    /// Own namespaces, or the agent does not start.
    Bridge,
    /// The host's network, one loopback address per pod.
    Host,
}

impl std::str::FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "bridge" => Ok(Self::Bridge),
            "host" => Ok(Self::Host),
            other => Err(format!(
                "unknown pod network {other:?}: expected auto, bridge or host"
            )),
        }
    }
}

/// Where named network namespaces live (iproute2's convention).
const NETNS_DIR: &str = "/run/netns";

/// The agent's bridge and the tools that build pods' namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bridge {
    /// The agent's address block (second octet of 127.B / third of 169.254.B).
    pub block: u8,
    pub ip: PathBuf,
    pub nsenter: PathBuf,
}

impl Bridge {
    /// The bridge interface's name.
    pub fn name(&self) -> String {
        format!("rivulet{}", self.block)
    }

    /// The host's address on the bridge: the pods' gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(169, 254, self.block, 1)
    }

    /// First and last pod address.
    pub fn pod_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        (
            Ipv4Addr::new(169, 254, self.block, 2),
            Ipv4Addr::new(169, 254, self.block, 254),
        )
    }

    fn netns_name(&self, pod_uid: &str) -> String {
        format!("rivulet-{}-{pod_uid}", self.block)
    }

    /// The pod's namespace file (what `nsenter --net=` takes).
    pub fn netns_path(&self, pod_uid: &str) -> PathBuf {
        Path::new(NETNS_DIR).join(self.netns_name(pod_uid))
    }

    /// Makes the bridge (kept when it exists: a restarted agent reuses it) and removes the
    /// namespaces a previous run of this block left (its pods are restarted anyway). `Err` is
    /// one line for the user.
    pub fn setup(block: u8) -> Result<Bridge, String> {
        let find = |name: &str| {
            super::sandbox::find_on_path(name)
                .or_else(|| {
                    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
                        .iter()
                        .map(|d| Path::new(d).join(name))
                        .find(|p| p.is_file())
                })
                .ok_or_else(|| format!("{name} is not installed"))
        };
        if !nix::unistd::geteuid().is_root() {
            return Err("pod network namespaces need root (CAP_NET_ADMIN)".into());
        }
        let bridge = Bridge {
            block,
            ip: find("ip")?,
            nsenter: find("nsenter")?,
        };
        let name = bridge.name();
        if !Path::new("/sys/class/net").join(&name).exists() {
            bridge.run(&["link", "add", &name, "type", "bridge"])?;
        }
        let address = format!("{}/24", bridge.gateway());
        // "File exists" when a previous run set it.
        let _ = bridge.run(&["addr", "add", &address, "dev", &name]);
        bridge.run(&["link", "set", &name, "up"])?;
        let prefix = format!("rivulet-{block}-");
        for entry in std::fs::read_dir(NETNS_DIR).into_iter().flatten().flatten() {
            let stale = entry.file_name().to_string_lossy().into_owned();
            if stale.starts_with(&prefix) {
                let _ = bridge.run(&["netns", "delete", &stale]);
            }
        }
        Ok(bridge)
    }

    /// Gives pod `pod_uid` its namespace with address `ip` (anything of an earlier attempt
    /// replaced). Returns the namespace file.
    pub fn attach(&self, pod_uid: &str, ip: Ipv4Addr) -> Result<PathBuf, String> {
        let ns = self.netns_name(pod_uid);
        let _ = self.run(&["netns", "delete", &ns]);
        for command in attach_commands(self, pod_uid, ip) {
            let args: Vec<&str> = command.iter().map(String::as_str).collect();
            if let Err(e) = self.run(&args) {
                let _ = self.run(&["netns", "delete", &ns]);
                return Err(e);
            }
        }
        Ok(self.netns_path(pod_uid))
    }

    /// Removes the pod's namespace; its veth pair goes with it.
    pub fn detach(&self, pod_uid: &str) {
        let _ = self.run(&["netns", "delete", &self.netns_name(pod_uid)]);
    }

    /// Removes the bridge (the agent stops; every pod is detached by then).
    pub fn teardown(&self) {
        let _ = self.run(&["link", "delete", &self.name()]);
    }

    fn run(&self, args: &[&str]) -> Result<(), String> {
        let out = Command::new(&self.ip)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.ip.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "ip {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// `command` run inside the pod's namespace.
    pub fn enter(&self, pod_uid: &str, program: &str, args: &[String]) -> (String, Vec<String>) {
        let mut full = vec![
            format!("--net={}", self.netns_path(pod_uid).display()),
            "--".to_owned(),
            program.to_owned(),
        ];
        full.extend(args.iter().cloned());
        (self.nsenter.to_string_lossy().into_owned(), full)
    }
}

/// The host end of the pod's veth pair: `rv` and 13 hex digits of the uid's hash (interface
/// names have at most 15 bytes).
fn veth_name(pod_uid: &str) -> String {
    format!("rv{}", &crate::sha256_hex(pod_uid, 7)[..13])
}

/// The `ip` commands that build pod `pod_uid`'s namespace (pure).
pub fn attach_commands(bridge: &Bridge, pod_uid: &str, ip: Ipv4Addr) -> Vec<Vec<String>> {
    let ns = bridge.netns_name(pod_uid);
    let veth = veth_name(pod_uid);
    let gateway = bridge.gateway().to_string();
    let lines: [&[&str]; 8] = [
        &["netns", "add", &ns],
        &[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ],
        &["link", "set", &veth, "master", &bridge.name(), "up"],
        &["-n", &ns, "link", "set", "lo", "up"],
        // No IPv6 link-local address or router solicitations: the pod network is IPv4.
        &["-n", &ns, "link", "set", "eth0", "addrgenmode", "none"],
        &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        &["-n", &ns, "link", "set", "eth0", "up"],
        &["-n", &ns, "route", "add", "default", "via", &gateway],
    ];
    lines
        .iter()
        .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

/// Relays the pod's `127.0.0.1:port` to the host's `127.0.0.1:port` (the API server) until the
/// returned task is aborted. The listening socket is made inside the pod's namespace from a
/// thread of its own (a namespace switch is per thread), then served from the runtime.
pub async fn relay_api(netns: &Path, port: u16) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let file = std::fs::File::open(netns)?;
    let listener = tokio::task::spawn_blocking(move || {
        std::thread::spawn(move || -> std::io::Result<std::net::TcpListener> {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
            listener.set_nonblocking(true)?;
            Ok(listener)
        })
        .join()
        .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
    })
    .await
    .map_err(std::io::Error::other)??;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    Ok(tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) =
                    tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await
                {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bridge() -> Bridge {
        Bridge {
            block: 7,
            ip: "/usr/sbin/ip".into(),
            nsenter: "/usr/bin/nsenter".into(),
        }
    }

    #[test]
    fn a_pod_gets_a_namespace_on_the_agents_bridge() {
        let b = bridge();
        assert_eq!(b.name(), "rivulet7");
        assert_eq!(b.gateway(), Ipv4Addr::new(169, 254, 7, 1));
        let commands = attach_commands(&b, "uid-1", Ipv4Addr::new(169, 254, 7, 9));
        let text: Vec<String> = commands.iter().map(|c| c.join(" ")).collect();
        assert_eq!(text[0], "netns add rivulet-7-uid-1");
        assert!(
            text[1].starts_with("link add rv")
                && text[1].ends_with("peer name eth0 netns rivulet-7-uid-1")
        );
        assert!(text[2].ends_with("master rivulet7 up"));
        assert!(text.contains(&"-n rivulet-7-uid-1 addr add 169.254.7.9/24 dev eth0".to_owned()));
        assert!(text.contains(&"-n rivulet-7-uid-1 route add default via 169.254.7.1".to_owned()));
    }

    #[test]
    fn veth_names_fit_and_differ() {
        let (a, b) = (veth_name("uid-1"), veth_name("uid-2"));
        assert_eq!(a.len(), 15);
        assert_ne!(a, b);
    }

    #[test]
    fn containers_enter_the_pods_namespace() {
        let (program, args) = bridge().enter("u", "/usr/bin/bwrap", &["--x".to_owned()]);
        assert_eq!(program, "/usr/bin/nsenter");
        assert_eq!(
            args,
            [
                "--net=/run/netns/rivulet-7-u",
                "--",
                "/usr/bin/bwrap",
                "--x"
            ]
        );
    }

    #[test]
    fn modes_parse() {
        assert_eq!("bridge".parse::<NetworkMode>(), Ok(NetworkMode::Bridge));
        assert!(
            "x".parse::<NetworkMode>()
                .unwrap_err()
                .contains("auto, bridge or host")
        );
    }
}
