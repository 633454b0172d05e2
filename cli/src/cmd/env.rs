//! `fission environment` (alias `env`): create, get, list, update, delete, pods.

use clap::{Args, Subcommand};
use k8s_openapi::api::core::v1::{Container, EnvVar, PodSpec, ResourceRequirements};
use rivulet_api::{Builder, Environment, EnvironmentSpec, Function, Runtime};

use super::{delete, list, meta, post};
use crate::client::Ctx;
use crate::error::{Error, Result};
use crate::names::{self, ResourceFlags};
use crate::table;

/// `fission env` subcommands.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Create an environment
    Create(CreateArgs),
    /// Get environment details
    Get(NameArgs),
    /// Update an environment
    Update(UpdateArgs),
    /// Delete an environment
    Delete(DeleteArgs),
    /// List environments
    List,
    /// List pods currently maintained by an environment
    #[command(visible_aliases = ["pod", "po"])]
    Pods(NameArgs),
}

/// Flags of `env create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Environment name
    #[arg(long)]
    pub name: String,
    /// Environment image URL
    #[arg(long)]
    pub image: String,
    /// Size of the pool
    #[arg(long, default_value_t = 3)]
    pub poolsize: i32,
    /// Environment builder image URL
    #[arg(long)]
    pub builder: Option<String>,
    /// Build command for environment builder to build source package
    #[arg(long)]
    pub buildcmd: Option<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Grace time (in seconds) for pod to perform connection draining before termination (only non-negative values considered)
    #[arg(long, visible_alias = "period", default_value_t = 360)]
    pub graceperiod: i64,
    /// Environment API version (1 means v1 interface)
    #[arg(long, default_value_t = 3)]
    pub version: i32,
    /// Secret for Kubernetes to pull an image from a private registry
    #[arg(long)]
    pub imagepullsecret: Option<String>,
    /// Keep the archive instead of extracting it into a directory (mainly for the JVM environment because .jar is one kind of zip archive)
    #[arg(long)]
    pub keeparchive: bool,
    /// Allow pod to access external network (only works when istio feature is enabled)
    #[arg(long)]
    pub externalnetwork: bool,
    /// Comma separated labels to apply to the environment. E.g. --labels="environment=dev,application=analytics"
    #[arg(long)]
    pub labels: Option<String>,
    /// Annotation to apply to the environment, repeatable: --annotation="abc.com/team=dev"
    #[arg(long)]
    pub annotation: Vec<String>,
    /// Environment variable to be set in the runtime container (KEY=VALUE, repeatable)
    #[arg(long = "runtime-env", value_delimiter = ',')]
    pub runtime_env: Vec<String>,
    /// Environment variable to be set in the builder container (KEY=VALUE, repeatable)
    #[arg(long = "builder-env", value_delimiter = ',')]
    pub builder_env: Vec<String>,
}

/// Flags of `env update`: only the given ones change.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Environment name
    #[arg(long)]
    pub name: String,
    /// Environment image URL
    #[arg(long)]
    pub image: Option<String>,
    /// Size of the pool
    #[arg(long)]
    pub poolsize: Option<i32>,
    /// Environment builder image URL
    #[arg(long)]
    pub builder: Option<String>,
    /// Build command for environment builder to build source package
    #[arg(long)]
    pub buildcmd: Option<String>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Grace time (in seconds) for pod to perform connection draining before termination
    #[arg(long, visible_alias = "period")]
    pub graceperiod: Option<i64>,
    /// Secret for Kubernetes to pull an image from a private registry
    #[arg(long)]
    pub imagepullsecret: Option<String>,
    /// Keep the archive instead of extracting it into a directory
    #[arg(long)]
    pub keeparchive: Option<bool>,
    /// Allow pod to access external network (only works when istio feature is enabled)
    #[arg(long)]
    pub externalnetwork: Option<bool>,
    /// Environment variable to be set in the runtime container (KEY=VALUE, repeatable)
    #[arg(long = "runtime-env", value_delimiter = ',')]
    pub runtime_env: Vec<String>,
}

/// `--name` only.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Environment name
    #[arg(long)]
    pub name: String,
}

/// Flags of `env delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Environment name
    #[arg(long)]
    pub name: String,
    /// Force delete env even if one or more functions exist
    #[arg(short, long)]
    pub force: bool,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

/// The Environment `env create` makes, as Fission v1.22's CLI (reference §9.3): the runtime
/// and builder containers named, resources explicit, grace period 360.
pub fn build(namespace: &str, args: &CreateArgs) -> Result<Environment> {
    let name = names::kube_name("environment", &args.name);
    if args.version == 1 && args.builder.is_some() {
        return Err(Error::usage(
            "version 1 Environments do not support builders. Must specify --version=2",
        ));
    }
    if args.poolsize < 1 {
        eprintln!(
            "warning: poolsize is not positive, if you are using pool manager please set positive value"
        );
    }
    let resources = args.resources.apply(None)?;
    let runtime_env = env_vars(&args.runtime_env)?;
    let builder_env = env_vars(&args.builder_env)?;
    let builder_name = "builder";
    let spec = EnvironmentSpec {
        version: args.version,
        runtime: Runtime {
            image: args.image.clone(),
            container: Some(named_container(&name, runtime_env)),
            podspec: Some(named_podspec(&name)),
        },
        builder: Some(Builder {
            image: args.builder.clone(),
            // Fission defaults the build command to `build` when there is a builder image.
            command: args
                .buildcmd
                .clone()
                .or_else(|| args.builder.as_ref().map(|_| "build".to_owned())),
            container: Some(named_container(builder_name, builder_env)),
            podspec: Some(named_podspec(builder_name)),
        }),
        poolsize: Some(args.poolsize),
        resources: Some(resources),
        termination_grace_period: Some(args.graceperiod),
        keeparchive: Some(args.keeparchive),
        imagepullsecret: Some(args.imagepullsecret.clone().unwrap_or_default()),
        allow_access_to_external_network: args.externalnetwork.then_some(true),
        ..EnvironmentSpec::default()
    };
    Ok(Environment {
        metadata: meta(namespace, &name, args.labels.as_deref(), &args.annotation)?,
        spec,
        status: None,
    })
}

/// `env update`: the existing Environment with the given flags applied.
pub fn apply_update(mut env: Environment, args: &UpdateArgs) -> Result<Environment> {
    let spec = &mut env.spec;
    if let Some(image) = &args.image {
        spec.runtime.image.clone_from(image);
    }
    if let Some(poolsize) = args.poolsize {
        spec.poolsize = Some(poolsize);
    }
    if args.builder.is_some() || args.buildcmd.is_some() {
        if spec.version == 1 {
            return Err(Error::usage(
                "version 1 Environments do not support builders. Must specify --version=2",
            ));
        }
        let builder = spec.builder.get_or_insert_with(Builder::default);
        if let Some(image) = &args.builder {
            builder.image = Some(image.clone());
        }
        if let Some(cmd) = &args.buildcmd {
            builder.command = Some(cmd.clone());
        }
    }
    if args.resources.any() {
        spec.resources = Some(args.resources.apply(spec.resources.take())?);
    }
    if let Some(grace) = args.graceperiod {
        spec.termination_grace_period = Some(grace);
    }
    if let Some(secret) = &args.imagepullsecret {
        spec.imagepullsecret = Some(secret.clone());
    }
    if let Some(keep) = args.keeparchive {
        spec.keeparchive = Some(keep);
    }
    if let Some(ext) = args.externalnetwork {
        spec.allow_access_to_external_network = Some(ext);
    }
    if !args.runtime_env.is_empty() {
        let vars = env_vars(&args.runtime_env)?;
        let name = env.metadata.name.clone().unwrap_or_default();
        let container = spec
            .runtime
            .container
            .get_or_insert_with(|| named_container(&name, None));
        container.env = vars;
    }
    Ok(env)
}

fn named_container(name: &str, env: Option<Vec<EnvVar>>) -> Container {
    Container {
        name: name.to_owned(),
        env,
        resources: Some(ResourceRequirements::default()),
        ..Container::default()
    }
}

fn named_podspec(name: &str) -> PodSpec {
    PodSpec {
        containers: vec![named_container(name, None)],
        ..PodSpec::default()
    }
}

fn env_vars(items: &[String]) -> Result<Option<Vec<EnvVar>>> {
    if items.is_empty() {
        return Ok(None);
    }
    items
        .iter()
        .map(|item| {
            let (name, value) = item.split_once('=').ok_or_else(|| {
                Error::usage(format!("environment variable '{item}' is not KEY=VALUE"))
            })?;
            Ok(EnvVar {
                name: name.to_owned(),
                value: Some(value.to_owned()),
                value_from: None,
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Runs a `fission env` subcommand.
#[allow(clippy::too_many_lines)] // one arm per subcommand
pub async fn run(ctx: &Ctx, command: EnvCommand) -> Result<()> {
    match command {
        EnvCommand::Create(args) => {
            let env = build(&ctx.namespace, &args)?;
            let created = ctx
                .api::<Environment>()
                .create(&post(), &env)
                .await
                .map_err(|e| ctx.error("error creating environment", e))?;
            println!(
                "environment '{}' created",
                created.metadata.name.unwrap_or_default()
            );
        }
        EnvCommand::Get(args) => {
            let env = get(ctx, &args.name).await?;
            table::print(
                &["NAME", "IMAGE"],
                &[vec![
                    env.metadata.name.unwrap_or_default(),
                    env.spec.runtime.image,
                ]],
            )?;
        }
        EnvCommand::Update(args) => {
            let env = get(ctx, &args.name).await?;
            let updated = apply_update(env, &args)?;
            let name = updated.metadata.name.clone().unwrap_or_default();
            ctx.api::<Environment>()
                .replace(&name, &post(), &updated)
                .await
                .map_err(|e| ctx.error("error updating environment", e))?;
            println!("environment '{name}' updated");
        }
        EnvCommand::Delete(args) => {
            let name = names::kube_name("environment", &args.name);
            if !args.force {
                let functions = list::<Function>(ctx, "error listing functions").await?;
                if functions
                    .items
                    .iter()
                    .any(|f| f.spec.environment.name == name)
                {
                    return Err(Error::usage(
                        "environment is used by at least one function (use --force to delete it anyway)",
                    ));
                }
            }
            if delete::<Environment>(
                ctx,
                "error deleting environment",
                &name,
                args.ignorenotfound,
            )
            .await?
            {
                println!("environment '{name}' deleted");
            }
        }
        EnvCommand::List => {
            let list = list::<Environment>(ctx, "error listing environments").await?;
            let rows: Vec<Vec<String>> = list.items.iter().map(list_row).collect();
            table::print(
                &[
                    "NAME",
                    "IMAGE",
                    "BUILDER_IMAGE",
                    "POOLSIZE",
                    "MINCPU",
                    "MAXCPU",
                    "MINMEMORY",
                    "MAXMEMORY",
                    "EXTNET",
                    "GRACETIME",
                    "NAMESPACE",
                ],
                &rows,
            )?;
        }
        EnvCommand::Pods(args) => {
            let env = get(ctx, &args.name).await?;
            let name = env.metadata.name.clone().unwrap_or_default();
            let selector = format!(
                "{}={name},{}={}",
                rivulet_api::keys::fission_labels::ENVIRONMENT_NAME,
                rivulet_api::keys::fission_labels::ENVIRONMENT_NAMESPACE,
                ctx.namespace
            );
            super::function::print_pods(ctx, &selector).await?;
        }
    }
    Ok(())
}

async fn get(ctx: &Ctx, given: &str) -> Result<Environment> {
    let name = names::kube_name("environment", given);
    ctx.get_opt::<Environment>("error getting environment", &name)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "environment",
            name,
            namespace: ctx.namespace.clone(),
            hint: String::new(),
        })
}

fn list_row(env: &Environment) -> Vec<String> {
    let res = env.spec.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    vec![
        env.metadata.name.clone().unwrap_or_default(),
        env.spec.runtime.image.clone(),
        env.spec
            .builder
            .as_ref()
            .and_then(|b| b.image.clone())
            .unwrap_or_default(),
        env.spec.poolsize.unwrap_or(0).to_string(),
        names::quantity(requests, "cpu"),
        names::quantity(limits, "cpu"),
        names::quantity(requests, "memory"),
        names::quantity(limits, "memory"),
        env.spec
            .allow_access_to_external_network
            .unwrap_or(false)
            .to_string(),
        env.spec.termination_grace_period.unwrap_or(0).to_string(),
        env.metadata.namespace.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(subcommand)]
        env: EnvCommand,
    }

    fn create(args: &[&str]) -> CreateArgs {
        let argv = ["env", "create"].iter().chain(args).copied();
        match Cmd::parse_from(argv).env {
            EnvCommand::Create(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn seed_env_create_matches_fission() {
        let env = build(
            "default",
            &create(&["--name", "python", "--image", "fission/python-env"]),
        )
        .unwrap();
        insta::assert_yaml_snapshot!("env_create_seed", env);
    }

    #[test]
    fn builder_and_resources() {
        let env = build(
            "dev",
            &create(&[
                "--name",
                "py",
                "--image",
                "img",
                "--builder",
                "bld",
                "--mincpu",
                "100",
                "--maxmemory",
                "256",
                "--poolsize",
                "1",
                "--version",
                "2",
                "--runtime-env",
                "A=1",
            ]),
        )
        .unwrap();
        let builder = env.spec.builder.unwrap();
        assert_eq!(builder.command.as_deref(), Some("build"));
        assert_eq!(builder.image.as_deref(), Some("bld"));
        let res = env.spec.resources.unwrap();
        assert_eq!(names::quantity(res.requests.as_ref(), "cpu"), "100m");
        assert_eq!(names::quantity(res.limits.as_ref(), "memory"), "256Mi");
        assert_eq!(env.spec.poolsize, Some(1));
        let vars = env.spec.runtime.container.unwrap().env.unwrap();
        assert_eq!(vars[0].name, "A");
        let err = build(
            "d",
            &create(&[
                "--name",
                "a",
                "--image",
                "i",
                "--version",
                "1",
                "--builder",
                "b",
            ]),
        )
        .unwrap_err();
        assert!(err.to_string().contains("do not support builders"));
    }

    #[test]
    fn update_changes_only_given_flags() {
        let env = build("default", &create(&["--name", "python", "--image", "a"])).unwrap();
        let args =
            match Cmd::parse_from(["env", "update", "--name", "python", "--poolsize", "5"]).env {
                EnvCommand::Update(a) => a,
                other => panic!("{other:?}"),
            };
        let updated = apply_update(env.clone(), &args).unwrap();
        assert_eq!(updated.spec.poolsize, Some(5));
        assert_eq!(updated.spec.runtime, env.spec.runtime);
        assert_eq!(updated.spec.termination_grace_period, Some(360));
    }
}
