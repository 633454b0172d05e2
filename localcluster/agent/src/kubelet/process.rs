//! Container processes: each runs in its own process group (so signals reach its children),
//! with stdout/stderr appended to its log file in the CRI log format, and a pid file so a
//! restarted agent can reap what a crashed one left behind.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

/// What to run.
#[derive(Clone, Debug)]
pub struct Launch {
    pub program: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub log: PathBuf,
    pub pid_file: PathBuf,
}

/// A started process.
#[derive(Debug)]
pub struct Started {
    pub child: Child,
    pub pid: i32,
    /// The tasks copying stdout and stderr into the log; they end at the pipes' EOF.
    pub pumps: Vec<tokio::task::JoinHandle<()>>,
}

/// Waits (at most 2 s: a child of the process may hold the pipes open) until the pumps have
/// written everything the exited process printed, so the log read for its termination message
/// has its last lines (stderr and stdout are copied by separate tasks).
pub async fn drained(pumps: Vec<tokio::task::JoinHandle<()>>) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    for pump in pumps {
        let _ = tokio::time::timeout_at(deadline, pump).await;
    }
}

/// Starts the process in a new process group, its output going to `launch.log`.
pub fn start(launch: &Launch) -> std::io::Result<Started> {
    let mut cmd = Command::new(&launch.program);
    cmd.args(&launch.args)
        .env_clear()
        .envs(&launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &launch.cwd {
        std::fs::create_dir_all(cwd)?;
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn()?;
    let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
    if let Some(parent) = launch.pid_file.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(
        &launch.pid_file,
        format!("{pid} {}\n", start_time(pid).unwrap_or_default()),
    )?;
    let mut pumps = Vec::new();
    if let Some(out) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(out, "stdout", launch.log.clone())));
    }
    if let Some(err) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(err, "stderr", launch.log.clone())));
    }
    Ok(Started { child, pid, pumps })
}

/// Appends each line of `from` to `log` as `<RFC3339Nano> <stream> F <line>`.
async fn pump(from: impl AsyncRead + Unpin, stream: &'static str, log: PathBuf) {
    let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    else {
        return;
    };
    let mut reader = BufReader::new(from);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if line.last() == Some(&b'\n') {
                    line.pop();
                }
                let mut record =
                    format!("{} {stream} F ", crate::time::now_rfc3339_nano()).into_bytes();
                record.extend_from_slice(&line);
                record.push(b'\n');
                if file.write_all(&record).is_err() {
                    return;
                }
            }
        }
    }
}

/// Exit code as the kubelet reports it (128 + signal when killed by one).
pub fn exit_code(status: std::process::ExitStatus) -> i32 {
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Sends `sig` to the process group `pgid` (ignoring a group that is already gone).
pub fn signal_group(pgid: i32, sig: Signal) {
    if pgid > 0 {
        let _ = signal::killpg(Pid::from_raw(pgid), sig);
    }
}

/// The kernel's start time of `pid` (field 22 of `/proc/<pid>/stat`), to tell a process from a
/// later one that reused its pid.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Kills every process group recorded in `dir` that is still the same process, and removes the
/// records. Returns how many were killed.
pub fn reap_orphans(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "pid")
            && let Ok(text) = std::fs::read_to_string(&path)
        {
            let mut parts = text.split_whitespace();
            let pid: i32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            let started: u64 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
            if pid > 0 && start_time(pid) == Some(started) {
                signal_group(pid, Signal::SIGKILL);
                let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                killed += 1;
            }
            let _ = std::fs::remove_file(&path);
        }
    }
    killed
}
