//! `HTTPTrigger`: routes HTTP requests on the router to a function.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConditionedStatus, FunctionReference};

/// Desired state of an HTTPTrigger: which requests (host, path or prefix, methods) go to which
/// function(s), and an optional Ingress.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "HTTPTrigger",
    namespaced,
    status = "ConditionedStatus",
    doc = "A Fission HTTPTrigger: requests matching a host, path (or prefix) and methods are routed to a function.",
    printcolumn(name = "Methods", type_ = "string", json_path = ".spec.methods"),
    printcolumn(name = "URL", type_ = "string", json_path = ".spec.relativeurl"),
    printcolumn(name = "Prefix", type_ = "string", json_path = ".spec.prefix"),
    printcolumn(
        name = "Function",
        type_ = "string",
        json_path = ".spec.functionref.name"
    ),
    printcolumn(
        name = "Host",
        type_ = "string",
        json_path = ".spec.host",
        priority = 1
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct HTTPTriggerSpec {
    /// Deprecated: only requests for this host match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Exact path to match; `{name}` segments are variables passed as `X-Fission-Params-<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relativeurl: Option<String>,
    /// When non-empty, match every path under this prefix (takes precedence over `relativeurl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Keep the prefix in the path sent to the function (default: strip it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_prefix: Option<bool>,
    /// Deprecated single method, merged into `methods`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", ""]))]
    pub method: Option<String>,
    /// Methods to match (GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "crate::schema::http_methods")]
    pub methods: Option<Vec<String>>,
    /// The function(s) to invoke.
    pub functionref: FunctionReference,
    /// Create an Ingress for this trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub createingress: Option<bool>,
    /// Ingress host, path, TLS secret and annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingressconfig: Option<IngressConfig>,
}

/// Configuration of the Ingress created for a trigger.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct IngressConfig {
    /// Annotations of the Ingress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Ingress path (a POSIX regular expression starting with `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Ingress host; empty or `*` means any host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Name of the TLS secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
}

impl HTTPTriggerSpec {
    /// The prefix, when it is set and non-empty (then it takes precedence over `relativeurl`).
    pub fn effective_prefix(&self) -> Option<&str> {
        self.prefix.as_deref().filter(|p| !p.is_empty())
    }

    /// `methods` plus the deprecated `method`, deduplicated, in order; empty means every method.
    pub fn effective_methods(&self) -> Vec<String> {
        let mut methods: Vec<String> = self.methods.clone().unwrap_or_default();
        if let Some(m) = self.method.as_deref().filter(|m| !m.is_empty())
            && !methods.iter().any(|x| x == m)
        {
            methods.push(m.to_owned());
        }
        methods
    }
}
