//! `fission mqtrigger` (alias `mqt`): create, list, update, delete MessageQueueTriggers.

use clap::{Args, Subcommand};
use rivulet_api::{FunctionReference, MessageQueueTrigger, MessageQueueTriggerSpec};

use super::{delete, list, post};
use crate::client::Ctx;
use crate::error::{Error, Result};
use crate::{names, table};

/// `fission mqtrigger` subcommands.
#[derive(Debug, Subcommand)]
pub enum MqtCommand {
    /// Create a message queue trigger
    Create(CreateArgs),
    /// Update a message queue trigger
    Update(UpdateArgs),
    /// Delete a message queue trigger
    Delete(DeleteArgs),
    /// List message queue triggers
    List,
}

/// Flags of `mqtrigger create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Message queue trigger name (a UUID when absent)
    #[arg(long)]
    pub name: Option<String>,
    /// Function name
    #[arg(long)]
    pub function: String,
    /// Message queue type: kafka, aws-sqs-queue, aws-kinesis-stream, gcp-pubsub, stan, nats-jetstream, rabbitmq, redis
    #[arg(long, default_value = "kafka")]
    pub mqtype: String,
    /// Message queue Topic the trigger listens on
    #[arg(long)]
    pub topic: Option<String>,
    /// Topic that the function response is sent on (response discarded if unspecified)
    #[arg(long)]
    pub resptopic: Option<String>,
    /// Topic that the function error messages are sent to (errors discarded if unspecified)
    #[arg(long)]
    pub errortopic: Option<String>,
    /// Maximum number of times the function will be retried upon failure
    #[arg(long, default_value_t = 0)]
    pub maxretries: i32,
    /// Content type of messages that publish to the topic
    #[arg(short = 'c', long, default_value = "application/json")]
    pub contenttype: String,
    /// Interval to check the message source for up/down scaling operation of consumers
    #[arg(long, default_value_t = 30)]
    pub pollinginterval: i32,
    /// The period to wait after the last trigger reported active before scaling the consumer back to 0
    #[arg(long, default_value_t = 300)]
    pub cooldownperiod: i32,
    /// Minimum number of replicas of consumers to scale down to
    #[arg(long, default_value_t = 0)]
    pub minreplicacount: i32,
    /// Maximum number of replicas of consumers to scale up to
    #[arg(long, default_value_t = 100)]
    pub maxreplicacount: i32,
    /// Metadata needed for connecting to source system: --metadata key1=value1 --metadata key2=value2
    #[arg(long)]
    pub metadata: Vec<String>,
    /// Name of secret object
    #[arg(long)]
    pub secret: Option<String>,
    /// Kind of Message Queue Trigger, e.g. fission, keda
    #[arg(long, default_value = "keda")]
    pub mqtkind: String,
}

/// Flags of `mqtrigger update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Message queue trigger name
    #[arg(long)]
    pub name: String,
    /// Function name
    #[arg(long)]
    pub function: Option<String>,
    /// Message queue Topic the trigger listens on
    #[arg(long)]
    pub topic: Option<String>,
    /// Topic that the function response is sent on
    #[arg(long)]
    pub resptopic: Option<String>,
    /// Topic that the function error messages are sent to
    #[arg(long)]
    pub errortopic: Option<String>,
    /// Maximum number of times the function will be retried upon failure
    #[arg(long)]
    pub maxretries: Option<i32>,
    /// Content type of messages that publish to the topic
    #[arg(short = 'c', long)]
    pub contenttype: Option<String>,
    /// Polling interval
    #[arg(long)]
    pub pollinginterval: Option<i32>,
    /// Cooldown period
    #[arg(long)]
    pub cooldownperiod: Option<i32>,
    /// Minimum number of replicas of consumers
    #[arg(long)]
    pub minreplicacount: Option<i32>,
    /// Maximum number of replicas of consumers
    #[arg(long)]
    pub maxreplicacount: Option<i32>,
    /// Metadata: --metadata key1=value1 (replaces the whole map)
    #[arg(long)]
    pub metadata: Vec<String>,
    /// Name of secret object
    #[arg(long)]
    pub secret: Option<String>,
}

/// Flags of `mqtrigger delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Message queue trigger name
    #[arg(long)]
    pub name: String,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

const KEDA_TYPES: [&str; 8] = [
    "kafka",
    "aws-sqs-queue",
    "aws-kinesis-stream",
    "gcp-pubsub",
    "stan",
    "rabbitmq",
    "redis",
    "nats-jetstream",
];

/// The MessageQueueTrigger `mqtrigger create` makes, with Fission's checks.
pub fn build(namespace: &str, name: &str, args: &CreateArgs) -> Result<MessageQueueTrigger> {
    let supported = if args.mqtkind == "keda" {
        KEDA_TYPES.contains(&args.mqtype.as_str())
    } else {
        args.mqtype == "kafka"
    };
    if !supported {
        return Err(Error::usage("unsupported message queue type"));
    }
    let topic = args
        .topic
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::usage("topic cannot be empty"))?;
    if args.resptopic.as_deref() == Some(topic.as_str()) {
        return Err(Error::usage(
            "listen topic should not equal to response topic",
        ));
    }
    for (v, msg) in [
        (
            args.maxretries,
            "maximum number of retries must be greater than or equal to 0",
        ),
        (
            args.pollinginterval,
            "polling interval must be greater than or equal to 0",
        ),
        (
            args.cooldownperiod,
            "cooldownPeriod must be greater than or equal to 0",
        ),
        (
            args.minreplicacount,
            "minReplicaCount must be greater than or equal to 0",
        ),
        (
            args.maxreplicacount,
            "maxReplicaCount must be greater than or equal to 0",
        ),
    ] {
        if v < 0 {
            return Err(Error::usage(msg));
        }
    }
    let metadata = names::parse_annotations(&args.metadata)?;
    Ok(MessageQueueTrigger {
        metadata: kube::core::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..kube::core::ObjectMeta::default()
        },
        spec: MessageQueueTriggerSpec {
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some(names::kube_name("function", &args.function)),
                functionweights: None,
            },
            message_queue_type: Some(args.mqtype.clone()),
            topic,
            resp_topic: args.resptopic.clone(),
            error_topic: args.errortopic.clone(),
            max_retries: Some(args.maxretries),
            content_type: Some(args.contenttype.clone()),
            polling_interval: Some(args.pollinginterval),
            cooldown_period: Some(args.cooldownperiod),
            min_replica_count: Some(args.minreplicacount),
            max_replica_count: Some(args.maxreplicacount),
            metadata: (!metadata.is_empty()).then_some(metadata),
            secret: args.secret.clone(),
            mqtkind: Some(args.mqtkind.clone()),
            podspec: None,
        },
        status: None,
    })
}

/// Runs a `fission mqtrigger` subcommand.
#[allow(clippy::too_many_lines)] // one arm per subcommand
pub async fn run(ctx: &Ctx, command: MqtCommand) -> Result<()> {
    match command {
        MqtCommand::Create(args) => {
            let name = match &args.name {
                Some(n) => names::kube_name("mqtrigger", n),
                None => names::uuid4()?,
            };
            let t = build(&ctx.namespace, &name, &args)?;
            ctx.api::<MessageQueueTrigger>()
                .create(&post(), &t)
                .await
                .map_err(|e| ctx.error("error creating message queue trigger", e))?;
            println!("trigger '{name}' created");
        }
        MqtCommand::Update(args) => {
            let name = names::kube_name("mqtrigger", &args.name);
            let mut t = ctx
                .get_opt::<MessageQueueTrigger>("error getting message queue trigger", &name)
                .await?
                .ok_or_else(|| Error::NotFound {
                    kind: "mqtrigger",
                    name: name.clone(),
                    namespace: ctx.namespace.clone(),
                    hint: String::new(),
                })?;
            let before = t.spec.clone();
            let s = &mut t.spec;
            if let Some(f) = &args.function {
                s.functionref.name = Some(names::kube_name("function", f));
            }
            if let Some(v) = &args.topic {
                s.topic.clone_from(v);
            }
            for (src, dst) in [
                (&args.resptopic, &mut s.resp_topic),
                (&args.errortopic, &mut s.error_topic),
                (&args.contenttype, &mut s.content_type),
                (&args.secret, &mut s.secret),
            ] {
                if src.is_some() {
                    dst.clone_from(src);
                }
            }
            for (src, dst) in [
                (args.maxretries, &mut s.max_retries),
                (args.pollinginterval, &mut s.polling_interval),
                (args.cooldownperiod, &mut s.cooldown_period),
                (args.minreplicacount, &mut s.min_replica_count),
                (args.maxreplicacount, &mut s.max_replica_count),
            ] {
                if src.is_some() {
                    *dst = src;
                }
            }
            if !args.metadata.is_empty() {
                s.metadata = Some(names::parse_annotations(&args.metadata)?);
            }
            if t.spec == before {
                return Err(Error::usage("nothing changed, see 'help' for more details"));
            }
            ctx.api::<MessageQueueTrigger>()
                .replace(&name, &post(), &t)
                .await
                .map_err(|e| ctx.error("error updating message queue trigger", e))?;
            println!("message queue trigger '{name}' updated");
        }
        MqtCommand::Delete(args) => {
            let name = names::kube_name("mqtrigger", &args.name);
            if delete::<MessageQueueTrigger>(
                ctx,
                "error deleting message queue trigger",
                &name,
                args.ignorenotfound,
            )
            .await?
            {
                println!("trigger '{name}' deleted");
            }
        }
        MqtCommand::List => {
            let list =
                list::<MessageQueueTrigger>(ctx, "error listing message queue triggers").await?;
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|t| {
                    let s = &t.spec;
                    vec![
                        t.metadata.name.clone().unwrap_or_default(),
                        s.functionref.name.clone().unwrap_or_default(),
                        s.message_queue_type.clone().unwrap_or_default(),
                        s.topic.clone(),
                        s.resp_topic.clone().unwrap_or_default(),
                        s.error_topic.clone().unwrap_or_default(),
                        s.max_retries.unwrap_or(0).to_string(),
                        s.content_type.clone().unwrap_or_default(),
                        t.metadata.namespace.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table::print(
                &[
                    "NAME",
                    "FUNCTION_NAME",
                    "MESSAGE_QUEUE_TYPE",
                    "TOPIC",
                    "RESPONSE_TOPIC",
                    "ERROR_TOPIC",
                    "MAX_RETRIES",
                    "CONTENT_TYPE",
                    "NAMESPACE",
                ],
                &rows,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(subcommand)]
        m: MqtCommand,
    }

    #[test]
    fn create_applies_fissions_defaults_and_checks() {
        let MqtCommand::Create(args) =
            Cmd::parse_from(["m", "create", "--function", "f", "--topic", "in"]).m
        else {
            panic!()
        };
        let t = build("default", "m1", &args).unwrap();
        assert_eq!(t.spec.mqtkind.as_deref(), Some("keda"));
        assert_eq!(t.spec.polling_interval, Some(30));
        assert_eq!(t.spec.cooldown_period, Some(300));
        assert_eq!(t.spec.max_replica_count, Some(100));
        assert_eq!(t.spec.content_type.as_deref(), Some("application/json"));
        let MqtCommand::Create(bad) = Cmd::parse_from([
            "m",
            "create",
            "--function",
            "f",
            "--topic",
            "in",
            "--resptopic",
            "in",
        ])
        .m
        else {
            panic!()
        };
        assert!(build("default", "m1", &bad).is_err());
    }
}
