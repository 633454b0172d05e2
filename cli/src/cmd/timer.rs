//! `fission timetrigger` (aliases `timer`, `tt`): create, list, update, delete, showschedule.

use clap::{Args, Subcommand};
use rivulet_api::{FunctionReference, TimeTrigger, TimeTriggerSpec};
use rivulet_reconcilers::triggers::timetrigger::schedule::Schedule;

use super::{delete, list, post};
use crate::client::Ctx;
use crate::error::{Error, Result};
use crate::{names, table};

/// `fission timer` subcommands.
#[derive(Debug, Subcommand)]
pub enum TimerCommand {
    /// Create a time trigger
    Create(CreateArgs),
    /// Update a time trigger
    Update(UpdateArgs),
    /// Delete a time trigger
    Delete(DeleteArgs),
    /// List time triggers
    List,
    /// Show schedule for cron spec
    Showschedule(ScheduleArgs),
}

/// Flags of `timer create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Time Trigger name (a UUID when absent)
    #[arg(long)]
    pub name: Option<String>,
    /// Function name
    #[arg(long)]
    pub function: Option<String>,
    /// Time trigger cron spec ('30 * * * *', six fields with seconds first, '@every 5m', '@hourly')
    #[arg(long)]
    pub cron: Option<String>,
    /// HTTP Methods: GET,POST,PUT,DELETE,HEAD. [default: POST]
    #[arg(long)]
    pub method: Option<String>,
    /// Sub Path to check if function internally supports routing
    #[arg(long)]
    pub subpath: Option<String>,
}

/// Flags of `timer update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Time Trigger name
    #[arg(long)]
    pub name: String,
    /// Function name
    #[arg(long)]
    pub function: Option<String>,
    /// Time trigger cron spec
    #[arg(long)]
    pub cron: Option<String>,
    /// HTTP Method
    #[arg(long)]
    pub method: Option<String>,
    /// Sub Path
    #[arg(long)]
    pub subpath: Option<String>,
}

/// Flags of `timer delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Time Trigger name
    #[arg(long)]
    pub name: String,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

/// Flags of `timer showschedule`.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// Time trigger cron spec
    #[arg(long)]
    pub cron: String,
    /// Get next N rounds of invocation time
    #[arg(long, default_value_t = 1)]
    pub round: usize,
}

fn check_cron(cron: &str) -> Result<Schedule> {
    Schedule::parse(cron).map_err(|e| Error::usage(format!("invalid cron spec '{cron}': {e}")))
}

fn check_method(method: Option<&String>) -> Result<Option<String>> {
    method
        .map(|m| {
            let up = m.to_ascii_uppercase();
            if rivulet_api::defaults::HTTP_METHODS.contains(&up.as_str()) {
                Ok(up)
            } else {
                Err(Error::usage(format!("invalid HTTP Method {m}")))
            }
        })
        .transpose()
}

/// The TimeTrigger `timer create` makes.
pub fn build(namespace: &str, name: &str, args: &CreateArgs) -> Result<TimeTrigger> {
    let function = args
        .function
        .as_deref()
        .ok_or_else(|| Error::usage("need a function name to create a trigger, use --function"))?;
    let cron = args.cron.as_deref().ok_or_else(|| {
        Error::usage("need a cron spec like '30 * * * *', '@every 1h30m', or '@hourly'; use --cron")
    })?;
    check_cron(cron)?;
    Ok(TimeTrigger {
        metadata: kube::core::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..kube::core::ObjectMeta::default()
        },
        spec: TimeTriggerSpec {
            cron: cron.to_owned(),
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some(names::kube_name("function", function)),
                functionweights: None,
            },
            method: check_method(args.method.as_ref())?,
            subpath: args.subpath.clone(),
        },
        status: None,
    })
}

/// The next `rounds` fire times of `cron` after `now`.
pub fn schedule(cron: &str, now: jiff::Timestamp, rounds: usize) -> Result<Vec<jiff::Timestamp>> {
    let s = check_cron(cron)?;
    let mut out = Vec::new();
    let mut t = now;
    for _ in 0..rounds {
        match s.next_after(t) {
            Some(next) => {
                out.push(next);
                t = next;
            }
            None => break,
        }
    }
    Ok(out)
}

/// Runs a `fission timer` subcommand.
#[allow(clippy::too_many_lines)] // one arm per subcommand
pub async fn run(ctx: &Ctx, command: TimerCommand) -> Result<()> {
    match command {
        TimerCommand::Create(args) => {
            let name = match &args.name {
                Some(n) => names::kube_name("timetrigger", n),
                None => names::uuid4()?,
            };
            let t = build(&ctx.namespace, &name, &args)?;
            ctx.api::<TimeTrigger>()
                .create(&post(), &t)
                .await
                .map_err(|e| ctx.error("error creating Time trigger", e))?;
            println!("trigger '{name}' created");
        }
        TimerCommand::Update(args) => {
            let name = names::kube_name("timetrigger", &args.name);
            let mut t = ctx
                .get_opt::<TimeTrigger>("error getting Time trigger", &name)
                .await?
                .ok_or_else(|| Error::NotFound {
                    kind: "timetrigger",
                    name: name.clone(),
                    namespace: ctx.namespace.clone(),
                    hint: String::new(),
                })?;
            if args.cron.is_none()
                && args.function.is_none()
                && args.method.is_none()
                && args.subpath.is_none()
            {
                return Err(Error::usage(
                    "nothing to update. Use --cron or --function or --method or --subpath",
                ));
            }
            if let Some(c) = &args.cron {
                check_cron(c)?;
                t.spec.cron.clone_from(c);
            }
            if let Some(f) = &args.function {
                t.spec.functionref.name = Some(names::kube_name("function", f));
            }
            if let Some(m) = check_method(args.method.as_ref())? {
                t.spec.method = Some(m);
            }
            if let Some(s) = &args.subpath {
                t.spec.subpath = Some(s.clone());
            }
            ctx.api::<TimeTrigger>()
                .replace(&name, &post(), &t)
                .await
                .map_err(|e| ctx.error("error updating Time trigger", e))?;
            println!("trigger '{name}' updated");
        }
        TimerCommand::Delete(args) => {
            let name = names::kube_name("timetrigger", &args.name);
            if delete::<TimeTrigger>(
                ctx,
                "error deleting Time trigger",
                &name,
                args.ignorenotfound,
            )
            .await?
            {
                println!("trigger '{name}' deleted");
            }
        }
        TimerCommand::List => {
            let list = list::<TimeTrigger>(ctx, "error listing Time triggers").await?;
            let rows: Vec<Vec<String>> = list
                .items
                .iter()
                .map(|t| {
                    vec![
                        t.metadata.name.clone().unwrap_or_default(),
                        t.spec.cron.clone(),
                        t.spec.functionref.name.clone().unwrap_or_default(),
                        t.spec.method.clone().unwrap_or_default(),
                        t.spec.subpath.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table::print(
                &["NAME", "CRON", "FUNCTION_NAME", "METHOD", "SUBPATH"],
                &rows,
            )?;
        }
        TimerCommand::Showschedule(args) => {
            let now = jiff::Timestamp::now();
            let times = schedule(&args.cron, now, args.round)?;
            println!(
                "Current Server Time: \t{}",
                now.strftime("%Y-%m-%dT%H:%M:%SZ")
            );
            for (i, t) in times.iter().enumerate() {
                println!(
                    "Next {} invocation: \t{}",
                    i + 1,
                    t.strftime("%Y-%m-%dT%H:%M:%SZ")
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_checks_the_cron_and_builds_the_trigger() {
        let args = CreateArgs {
            name: None,
            function: Some("hello_world".into()),
            cron: Some("@every 1m".into()),
            method: Some("get".into()),
            subpath: None,
        };
        let t = build("default", "t", &args).unwrap();
        assert_eq!(t.spec.functionref.name.as_deref(), Some("hello-world"));
        assert_eq!(t.spec.method.as_deref(), Some("GET"));
        let bad = CreateArgs {
            cron: Some("61 * * * *".into()),
            ..args
        };
        assert!(
            build("default", "t", &bad)
                .unwrap_err()
                .to_string()
                .contains("invalid cron spec")
        );
    }

    #[test]
    fn showschedule_lists_the_next_rounds() {
        let now: jiff::Timestamp = "2026-01-01T00:00:30Z".parse().unwrap();
        let times = schedule("*/15 * * * *", now, 3).unwrap();
        let text: Vec<String> = times.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "2026-01-01T00:15:00Z",
                "2026-01-01T00:30:00Z",
                "2026-01-01T00:45:00Z"
            ]
        );
    }
}
