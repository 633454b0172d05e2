//! What process stands for a container: the image table entry (or `local/exec`), the pod's
//! command/args/env/workingDir on top, `$(VAR)` expanded (pure).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::env::{self, RefData};
use super::volumes;
use crate::images::{ImageEntry, LOCAL_EXEC};

/// Variables passed through from the agent's own environment (a container sees nothing else of
/// the host's environment, like in a real container).
pub const PASSED_THROUGH: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LANG",
    "LC_ALL",
    "TMPDIR",
    "TZ",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "VIRTUAL_ENV",
    "RUST_LOG",
    "RUST_BACKTRACE",
    "NODE_PATH",
    "PYTHONPATH",
];

/// The variable naming the directory that stands for `/` of a plain-process container.
pub const ROOT_ENV: &str = "RIVULET_ROOT";

/// A planned container start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// Where the process starts on this machine (plain processes: inside the container root).
    pub cwd: PathBuf,
    /// The working directory as the container sees it (`/` when none is given).
    pub workdir: String,
}

/// Why a container cannot start: a kubelet-style waiting reason and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotStartable {
    pub reason: &'static str,
    pub message: String,
}

/// Inputs other than the pod and container.
#[derive(Clone, Debug)]
pub struct Context<'a> {
    pub entry: Option<&'a ImageEntry>,
    pub table_path: &'a Path,
    pub base_env: &'a BTreeMap<String, String>,
    pub refs: &'a RefData,
    pub root: &'a Path,
}

/// Plans how `container` runs.
pub fn plan(pod: &Pod, container: &Container, cx: &Context<'_>) -> Result<Plan, NotStartable> {
    let image = container.image.clone().unwrap_or_default();
    let exec = image == LOCAL_EXEC;
    let entry = match (exec, cx.entry) {
        (true, _) => None,
        (false, Some(e)) => Some(e),
        (false, None) => {
            return Err(NotStartable {
                reason: "ImageNotMapped",
                message: format!(
                    "image \"{image}\" has no local command: add it to {} or use image {LOCAL_EXEC} with a command",
                    cx.table_path.display()
                ),
            });
        }
    };
    let mut base = cx.base_env.clone();
    if let Some(e) = entry {
        base.extend(e.env.clone());
    }
    let vars = env::resolve(pod, container, &base, cx.refs).map_err(|message| NotStartable {
        reason: "CreateContainerConfigError",
        message,
    })?;
    let pod_command = container.command.clone().unwrap_or_default();
    let pod_args = container.args.clone().unwrap_or_default();
    let (command, args) = match entry {
        None => (pod_command, pod_args),
        Some(_) if !pod_command.is_empty() => (pod_command, pod_args),
        Some(e) if !pod_args.is_empty() => (e.command.clone(), pod_args),
        Some(e) => (e.command.clone(), e.args.clone()),
    };
    let mut full: Vec<String> = command
        .into_iter()
        .chain(args)
        .map(|a| env::expand(&a, &vars))
        .collect();
    if full.is_empty() {
        return Err(NotStartable {
            reason: "CreateContainerError",
            message: format!("no command specified (image {image} needs the container's command)"),
        });
    }
    let program = full.remove(0);
    let wd = container
        .working_dir
        .clone()
        .or_else(|| entry.and_then(|e| e.working_dir.clone()))
        .filter(|w| !w.is_empty());
    let cwd = match &wd {
        None => cx.root.to_path_buf(),
        Some(w) => working_dir(cx.root, w),
    };
    Ok(Plan {
        program,
        args: full,
        env: vars,
        cwd,
        workdir: wd.unwrap_or_else(|| "/".to_owned()),
    })
}

/// An in-pod working directory: inside the container root when it exists there (a mount), else
/// the host path when that exists, else created inside the root.
pub fn working_dir(root: &Path, wd: &str) -> PathBuf {
    let inside = volumes::inside(root, wd);
    match inside {
        Some(p) if p.exists() => p,
        _ if Path::new(wd).is_absolute() && Path::new(wd).exists() => PathBuf::from(wd),
        Some(p) => p,
        None => root.to_path_buf(),
    }
}

#[cfg(test)]
#[allow(clippy::needless_pass_by_value)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(container: serde_json::Value) -> (Pod, Container) {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [container]}})).unwrap();
        let c = pod.spec.as_ref().unwrap().containers[0].clone();
        (pod, c)
    }

    fn cx<'a>(
        entry: Option<&'a ImageEntry>,
        base: &'a BTreeMap<String, String>,
        refs: &'a RefData,
    ) -> Context<'a> {
        Context {
            entry,
            table_path: Path::new("/d/images.yaml"),
            base_env: base,
            refs,
            root: Path::new("/root-of-pod"),
        }
    }

    #[test]
    fn docker_entrypoint_rules() {
        let entry = ImageEntry {
            image: "img".into(),
            command: vec!["srv".into()],
            args: vec!["--default".into()],
            ..ImageEntry::default()
        };
        let base = BTreeMap::from([("RIVULET_POD_IP".to_string(), "127.1.0.1".to_string())]);
        let refs = RefData::default();
        let (p, c) = pod(json!({"name": "c", "image": "img"}));
        let plan = super::plan(&p, &c, &cx(Some(&entry), &base, &refs)).unwrap();
        assert_eq!(
            (plan.program.as_str(), plan.args.clone()),
            ("srv", vec!["--default".to_string()])
        );
        let (p, c) =
            pod(json!({"name": "c", "image": "img", "args": ["--on", "$(RIVULET_POD_IP)"]}));
        let plan = super::plan(&p, &c, &cx(Some(&entry), &base, &refs)).unwrap();
        assert_eq!(plan.args, vec!["--on", "127.1.0.1"]);
        let (p, c) = pod(json!({"name": "c", "image": "img", "command": ["other"]}));
        let plan = super::plan(&p, &c, &cx(Some(&entry), &base, &refs)).unwrap();
        assert_eq!((plan.program.as_str(), plan.args.len()), ("other", 0));
    }

    #[test]
    fn local_exec_and_unmapped_images() {
        let base = BTreeMap::new();
        let refs = RefData::default();
        let (p, c) = pod(
            json!({"name": "c", "image": "local/exec", "command": ["sh", "-c"], "args": ["echo hi"], "workingDir": "/no-such-dir-rivulet"}),
        );
        let plan = super::plan(&p, &c, &cx(None, &base, &refs)).unwrap();
        assert_eq!(plan.program, "sh");
        assert_eq!(plan.cwd, Path::new("/root-of-pod/no-such-dir-rivulet"));
        let (p, c) = pod(json!({"name": "c", "image": "example.com/app:1"}));
        let err = super::plan(&p, &c, &cx(None, &base, &refs)).unwrap_err();
        assert_eq!(err.reason, "ImageNotMapped");
        assert!(
            err.message.contains("example.com/app:1") && err.message.contains("/d/images.yaml")
        );
    }
}
