//! The KUTTL file format, parsed without I/O: `kuttl-test.yaml` (TestSuite), step file names
//! (`NN-<name>.yaml`, `NN-assert*.yaml`, `NN-errors*.yaml`) and the documents in them
//! (`TestStep`, `TestAssert`, Kubernetes objects). Only the features this runner executes are
//! accepted; any other field of a KUTTL document is an error naming the file and the field.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

/// KUTTL's API group for its own documents.
pub const KUTTL_GROUP: &str = "kuttl.dev/";

/// Suite-wide default timeout in seconds (KUTTL's).
pub const DEFAULT_TIMEOUT: u64 = 30;
/// Default number of concurrent test cases (KUTTL's).
pub const DEFAULT_PARALLEL: usize = 8;

/// A file could not be used as KUTTL input.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// Not readable.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML, or a document of the wrong shape.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A KUTTL feature this runner does not execute (never silently ignored).
    #[error("{file}: unsupported: {message}")]
    Unsupported {
        /// The file.
        file: String,
        /// The field or construct.
        message: String,
    },
}

fn invalid(file: &str, message: impl Into<String>) -> ParseError {
    ParseError::Invalid {
        file: file.to_owned(),
        message: message.into(),
    }
}

fn unsupported(file: &str, message: impl Into<String>) -> ParseError {
    ParseError::Unsupported {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// `metadata` of a KUTTL document: only a name.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct KuttlMeta {
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
}

/// `kuttl-test.yaml`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestSuite {
    /// Directories whose sub-directories are test cases (relative to the working directory).
    pub test_dirs: Vec<String>,
    /// Default timeout of steps, asserts and commands, in seconds.
    pub timeout: u64,
    /// Maximum number of test cases run at once.
    pub parallel: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSuite {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<KuttlMeta>,
    #[serde(default)]
    test_dirs: Vec<String>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    parallel: Option<usize>,
}

/// Parses the text of a `kuttl-test.yaml`.
pub fn parse_suite(file: &str, text: &str) -> Result<TestSuite, ParseError> {
    let docs = documents(file, text)?;
    let [doc] = docs.as_slice() else {
        return Err(invalid(
            file,
            format!("expected one TestSuite document, found {}", docs.len()),
        ));
    };
    let raw: RawSuite = typed(file, "TestSuite", doc.clone())?;
    if !raw.api_version.starts_with(KUTTL_GROUP) || raw.kind != "TestSuite" {
        return Err(invalid(
            file,
            format!(
                "expected apiVersion kuttl.dev/v1beta1, kind TestSuite; found {} {}",
                raw.api_version, raw.kind
            ),
        ));
    }
    let _ = raw.metadata;
    if raw.test_dirs.is_empty() {
        return Err(invalid(file, "testDirs is empty"));
    }
    Ok(TestSuite {
        test_dirs: raw.test_dirs,
        timeout: raw.timeout.unwrap_or(DEFAULT_TIMEOUT),
        parallel: raw.parallel.unwrap_or(DEFAULT_PARALLEL).max(1),
    })
}

/// What a file of a test case is, from its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileRole {
    /// Objects to apply and an optional `TestStep`.
    Apply,
    /// Objects that must match (`NN-assert*.yaml`), and an optional `TestAssert`.
    Assert,
    /// Objects that must not exist (`NN-errors*.yaml`).
    Errors,
}

/// A step file's index, role and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFileName {
    /// The `NN` prefix.
    pub index: u32,
    /// Apply, assert or errors.
    pub role: FileRole,
    /// The name without index and extension (`install`, `assert`, `assert-pods`).
    pub name: String,
}

/// Classifies a file name of a test case directory: `Ok(None)` for files KUTTL ignores (no
/// step index: READMEs, helper manifests and scripts that commands use).
pub fn parse_file_name(file: &str) -> Result<Option<StepFileName>, ParseError> {
    let Some((digits, rest)) = file.split_once('-') else {
        return Ok(None);
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let index: u32 = digits
        .parse()
        .map_err(|_| invalid(file, "step index out of range"))?;
    if rest.ends_with(".gotmpl.yaml") {
        return Err(unsupported(file, "Go templates (.gotmpl.yaml)"));
    }
    let Some(name) = rest.strip_suffix(".yaml") else {
        return Err(unsupported(
            file,
            "a step file must end in .yaml (only YAML step files are executed)",
        ));
    };
    if name.is_empty() || name.contains('.') {
        return Err(invalid(file, "malformed step file name"));
    }
    let first = name.split('-').next().unwrap_or(name);
    let role = match first {
        "assert" => FileRole::Assert,
        "errors" => FileRole::Errors,
        _ => FileRole::Apply,
    };
    Ok(Some(StepFileName {
        index,
        role,
        name: name.to_owned(),
    }))
}

/// One command of a `TestStep` or `TestAssert`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    /// What to run.
    pub run: CommandKind,
    /// Append `--namespace <test namespace>` (only for `command`).
    pub namespaced: bool,
    /// A failing command does not fail the step.
    pub ignore_failure: bool,
    /// Seconds; the suite timeout when absent.
    pub timeout: Option<u64>,
}

/// `command` or `script`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandKind {
    /// One program with arguments, split on whitespace after `$VAR` expansion; no shell.
    Command(String),
    /// Run by `sh -c`.
    Script(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawCommand {
    #[serde(default)]
    command: Option<String>,
    #[serde(default)]
    script: Option<String>,
    #[serde(default)]
    namespaced: bool,
    #[serde(default)]
    ignore_failure: bool,
    #[serde(default)]
    timeout: Option<u64>,
}

impl RawCommand {
    fn into_command(self, file: &str) -> Result<Command, ParseError> {
        let run = match (self.command, self.script) {
            (Some(c), None) => CommandKind::Command(c),
            (None, Some(s)) => CommandKind::Script(s),
            _ => {
                return Err(invalid(
                    file,
                    "a command needs exactly one of `command` and `script`",
                ));
            }
        };
        if self.namespaced && matches!(run, CommandKind::Script(_)) {
            return Err(invalid(
                file,
                "`namespaced` has no effect on a `script` (use $NAMESPACE)",
            ));
        }
        Ok(Command {
            run,
            namespaced: self.namespaced,
            ignore_failure: self.ignore_failure,
            timeout: self.timeout,
        })
    }
}

/// An entry of `TestStep.delete`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeleteRef {
    /// `apiVersion` of the objects.
    pub api_version: String,
    /// Their kind.
    pub kind: String,
    /// One object; all matching `labels` when absent.
    #[serde(default)]
    pub name: Option<String>,
    /// The test namespace when absent.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Label selector when no name is given.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTestStep {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<KuttlMeta>,
    #[serde(default)]
    commands: Vec<RawCommand>,
    #[serde(default)]
    delete: Vec<DeleteRef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawTestAssert {
    api_version: String,
    kind: String,
    #[serde(default)]
    metadata: Option<KuttlMeta>,
    #[serde(default)]
    timeout: Option<u64>,
    #[serde(default)]
    commands: Vec<RawCommand>,
}

/// A Kubernetes object from a test file.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    /// The file it came from (`<case>/<file>`), for messages.
    pub file: String,
    /// The object.
    pub value: Value,
}

impl Object {
    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }
    /// `kind`.
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }
    /// `metadata.name`, if any.
    pub fn name(&self) -> Option<&str> {
        self.value["metadata"]["name"].as_str()
    }
    /// `metadata.namespace`, if any.
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }
    /// `metadata.labels` as a selector (`a=b,c=d`), if any.
    pub fn label_selector(&self) -> Option<String> {
        let labels = self.value["metadata"]["labels"].as_object()?;
        let parts: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        (!parts.is_empty()).then(|| parts.join(","))
    }
    /// `kind namespace/name` for messages.
    pub fn describe(&self, default_namespace: &str) -> String {
        let ns = self.namespace().unwrap_or(default_namespace);
        match self.name() {
            Some(name) => format!("{} {} {ns}/{name}", self.api_version(), self.kind()),
            None => format!(
                "{} {} in {ns} with labels {{{}}}",
                self.api_version(),
                self.kind(),
                self.label_selector().unwrap_or_default()
            ),
        }
    }
}

/// One step of a test case: everything sharing an index.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Step {
    /// The index.
    pub index: u32,
    /// Names of its files, for messages (`00-install`, `00-assert`).
    pub files: Vec<String>,
    /// Objects to delete first (waiting until they are gone).
    pub delete: Vec<DeleteRef>,
    /// Commands run after deletion, before applying.
    pub commands: Vec<Command>,
    /// Objects created, or merge-patched when they exist.
    pub apply: Vec<Object>,
    /// Objects that must match by the deadline.
    pub asserts: Vec<Object>,
    /// Commands that must succeed by the deadline (re-run on each poll).
    pub assert_commands: Vec<Command>,
    /// Objects that must be absent (or not match) by the deadline.
    pub errors: Vec<Object>,
    /// `TestAssert.timeout`, seconds.
    pub timeout: Option<u64>,
}

/// A test case: a directory of steps, run in index order.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    /// The directory name.
    pub name: String,
    /// The directory (working directory of commands).
    pub dir: PathBuf,
    /// Steps by increasing index.
    pub steps: Vec<Step>,
}

/// Splits a YAML stream into JSON documents, skipping empty ones.
pub fn documents(file: &str, text: &str) -> Result<Vec<Value>, ParseError> {
    let mut out = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let yaml = serde_yaml_ng::Value::deserialize(doc)
            .map_err(|e| invalid(file, format!("not YAML: {e}")))?;
        if yaml.is_null() {
            continue;
        }
        let json = serde_json::to_value(&yaml)
            .map_err(|e| invalid(file, format!("not a JSON-compatible document: {e}")))?;
        out.push(json);
    }
    Ok(out)
}

fn typed<T: for<'de> Deserialize<'de>>(
    file: &str,
    kind: &str,
    doc: Value,
) -> Result<T, ParseError> {
    serde_json::from_value(doc).map_err(|e| {
        let message = e.to_string();
        if message.starts_with("unknown field") {
            unsupported(file, format!("{kind}: {message}"))
        } else {
            invalid(file, format!("{kind}: {message}"))
        }
    })
}

/// Adds the documents of one file (`file` is its display name) to `step`.
pub fn add_file(
    step: &mut Step,
    file: &str,
    role: &FileRole,
    text: &str,
) -> Result<(), ParseError> {
    for doc in documents(file, text)? {
        let api_version = doc["apiVersion"]
            .as_str()
            .ok_or_else(|| invalid(file, "a document without apiVersion"))?
            .to_owned();
        let kind = doc["kind"]
            .as_str()
            .ok_or_else(|| invalid(file, "a document without kind"))?
            .to_owned();
        if api_version.starts_with(KUTTL_GROUP) {
            add_kuttl_document(step, file, role, &kind, doc)?;
            continue;
        }
        if !doc["metadata"].is_object() {
            return Err(invalid(file, format!("{kind} without metadata")));
        }
        if doc["metadata"].get("generateName").is_some() {
            return Err(unsupported(file, format!("{kind}: metadata.generateName")));
        }
        let object = Object {
            file: file.to_owned(),
            value: doc,
        };
        match role {
            FileRole::Apply => {
                if object.name().is_none() {
                    return Err(invalid(
                        file,
                        format!("{kind} to apply has no metadata.name"),
                    ));
                }
                step.apply.push(object);
            }
            FileRole::Assert => step.asserts.push(object),
            FileRole::Errors => step.errors.push(object),
        }
    }
    Ok(())
}

fn add_kuttl_document(
    step: &mut Step,
    file: &str,
    role: &FileRole,
    kind: &str,
    doc: Value,
) -> Result<(), ParseError> {
    match (role, kind) {
        (FileRole::Apply, "TestStep") => {
            let raw: RawTestStep = typed(file, kind, doc)?;
            let _ = (raw.api_version, raw.kind, raw.metadata);
            if !step.commands.is_empty() || !step.delete.is_empty() {
                return Err(invalid(file, "more than one TestStep in a step"));
            }
            step.delete = raw.delete;
            step.commands = raw
                .commands
                .into_iter()
                .map(|c| c.into_command(file))
                .collect::<Result<_, _>>()?;
        }
        (FileRole::Assert, "TestAssert") => {
            let raw: RawTestAssert = typed(file, kind, doc)?;
            let _ = (raw.api_version, raw.kind, raw.metadata);
            if step.timeout.is_some() || !step.assert_commands.is_empty() {
                return Err(invalid(file, "more than one TestAssert in a step"));
            }
            step.timeout = raw.timeout;
            step.assert_commands = raw
                .commands
                .into_iter()
                .map(|c| c.into_command(file))
                .collect::<Result<_, _>>()?;
        }
        _ => {
            return Err(unsupported(
                file,
                format!(
                    "kind {kind} in a {role:?} file (supported: TestStep in step files, TestAssert in assert files)"
                ),
            ));
        }
    }
    Ok(())
}

/// Builds a test case from `(file name, contents)` pairs of its directory; files without a step
/// index are ignored, as KUTTL does.
pub fn parse_case(
    name: &str,
    dir: PathBuf,
    files: &[(String, String)],
) -> Result<TestCase, ParseError> {
    let mut steps: BTreeMap<u32, Step> = BTreeMap::new();
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (file, text) in sorted {
        let Some(parsed) = parse_file_name(file)? else {
            continue;
        };
        let display = format!("{name}/{file}");
        let step = steps.entry(parsed.index).or_insert_with(|| Step {
            index: parsed.index,
            ..Step::default()
        });
        step.files
            .push(format!("{:02}-{}", parsed.index, parsed.name));
        add_file(step, &display, &parsed.role, text)?;
    }
    if steps.is_empty() {
        return Err(invalid(name, "a test case without step files"));
    }
    Ok(TestCase {
        name: name.to_owned(),
        dir,
        steps: steps.into_values().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suite_has_defaults() {
        let suite = parse_suite(
            "kuttl-test.yaml",
            "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [./e2e]\n",
        )
        .unwrap();
        assert_eq!(
            suite,
            TestSuite {
                test_dirs: vec!["./e2e".into()],
                timeout: 30,
                parallel: 8
            }
        );
        let suite = parse_suite(
            "kuttl-test.yaml",
            "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [a]\ntimeout: 60\nparallel: 2\n",
        )
        .unwrap();
        assert_eq!((suite.timeout, suite.parallel), (60, 2));
    }

    #[test]
    fn an_unsupported_suite_field_names_file_and_field() {
        let err = parse_suite(
            "kuttl-test.yaml",
            "apiVersion: kuttl.dev/v1beta1\nkind: TestSuite\ntestDirs: [a]\nstartKIND: true\n",
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message
                .starts_with("kuttl-test.yaml: unsupported: TestSuite: unknown field `startKIND`"),
            "{message}"
        );
    }

    #[test]
    fn file_names_follow_kuttl_grammar() {
        let parsed = parse_file_name("00-install.yaml").unwrap().unwrap();
        assert_eq!(
            (parsed.index, parsed.role, parsed.name.as_str()),
            (0, FileRole::Apply, "install")
        );
        let parsed = parse_file_name("12-assert-pods.yaml").unwrap().unwrap();
        assert_eq!((parsed.index, parsed.role), (12, FileRole::Assert));
        let parsed = parse_file_name("03-errors.yaml").unwrap().unwrap();
        assert_eq!(parsed.role, FileRole::Errors);
        // assertions.yaml is not an assert file: the first component must be exactly `assert`.
        assert_eq!(
            parse_file_name("01-assertions.yaml").unwrap().unwrap().role,
            FileRole::Apply
        );
        assert_eq!(parse_file_name("README.md").unwrap(), None);
        assert_eq!(parse_file_name("keda-crds.yaml").unwrap(), None);
        assert!(matches!(
            parse_file_name("00-x.gotmpl.yaml"),
            Err(ParseError::Unsupported { .. })
        ));
        assert!(parse_file_name("00-setup.sh").is_err());
    }

    fn case(files: &[(&str, &str)]) -> Result<TestCase, ParseError> {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect();
        parse_case("demo", PathBuf::from("/tmp/demo"), &files)
    }

    #[test]
    fn steps_group_files_by_index() {
        let case = case(&[
            ("01-assert.yaml", "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ntimeout: 5\ncommands:\n- script: test -n \"$NAMESPACE\"\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n"),
            ("00-install.yaml", "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n- command: kubectl get pods\n  namespaced: true\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"),
            ("01-errors.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: gone}\n"),
            ("01-delete.yaml", "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ndelete:\n- {apiVersion: v1, kind: ConfigMap, name: a}\n"),
            ("README.md", "not yaml: ["),
        ])
        .unwrap();
        assert_eq!(case.steps.len(), 2);
        let (first, second) = (&case.steps[0], &case.steps[1]);
        assert_eq!(first.apply.len(), 1);
        assert_eq!(
            first.commands[0].run,
            CommandKind::Command("kubectl get pods".into())
        );
        assert!(first.commands[0].namespaced);
        assert_eq!(second.files, ["01-assert", "01-delete", "01-errors"]);
        assert_eq!(second.timeout, Some(5));
        assert_eq!(second.asserts[0].name(), Some("a"));
        assert_eq!(second.errors[0].kind(), "Secret");
        assert_eq!(second.delete[0].name.as_deref(), Some("a"));
        assert!(matches!(
            second.assert_commands[0].run,
            CommandKind::Script(_)
        ));
    }

    #[test]
    fn unsupported_kuttl_fields_are_errors_naming_the_file() {
        let err = case(&[(
            "00-assert.yaml",
            "apiVersion: kuttl.dev/v1beta1\nkind: TestAssert\ncollectors:\n- type: pod\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with(
                "demo/00-assert.yaml: unsupported: TestAssert: unknown field `collectors`"
            ),
            "{err}"
        );
        let err = case(&[(
            "00-step.yaml",
            "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n- command: sleep 1\n  background: true\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("demo/00-step.yaml") && err.contains("`background`"),
            "{err}"
        );
        let err = case(&[(
            "00-step.yaml",
            "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\napply: [x.yaml]\n",
        )])
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `apply`"), "{err}");
        // A TestAssert in a step file, a TestStep in an assert file, a TestFile anywhere.
        for (file, kind) in [
            ("00-x.yaml", "TestAssert"),
            ("00-assert.yaml", "TestStep"),
            ("00-x.yaml", "TestFile"),
        ] {
            let text = format!("apiVersion: kuttl.dev/v1beta1\nkind: {kind}\n");
            assert!(
                matches!(case(&[(file, &text)]), Err(ParseError::Unsupported { .. })),
                "{file} {kind}"
            );
        }
    }

    #[test]
    fn malformed_documents_are_errors() {
        assert!(case(&[("00-x.yaml", "kind: ConfigMap\nmetadata: {name: a}\n")]).is_err());
        assert!(
            case(&[(
                "00-x.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n"
            )])
            .is_err()
        );
        assert!(case(&[("00-x.yaml", "apiVersion: kuttl.dev/v1beta1\nkind: TestStep\ncommands:\n- {command: a, script: b}\n")]).is_err());
        assert!(case(&[("README.md", "x")]).is_err());
        // An assert without a name is a label query.
        let case = case(&[(
            "00-assert.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {labels: {a: b, c: d}}\n",
        )])
        .unwrap();
        assert_eq!(
            case.steps[0].asserts[0].label_selector().as_deref(),
            Some("a=b,c=d")
        );
    }
}
