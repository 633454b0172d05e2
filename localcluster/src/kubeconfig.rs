//! The kubeconfig written into the data directory (mode 0600, written with [`crate::private::write_file`]).

/// A kubeconfig for `server` (trusting `ca_pem`) with a bearer `token`, context `localcluster`.
pub fn render(server: &str, ca_pem: &str, token: &str) -> String {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: localcluster\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\nusers:\n- name: localcluster\n  user:\n    token: {token}\ncontexts:\n- name: localcluster\n  context:\n    cluster: localcluster\n    user: localcluster\n    namespace: default\ncurrent-context: localcluster\npreferences: {{}}\n"
    )
}
