//! Container logs on disk and `pods/log` served from them.
//!
//! Layout: `<data-dir>/pods/<uid>/logs/<container>.log` (current or last instance),
//! `<container>.previous.log` (the instance before), `<container>.running` (present while the
//! instance runs, so `follow` knows when to end). Lines are in the CRI format
//! `<RFC3339Nano> <stdout|stderr> F <text>`.

use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use rivulet_localcluster::hooks::{LogError, LogOptions, LogStream, PodLogs};

/// Where a container's logs live.
#[derive(Clone, Debug)]
pub struct LogPaths {
    pub current: PathBuf,
    pub previous: PathBuf,
    pub running: PathBuf,
}

/// Log paths of `container` of the pod with `uid`.
pub fn paths(data_dir: &Path, uid: &str, container: &str) -> LogPaths {
    let dir = data_dir.join("pods").join(uid).join("logs");
    LogPaths {
        current: dir.join(format!("{container}.log")),
        previous: dir.join(format!("{container}.previous.log")),
        running: dir.join(format!("{container}.running")),
    }
}

/// Serves `pods/log` from the agent's data directory.
#[derive(Clone, Debug)]
pub struct FileLogs {
    data_dir: PathBuf,
    poll: Duration,
}

impl FileLogs {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            poll: Duration::from_millis(100),
        }
    }
}

/// One stored line turned into what the client asked for; `None` when filtered out.
pub fn render_line(line: &str, options: &LogOptions, since_unix: Option<i64>) -> Option<String> {
    let mut parts = line.splitn(4, ' ');
    let ts = parts.next()?;
    let _stream = parts.next()?;
    let _tag = parts.next()?;
    let text = parts.next().unwrap_or_default();
    if let Some(since) = since_unix
        && crate::time::unix_seconds(ts).is_some_and(|t| t < since)
    {
        return None;
    }
    Some(if options.timestamps {
        format!("{ts} {text}\n")
    } else {
        format!("{text}\n")
    })
}

/// Renders a whole log file's content (non-follow part).
pub fn render(content: &str, options: &LogOptions) -> String {
    let since = options.since_seconds.map(|s| crate::time::now_unix() - s);
    let mut lines: Vec<String> = content
        .lines()
        .filter_map(|l| render_line(l, options, since))
        .collect();
    if let Some(n) = options.tail_lines {
        let n = usize::try_from(n.max(0)).unwrap_or(0);
        if lines.len() > n {
            lines.drain(..lines.len() - n);
        }
    }
    let mut out = lines.concat();
    if let Some(limit) = options.limit_bytes {
        truncate(&mut out, limit);
    }
    out
}

/// A failed container's termination message under `terminationMessagePolicy:
/// FallbackToLogsOnError`, as the kubelet makes it: the last 80 lines of its log, at most their
/// last 2048 bytes.
pub fn termination_message(content: &str) -> String {
    let options = LogOptions {
        tail_lines: Some(80),
        ..LogOptions::default()
    };
    let text = render(content, &options);
    let mut start = text.len().saturating_sub(2048);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

fn truncate(s: &mut String, limit: i64) {
    let mut limit = usize::try_from(limit.max(0)).unwrap_or(0);
    if s.len() > limit {
        while !s.is_char_boundary(limit) {
            limit -= 1;
        }
        s.truncate(limit);
    }
}

struct Follow {
    file: std::fs::File,
    path: PathBuf,
    running: PathBuf,
    inode: u64,
    pending: String,
    options: LogOptions,
    budget: Option<i64>,
    poll: Duration,
    done: bool,
}

impl Follow {
    /// New complete lines, rendered; `None` once the instance ended and everything was sent.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done || self.budget.is_some_and(|b| b <= 0) {
                return None;
            }
            let mut buf = Vec::new();
            let _ = self.file.read_to_end(&mut buf);
            self.pending.push_str(&String::from_utf8_lossy(&buf));
            if let Some(end) = self.pending.rfind('\n') {
                let complete: String = self.pending.drain(..=end).collect();
                let mut out: String = complete
                    .lines()
                    .filter_map(|l| render_line(l, &self.options, None))
                    .collect();
                if let Some(b) = &mut self.budget {
                    truncate(&mut out, *b);
                    *b -= i64::try_from(out.len()).unwrap_or(i64::MAX);
                }
                if !out.is_empty() {
                    return Some(Bytes::from(out));
                }
            }
            let same_file = std::fs::metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
            if !same_file || !self.running.exists() {
                // Drain once more: the writer may have added lines before the instance ended.
                let mut rest = Vec::new();
                let _ = self.file.read_to_end(&mut rest);
                self.done = true;
                if rest.is_empty() {
                    return None;
                }
                self.pending.push_str(&String::from_utf8_lossy(&rest));
                let mut out: String = self
                    .pending
                    .lines()
                    .filter_map(|l| render_line(l, &self.options, None))
                    .collect();
                if let Some(b) = self.budget {
                    truncate(&mut out, b);
                }
                return (!out.is_empty()).then(|| Bytes::from(out));
            }
            tokio::time::sleep(self.poll).await;
        }
    }
}

impl PodLogs for FileLogs {
    fn logs(
        &self,
        _namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        options: &LogOptions,
    ) -> Result<LogStream, LogError> {
        let p = paths(&self.data_dir, uid, container);
        let path = if options.previous {
            &p.previous
        } else {
            &p.current
        };
        let mut file = std::fs::File::open(path).map_err(|_| {
            LogError::BadRequest(if options.previous {
                format!("previous terminated container \"{container}\" in pod \"{name}\" not found")
            } else {
                format!("container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating")
            })
        })?;
        let mut content = String::new();
        file.read_to_string(&mut content)
            .map_err(|e| LogError::NotFound(e.to_string()))?;
        // Only whole lines now; a trailing partial line is picked up by follow.
        let cut = content.rfind('\n').map_or(0, |i| i + 1);
        let rendered = render(&content[..cut], options);
        let first = futures::stream::iter([Ok(Bytes::from(rendered.clone()))]);
        if !options.follow || options.previous {
            return Ok(Box::pin(first));
        }
        let _ = file.seek(SeekFrom::Start(u64::try_from(cut).unwrap_or(0)));
        let inode = file.metadata().map_or(0, |m| m.ino());
        let follow = Follow {
            file,
            path: path.clone(),
            running: p.running,
            inode,
            pending: String::new(),
            options: options.clone(),
            budget: options
                .limit_bytes
                .map(|l| l - i64::try_from(rendered.len()).unwrap_or(0)),
            poll: self.poll,
            done: false,
        };
        let rest = futures::stream::unfold(follow, |mut f| async move {
            f.next_chunk().await.map(|chunk| (Ok(chunk), f))
        });
        Ok(Box::pin(futures::StreamExt::chain(first, rest)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_termination_message_is_the_logs_end_within_the_kubelets_bounds() {
        let line = |i: usize| format!("2026-01-01T00:00:00Z stderr F line {i}\n");
        let many: String = (0..100).map(line).collect();
        let message = termination_message(&many);
        assert!(
            message.starts_with("line 20\n") && message.ends_with("line 99\n"),
            "{message}"
        );
        let long = format!("2026-01-01T00:00:00Z stderr F {}é\n", "x".repeat(3000));
        let message = termination_message(&long);
        assert!(message.len() <= 2048 && message.ends_with("xé\n"));
    }

    #[test]
    fn tail_timestamps_and_limits() {
        let content = "2026-01-01T00:00:00.000000001Z stdout F one\n2026-01-01T00:00:01.000000000Z stderr F two\n2026-01-01T00:00:02.000000000Z stdout F three\n";
        assert_eq!(render(content, &LogOptions::default()), "one\ntwo\nthree\n");
        let tail = LogOptions {
            tail_lines: Some(2),
            ..LogOptions::default()
        };
        assert_eq!(render(content, &tail), "two\nthree\n");
        let ts = LogOptions {
            timestamps: true,
            tail_lines: Some(1),
            ..LogOptions::default()
        };
        assert_eq!(
            render(content, &ts),
            "2026-01-01T00:00:02.000000000Z three\n"
        );
        let limit = LogOptions {
            limit_bytes: Some(5),
            ..LogOptions::default()
        };
        assert_eq!(render(content, &limit), "one\nt");
        let since = LogOptions {
            since_seconds: Some(60),
            ..LogOptions::default()
        };
        assert_eq!(render(content, &since), "");
    }
}
