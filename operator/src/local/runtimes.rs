//! Preparing the Python and Node.js runtimes for local mode, once per data directory: the
//! embedded sources are written out, Python packages installed with pip into a directory of their
//! own, Node packages with `npm ci`. A missing tool stops `rivulet up` with what to install.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};
use rivulet_localcluster_agent::{ImageEntry, ImageTable};

use super::embedded;

/// Runtime images of Fission that local mode maps to this repository's runtimes.
/// (`python-env` alone is what Fission's own test scripts pass to `fission env create --image`.)
pub const PYTHON_IMAGES: [&str; 3] = [
    "fission/python-env",
    "ghcr.io/fission/python-env",
    "python-env",
];
/// Node.js images mapped to the Node runtime.
pub const NODE_IMAGES: [&str; 3] = ["fission/node-env", "ghcr.io/fission/node-env", "node-env"];
/// The fetcher sidecar's image in local mode (the running `rivulet` binary).
pub const FETCHER_IMAGE: &str = "ghcr.io/rivulet-dev/rivulet";

/// The oldest Python the runtime's packages support (Granian needs 3.10).
const PYTHON_MIN: (u32, u32) = (3, 10);
const PYTHON_HINT: &str =
    "install Python 3.10 or newer with pip (`python3 -m pip --version` must work)";

/// Where the prepared runtimes live.
#[derive(Debug)]
pub struct Runtimes {
    python: PathBuf,
    python_dir: PathBuf,
    python_site: PathBuf,
    node: PathBuf,
    node_dir: PathBuf,
}

/// Writes the runtimes under `<data_dir>/runtimes` and installs their packages when their lock
/// files changed since the last run.
pub fn prepare(data_dir: &Path) -> anyhow::Result<Runtimes> {
    let root = data_dir.join("runtimes");
    let python = find_tool("python3", PYTHON_HINT)?;
    require_python_version(&python)?;
    let node = find_tool("node", "install Node.js 20 or newer (node and npm on PATH)")?;
    let python_dir = root.join("python");
    let node_dir = root.join("nodejs");
    write_files(&python_dir, embedded::PYTHON)?;
    write_files(&node_dir, embedded::NODEJS)?;
    let python_site = python_dir.join("site-packages");
    once(&python_dir, "requirements.txt", || {
        let status = Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--target",
            ])
            .arg(&python_site)
            .args(["-r", "requirements.txt"])
            .current_dir(&python_dir)
            .status()
            .context("cannot run pip")?;
        if !status.success() {
            bail!(
                "pip could not install the Python runtime's packages ({}); check network access to PyPI, or run: python3 -m pip install --target {} -r {}",
                status,
                python_site.display(),
                python_dir.join("requirements.txt").display()
            );
        }
        Ok(())
    })?;
    once(&node_dir, "package-lock.json", || {
        let npm = find_tool("npm", "install npm (it comes with Node.js 20)")?;
        let status = Command::new(npm)
            .args(["ci", "--no-audit", "--no-fund", "--silent"])
            .current_dir(&node_dir)
            .status()
            .context("cannot run npm")?;
        if !status.success() {
            bail!(
                "npm ci failed ({status}) in {}; check network access to the npm registry",
                node_dir.display()
            );
        }
        Ok(())
    })?;
    Ok(Runtimes {
        python,
        python_dir,
        python_site,
        node,
        node_dir,
    })
}

impl Runtimes {
    /// The image → command table: Fission's runtime images and the fetcher image.
    pub fn image_table(&self, rivulet: &Path) -> ImageTable {
        let path = |p: &Path| p.display().to_string();
        let python = PYTHON_IMAGES.into_iter().map(|image| ImageEntry {
            image: image.into(),
            command: vec![path(&self.python), path(&self.python_dir.join("server.py"))],
            env: [("PYTHONPATH".to_owned(), path(&self.python_site))].into(),
            ..ImageEntry::default()
        });
        let node = NODE_IMAGES.into_iter().map(|image| ImageEntry {
            image: image.into(),
            command: vec![path(&self.node), path(&self.node_dir.join("server.js"))],
            ..ImageEntry::default()
        });
        let fetcher = ImageEntry {
            image: FETCHER_IMAGE.into(),
            command: vec![path(rivulet), "fetcher".into()],
            ..ImageEntry::default()
        };
        ImageTable::new(python.chain(node).chain([fetcher]))
    }
}

fn find_tool(name: &str, hint: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .with_context(|| format!("`{name}` is not on PATH: {hint}"))
}

/// Stops before pip would fail with a less helpful "no matching distribution" message.
fn require_python_version(python: &Path) -> anyhow::Result<()> {
    let output = Command::new(python)
        .args(["-c", "import sys; print('%d.%d' % sys.version_info[:2])"])
        .output()
        .with_context(|| format!("cannot run {}", python.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    match parse_major_minor(&version) {
        Some(found) if found >= PYTHON_MIN => Ok(()),
        _ => bail!(
            "{} is Python {version:?}, too old for the Python runtime: {PYTHON_HINT}",
            python.display()
        ),
    }
}

fn parse_major_minor(version: &str) -> Option<(u32, u32)> {
    let (major, minor) = version.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

fn write_files(dir: &Path, files: &[(&str, &str)]) -> anyhow::Result<()> {
    for (relative, content) in files {
        let path = dir.join(relative);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(*content) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Runs `install` unless it already succeeded for the current content of `lock` (recorded in a
/// marker next to it), so `rivulet up` is fast from the second start on.
fn once(
    dir: &Path,
    lock: &str,
    install: impl FnOnce() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let content = std::fs::read(dir.join(lock)).with_context(|| format!("reading {lock}"))?;
    let marker = dir.join(format!(".installed-{lock}"));
    if std::fs::read(&marker).ok().as_deref() == Some(content.as_slice()) {
        return Ok(());
    }
    eprintln!("preparing the runtime in {} (once)", dir.display());
    install()?;
    std::fs::write(&marker, content).with_context(|| format!("writing {}", marker.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every runtime file in the repository is embedded (tests, examples and Docker files aside).
    #[test]
    fn embedded_runtime_files_match_the_repository() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        for (dir, files) in [
            ("environments/python", embedded::PYTHON),
            ("environments/nodejs", embedded::NODEJS),
        ] {
            let mut on_disk = Vec::new();
            collect(&repo.join(dir), &repo.join(dir), &mut on_disk);
            let mut embedded: Vec<String> = files.iter().map(|(p, _)| (*p).to_owned()).collect();
            on_disk.sort();
            embedded.sort();
            assert_eq!(
                embedded, on_disk,
                "operator/src/local/embedded.rs is out of date for {dir}"
            );
        }
    }

    #[test]
    fn python_versions_compare_numerically() {
        assert_eq!(parse_major_minor("3.11"), Some((3, 11)));
        assert!(parse_major_minor("3.9").is_some_and(|v| v < PYTHON_MIN));
        assert!(parse_major_minor("3.10").is_some_and(|v| v >= PYTHON_MIN));
        assert_eq!(parse_major_minor(""), None);
        assert_eq!(parse_major_minor("three.ten"), None);
    }

    fn collect(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let skip = [
                "tests",
                "test",
                "test-support",
                "examples",
                "node_modules",
                "__pycache__",
                "site-packages",
            ];
            if path.is_dir() {
                if !skip.contains(&name.as_str()) {
                    collect(root, &path, out);
                }
            } else if !(name.starts_with("Dockerfile")
                || name.starts_with('.')
                || Path::new(&name)
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("pyc")))
            {
                out.push(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
}
