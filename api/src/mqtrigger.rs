//! `MessageQueueTrigger`: consumes a message queue topic and invokes a function per message.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{ConditionedStatus, FunctionReference};

/// Queue types accepted with `mqtkind: keda`.
pub const KEDA_QUEUE_TYPES: [&str; 8] = [
    "kafka",
    "aws-sqs-queue",
    "aws-kinesis-stream",
    "gcp-pubsub",
    "stan",
    "rabbitmq",
    "redis",
    "nats-jetstream",
];

/// Desired state of a MessageQueueTrigger: the queue, topics and scaling of the consumer, and the
/// function invoked per message.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "fission.io",
    version = "v1",
    kind = "MessageQueueTrigger",
    namespaced,
    status = "ConditionedStatus",
    doc = "A Fission MessageQueueTrigger: messages of a queue topic are delivered to a function (KEDA connectors or Fission's Kafka consumer).",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.messageQueueType"),
    printcolumn(name = "Topic", type_ = "string", json_path = ".spec.topic"),
    printcolumn(
        name = "Function",
        type_ = "string",
        json_path = ".spec.functionref.name"
    ),
    printcolumn(
        name = "Kind",
        type_ = "string",
        json_path = ".spec.mqtkind",
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
pub struct MessageQueueTriggerSpec {
    /// The function invoked per message.
    pub functionref: FunctionReference,
    /// Queue type, for example `kafka`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_queue_type: Option<String>,
    /// Topic consumed.
    pub topic: String,
    /// Topic receiving function responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resp_topic: Option<String>,
    /// Topic receiving failed invocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_topic: Option<String>,
    /// Retries of a failed invocation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub max_retries: Option<i32>,
    /// Content type of the messages sent to the function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// KEDA polling interval in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polling_interval: Option<i32>,
    /// KEDA cooldown period in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cooldown_period: Option<i32>,
    /// Minimum consumer replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replica_count: Option<i32>,
    /// Maximum consumer replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replica_count: Option<i32>,
    /// Queue-specific connection metadata.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Secret holding queue credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `keda` (default in the CLI) or `fission`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mqtkind: Option<String>,
    /// Pod spec of the connector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub podspec: Option<PodSpec>,
}
