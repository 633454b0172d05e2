//! Volumes as directories: `<pod-dir>/volumes/<name>` holds each volume (emptyDir, configMap,
//! secret, downwardAPI; hostPath is a symlink to the host path), and each container gets a root
//! directory `<pod-dir>/roots/<container>` in which every `mountPath` is a symlink to its volume
//! (or to `subPath` inside it). Plain processes receive that root as `RIVULET_ROOT`; sandboxed
//! ones (`sandbox.rs`) get each volume bound at its real `mountPath` instead.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, KeyToPath, Pod, Volume, VolumeMount};

/// The content of one volume, decided before anything is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VolumeContent {
    /// An empty directory (emptyDir and anything unsupported).
    Empty,
    /// Files (relative path, bytes, mode).
    Files(Vec<(String, Vec<u8>, u32)>),
    /// A symlink to a host path.
    Host(PathBuf),
}

/// A path inside a root: leading `/` dropped, `..` and `.` refused or removed.
pub fn inside(root: &Path, path: &str) -> Option<PathBuf> {
    let mut out = root.to_path_buf();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Files of a configMap/secret volume from its data (`items` select and rename keys).
pub fn key_files(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    default_mode: Option<i32>,
    what: &str,
    optional: bool,
) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    let mode = |m: Option<i32>| u32::try_from(m.or(default_mode).unwrap_or(0o644)).unwrap_or(0o644);
    match items {
        None => Ok(data
            .iter()
            .map(|(k, v)| (k.clone(), v.clone(), mode(None)))
            .collect()),
        Some(items) => {
            let mut out = Vec::new();
            for item in items {
                match data.get(&item.key) {
                    Some(v) => out.push((item.path.clone(), v.clone(), mode(item.mode))),
                    None if optional => {}
                    None => {
                        return Err(format!(
                            "configured to use key {} of {what} but it does not exist",
                            item.key
                        ));
                    }
                }
            }
            Ok(out)
        }
    }
}

/// Files of a downwardAPI volume.
pub fn downward_files(pod: &Pod, volume: &Volume) -> Result<Vec<(String, Vec<u8>, u32)>, String> {
    let Some(d) = &volume.downward_api else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in d.items.iter().flatten() {
        let value = match &item.field_ref {
            Some(f) => super::env::field_value(pod, &f.field_path)?,
            None => String::new(),
        };
        let mode = u32::try_from(item.mode.or(d.default_mode).unwrap_or(0o644)).unwrap_or(0o644);
        out.push((item.path.clone(), value.into_bytes(), mode));
    }
    Ok(out)
}

/// Writes a volume's content under `dir`.
pub fn materialize(dir: &Path, content: &VolumeContent) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match content {
        VolumeContent::Empty => std::fs::create_dir_all(dir),
        VolumeContent::Host(target) => {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent)?;
            }
            replace_symlink(target, dir)
        }
        VolumeContent::Files(files) => {
            std::fs::create_dir_all(dir)?;
            for (path, bytes, mode) in files {
                let Some(file) = inside(dir, path) else {
                    continue;
                };
                if let Some(parent) = file.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&file, bytes)?;
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(*mode & 0o777))?;
            }
            Ok(())
        }
    }
}

fn replace_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(link) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(link)?,
        Ok(_) => std::fs::remove_file(link)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(target, link)
}

/// Where a volume mount's content lives: the volume's directory, or `subPath` inside it (`None`
/// when `subPath` would leave it).
pub fn mount_source(volumes_dir: &Path, m: &VolumeMount) -> Option<PathBuf> {
    let volume = volumes_dir.join(&m.name);
    match m.sub_path.as_deref().filter(|s| !s.is_empty()) {
        Some(sub) => inside(&volume, sub),
        None => Some(volume),
    }
}

/// Builds `root` for a container: each mountPath a symlink to its volume directory.
pub fn build_root(root: &Path, volumes_dir: &Path, container: &Container) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    for m in container.volume_mounts.iter().flatten() {
        let Some(link) = inside(root, &m.mount_path) else {
            continue;
        };
        if link == root {
            continue;
        }
        let Some(target) = mount_source(volumes_dir, m) else {
            continue;
        };
        if !target.exists() {
            // A subPath that is not there yet (the kubelet creates it too).
            std::fs::create_dir_all(&target)?;
        }
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        replace_symlink(&target, &link)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside() {
        let root = Path::new("/r");
        assert_eq!(
            inside(root, "/userfunc/x").unwrap(),
            Path::new("/r/userfunc/x")
        );
        assert!(inside(root, "/../etc").is_none());
    }

    #[test]
    fn items_select_keys() {
        let data = BTreeMap::from([
            ("a".to_string(), b"1".to_vec()),
            ("b".to_string(), b"2".to_vec()),
        ]);
        let items = [KeyToPath {
            key: "b".into(),
            path: "dir/b.txt".into(),
            mode: Some(0o600),
            ..KeyToPath::default()
        }];
        let files = key_files(&data, Some(&items), None, "secret s", false).unwrap();
        assert_eq!(files, vec![("dir/b.txt".to_string(), b"2".to_vec(), 0o600)]);
        let missing = [KeyToPath {
            key: "z".into(),
            path: "z".into(),
            mode: None,
            ..KeyToPath::default()
        }];
        assert!(key_files(&data, Some(&missing), None, "secret s", false).is_err());
        assert!(
            key_files(&data, Some(&missing), None, "secret s", true)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn roots_link_mount_paths_to_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let vols = dir.path().join("volumes");
        materialize(
            &vols.join("code"),
            &VolumeContent::Files(vec![("f".into(), b"hi".to_vec(), 0o644)]),
        )
        .unwrap();
        let c: Container = serde_json::from_value(serde_json::json!({"name": "c",
            "volumeMounts": [{"name": "code", "mountPath": "/userfunc"}]}))
        .unwrap();
        let root = dir.path().join("roots/c");
        build_root(&root, &vols, &c).unwrap();
        build_root(&root, &vols, &c).unwrap();
        assert_eq!(std::fs::read(root.join("userfunc/f")).unwrap(), b"hi");
    }
}
