//! Local-mode path convention: `RIVULET_ROOT` stands for the pod's filesystem root.
//!
//! In a real pod `/userfunc`, `/secrets` and `/configs` are volume mounts. Rivulet's local mode runs
//! pods as processes on the host, so the node agent points `RIVULET_ROOT` at a per-pod directory
//! and every absolute in-pod path is resolved below it. Paths sent over the wire (the `LoadReq`
//! `filepath`) stay in-pod paths; the runtime applies the same rule.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Environment variable naming the directory that stands for `/` in local mode.
pub const ROOT_ENV: &str = "RIVULET_ROOT";

/// Where an in-pod path lives on this machine: under `root` when one is set and the path is
/// absolute, unchanged otherwise. The path is normalised first and `..` stops at the pod's root
/// (as `/..` is `/`), so the result never leaves `root`; the runtimes apply the same rule.
pub fn resolve_in_pod(root: Option<&Path>, in_pod: &Path) -> PathBuf {
    match root {
        Some(root) if in_pod.is_absolute() => {
            let mut relative = PathBuf::new();
            for component in in_pod.components() {
                match component {
                    Component::Normal(part) => relative.push(part),
                    Component::ParentDir => {
                        relative.pop();
                    }
                    Component::RootDir | Component::Prefix(_) | Component::CurDir => {}
                }
            }
            root.join(relative)
        }
        _ => in_pod.to_path_buf(),
    }
}

/// The root named by `RIVULET_ROOT`, if set to a non-empty value.
pub fn root_from_env() -> Option<PathBuf> {
    root_from_value(std::env::var_os(ROOT_ENV))
}

fn root_from_value(value: Option<OsString>) -> Option<PathBuf> {
    value.filter(|v| !v.is_empty()).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_paths_move_under_the_root() {
        let root = Path::new("/var/lib/rivulet/pods/p1/root");
        assert_eq!(
            resolve_in_pod(Some(root), Path::new("/userfunc/deployarchive")),
            Path::new("/var/lib/rivulet/pods/p1/root/userfunc/deployarchive")
        );
        assert_eq!(
            resolve_in_pod(Some(root), Path::new("/")),
            Path::new("/var/lib/rivulet/pods/p1/root")
        );
    }

    #[test]
    fn dot_dot_cannot_leave_the_root() {
        let root = Path::new("/pods/p1");
        assert_eq!(
            resolve_in_pod(Some(root), Path::new("/userfunc/../../../etc/passwd")),
            Path::new("/pods/p1/etc/passwd")
        );
        assert_eq!(
            resolve_in_pod(Some(root), Path::new("/./userfunc/./x")),
            Path::new("/pods/p1/userfunc/x")
        );
    }

    #[test]
    fn without_a_root_paths_are_unchanged() {
        assert_eq!(
            resolve_in_pod(None, Path::new("/userfunc")),
            Path::new("/userfunc")
        );
    }

    #[test]
    fn relative_paths_are_unchanged() {
        assert_eq!(
            resolve_in_pod(Some(Path::new("/r")), Path::new("userfunc")),
            Path::new("userfunc")
        );
    }

    #[test]
    fn empty_env_value_means_no_root() {
        assert_eq!(root_from_value(Some(OsString::new())), None);
        assert_eq!(root_from_value(None), None);
        assert_eq!(
            root_from_value(Some("/r".into())),
            Some(PathBuf::from("/r"))
        );
    }
}
