//! Runs a suite against a cluster with the real `kubectl`: one `kuttl-test-<random>` namespace per
//! test case, steps in index order (delete → commands → apply → asserts, assert commands and
//! errors polled together until the step's deadline), cases in parallel up to `parallel`.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::model::{
    Command, CommandKind, DeleteRef, Object, ParseError, Step, TestCase, TestSuite, parse_case,
    parse_suite,
};
use crate::subset::is_subset;

/// How to reach the cluster and what to run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Kubeconfig for `kubectl` and for commands (`$KUBECONFIG`).
    pub kubeconfig: PathBuf,
    /// The `kubectl` binary.
    pub kubectl: PathBuf,
    /// Only these test cases (directory names); all when empty.
    pub only: Vec<String>,
    /// How often asserts are re-checked until their deadline (KUTTL: every second).
    pub poll_interval: Duration,
}

impl RunOptions {
    /// `kubectl` from `PATH`, all cases, re-checked every 500 ms.
    pub fn new(kubeconfig: impl Into<PathBuf>) -> Self {
        Self {
            kubeconfig: kubeconfig.into(),
            kubectl: PathBuf::from("kubectl"),
            only: Vec::new(),
            poll_interval: Duration::from_millis(500),
        }
    }
}

/// A loaded suite: its settings and its test cases.
#[derive(Clone, Debug)]
pub struct Suite {
    /// `kuttl-test.yaml`.
    pub config: TestSuite,
    /// Every case of every `testDirs` entry, sorted by name.
    pub cases: Vec<TestCase>,
}

fn io_error(path: &Path, source: std::io::Error) -> ParseError {
    ParseError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Reads `kuttl-test.yaml` and the test cases it names; `testDirs` are relative to the
/// directory of the file (run `kubectl kuttl test` from there for the same meaning).
pub fn load_suite(config_file: &Path) -> Result<Suite, ParseError> {
    let text = std::fs::read_to_string(config_file).map_err(|e| io_error(config_file, e))?;
    let config = parse_suite(&config_file.display().to_string(), &text)?;
    let base = config_file.parent().unwrap_or(Path::new("."));
    let mut cases = Vec::new();
    for test_dir in &config.test_dirs {
        let dir = base.join(test_dir);
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(|e| io_error(&dir, e))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_dir())
            .collect();
        entries.sort();
        for case_dir in entries {
            cases.push(load_case(&case_dir)?);
        }
    }
    Ok(Suite { config, cases })
}

/// Reads one test case directory.
pub fn load_case(case_dir: &Path) -> Result<TestCase, ParseError> {
    let name = case_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut files = Vec::new();
    for entry in std::fs::read_dir(case_dir).map_err(|e| io_error(case_dir, e))? {
        let entry = entry.map_err(|e| io_error(case_dir, e))?;
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            if crate::model::parse_file_name(&format!("{file_name}.yaml"))?.is_some() {
                return Err(ParseError::Unsupported {
                    file: format!("{name}/{file_name}"),
                    message: "step directories".to_owned(),
                });
            }
            continue;
        }
        if crate::model::parse_file_name(&file_name)?.is_none() {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        files.push((file_name, text));
    }
    parse_case(&name, case_dir.to_owned(), &files)
}

/// The outcome of one test case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// Directory name.
    pub name: String,
    /// The namespace it ran in.
    pub namespace: String,
    /// Wall time.
    pub duration: Duration,
    /// Why it failed, if it did.
    pub failure: Option<Failure>,
}

/// The first failing step of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// `00` style index and the step's files.
    pub step: String,
    /// What went wrong (for asserts: each unmet check with its first mismatch).
    pub message: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {}: {}", self.step, self.message)
    }
}

/// Every case's outcome.
#[derive(Clone, Debug)]
pub struct SuiteReport {
    /// In case-name order.
    pub cases: Vec<CaseResult>,
}

impl SuiteReport {
    /// The failed cases.
    pub fn failures(&self) -> impl Iterator<Item = &CaseResult> {
        self.cases.iter().filter(|c| c.failure.is_some())
    }

    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.failures().next().is_none()
    }
}

impl fmt::Display for SuiteReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for case in &self.cases {
            let secs = case.duration.as_secs_f64();
            match &case.failure {
                None => writeln!(f, "--- PASS: {} ({secs:.1}s)", case.name)?,
                Some(failure) => writeln!(
                    f,
                    "--- FAIL: {} ({secs:.1}s, namespace {})\n    {}",
                    case.name,
                    case.namespace,
                    failure.to_string().replace('\n', "\n    ")
                )?,
            }
        }
        let failed = self.failures().count();
        write!(f, "{} passed, {failed} failed", self.cases.len() - failed)
    }
}

/// Loads the suite at `config_file` and runs it.
pub async fn run_suite(
    config_file: &Path,
    options: &RunOptions,
) -> Result<SuiteReport, ParseError> {
    let suite = load_suite(config_file)?;
    for wanted in &options.only {
        if !suite.cases.iter().any(|c| &c.name == wanted) {
            return Err(ParseError::Invalid {
                file: config_file.display().to_string(),
                message: format!("no test case named {wanted}"),
            });
        }
    }
    Ok(run_cases(&suite, options).await)
}

/// Runs the (selected) cases of a loaded suite, `parallel` at a time.
pub async fn run_cases(suite: &Suite, options: &RunOptions) -> SuiteReport {
    let semaphore = Arc::new(tokio::sync::Semaphore::new(suite.config.parallel));
    let options = Arc::new(options.clone());
    let mut tasks = tokio::task::JoinSet::new();
    for case in &suite.cases {
        if !options.only.is_empty() && !options.only.contains(&case.name) {
            continue;
        }
        let (case, options, semaphore) = (case.clone(), options.clone(), semaphore.clone());
        let timeout = suite.config.timeout;
        tasks.spawn(async move {
            let _permit = semaphore.acquire_owned().await;
            run_case(&case, timeout, &options).await
        });
    }
    let mut cases = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => cases.push(result),
            Err(e) => cases.push(CaseResult {
                name: "<task>".to_owned(),
                namespace: String::new(),
                duration: Duration::ZERO,
                failure: Some(Failure {
                    step: "-".to_owned(),
                    message: format!("the test task failed: {e}"),
                }),
            }),
        }
    }
    cases.sort_by(|a, b| a.name.cmp(&b.name));
    SuiteReport { cases }
}

/// A `kuttl-test-<random>` name.
fn namespace_name() -> String {
    let mut bytes = [0u8; 5];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        bytes[..4].copy_from_slice(&nanos.to_le_bytes());
    }
    let mut name = String::from("kuttl-test-");
    for b in bytes {
        let _ = write!(name, "{b:02x}");
    }
    name
}

/// Runs one case in a fresh namespace (deleted afterwards, without waiting).
pub async fn run_case(case: &TestCase, suite_timeout: u64, options: &RunOptions) -> CaseResult {
    let started = Instant::now();
    let namespace = namespace_name();
    let ctx = Ctx {
        kubectl: Kubectl {
            bin: options.kubectl.clone(),
            kubeconfig: options.kubeconfig.clone(),
        },
        namespace: namespace.clone(),
        dir: case.dir.clone(),
        suite_timeout,
        poll: options.poll_interval,
    };
    let mut failure = match ctx
        .kubectl
        .run(
            &["create", "namespace", &namespace],
            None,
            ctx.seconds(None),
        )
        .await
    {
        Ok(out) if out.success => None,
        Ok(out) => Some(Failure {
            step: "setup".to_owned(),
            message: format!("creating namespace {namespace}: {}", out.stderr.trim()),
        }),
        Err(e) => Some(Failure {
            step: "setup".to_owned(),
            message: e.to_string(),
        }),
    };
    if failure.is_none() {
        for step in &case.steps {
            if let Err(message) = ctx.run_step(step).await {
                failure = Some(Failure {
                    step: format!("{:02} ({})", step.index, step.files.join(", ")),
                    message,
                });
                break;
            }
        }
    }
    let _ = ctx
        .kubectl
        .run(
            &["delete", "namespace", &namespace, "--wait=false"],
            None,
            ctx.seconds(None),
        )
        .await;
    CaseResult {
        name: case.name.clone(),
        namespace,
        duration: started.elapsed(),
        failure,
    }
}

/// Why a process could not be run to completion.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It did not start.
    #[error("cannot run {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// It was killed at its deadline.
    #[error("{what} did not finish within {seconds}s")]
    Timeout {
        /// The command line.
        what: String,
        /// The timeout.
        seconds: u64,
    },
}

/// A finished process.
#[derive(Clone, Debug)]
struct Output {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

async fn run_process(
    mut command: tokio::process::Command,
    what: String,
    stdin: Option<&str>,
    timeout: Duration,
) -> Result<Output, RunError> {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(|source| RunError::Spawn {
        program: what.clone(),
        source,
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A process that exits without reading its input is judged by its exit status.
        let _ = pipe.write_all(input.as_bytes()).await;
    }
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(Output {
            success: out.status.success(),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }),
        Ok(Err(source)) => Err(RunError::Spawn {
            program: what,
            source,
        }),
        Err(_) => Err(RunError::Timeout {
            what,
            seconds: timeout.as_secs(),
        }),
    }
}

#[derive(Clone, Debug)]
struct Kubectl {
    bin: PathBuf,
    kubeconfig: PathBuf,
}

impl Kubectl {
    async fn run(
        &self,
        args: &[&str],
        stdin: Option<&str>,
        timeout: Duration,
    ) -> Result<Output, RunError> {
        let mut command = tokio::process::Command::new(&self.bin);
        command.arg("--kubeconfig").arg(&self.kubeconfig).args(args);
        run_process(
            command,
            format!("kubectl {}", args.join(" ")),
            stdin,
            timeout,
        )
        .await
    }
}

/// `kubectl`'s resource argument for an apiVersion and kind (`Deployment.v1.apps`, `Pod`).
pub fn resource_type(api_version: &str, kind: &str) -> String {
    match api_version.split_once('/') {
        Some((group, version)) => format!("{kind}.{version}.{group}"),
        None => kind.to_owned(),
    }
}

/// Expands `$NAME` and `${NAME}` with `lookup` (unknown names expand to nothing, as Go's
/// `os.ExpandEnv`); `$$` is a literal `$`.
pub fn expand_vars(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('$') => {
                chars.next();
                out.push('$');
            }
            Some('{') => {
                chars.next();
                let name: String = chars.by_ref().take_while(|&c| c != '}').collect();
                out.push_str(&lookup(&name).unwrap_or_default());
            }
            Some(&c) if c == '_' || c.is_ascii_alphabetic() => {
                let mut name = String::new();
                while let Some(&c) = chars.peek() {
                    if c == '_' || c.is_ascii_alphanumeric() {
                        name.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push_str(&lookup(&name).unwrap_or_default());
            }
            _ => out.push('$'),
        }
    }
    out
}

/// Splits a `command` into words as a POSIX shell would (whitespace, `'...'`, `"..."` with `\\`
/// escapes, `\\` outside quotes), without running a shell: KUTTL's `shlex` splitting.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if let Some(done) = word.take() {
                    words.push(done);
                }
            }
            '\'' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => current.push(c),
                        None => return Err("unterminated single quote".to_owned()),
                    }
                }
            }
            '"' => {
                let current = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => current.push(c),
                            Some(c) => {
                                current.push('\\');
                                current.push(c);
                            }
                            None => return Err("unterminated double quote".to_owned()),
                        },
                        Some(c) => current.push(c),
                        None => return Err("unterminated double quote".to_owned()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a trailing backslash".to_owned()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Ok(words)
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    let start = lines.len().saturating_sub(15);
    lines[start..].join("\n")
}

struct Ctx {
    kubectl: Kubectl,
    namespace: String,
    dir: PathBuf,
    suite_timeout: u64,
    poll: Duration,
}

impl Ctx {
    fn seconds(&self, timeout: Option<u64>) -> Duration {
        Duration::from_secs(timeout.unwrap_or(self.suite_timeout))
    }

    async fn run_step(&self, step: &Step) -> Result<(), String> {
        let timeout = self.seconds(step.timeout);
        for delete in &step.delete {
            self.delete(delete, timeout).await?;
        }
        for command in &step.commands {
            self.command(command).await?;
        }
        for object in &step.apply {
            self.apply(object).await?;
        }
        let deadline = Instant::now() + timeout;
        loop {
            let problems = self.check(step).await;
            if problems.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "not satisfied after {}s:\n{}",
                    timeout.as_secs(),
                    problems.join("\n")
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            tokio::time::sleep(self.poll.min(left)).await;
        }
    }

    async fn delete(&self, delete: &DeleteRef, timeout: Duration) -> Result<(), String> {
        let kind = resource_type(&delete.api_version, &delete.kind);
        let namespace = delete.namespace.as_deref().unwrap_or(&self.namespace);
        let selector: String = delete
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let wait = format!("--timeout={}s", timeout.as_secs());
        let mut args = vec!["delete", &kind];
        match (&delete.name, selector.is_empty()) {
            (Some(name), _) => args.push(name),
            (None, false) => args.extend(["-l", &selector]),
            (None, true) => args.push("--all"),
        }
        args.extend(["-n", namespace, "--ignore-not-found", "--wait=true", &wait]);
        let out = self
            .kubectl
            .run(&args, None, timeout + Duration::from_secs(5))
            .await
            .map_err(|e| e.to_string())?;
        if out.success {
            Ok(())
        } else {
            Err(format!("kubectl {}: {}", args.join(" "), out.stderr.trim()))
        }
    }

    fn lookup(&self, name: &str) -> Option<String> {
        match name {
            "NAMESPACE" => Some(self.namespace.clone()),
            "KUBECONFIG" => Some(self.kubectl.kubeconfig.display().to_string()),
            _ => std::env::var(name).ok(),
        }
    }

    async fn run_command(&self, command: &Command) -> Result<Output, String> {
        let (mut process, what) = match &command.run {
            CommandKind::Command(line) => {
                let expanded = expand_vars(line, &|n| self.lookup(n));
                let words =
                    split_words(&expanded).map_err(|e| format!("command `{expanded}`: {e}"))?;
                let mut words = words.into_iter();
                let Some(program) = words.next() else {
                    return Err("an empty command".to_owned());
                };
                let mut process = tokio::process::Command::new(program);
                process.args(words);
                if command.namespaced {
                    process.args(["--namespace", &self.namespace]);
                }
                (process, format!("command `{expanded}`"))
            }
            CommandKind::Script(script) => {
                let mut process = tokio::process::Command::new("sh");
                process.args(["-c", script]);
                (process, format!("script `{}`", script.trim()))
            }
        };
        process
            .current_dir(&self.dir)
            .env("NAMESPACE", &self.namespace)
            .env("KUBECONFIG", &self.kubectl.kubeconfig);
        run_process(process, what.clone(), None, self.seconds(command.timeout))
            .await
            .map_err(|e| e.to_string())
            .and_then(|out| {
                if out.success || command.ignore_failure {
                    Ok(out)
                } else {
                    Err(format!(
                        "{what} failed (exit code {}):\n{}\n{}",
                        out.code
                            .map_or_else(|| "none".to_owned(), |c| c.to_string()),
                        tail(&out.stdout),
                        tail(&out.stderr)
                    ))
                }
            })
    }

    async fn command(&self, command: &Command) -> Result<(), String> {
        self.run_command(command).await.map(|_| ())
    }

    /// Creates the object, or merge-patches it when it exists (KUTTL's apply: a partial object
    /// updates only the fields it names).
    async fn apply(&self, object: &Object) -> Result<(), String> {
        let json = object.value.to_string();
        let namespace_args = ["-n", self.namespace.as_str()];
        let timeout = self.seconds(None);
        let mut args = vec!["get", "-f", "-", "-o", "name"];
        if object.namespace().is_none() {
            args.extend(namespace_args);
        }
        let existing = self
            .kubectl
            .run(&args, Some(&json), timeout)
            .await
            .map_err(|e| e.to_string())?;
        let exists = if existing.success {
            true
        } else if existing.stderr.contains("NotFound") {
            false
        } else {
            return Err(format!(
                "{}: reading {}: {}",
                object.file,
                object.describe(&self.namespace),
                existing.stderr.trim()
            ));
        };
        let mut args = if exists {
            vec![
                "patch", "-f", "-", "--type", "merge", "-p", &json, "-o", "name",
            ]
        } else {
            vec!["create", "-f", "-", "-o", "name"]
        };
        if object.namespace().is_none() {
            args.extend(namespace_args);
        }
        let out = self
            .kubectl
            .run(&args, Some(&json), timeout)
            .await
            .map_err(|e| e.to_string())?;
        if out.success {
            Ok(())
        } else {
            Err(format!(
                "{}: {} {}: {}",
                object.file,
                if exists { "patching" } else { "creating" },
                object.describe(&self.namespace),
                out.stderr.trim()
            ))
        }
    }

    /// Every unmet check of the step, each with its first mismatch.
    async fn check(&self, step: &Step) -> Vec<String> {
        let mut problems = Vec::new();
        for object in &step.asserts {
            if let Err(problem) = self.assert(object).await {
                problems.push(problem);
            }
        }
        for command in &step.assert_commands {
            if let Err(problem) = self.command(command).await {
                problems.push(format!("assert {problem}"));
            }
        }
        for object in &step.errors {
            if let Err(problem) = self.error(object).await {
                problems.push(problem);
            }
        }
        problems
    }

    /// The live objects an expected object refers to: `Ok(None)` when a named one is absent.
    async fn live(&self, object: &Object) -> Result<Option<Vec<Value>>, String> {
        let kind = resource_type(object.api_version(), object.kind());
        let namespace = object.namespace().unwrap_or(&self.namespace);
        let selector = object.label_selector();
        let mut args = vec!["get", kind.as_str(), "-n", namespace, "-o", "json"];
        if let Some(name) = object.name() {
            args.insert(2, name);
        } else if let Some(selector) = &selector {
            args.extend(["-l", selector]);
        }
        let out = self
            .kubectl
            .run(&args, None, self.seconds(None))
            .await
            .map_err(|e| e.to_string())?;
        if !out.success {
            if out.stderr.contains("NotFound") {
                return Ok(None);
            }
            return Err(format!(
                "{}: {}: kubectl get: {}",
                object.file,
                object.describe(&self.namespace),
                out.stderr.trim()
            ));
        }
        let value: Value = serde_json::from_str(&out.stdout)
            .map_err(|e| format!("kubectl get {kind}: not JSON: {e}"))?;
        Ok(Some(if object.name().is_some() {
            vec![value]
        } else {
            value["items"].as_array().cloned().unwrap_or_default()
        }))
    }

    async fn assert(&self, object: &Object) -> Result<(), String> {
        let what = object.describe(&self.namespace);
        let Some(live) = self.live(object).await? else {
            return Err(format!("{}: {what}: not found", object.file));
        };
        let mut mismatches = Vec::new();
        for candidate in &live {
            match is_subset(&object.value, candidate) {
                Ok(()) => return Ok(()),
                Err(mismatch) => mismatches.push((
                    candidate["metadata"]["name"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                    mismatch,
                )),
            }
        }
        if object.name().is_some() {
            let (_, mismatch) = mismatches
                .first()
                .ok_or_else(|| format!("{}: {what}: not found", object.file))?;
            return Err(format!("{}: {what}: {mismatch}", object.file));
        }
        if mismatches.is_empty() {
            return Err(format!("{}: {what}: no such object", object.file));
        }
        let shown: Vec<String> = mismatches
            .iter()
            .take(5)
            .map(|(name, m)| format!("  {name}: {m}"))
            .collect();
        Err(format!(
            "{}: {what}: none of {} object(s) matches:\n{}",
            object.file,
            mismatches.len(),
            shown.join("\n")
        ))
    }

    async fn error(&self, object: &Object) -> Result<(), String> {
        let what = object.describe(&self.namespace);
        let Some(live) = self.live(object).await? else {
            return Ok(());
        };
        match live.iter().find(|c| is_subset(&object.value, c).is_ok()) {
            None => Ok(()),
            Some(found) => Err(format!(
                "{}: {what}: exists and matches the errors file (object {}), but must not",
                object.file,
                found["metadata"]["name"].as_str().unwrap_or("?")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_types_are_fully_qualified() {
        assert_eq!(resource_type("apps/v1", "Deployment"), "Deployment.v1.apps");
        assert_eq!(resource_type("v1", "Pod"), "Pod");
        assert_eq!(
            resource_type("fission.io/v1", "Environment"),
            "Environment.v1.fission.io"
        );
    }

    #[test]
    fn variables_expand_like_go_expand_env() {
        let lookup = |name: &str| (name == "NAMESPACE").then(|| "kuttl-test-1".to_owned());
        assert_eq!(
            expand_vars("kubectl get pods -n $NAMESPACE", &lookup),
            "kubectl get pods -n kuttl-test-1"
        );
        assert_eq!(
            expand_vars("${NAMESPACE}x $$HOME $UNSET.", &lookup),
            "kuttl-test-1x $HOME ."
        );
        assert_eq!(expand_vars("cost: 5$", &lookup), "cost: 5$");
    }

    #[test]
    fn commands_split_like_a_shell_without_one() {
        assert_eq!(
            split_words(r#"kubectl get cm -o jsonpath='{.data.a b}' "x \"y\"" a\ b ''"#).unwrap(),
            [
                "kubectl",
                "get",
                "cm",
                "-o",
                "jsonpath={.data.a b}",
                r#"x "y""#,
                "a b",
                ""
            ]
        );
        assert_eq!(split_words("  ").unwrap(), Vec::<String>::new());
        assert!(split_words("echo 'open").is_err());
        assert!(split_words("echo \"open").is_err());
    }

    #[test]
    fn namespaces_are_random_and_valid() {
        let (a, b) = (namespace_name(), namespace_name());
        assert_ne!(a, b);
        assert!(a.starts_with("kuttl-test-") && a.len() == 21, "{a}");
    }

    #[test]
    fn a_report_shows_each_failure_under_its_case() {
        let report = SuiteReport {
            cases: vec![
                CaseResult {
                    name: "good".into(),
                    namespace: "kuttl-test-1".into(),
                    duration: Duration::from_millis(1500),
                    failure: None,
                },
                CaseResult {
                    name: "bad".into(),
                    namespace: "kuttl-test-2".into(),
                    duration: Duration::from_secs(2),
                    failure: Some(Failure {
                        step: "01 (01-assert)".into(),
                        message: "not satisfied after 2s:\nx: .a: expected 1, actual 2".into(),
                    }),
                },
            ],
        };
        assert!(!report.passed());
        let text = report.to_string();
        assert!(text.contains("--- PASS: good (1.5s)"), "{text}");
        assert!(text.contains("--- FAIL: bad (2.0s, namespace kuttl-test-2)\n    step 01 (01-assert): not satisfied after 2s:\n    x: .a: expected 1, actual 2"), "{text}");
        assert!(text.ends_with("1 passed, 1 failed"));
    }
}
