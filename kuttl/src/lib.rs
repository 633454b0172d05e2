//! A KUTTL runner: executes a KUTTL suite (`kuttl-test.yaml` and its test case directories)
//! against a cluster with the real `kubectl`, so Rivulet's `kuttl-tests/` runs in `cargo test`
//! on localcluster exactly as `kubectl kuttl test` runs it on a real cluster.
//!
//! Supported (everything else is an error naming the file and field): `TestSuite` `testDirs`,
//! `timeout`, `parallel`; step files `NN-<name>.yaml` with objects (created, or merge-patched
//! when they exist) and a `TestStep` with `commands` and `delete`; `NN-assert*.yaml` with objects
//! and a `TestAssert` with `timeout` and `commands`; `NN-errors*.yaml`. Commands are `command`
//! (split into words as a shell would, but run without one; `namespaced`) or `script` (`sh -c`), with `ignoreFailure`
//! and `timeout`, `$NAMESPACE` and `$KUBECONFIG` set, run in the test case's directory.
//!
//! Matching follows KUTTL's `IsSubset` ([`subset`]); a failed step reports each unmet check with
//! the path of the first differing field and the expected and actual values.

pub mod model;
mod run;
pub mod subset;

pub use model::{ParseError, TestCase, TestSuite};
pub use run::{
    CaseResult, Failure, RunError, RunOptions, Suite, SuiteReport, expand_vars, load_case,
    load_suite, resource_type, run_case, run_cases, run_suite, split_words,
};
pub use subset::{Mismatch, MismatchKind, is_subset};
