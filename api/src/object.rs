//! The `fission.io/v1` group and version, and any object of it, dispatched on `kind`: for tools
//! that handle mixed documents (spec directories, fixtures, `kubectl apply -f dir/`).

use serde::Serialize;
use serde_json::Value;

use crate::validation::{self, ValidationErrors};
use crate::{
    CanaryConfig, Environment, Function, HTTPTrigger, KubernetesWatchTrigger, MessageQueueTrigger,
    Package, TimeTrigger,
};

/// The API group of every Fission kind.
pub const GROUP: &str = "fission.io";
/// The only served and stored version of every Fission kind.
pub const VERSION: &str = "v1";
/// `apiVersion` string of Fission objects.
pub const API_VERSION: &str = "fission.io/v1";

/// One Fission object of any kind.
// Values are short-lived and handled one at a time, so boxing the large variants buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum FissionObject {
    /// An Environment.
    Environment(Environment),
    /// A Package.
    Package(Package),
    /// A Function.
    Function(Function),
    /// An HTTPTrigger.
    HTTPTrigger(HTTPTrigger),
    /// A KubernetesWatchTrigger.
    KubernetesWatchTrigger(KubernetesWatchTrigger),
    /// A TimeTrigger.
    TimeTrigger(TimeTrigger),
    /// A MessageQueueTrigger.
    MessageQueueTrigger(MessageQueueTrigger),
    /// A CanaryConfig.
    CanaryConfig(CanaryConfig),
}

/// Why a document is not a Fission object.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// `apiVersion` is not `fission.io/v1`.
    #[error("apiVersion must be fission.io/v1, got {0:?}")]
    ApiVersion(String),
    /// `kind` is not one of the eight Fission kinds.
    #[error("kind {0:?} is not a fission.io/v1 kind")]
    Kind(String),
    /// The document does not match the kind's schema.
    #[error("{kind}: {source}")]
    Decode {
        /// The kind.
        kind: String,
        /// Cause, with the offending field.
        source: serde_json::Error,
    },
}

impl FissionObject {
    /// Decodes a document by its `apiVersion` and `kind`.
    pub fn from_value(value: Value) -> Result<Self, ObjectError> {
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if api_version != API_VERSION {
            return Err(ObjectError::ApiVersion(api_version.to_owned()));
        }
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let decode = |e| ObjectError::Decode {
            kind: kind.clone(),
            source: e,
        };
        Ok(match kind.as_str() {
            "Environment" => Self::Environment(serde_json::from_value(value).map_err(decode)?),
            "Package" => Self::Package(serde_json::from_value(value).map_err(decode)?),
            "Function" => Self::Function(serde_json::from_value(value).map_err(decode)?),
            "HTTPTrigger" => Self::HTTPTrigger(serde_json::from_value(value).map_err(decode)?),
            "KubernetesWatchTrigger" => {
                Self::KubernetesWatchTrigger(serde_json::from_value(value).map_err(decode)?)
            }
            "TimeTrigger" => Self::TimeTrigger(serde_json::from_value(value).map_err(decode)?),
            "MessageQueueTrigger" => {
                Self::MessageQueueTrigger(serde_json::from_value(value).map_err(decode)?)
            }
            "CanaryConfig" => Self::CanaryConfig(serde_json::from_value(value).map_err(decode)?),
            _ => return Err(ObjectError::Kind(kind)),
        })
    }

    /// Every Fission rule the object breaks.
    pub fn validate(&self) -> ValidationErrors {
        match self {
            Self::Environment(o) => validation::validate_environment(o),
            Self::Package(o) => validation::validate_package(o),
            Self::Function(o) => validation::validate_function(o),
            Self::HTTPTrigger(o) => validation::validate_http_trigger(o),
            Self::KubernetesWatchTrigger(o) => validation::validate_kubernetes_watch_trigger(o),
            Self::TimeTrigger(o) => validation::validate_time_trigger(o),
            Self::MessageQueueTrigger(o) => validation::validate_message_queue_trigger(o),
            Self::CanaryConfig(o) => validation::validate_canary_config(o),
        }
    }

    /// The object as JSON.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        fn json(o: &impl Serialize) -> Result<Value, serde_json::Error> {
            serde_json::to_value(o)
        }
        match self {
            Self::Environment(o) => json(o),
            Self::Package(o) => json(o),
            Self::Function(o) => json(o),
            Self::HTTPTrigger(o) => json(o),
            Self::KubernetesWatchTrigger(o) => json(o),
            Self::TimeTrigger(o) => json(o),
            Self::MessageQueueTrigger(o) => json(o),
            Self::CanaryConfig(o) => json(o),
        }
    }
}
