//! The objects Fission's `mqt_keda` manager creates for a MessageQueueTrigger with
//! `mqtkind: keda` (pure): a connector Deployment that consumes the queue and calls the function
//! through the router, a KEDA ScaledObject that scales it, and a TriggerAuthentication when the
//! trigger names a Secret. All are owned by the trigger.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::{Resource, ResourceExt};
use rivulet_api::MessageQueueTrigger;
use rivulet_routing::routes::internal_url;
use serde_json::{Value, json};

use crate::merge::{MergeError, merge};

/// KEDA's API version, served by its CRDs.
pub const KEDA_API_VERSION: &str = "keda.sh/v1alpha1";
/// Suffix of the TriggerAuthentication's name (`<trigger>-auth-trigger`, as Fission names it).
pub const AUTH_SUFFIX: &str = "-auth-trigger";

/// Connector images per queue type, and their pull policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectorConfig {
    /// Image overrides by `messageQueueType` (Fission reads them from `<MQTYPE>_IMAGE`).
    pub images: BTreeMap<String, String>,
    /// `CONNECTOR_IMAGE_PULL_POLICY`; unset leaves Kubernetes' default.
    pub pull_policy: Option<String>,
}

impl ConnectorConfig {
    /// Reads overrides the way Fission's deployment does: `KAFKA_IMAGE`,
    /// `AWS_SQS_QUEUE_IMAGE`, … and `CONNECTOR_IMAGE_PULL_POLICY`.
    pub fn from_env() -> Self {
        let images = rivulet_api::mqtrigger::KEDA_QUEUE_TYPES
            .iter()
            .filter_map(|queue| {
                let image = std::env::var(format!("{}_IMAGE", env_name(queue))).ok()?;
                Some(((*queue).to_owned(), image))
            })
            .collect();
        Self {
            images,
            pull_policy: std::env::var("CONNECTOR_IMAGE_PULL_POLICY").ok(),
        }
    }

    /// The connector image of a queue type: the override, else Fission's published connector.
    pub fn image(&self, queue_type: &str) -> String {
        if let Some(image) = self.images.get(queue_type) {
            return image.clone();
        }
        let connector = match queue_type {
            "aws-sqs-queue" => "aws-sqs",
            "aws-kinesis-stream" => "aws-kinesis",
            "stan" => "nats-streaming",
            other => other,
        };
        format!("fission/keda-{connector}-http-connector")
    }
}

/// An environment variable name for a metadata or secret key, upper snake case
/// (`bootstrapServers` stays `BOOTSTRAPSERVERS` as in Fission; `sasl-user` → `SASL_USER`).
pub fn env_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// What one trigger needs in the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct Desired {
    /// The connector.
    pub deployment: Deployment,
    /// KEDA's ScaledObject for the connector.
    pub scaled_object: Value,
    /// KEDA's TriggerAuthentication, when the trigger names a Secret.
    pub authentication: Option<Value>,
}

/// Builds the objects of `trigger` (validated, `mqtkind: keda`). `secret_keys` are the keys of
/// the Secret named by `spec.secret` (empty without one); calls go to the router's internal
/// listener at `router_url`.
pub fn build(
    trigger: &MessageQueueTrigger,
    secret_keys: &[String],
    router_url: &str,
    connectors: &ConnectorConfig,
) -> Result<Desired, MergeError> {
    let name = trigger.name_any();
    let namespace = trigger.namespace().unwrap_or_default();
    let spec = &trigger.spec;
    let queue_type = spec.message_queue_type.clone().unwrap_or_default();
    let owner = owner_reference(trigger);
    let metadata = spec.metadata.clone().unwrap_or_default();

    let env = connector_env(trigger, secret_keys, router_url);
    let mut container = json!({"name": name, "image": connectors.image(&queue_type), "env": env});
    if let Some(policy) = &connectors.pull_policy {
        container["imagePullPolicy"] = json!(policy);
    }
    let labels = json!({"app": name});
    let base: PodSpec =
        serde_json::from_value(json!({"containers": [container]})).map_err(|source| {
            MergeError {
                what: "connector pod".into(),
                source,
            }
        })?;
    let pod = match &spec.podspec {
        Some(user) => merge(&base, user, "spec.podspec")?,
        None => base,
    };
    let deployment: Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels,
                     "ownerReferences": [owner]},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod},
        },
    }))
    .map_err(|source| MergeError {
        what: "connector deployment".into(),
        source,
    })?;

    let auth_name = format!("{name}{AUTH_SUFFIX}");
    let mut trigger_spec = json!({"type": queue_type, "metadata": metadata});
    if spec.secret.is_some() {
        trigger_spec["authenticationRef"] = json!({"name": auth_name});
    }
    let mut scaled = json!({
        "scaleTargetRef": {"name": name},
        "triggers": [trigger_spec],
    });
    for (field, value) in [
        ("pollingInterval", spec.polling_interval),
        ("cooldownPeriod", spec.cooldown_period),
        ("minReplicaCount", spec.min_replica_count),
        ("maxReplicaCount", spec.max_replica_count),
    ] {
        if let Some(value) = value {
            scaled[field] = json!(value);
        }
    }
    let scaled_object = json!({
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "ownerReferences": [owner]},
        "spec": scaled,
    });
    let authentication = spec.secret.as_ref().map(|secret| {
        let targets: Vec<Value> = secret_keys
            .iter()
            .map(|key| json!({"parameter": key, "name": secret, "key": key}))
            .collect();
        json!({
            "apiVersion": KEDA_API_VERSION,
            "kind": "TriggerAuthentication",
            "metadata": {"name": auth_name, "namespace": namespace, "ownerReferences": [owner]},
            "spec": {"secretTargetRef": targets},
        })
    });
    Ok(Desired {
        deployment,
        scaled_object,
        authentication,
    })
}

/// The connector's environment, as Fission sets it: the fixed variables, then every metadata
/// key and every secret key.
fn connector_env(
    trigger: &MessageQueueTrigger,
    secret_keys: &[String],
    router_url: &str,
) -> Vec<Value> {
    let name = trigger.name_any();
    let namespace = trigger.namespace().unwrap_or_default();
    let spec = &trigger.spec;
    let metadata = spec.metadata.clone().unwrap_or_default();
    let function = spec.functionref.name.clone().unwrap_or_default();
    let mut env = vec![
        json!({"name": "TOPIC", "value": spec.topic}),
        json!({"name": "HTTP_ENDPOINT", "value": format!(
            "{}{}", router_url.trim_end_matches('/'), internal_url(&namespace, &function)
        )}),
        json!({"name": "ERROR_TOPIC", "value": spec.error_topic.clone().unwrap_or_default()}),
        json!({"name": "RESPONSE_TOPIC", "value": spec.resp_topic.clone().unwrap_or_default()}),
        json!({"name": "SOURCE_NAME", "value": name}),
        json!({"name": "MAX_RETRIES", "value": spec.max_retries.unwrap_or_default().to_string()}),
        json!({"name": "CONTENT_TYPE", "value": spec.content_type.clone().unwrap_or_default()}),
    ];
    // Later entries win over earlier ones of the same name (a duplicate would also make the
    // server-side apply fail): metadata over the fixed variables, secret keys over both.
    let secret = spec.secret.clone().unwrap_or_default();
    let extra = metadata
        .iter()
        .map(|(key, value)| json!({"name": env_name(key), "value": value}))
        // Fission copies secret values into the Deployment; a reference keeps them in the Secret.
        .chain(secret_keys.iter().map(|key| {
            json!({"name": env_name(key),
                   "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
        }));
    for var in extra {
        match env
            .iter_mut()
            .find(|existing| existing["name"] == var["name"])
        {
            Some(existing) => *existing = var,
            None => env.push(var),
        }
    }

    env
}

fn owner_reference(trigger: &MessageQueueTrigger) -> OwnerReference {
    OwnerReference {
        api_version: MessageQueueTrigger::api_version(&()).into_owned(),
        kind: MessageQueueTrigger::kind(&()).into_owned(),
        name: trigger.name_any(),
        uid: trigger.uid().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trigger(yaml: &str) -> MessageQueueTrigger {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn yaml(desired: &Desired) -> String {
        serde_yaml_ng::to_string(&json!({
            "deployment": desired.deployment,
            "scaledObject": desired.scaled_object,
            "authentication": desired.authentication,
        }))
        .unwrap()
    }

    const KAFKA: &str = r"
apiVersion: fission.io/v1
kind: MessageQueueTrigger
metadata: {name: orders, namespace: shop, uid: 7b1c}
spec:
  mqtkind: keda
  messageQueueType: kafka
  topic: orders
  respTopic: orders-done
  errorTopic: orders-failed
  maxRetries: 3
  contentType: application/json
  pollingInterval: 5
  cooldownPeriod: 60
  minReplicaCount: 0
  maxReplicaCount: 4
  metadata: {bootstrapServers: 'kafka:9092', consumerGroup: orders, topic: orders}
  secret: kafka-auth
  functionref: {type: name, name: handle-order}
  podspec:
    containers:
    - name: orders
      resources: {limits: {memory: 128Mi}}
";

    #[test]
    fn kafka_with_secret_and_podspec() {
        let desired = build(
            &trigger(KAFKA),
            &["sasl".into(), "tls-ca".into()],
            "http://router.fission:8889",
            &ConnectorConfig::default(),
        )
        .unwrap();
        insta::assert_snapshot!(yaml(&desired));
    }

    #[test]
    fn rabbitmq_in_default_without_secret_with_image_override() {
        let connectors = ConnectorConfig {
            images: [("rabbitmq".to_owned(), "registry.local/rmq:1".to_owned())].into(),
            pull_policy: Some("IfNotPresent".into()),
        };
        let desired = build(
            &trigger(
                r"
apiVersion: fission.io/v1
kind: MessageQueueTrigger
metadata: {name: jobs, namespace: default, uid: 9e2f}
spec:
  mqtkind: keda
  messageQueueType: rabbitmq
  topic: jobs
  metadata: {queueName: jobs, host: 'amqp://rabbit:5672'}
  functionref: {type: name, name: worker}
",
            ),
            &[],
            "http://127.0.0.1:8889",
            &connectors,
        )
        .unwrap();
        assert!(desired.authentication.is_none());
        insta::assert_snapshot!(yaml(&desired));
    }

    #[test]
    fn default_images_follow_fission_names() {
        let connectors = ConnectorConfig::default();
        assert_eq!(
            connectors.image("aws-sqs-queue"),
            "fission/keda-aws-sqs-http-connector"
        );
        assert_eq!(
            connectors.image("stan"),
            "fission/keda-nats-streaming-http-connector"
        );
        assert_eq!(
            connectors.image("kafka"),
            "fission/keda-kafka-http-connector"
        );
        assert_eq!(env_name("sasl-user.name"), "SASL_USER_NAME");
    }
}
