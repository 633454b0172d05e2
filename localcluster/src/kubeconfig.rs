//! The kubeconfig written into the data directory (mode 0600).

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A kubeconfig for `server` (trusting `ca_pem`) with a bearer `token`, context `localcluster`.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: localcluster\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: localcluster\n  user:\n    token: {token}\ncontexts:\n- name: localcluster\n  context:\n    cluster: localcluster\n    user: localcluster\n    namespace: default\ncurrent-context: localcluster\npreferences: {{}}\n"
    )
}

/// Write `contents` to `path` with mode 0600, atomically (temp file + rename).
pub fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}
