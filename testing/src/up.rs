//! `rivulet up` as a child process, for end-to-end tests and benchmarks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long `rivulet up` may take to announce itself (the first start prepares the runtimes with
/// pip and npm).
const START_DEADLINE: Duration = Duration::from_mins(5);
/// How long it gets to stop after SIGTERM before it is killed.
const STOP_DEADLINE: Duration = Duration::from_mins(1);

/// A `rivulet up` on free ports with a temp data dir (log in `<dir>/up.log`); stopped with
/// SIGTERM when dropped, so its pods' processes stop with it.
#[derive(Debug)]
pub struct UpProcess {
    /// The process.
    pub child: Child,
    /// The kubeconfig it printed.
    pub kubeconfig: PathBuf,
    /// The router URL it printed (`http://127.0.0.1:<port>`).
    pub router: String,
    /// Data directory and log; removed on drop.
    pub dir: tempfile::TempDir,
}

impl UpProcess {
    /// Starts `<rivulet> up --api-port 0 --router-port 0 --data-dir <temp> <extra>` and waits
    /// for its `export KUBECONFIG=` and `router:` lines. Panics with the log if it does not get
    /// there (test support).
    #[allow(clippy::missing_panics_doc, clippy::unwrap_used, clippy::expect_used)]
    pub fn start(rivulet: &Path, extra: &[&str]) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rivulet-up-")
            .tempdir()
            .unwrap();
        let (child, kubeconfig, router) = launch(rivulet, dir.path(), extra);
        Self {
            child,
            kubeconfig,
            router,
            dir,
        }
    }

    /// Stops this `rivulet up` gracefully (SIGTERM) and starts it again on the same data dir,
    /// as a user restarting it would; the router gets a new port.
    #[allow(clippy::missing_panics_doc)]
    pub fn restart(&mut self, rivulet: &Path, extra: &[&str]) {
        self.stop();
        let (child, kubeconfig, router) = launch(rivulet, self.dir.path(), extra);
        self.child = child;
        self.kubeconfig = kubeconfig;
        self.router = router;
    }

    /// SIGTERM, then waits up to the stop deadline (killing it after that).
    fn stop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_DEADLINE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let log = std::fs::read_to_string(self.dir.path().join("up.log")).unwrap_or_default();
        eprintln!("rivulet up did not stop within 60 s after SIGTERM; log:\n{log}");
    }
}

/// Runs `rivulet up` on `dir/data` (appending to `dir/up.log`) and waits for its
/// `export KUBECONFIG=` and `router:` lines.
#[allow(clippy::unwrap_used, clippy::expect_used)]
fn launch(rivulet: &Path, dir: &Path, extra: &[&str]) -> (Child, PathBuf, String) {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("up.log"))
        .unwrap();
    let mut child = Command::new(rivulet)
        .args(["up", "--api-port", "0", "--router-port", "0", "--data-dir"])
        .arg(dir.join("data"))
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("cannot run rivulet up");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let (mut kubeconfig, mut router) = (None, None);
    let deadline = Instant::now() + START_DEADLINE;
    while kubeconfig.is_none() || router.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).unwrap_or_else(|_| {
            let log = std::fs::read_to_string(dir.join("up.log")).unwrap_or_default();
            panic!("rivulet up did not become ready; its log:\n{log}")
        });
        if let Some(path) = line.strip_prefix("export KUBECONFIG=") {
            kubeconfig = Some(PathBuf::from(path));
        } else if let Some(url) = line.strip_prefix("router: ") {
            router = Some(url.to_owned());
        }
    }
    (child, kubeconfig.unwrap(), router.unwrap())
}

/// `kubectl apply -f -` of `manifest` against `kubeconfig`. Panics if it fails (test support).
#[allow(clippy::missing_panics_doc, clippy::unwrap_used)]
pub fn kubectl_apply(kubeconfig: &Path, manifest: &str) {
    use std::io::Write;
    let mut child = Command::new("kubectl")
        .args(["apply", "-f", "-"])
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "kubectl apply failed");
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
