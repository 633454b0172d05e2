//! Extension points for what a kube-apiserver delegates elsewhere: mutating admission on create
//! (Liqo's pod webhook, simulated) and container logs (the kubelet's `pods/log`). The server stays
//! generic; the node agent and the simulations plug in here.

use std::fmt::Debug;
use std::pin::Pin;

use bytes::Bytes;
use futures::Stream;
use serde_json::Value;

/// Read access to stored objects, for hooks that decide from other objects.
pub trait ObjectReader {
    /// The stored object `group`/`resource` (plural) `namespace`/`name`, if it exists.
    fn get(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value>;
}

/// A mutating admission hook that runs on create, before schema defaulting and validation, like a
/// `MutatingWebhookConfiguration` with `operations: [CREATE]`.
pub trait CreateHook: Send + Sync + Debug {
    /// Whether the hook applies to `group`/`resource` (plural, for example `("", "pods")`).
    fn applies_to(&self, group: &str, resource: &str) -> bool;
    /// Mutates the object about to be created. An error rejects the create with 500 and the
    /// message, as a failing webhook with `failurePolicy: Fail` does.
    fn mutate(&self, object: &mut Value, read: &dyn ObjectReader) -> Result<(), String>;
}

/// Options of a `pods/log` request (the query parameters upstream accepts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the stream open and send new lines as they are written.
    pub follow: bool,
    /// Logs of the previous (terminated) instance of the container.
    pub previous: bool,
    /// Only the last N lines.
    pub tail_lines: Option<i64>,
    /// Only lines newer than this many seconds.
    pub since_seconds: Option<i64>,
    /// Stop after this many bytes.
    pub limit_bytes: Option<i64>,
    /// Prefix each line with an RFC 3339 timestamp.
    pub timestamps: bool,
}

/// A stream of log bytes.
pub type LogStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Why logs cannot be served.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    /// No such container, or it has not started (404 upstream... or 400 for "waiting to start").
    #[error("{0}")]
    NotFound(String),
    /// The request cannot be served as asked (400), for example `previous` without a restart.
    #[error("{0}")]
    BadRequest(String),
}

/// Serves `pods/log` for pods a node agent runs.
pub trait PodLogs: Send + Sync + Debug {
    /// Logs of `container` of the pod `namespace`/`name` with `uid`.
    fn logs(
        &self,
        namespace: &str,
        name: &str,
        uid: &str,
        container: &str,
        options: &LogOptions,
    ) -> Result<LogStream, LogError>;
}
