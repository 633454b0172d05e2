//! The mqtrigger reconciler: MessageQueueTriggers with `mqtkind: keda` become a connector
//! Deployment scaled by KEDA ([`objects`]), when KEDA's CRDs are served. Fission's own Kafka
//! consumer (`mqtkind: fission`) is not provided; such triggers say so in their status.

pub mod objects;
pub mod reconciler;

/// Reasons of the `Ready` condition.
pub mod reasons {
    /// The connector, its ScaledObject and (with a secret) its TriggerAuthentication are applied.
    pub const CONNECTOR_DEPLOYED: &str = "ConnectorDeployed";
    /// `keda.sh/v1alpha1` ScaledObject or TriggerAuthentication is not served.
    pub const KEDA_NOT_INSTALLED: &str = "KedaNotInstalled";
    /// `spec.mqtkind` is not `keda`.
    pub const UNSUPPORTED_MQT_KIND: &str = "UnsupportedMqtKind";
    /// An object with one of the names the trigger needs exists and belongs to someone else.
    pub const NAME_CONFLICT: &str = "NameConflict";
    /// The Secret named by `spec.secret` does not exist.
    pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
}
