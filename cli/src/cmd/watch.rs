//! `fission watch` (alias `w`): create, list, delete KubernetesWatchTriggers.

use clap::{Args, Subcommand};
use rivulet_api::{FunctionReference, KubernetesWatchTrigger, KubernetesWatchTriggerSpec};

use super::{delete, list, post};
use crate::client::Ctx;
use crate::error::Result;
use crate::{names, table};

/// `fission watch` subcommands.
#[derive(Debug, Subcommand)]
pub enum WatchCommand {
    /// Create a kubewatch trigger
    Create(CreateArgs),
    /// Delete a kubewatch trigger
    Delete(DeleteArgs),
    /// List kubewatch triggers
    List,
}

/// Flags of `watch create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Watch name (a UUID when absent)
    #[arg(long)]
    pub name: Option<String>,
    /// Function name
    #[arg(long)]
    pub function: String,
    /// Type of resource to watch (Pod, Service, etc.)
    #[arg(long = "type", default_value = "pod")]
    pub object_type: String,
    /// Label selector of the form a=b,c=d (Rivulet honours it; Fission's CLI has no such flag)
    #[arg(long)]
    pub labels: Option<String>,
}

/// Flags of `watch delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Watch name
    #[arg(long)]
    pub name: String,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

/// The trigger `watch create` makes: it watches the function's own namespace, as Fission's.
pub fn build(namespace: &str, name: &str, args: &CreateArgs) -> Result<KubernetesWatchTrigger> {
    let labels = names::parse_labels(args.labels.as_deref())?;
    Ok(KubernetesWatchTrigger {
        metadata: kube::core::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..kube::core::ObjectMeta::default()
        },
        spec: KubernetesWatchTriggerSpec {
            namespace: namespace.to_owned(),
            object_type: args.object_type.clone(),
            labelselector: (!labels.is_empty()).then_some(labels),
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some(names::kube_name("function", &args.function)),
                functionweights: None,
            },
        },
        status: None,
    })
}

/// Runs a `fission watch` subcommand.
pub async fn run(ctx: &Ctx, command: WatchCommand) -> Result<()> {
    match command {
        WatchCommand::Create(args) => {
            let name = match &args.name {
                Some(n) => names::kube_name("watch", n),
                None => names::uuid4()?,
            };
            let w = build(&ctx.namespace, &name, &args)?;
            ctx.api::<KubernetesWatchTrigger>()
                .create(&post(), &w)
                .await
                .map_err(|e| ctx.error("error creating kubewatch trigger", e))?;
            println!("trigger '{name}' created");
        }
        WatchCommand::Delete(args) => {
            let name = names::kube_name("watch", &args.name);
            if delete::<KubernetesWatchTrigger>(
                ctx,
                "error deleting kubewatch",
                &name,
                args.ignorenotfound,
            )
            .await?
            {
                println!("trigger '{name}' deleted");
            }
        }
        WatchCommand::List => {
            let list =
                list::<KubernetesWatchTrigger>(ctx, "error listing kubewatch triggers").await?;
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|w| {
                    vec![
                        w.metadata.name.clone().unwrap_or_default(),
                        w.spec.namespace.clone(),
                        w.spec.object_type.clone(),
                        w.spec
                            .labelselector
                            .iter()
                            .flatten()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        w.spec.functionref.name.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table::print(
                &["NAME", "NAMESPACE", "OBJTYPE", "LABELS", "FUNCTION_NAME"],
                &rows,
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watch_create_watches_the_working_namespace() {
        let args = CreateArgs {
            name: None,
            function: "hello_world".into(),
            object_type: "pod".into(),
            labels: Some("app=web".into()),
        };
        let w = build("dev", "w1", &args).unwrap();
        assert_eq!(w.spec.namespace, "dev");
        assert_eq!(w.spec.functionref.name.as_deref(), Some("hello-world"));
        assert_eq!(
            w.spec.labelselector.unwrap().get("app").map(String::as_str),
            Some("web")
        );
    }
}
