//! Local pods as sandboxed processes (issue 16): each container runs under bubblewrap (`bwrap`,
//! the sandbox Flatpak uses, Debian package `bubblewrap`) with its own mount, PID, IPC and UTS
//! namespaces, the way a kubelet gives each container its own filesystem view.
//!
//! The container's `/` is a fresh tmpfs on which the host's top-level directories are bound
//! read-only (so Python, Node and their packages run), except what a pod must not see: `/tmp`
//! and `/run` are empty tmpfs, `/proc` shows only the container's processes, `/dev` has only the
//! standard devices, and the data dir (every Secret in the WAL, the admin token, other pods'
//! volumes) and the user's home are hidden under empty tmpfs. What a container needs from those
//! is bound back read-only: the prepared runtimes, the tools named by `PATH` and `PYENV_ROOT`,
//! the program's own installation. Its volumes appear at their real `mountPath`s (`/userfunc`,
//! `/secrets/<ns>/<name>`, `/configs/<ns>/<name>`), read-only where the spec says so or the kind
//! is read-only in Kubernetes (secret, configMap, downwardAPI, projected).
//!
//! Building the command line is pure ([`wrap`]); [`Sandbox::detect`] does the I/O once, at start.
//! Why bubblewrap and not hand-made namespace code, and what it costs: docs/localcluster-agent.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::launch::Plan;
use super::volumes;

/// Which pods run sandboxed (`rivulet up --pod-sandbox`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SandboxMode {
    /// Sandboxed when bubblewrap works here, else plain processes (said once at start).
    #[default]
    Auto,
    /// Sandboxed, or the agent does not start.
    Bwrap,
    /// Plain processes of the agent's user (the mode before issue 16).
    None,
}

impl std::str::FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "bwrap" => Ok(Self::Bwrap),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown pod sandbox {other:?}: expected auto, bwrap or none"
            )),
        }
    }
}

/// One entry of a host directory as the sandbox shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Entry {
    /// Bound read-only (a directory or a file).
    Bind(String),
    /// Recreated as the same symlink (`/bin -> usr/bin` on merged-/usr systems).
    Symlink(String, PathBuf),
}

/// A host directory rebuilt as a tmpfs with each of its entries bound back read-only, so that a
/// mount point missing on the host (`/etc/podinfo`) can be created in it: the host's
/// directories are read-only, and bubblewrap cannot create a mount point there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shadow {
    pub dir: PathBuf,
    pub entries: Vec<Entry>,
}

/// Top-level directories a container never gets from the host: replaced by its own.
const OWN: &[&str] = &["proc", "dev", "tmp", "run"];

/// What the sandbox needs to know about this machine, gathered once by [`Sandbox::detect`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    /// The `bwrap` executable.
    pub bwrap: PathBuf,
    /// The host's `/`, minus [`OWN`].
    pub root: Vec<Entry>,
    /// Hidden under an empty tmpfs (data dir, home).
    pub hidden: Vec<PathBuf>,
    /// Bound back read-only inside a hidden directory, when it exists.
    pub exposed: Vec<PathBuf>,
    /// `nsenter` (util-linux), to run exec handlers inside a container; `None`: they run on
    /// the host as for plain processes.
    pub nsenter: Option<PathBuf>,
}

/// How to run a command inside a running sandboxed container (exec probes, `preStop` exec
/// hooks): `nsenter` into the namespaces of its first process, in its working directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inside {
    pub nsenter: PathBuf,
    /// The `bwrap` process; the container's first process is its child.
    pub bwrap_pid: i32,
    pub workdir: String,
}

impl Inside {
    /// `nsenter`'s arguments up to the command (reads `/proc`: the child exists once the
    /// sandbox is built, which is before any probe runs).
    pub fn nsenter_args(&self) -> Result<Vec<String>, String> {
        let pid = self.bwrap_pid;
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .map_err(|e| format!("the container's sandbox is gone: {e}"))?;
        let child = children
            .split_whitespace()
            .next()
            .ok_or("the container's sandbox has no process yet")?;
        let mut args: Vec<String> = ["-t", child, "-m", "-p", "-i", "-u", "-n"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        // Without root bubblewrap made a user namespace too.
        let ns = |p: &str| std::fs::read_link(format!("/proc/{p}/ns/user")).ok();
        if ns("self") != ns(child) {
            args.extend(["-U".to_owned(), "--preserve-credentials".to_owned()]);
        }
        args.push(format!("--wd={}", self.workdir));
        args.push("--".to_owned());
        Ok(args)
    }
}

/// A volume as a container sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub source: PathBuf,
    pub target: String,
    pub read_only: bool,
}

impl Sandbox {
    /// Finds `bwrap` on `PATH` and checks that it can build a sandbox here (user namespaces may
    /// be off, or the binary missing). `hidden` are the data dir and the user's home;
    /// `exposed` what containers need from them. The error is one line for the user.
    pub fn detect(hidden: Vec<PathBuf>, exposed: Vec<PathBuf>) -> Result<Sandbox, String> {
        let bwrap = find_on_path("bwrap")
            .ok_or_else(|| "bwrap (package bubblewrap) is not on PATH".to_owned())?;
        let out = Command::new(&bwrap)
            .args([
                "--ro-bind",
                "/",
                "/",
                "--unshare-pid",
                "--die-with-parent",
                "true",
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bwrap.display()))?;
        if !out.status.success() {
            let why = String::from_utf8_lossy(&out.stderr);
            return Err(format!(
                "{} cannot create namespaces here: {}",
                bwrap.display(),
                why.trim()
            ));
        }
        let root = list(Path::new("/"))
            .map_err(|e| format!("cannot list /: {e}"))?
            .into_iter()
            .filter(|e| !OWN.contains(&entry_name(e)))
            .collect();
        Ok(Sandbox {
            bwrap,
            root,
            hidden,
            exposed,
            nsenter: find_on_path("nsenter"),
        })
    }
}

/// The entries of host directory `dir`, by name.
fn list(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match std::fs::read_link(entry.path()) {
            Ok(target) => out.push(Entry::Symlink(name, target)),
            Err(_) => out.push(Entry::Bind(name)),
        }
    }
    out.sort_by(|a, b| entry_name(a).cmp(entry_name(b)));
    Ok(out)
}

impl Sandbox {
    /// Directories of the sandbox that start empty and writable (tmpfs): its own `/tmp` and
    /// `/run`, and the hidden ones.
    fn tmpfs_dirs(&self) -> impl Iterator<Item = &Path> {
        [Path::new("/tmp"), Path::new("/run")]
            .into_iter()
            .chain(self.hidden.iter().map(PathBuf::as_path))
    }

    /// The host directories to [`Shadow`] so that every mount target can be created: for a
    /// target missing on the host, its deepest existing ancestor, when that one is bound from
    /// the host (reads the host's filesystem).
    pub fn shadows(&self, mounts: &[Mount]) -> Vec<Shadow> {
        let mut dirs = std::collections::BTreeSet::new();
        for m in mounts {
            let target = Path::new(&m.target);
            if !target.is_absolute() || target.exists() {
                continue;
            }
            let Some(existing) = target.ancestors().skip(1).find(|a| a.is_dir()) else {
                continue;
            };
            let writable = existing == Path::new("/")
                || self.tmpfs_dirs().any(|t| existing.starts_with(t))
                || OWN
                    .iter()
                    .any(|o| existing.starts_with(Path::new("/").join(o)));
            if !writable {
                dirs.insert(existing.to_path_buf());
            }
        }
        dirs.into_iter()
            .filter_map(|dir| {
                let entries = list(&dir).ok()?;
                Some(Shadow { dir, entries })
            })
            .collect()
    }
}

/// `mounts` with each target's existing part resolved through the host's symlinks (reads the
/// host's filesystem): the sandbox recreates those links (`/var/run` -> `/run`), but bubblewrap
/// cannot create a mount point through an absolute one.
pub fn resolve_targets(mut mounts: Vec<Mount>) -> Vec<Mount> {
    for m in &mut mounts {
        let target = PathBuf::from(&m.target);
        let Some(existing) = target.ancestors().find(|a| a.exists()) else {
            continue;
        };
        let (Ok(real), Ok(rest)) = (existing.canonicalize(), target.strip_prefix(existing)) else {
            continue;
        };
        m.target = real.join(rest).to_string_lossy().into_owned();
    }
    mounts
}

fn entry_name(e: &Entry) -> &str {
    match e {
        Entry::Bind(n) | Entry::Symlink(n, _) => n,
    }
}

pub(super) fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// The tool paths of `env`: each `PATH` entry, and `PYENV_ROOT`, `VIRTUAL_ENV`, `NODE_PATH` and
/// `PYTHONPATH` entries.
pub fn tool_paths(env: &BTreeMap<String, String>) -> Vec<PathBuf> {
    [
        "PATH",
        "PYENV_ROOT",
        "VIRTUAL_ENV",
        "NODE_PATH",
        "PYTHONPATH",
    ]
    .iter()
    .filter_map(|k| env.get(*k))
    .flat_map(|v| std::env::split_paths(v).collect::<Vec<_>>())
    .filter(|p| p.is_absolute())
    .collect()
}

/// The mounts of `container`: each `volumeMount` from its volume's directory under
/// `volumes_dir` (or `subPath` inside it).
pub fn mounts(pod: &Pod, container: &Container, volumes_dir: &Path) -> Vec<Mount> {
    let kinds = pod
        .spec
        .as_ref()
        .map(|s| s.volumes.clone().unwrap_or_default())
        .unwrap_or_default();
    container
        .volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let source = volumes::mount_source(volumes_dir, m)?;
            let read_only_kind = kinds.iter().find(|v| v.name == m.name).is_some_and(|v| {
                v.secret.is_some()
                    || v.config_map.is_some()
                    || v.downward_api.is_some()
                    || v.projected.is_some()
            });
            Some(Mount {
                source,
                target: m.mount_path.clone(),
                read_only: m.read_only.unwrap_or(false) || read_only_kind,
            })
        })
        .collect()
}

/// What of the hidden directories `plan` needs, bound back read-only (`--ro-bind-try`: skipped
/// when missing): the sandbox's fixed list, the program's installation (`<prefix>/bin/program`
/// → `<prefix>`), the directory of each absolute path among the program and its arguments (a
/// runtime's `server.py` next to its packages), and the tool paths of its environment.
fn exposed(sandbox: &Sandbox, plan: &Plan) -> std::collections::BTreeSet<PathBuf> {
    let program = Path::new(&plan.program);
    let program_home = program.parent().and_then(Path::parent);
    let beside_args = std::iter::once(&plan.program)
        .chain(&plan.args)
        .map(Path::new)
        .filter(|p| p.is_absolute())
        .filter_map(Path::parent);
    let strictly_hidden =
        |p: &Path| p.is_absolute() && sandbox.tmpfs_dirs().any(|h| p.starts_with(h) && p != h);
    let all: std::collections::BTreeSet<PathBuf> = sandbox
        .exposed
        .iter()
        .map(PathBuf::as_path)
        .chain(program_home)
        .chain(beside_args)
        .map(Path::to_path_buf)
        .chain(tool_paths(&plan.env))
        .filter(|p| strictly_hidden(p))
        .collect();
    // A path inside another one comes with it.
    all.iter()
        .filter(|p| !all.iter().any(|q| p.starts_with(q) && p != &q))
        .cloned()
        .collect()
}

/// `plan` run inside the sandbox: the `bwrap` command line (pure), in the plan's in-pod working
/// directory; `hostname` is the pod's name. The environment loses what only the
/// plain-process mode needs (`RIVULET_ROOT`), and `TMPDIR` points at the container's `/tmp`.
pub fn wrap(
    sandbox: &Sandbox,
    plan: &Plan,
    mounts: &[Mount],
    shadows: &[Shadow],
    hostname: &str,
) -> Plan {
    let mut args: Vec<String> = Vec::new();
    let mut push = |items: &[&str]| args.extend(items.iter().map(|s| (*s).to_owned()));
    for entry in &sandbox.root {
        match entry {
            Entry::Bind(name) => {
                let p = format!("/{name}");
                push(&["--ro-bind", &p, &p]);
            }
            Entry::Symlink(name, target) => {
                push(&["--symlink", &target.to_string_lossy(), &format!("/{name}")]);
            }
        }
    }
    for shadow in shadows {
        let dir = shadow.dir.to_string_lossy();
        push(&["--tmpfs", &dir]);
        for entry in &shadow.entries {
            let path = shadow.dir.join(entry_name(entry));
            let path = path.to_string_lossy();
            match entry {
                Entry::Bind(_) => push(&["--ro-bind", &path, &path]),
                Entry::Symlink(_, target) => push(&["--symlink", &target.to_string_lossy(), &path]),
            }
        }
    }
    push(&[
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run",
    ]);
    for dir in &sandbox.hidden {
        let d = dir.to_string_lossy();
        push(&["--tmpfs", &d]);
    }
    for p in exposed(sandbox, plan) {
        let p = p.to_string_lossy();
        push(&["--ro-bind-try", &p, &p]);
    }
    for m in mounts {
        let flag = if m.read_only { "--ro-bind" } else { "--bind" };
        push(&[flag, &m.source.to_string_lossy(), &m.target]);
    }
    push(&[
        "--unshare-pid",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        hostname,
        "--die-with-parent",
        "--chdir",
        &plan.workdir,
        "--",
        &plan.program,
    ]);
    args.extend(plan.args.iter().cloned());
    let mut env = plan.env.clone();
    env.remove(super::launch::ROOT_ENV);
    if env.get("TMPDIR").is_some_and(|t| t != "/tmp") {
        env.insert("TMPDIR".into(), "/tmp".into());
    }
    Plan {
        program: sandbox.bwrap.to_string_lossy().into_owned(),
        args,
        env,
        cwd: PathBuf::from("/"),
        workdir: plan.workdir.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> Sandbox {
        Sandbox {
            bwrap: "/usr/bin/bwrap".into(),
            root: vec![
                Entry::Symlink("bin".into(), "usr/bin".into()),
                Entry::Bind("home".into()),
                Entry::Bind("usr".into()),
            ],
            hidden: vec!["/data".into(), "/home/u".into()],
            exposed: vec!["/data/runtimes".into()],
            nsenter: None,
        }
    }

    fn plan(program: &str) -> Plan {
        Plan {
            program: program.into(),
            args: vec!["server.py".into()],
            env: BTreeMap::from([
                ("RIVULET_ROOT".to_owned(), "/data/pods/x/roots/c".to_owned()),
                ("TMPDIR".to_owned(), "/home/u/tmp".to_owned()),
                (
                    "PATH".to_owned(),
                    "/usr/bin:/nonexistent-rivulet/bin".to_owned(),
                ),
            ]),
            cwd: "/data/pods/x/roots/c".into(),
            workdir: "/userfunc".into(),
        }
    }

    /// The argument pairs after each flag, in order.
    fn pairs<'a>(args: &'a [String], flag: &str) -> Vec<(&'a str, &'a str)> {
        args.windows(3)
            .filter(|w| w[0] == flag)
            .map(|w| (w[1].as_str(), w[2].as_str()))
            .collect()
    }

    #[test]
    fn the_host_is_read_only_and_the_data_dir_and_home_are_hidden() {
        let mounts = [
            Mount {
                source: "/data/pods/x/volumes/userfunc".into(),
                target: "/userfunc".into(),
                read_only: false,
            },
            Mount {
                source: "/data/pods/x/volumes/s".into(),
                target: "/secrets/default/s".into(),
                read_only: true,
            },
        ];
        let out = wrap(
            &sandbox(),
            &plan("/home/u/.pyenv/versions/3.11/bin/python3"),
            &mounts,
            &[],
            "pod-a",
        );
        assert_eq!(out.program, "/usr/bin/bwrap");
        let a = &out.args;
        assert_eq!(pairs(a, "--symlink"), vec![("usr/bin", "/bin")]);
        let ro = pairs(a, "--ro-bind");
        assert!(ro.contains(&("/usr", "/usr")) && ro.contains(&("/home", "/home")));
        assert!(ro.contains(&("/data/pods/x/volumes/s", "/secrets/default/s")));
        assert_eq!(
            pairs(a, "--ro-bind-try"),
            [
                ("/data/runtimes", "/data/runtimes"),
                (
                    "/home/u/.pyenv/versions/3.11",
                    "/home/u/.pyenv/versions/3.11"
                ),
            ],
            "the runtimes, the program's installation and directory bound back"
        );
        assert_eq!(
            pairs(a, "--bind"),
            vec![("/data/pods/x/volumes/userfunc", "/userfunc")]
        );
        let tmpfs: Vec<&String> = a
            .windows(2)
            .filter(|w| w[0] == "--tmpfs")
            .map(|w| &w[1])
            .collect();
        assert_eq!(tmpfs, ["/tmp", "/run", "/data", "/home/u"]);
        // Hidden first, bound back after: bwrap applies them in order.
        let pos = |s: &str| a.iter().position(|x| x == s).unwrap();
        assert!(pos("/home/u") < pos("/data/runtimes"));
        for flag in ["--unshare-pid", "--unshare-ipc", "--die-with-parent"] {
            assert!(a.contains(&flag.to_owned()), "{flag}");
        }
        assert_eq!(pairs(a, "--chdir")[0].0, "/userfunc");
        let dashdash = pos("--");
        assert_eq!(
            &a[dashdash + 1..],
            ["/home/u/.pyenv/versions/3.11/bin/python3", "server.py"]
        );
        assert!(!out.env.contains_key("RIVULET_ROOT"));
        assert_eq!(out.env["TMPDIR"], "/tmp");
        assert!(
            !a.iter().any(|x| x.contains("nonexistent-rivulet")),
            "missing PATH entries skipped"
        );
    }

    #[test]
    fn a_program_outside_hidden_dirs_adds_no_bind() {
        let out = wrap(&sandbox(), &plan("/usr/bin/python3"), &[], &[], "p");
        assert_eq!(
            pairs(&out.args, "--ro-bind-try"),
            [("/data/runtimes", "/data/runtimes")]
        );
    }

    #[test]
    fn a_mount_point_missing_in_a_host_directory_gets_a_shadow() {
        // Not under /tmp or /run, which are the sandbox's own tmpfs (a checkout may be there).
        let beside = Path::new(env!("CARGO_MANIFEST_DIR"));
        let base = if beside.starts_with("/tmp") || beside.starts_with("/run") {
            Path::new("/var/tmp")
        } else {
            beside
        };
        let host = tempfile::tempdir_in(base).unwrap();
        let etc = host.path().join("etc");
        std::fs::create_dir_all(etc.join("ssl")).unwrap();
        std::fs::write(etc.join("hosts"), "").unwrap();
        std::os::unix::fs::symlink("hosts", etc.join("alias")).unwrap();
        let mut sb = sandbox();
        sb.hidden = vec![];
        let at = |p: &str| Mount {
            source: "/v".into(),
            target: etc.join(p).to_string_lossy().into_owned(),
            read_only: true,
        };
        let shadows = sb.shadows(&[at("podinfo"), at("ssl"), at("ssl/new/deeper")]);
        assert_eq!(shadows.len(), 2, "{shadows:?}");
        assert_eq!(shadows[0].dir, etc);
        assert_eq!(
            shadows[0].entries,
            [
                Entry::Symlink("alias".into(), "hosts".into()),
                Entry::Bind("hosts".into()),
                Entry::Bind("ssl".into()),
            ]
        );
        assert_eq!(
            shadows[1].dir,
            etc.join("ssl"),
            "the deepest existing ancestor"
        );
        sb.hidden = vec![host.path().to_path_buf()];
        assert!(
            sb.shadows(&[at("podinfo")]).is_empty(),
            "a hidden dir is a tmpfs already"
        );
        let out = wrap(&sb, &plan("/usr/bin/python3"), &[], &shadows[..1], "p");
        let etc = etc.to_string_lossy().into_owned();
        let hosts = format!("{etc}/hosts");
        let pos = |s: &str| out.args.iter().position(|x| *x == s).unwrap();
        assert_eq!(out.args[pos(&etc) - 1], "--tmpfs");
        assert_eq!(out.args[pos(&hosts) - 1], "--ro-bind");
        assert_eq!(
            pairs(&out.args, "--symlink")[1],
            ("hosts", format!("{etc}/alias").as_str())
        );
    }

    #[test]
    fn read_only_kinds_and_flags() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {
                "volumes": [{"name": "code", "emptyDir": {}}, {"name": "s", "secret": {"secretName": "s"}},
                            {"name": "ro", "emptyDir": {}}],
                "containers": [{"name": "c", "volumeMounts": [
                    {"name": "code", "mountPath": "/userfunc"},
                    {"name": "s", "mountPath": "/secrets/default/s"},
                    {"name": "ro", "mountPath": "/ro", "readOnly": true, "subPath": "sub"}]}]}
        }))
        .unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        let got = mounts(&pod, &c, Path::new("/v"));
        let summary: Vec<(&str, &str, bool)> = got
            .iter()
            .map(|m| (m.source.to_str().unwrap(), m.target.as_str(), m.read_only))
            .collect();
        assert_eq!(
            summary,
            [
                ("/v/code", "/userfunc", false),
                ("/v/s", "/secrets/default/s", true),
                ("/v/ro/sub", "/ro", true)
            ]
        );
    }

    #[test]
    fn modes_parse_and_name_the_choices() {
        assert_eq!("auto".parse(), Ok(SandboxMode::Auto));
        assert_eq!("none".parse(), Ok(SandboxMode::None));
        assert!(
            "docker"
                .parse::<SandboxMode>()
                .unwrap_err()
                .contains("auto, bwrap or none")
        );
    }

    #[test]
    fn mount_targets_resolve_through_host_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("run");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, dir.path().join("varrun")).unwrap();
        let real = real.canonicalize().unwrap();
        let mount = |target: PathBuf| Mount {
            source: "/src".into(),
            target: target.to_string_lossy().into_owned(),
            read_only: true,
        };
        let resolved = resolve_targets(vec![
            mount(dir.path().join("varrun/secrets/sa")),
            mount("/userfunc".into()),
        ]);
        assert_eq!(
            resolved[0].target,
            real.join("secrets/sa").to_string_lossy(),
            "through the link"
        );
        assert_eq!(
            resolved[1].target, "/userfunc",
            "a missing top-level path stays"
        );
    }
}
