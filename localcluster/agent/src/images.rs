//! Image → local command table. A container's image is looked up (exact name first, then without
//! tag/digest, then without a `docker.io/` or `docker.io/library/` prefix); the entry gives the
//! program that stands for the image's entrypoint. `local/exec` runs the container's
//! `command` + `args` as given.
//!
//! Extra entries come from `<data-dir>/images.yaml` (reloaded when it changes; its entries win):
//!
//! ```yaml
//! images:
//!   - image: example.com/team/app          # tag/digest ignored unless an entry names it
//!     command: ["/usr/local/bin/app"]      # the image's ENTRYPOINT
//!     args: ["--port", "8080"]             # the image's CMD (used when the pod sets no args)
//!     env: {APP_MODE: local}               # the image's ENV (the pod's env wins)
//!     workingDir: /srv/app                 # the image's WORKDIR (the pod's workingDir wins)
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

/// The reserved image that runs `command` + `args` as given.
pub const LOCAL_EXEC: &str = "local/exec";
/// Name of the table file in the agent's data directory.
pub const TABLE_FILE: &str = "images.yaml";

/// How one image runs locally.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageEntry {
    /// Image name the entry matches (with or without tag).
    pub image: String,
    /// The image's entrypoint.
    #[serde(default)]
    pub command: Vec<String>,
    /// The image's default arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment the image sets.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The image's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// The on-disk form of the table file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TableFile {
    #[serde(default)]
    pub images: Vec<ImageEntry>,
}

/// Built-in entries plus the file's, looked up by image name.
#[derive(Clone, Debug, Default)]
pub struct ImageTable {
    entries: BTreeMap<String, ImageEntry>,
}

impl ImageTable {
    /// A table with the given built-in entries.
    pub fn new(entries: impl IntoIterator<Item = ImageEntry>) -> Self {
        let mut table = Self::default();
        for e in entries {
            table.insert(e);
        }
        table
    }

    /// Adds or replaces an entry.
    pub fn insert(&mut self, entry: ImageEntry) {
        self.entries.insert(entry.image.clone(), entry);
    }

    /// The entry for `image`, trying the exact name, then without tag/digest and registry prefix.
    pub fn lookup(&self, image: &str) -> Option<&ImageEntry> {
        candidates(image).iter().find_map(|c| self.entries.get(c))
    }
}

/// Names to try for `image`, most specific first.
pub fn candidates(image: &str) -> Vec<String> {
    let mut out = vec![image.to_string()];
    let no_digest = image.split('@').next().unwrap_or(image);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let no_tag = match no_digest[last_slash..].find(':') {
        Some(i) => &no_digest[..last_slash + i],
        None => no_digest,
    };
    for name in [no_digest, no_tag] {
        for variant in [
            Some(name),
            name.strip_prefix("docker.io/library/"),
            name.strip_prefix("docker.io/"),
        ]
        .into_iter()
        .flatten()
        {
            if !out.iter().any(|o| o == variant) {
                out.push(variant.to_string());
            }
        }
    }
    out
}

/// The table as the agent sees it: the caller's built-ins overlaid by the file, reloaded when the
/// file's modification time changes.
#[derive(Debug)]
pub struct LiveTable {
    builtin: ImageTable,
    path: PathBuf,
    cached: Mutex<(Option<SystemTime>, ImageTable, Option<String>)>,
}

impl LiveTable {
    pub fn new(builtin: ImageTable, data_dir: &Path) -> Self {
        Self {
            cached: Mutex::new((None, builtin.clone(), None)),
            builtin,
            path: data_dir.join(TABLE_FILE),
        }
    }

    /// Path of the table file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The current table, and the error of the file if it does not parse (then only the
    /// built-ins and the last good file apply).
    pub fn current(&self) -> (ImageTable, Option<String>) {
        let mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let Ok(mut cached) = self.cached.lock() else {
            return (self.builtin.clone(), None);
        };
        if cached.0 != mtime {
            let mut table = self.builtin.clone();
            let mut error = None;
            if mtime.is_some() {
                match std::fs::read_to_string(&self.path)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        serde_yaml_ng::from_str::<TableFile>(&s).map_err(|e| e.to_string())
                    }) {
                    Ok(file) => file.images.into_iter().for_each(|e| table.insert(e)),
                    Err(e) => error = Some(format!("{}: {e}", self.path.display())),
                }
            }
            *cached = (mtime, table, error);
        }
        (cached.1.clone(), cached.2.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_digests_and_registries_are_ignored_unless_listed() {
        let table = ImageTable::new([
            ImageEntry {
                image: "fission/python-env".into(),
                command: vec!["py".into()],
                ..ImageEntry::default()
            },
            ImageEntry {
                image: "fission/python-env:3.12".into(),
                command: vec!["py312".into()],
                ..ImageEntry::default()
            },
            ImageEntry {
                image: "ghcr.io/fission/node-env".into(),
                command: vec!["node".into()],
                ..ImageEntry::default()
            },
        ]);
        let cmd = |i: &str| table.lookup(i).map(|e| e.command[0].clone());
        assert_eq!(cmd("fission/python-env").as_deref(), Some("py"));
        assert_eq!(cmd("fission/python-env:latest").as_deref(), Some("py"));
        assert_eq!(cmd("fission/python-env:3.12").as_deref(), Some("py312"));
        assert_eq!(
            cmd("docker.io/fission/python-env:1.0@sha256:abc").as_deref(),
            Some("py")
        );
        assert_eq!(
            cmd("ghcr.io/fission/node-env:1.31").as_deref(),
            Some("node")
        );
        assert_eq!(cmd("localhost:5000/fission/node-env"), None);
        assert_eq!(cmd("fission/go-env"), None);
    }

    #[test]
    fn the_file_overrides_and_is_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let live = LiveTable::new(ImageTable::default(), dir.path());
        assert!(live.current().0.lookup("my/app").is_none());
        std::fs::write(
            live.path(),
            "images:\n- image: my/app\n  command: [/bin/app]\n",
        )
        .unwrap();
        assert_eq!(
            live.current().0.lookup("my/app:1").unwrap().command,
            vec!["/bin/app"]
        );
        std::fs::write(live.path(), "images: [oops").unwrap();
        // Make sure the mtime differs even on coarse-grained filesystems.
        let f = std::fs::File::options()
            .write(true)
            .open(live.path())
            .unwrap();
        f.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        let (_, err) = live.current();
        assert!(err.unwrap().contains("images.yaml"));
    }
}
