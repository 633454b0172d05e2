//! `fission function` (alias `fn`): create, get, getmeta, list, update, delete, test, logs, pods.

use std::time::Duration;

use clap::{Args, Subcommand};
use futures::{AsyncBufReadExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{ListParams, LogParams};
use rivulet_api::keys::{executor_types, fission_labels};
use rivulet_api::{
    Environment, ExecutionStrategy, Function, FunctionPackageRef, FunctionSpec, HTTPTrigger,
    InvokeStrategy, ObjectRef, Package, PackageRef,
};

use super::{delete, list, meta, post};
use crate::archive;
use crate::client::Ctx;
use crate::cmd::{httptrigger, package};
use crate::error::{Error, Result};
use crate::http;
use crate::names::{self, ResourceFlags};
use crate::table;

/// The router `fn test` calls when FISSION_ROUTER_URL is unset: what `rivulet up` and the
/// router listen on by default.
pub const DEFAULT_ROUTER_URL: &str = "http://127.0.0.1:8888";

/// `fission fn` subcommands.
#[derive(Debug, Subcommand)]
pub enum FnCommand {
    /// Create a function (and optionally, an HTTP route to it)
    Create(Box<CreateArgs>),
    /// Get function source code
    Get(NameArgs),
    /// Get function metadata
    Getmeta(NameArgs),
    /// Update a function
    Update(Box<UpdateArgs>),
    /// Delete a function
    Delete(DeleteArgs),
    /// List functions
    List,
    /// Display function logs
    #[command(visible_alias = "log")]
    Logs(LogsArgs),
    /// Test a function
    Test(TestArgs),
    /// List pods currently used by a function
    #[command(visible_aliases = ["pod", "po"])]
    Pods(NameArgs),
}

/// Archive flags shared by `fn create`/`fn update` and `package create`/`package update`.
#[derive(Debug, Default, Args)]
pub struct ArchiveFlags {
    /// URL or local path for single file source code
    #[arg(long)]
    pub code: Option<String>,
    /// URL or local paths for binary archive (file, directory, glob or zip)
    #[arg(
        long = "deployarchive",
        visible_alias = "deploy",
        value_delimiter = ','
    )]
    pub deploy: Vec<String>,
    /// URL or local paths for source archive
    #[arg(long = "sourcearchive", visible_aliases = ["src", "source"], value_delimiter = ',')]
    pub src: Vec<String>,
    /// SHA256 checksum of deploy archive when providing URL
    #[arg(long)]
    pub deploychecksum: Option<String>,
    /// SHA256 checksum of source archive when providing URL
    #[arg(long)]
    pub srcchecksum: Option<String>,
    /// Package build command for builder to run with
    #[arg(long)]
    pub buildcmd: Option<String>,
}

impl ArchiveFlags {
    /// Whether any archive is given.
    pub fn any(&self) -> bool {
        self.code.is_some() || !self.deploy.is_empty() || !self.src.is_empty()
    }

    /// The deployment and source archives, read (and zipped, and uploaded when too large for
    /// a literal) now, before any object is created.
    pub async fn load(
        &self,
        ctx: &Ctx,
    ) -> Result<(Option<rivulet_api::Archive>, Option<rivulet_api::Archive>)> {
        let deploy = match (&self.code, self.deploy.is_empty()) {
            (Some(code), _) => Some(archive::load(std::slice::from_ref(code), true)?),
            (None, false) => Some(archive::load(&self.deploy, false)?),
            (None, true) => None,
        };
        let source = if self.src.is_empty() {
            None
        } else {
            Some(archive::load(&self.src, false)?)
        };
        let deploy = match deploy {
            Some(c) => {
                Some(archive::resolve(&ctx.client, c, self.deploychecksum.as_deref()).await?)
            }
            None => None,
        };
        let source = match source {
            Some(c) => Some(archive::resolve(&ctx.client, c, self.srcchecksum.as_deref()).await?),
            None => None,
        };
        Ok((deploy, source))
    }
}

/// Execution flags shared by `fn create` and `fn update` (unset means "default"/"unchanged").
#[derive(Debug, Default, Args)]
pub struct ExecFlags {
    /// Executor type for execution; one of 'poolmgr', 'newdeploy' [default: poolmgr]
    #[arg(long)]
    pub executortype: Option<String>,
    /// Minimum number of pods (Uses resource inputs to configure HPA) [default: 1]
    #[arg(long)]
    pub minscale: Option<i32>,
    /// Maximum number of pods (Uses resource inputs to configure HPA) [default: minscale]
    #[arg(long)]
    pub maxscale: Option<i32>,
    /// Target average CPU usage percentage across pods for scaling
    #[arg(long)]
    pub targetcpu: Option<i32>,
    /// Timeout for executor to wait for function pod creation [default: 120]
    #[arg(long, visible_alias = "st")]
    pub specializationtimeout: Option<i32>,
    #[command(flatten)]
    pub resources: ResourceFlags,
    /// Maximum time for a request to wait for the response from the function [default: 60]
    #[arg(long, visible_alias = "ft")]
    pub fntimeout: Option<i32>,
    /// The length of time (in seconds) that a function is idle before pod(s) are eligible for recycling [default: 120]
    #[arg(long)]
    pub idletimeout: Option<i32>,
    /// Maximum number of pods specialized concurrently to serve requests (Only valid for executortype; `poolmgr`) [default: 500]
    #[arg(long, visible_alias = "con")]
    pub concurrency: Option<i32>,
    /// Maximum number of concurrent requests that can be served by a specialized pod (Only valid for executortype; `poolmgr`) [default: 1]
    #[arg(long, visible_alias = "rpp")]
    pub requestsperpod: Option<i32>,
    /// Specifies if specialized pod will serve exactly one request in its lifetime (Only valid for executortype; `poolmgr`)
    #[arg(long, visible_alias = "yolo", num_args = 0..=1, default_missing_value = "true")]
    pub onceonly: Option<bool>,
    /// Number of pods to retain after pods specialization.
    #[arg(long)]
    pub retainpods: Option<i32>,
    /// Function access to secret, should be present in the same namespace as the function (repeatable)
    #[arg(long, value_delimiter = ',')]
    pub secret: Vec<String>,
    /// Function access to configmap, should be present in the same namespace as the function (repeatable)
    #[arg(long, value_delimiter = ',')]
    pub configmap: Vec<String>,
}

/// Flags of `fn create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Function name
    #[arg(long)]
    pub name: String,
    /// Environment name for function
    #[arg(long)]
    pub env: Option<String>,
    /// Name of the existing package (--deploy and --src and --env will be ignored), should be in the same namespace as the function
    #[arg(long = "pkgname", visible_alias = "pkg")]
    pub pkg: Option<String>,
    /// Entry point for environment v2 to load with
    #[arg(long, visible_alias = "entry")]
    pub entrypoint: Option<String>,
    #[command(flatten)]
    pub archives: ArchiveFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    /// URL pattern (See gorilla/mux supported patterns); creates an HTTP trigger
    #[arg(long)]
    pub url: Option<String>,
    /// HTTP Methods of the --url trigger: --method GET --method POST
    #[arg(long, value_delimiter = ',', default_value = "GET")]
    pub method: Vec<String>,
    /// Prefix with which functions are exposed. NOTE: Prefix takes precedence over URL/RelativeURL
    #[arg(long)]
    pub prefix: Option<String>,
    /// Comma separated labels to apply to the function. E.g. --labels="environment=dev,application=analytics"
    #[arg(long)]
    pub labels: Option<String>,
    /// Annotation to apply to the function, repeatable: --annotation="abc.com/team=dev"
    #[arg(long)]
    pub annotation: Vec<String>,
}

/// Flags of `fn update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Function name
    #[arg(long)]
    pub name: String,
    /// Environment name for function
    #[arg(long)]
    pub env: Option<String>,
    /// Name of the existing package, should be in the same namespace as the function
    #[arg(long = "pkgname", visible_alias = "pkg")]
    pub pkg: Option<String>,
    /// Entry point for environment v2 to load with
    #[arg(long, visible_alias = "entry")]
    pub entrypoint: Option<String>,
    #[command(flatten)]
    pub archives: ArchiveFlags,
    #[command(flatten)]
    pub exec: ExecFlags,
    /// Force update a package even if it is used by one or more functions
    #[arg(short, long)]
    pub force: bool,
}

/// `--name` only.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Function name
    #[arg(long)]
    pub name: String,
}

/// Flags of `fn delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Function name
    #[arg(long)]
    pub name: String,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

/// Flags of `fn test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Function name
    #[arg(long)]
    pub name: String,
    /// HTTP Method
    #[arg(long, default_value = "GET")]
    pub method: String,
    /// Request body
    #[arg(short, long, default_value = "")]
    pub body: String,
    /// Request headers: -H 'Name: value' (repeatable)
    #[arg(short = 'H', long)]
    pub header: Vec<String>,
    /// Request query parameters: -q key1=value1 -q key2=value2
    #[arg(short, long)]
    pub query: Vec<String>,
    /// Length of time to wait for the response, in seconds. If set to zero, the function's timeout applies
    #[arg(short, long)]
    pub timeout: Option<u64>,
    /// Sub Path to check if function internally supports routing
    #[arg(long)]
    pub subpath: Option<String>,
}

/// Flags of `fn logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Function name
    #[arg(long)]
    pub name: String,
    /// Function pod name (all of the function's pods if unspecified)
    #[arg(long)]
    pub pod: Option<String>,
    /// Specify if the logs should be streamed
    #[arg(short, long)]
    pub follow: bool,
    /// Display detailed information
    #[arg(short, long)]
    pub detail: bool,
    /// Get N most recent log records per container
    #[arg(long, default_value_t = 20)]
    pub recordcount: i64,
    /// Namespace in which function's pod are created. If not specified, function's namespace is used.
    #[arg(long = "pod-namespace")]
    pub pod_namespace: Option<String>,
}

/// Fission's `getInvokeStrategy` for a new function: poolmgr refuses scale flags; newdeploy
/// and container default MinScale to 1 and MaxScale to MinScale.
pub fn invoke_strategy(
    exec: &ExecFlags,
    existing: Option<&InvokeStrategy>,
) -> Result<InvokeStrategy> {
    let executor = match exec.executortype.as_deref() {
        Some("" | "poolmgr") => executor_types::POOLMGR,
        Some("newdeploy") => executor_types::NEWDEPLOY,
        Some("container") => executor_types::CONTAINER,
        Some(_) => {
            return Err(Error::usage(
                "executor type must be one of 'poolmgr', 'newdeploy' or 'container'",
            ));
        }
        None => existing.map_or(executor_types::POOLMGR, |s| {
            match s.execution_strategy.executor_type.as_str() {
                "newdeploy" => executor_types::NEWDEPLOY,
                "container" => executor_types::CONTAINER,
                _ => executor_types::POOLMGR,
            }
        }),
    };
    let old = existing.map(|s| &s.execution_strategy);
    let specialization = match exec.specializationtimeout {
        Some(t) if t < rivulet_api::defaults::MIN_SPECIALIZATION_TIMEOUT_SECS => {
            return Err(Error::usage(
                "specializationtimeout must be greater than or equal to 120 seconds",
            ));
        }
        Some(t) => t,
        None => old
            .and_then(|o| o.specialization_timeout)
            .unwrap_or(rivulet_api::defaults::MIN_SPECIALIZATION_TIMEOUT_SECS),
    };
    let mut strategy = ExecutionStrategy {
        executor_type: executor.to_owned(),
        specialization_timeout: Some(specialization),
        min_scale: Some(0),
        max_scale: Some(0),
        target_cpu_percent: Some(0),
        ..old.cloned().unwrap_or_default()
    };
    if executor == executor_types::POOLMGR {
        if exec.minscale.is_some() || exec.maxscale.is_some() || exec.targetcpu.is_some() {
            return Err(Error::usage(
                "to set target CPU or min/max scale for function, please specify \"--executortype newdeploy\"",
            ));
        }
        if exec.resources.any() {
            eprintln!(
                "warning: To limit CPU/Memory for function with executor type \"poolmgr\", please specify resources limits when creating environment"
            );
        }
        strategy.min_scale = Some(0);
        strategy.max_scale = Some(0);
    } else {
        let min = exec
            .minscale
            .or(old.and_then(|o| o.min_scale).filter(|_| existing.is_some()))
            .unwrap_or(1);
        let max = match exec.maxscale {
            Some(m) if m <= 0 => return Err(Error::usage("maxscale must be greater than 0")),
            Some(m) => m,
            None => old
                .and_then(|o| o.max_scale)
                .filter(|m| *m > 0)
                .unwrap_or(min)
                .max(min),
        };
        if min > max {
            return Err(Error::usage(format!(
                "minscale ({min}) can not be greater than maxscale ({max})"
            )));
        }
        strategy.min_scale = Some(min);
        strategy.max_scale = Some(max);
        if let Some(cpu) = exec.targetcpu {
            if !(1..=100).contains(&cpu) {
                return Err(Error::usage("targetcpu must be a value between 1 - 100"));
            }
            strategy.target_cpu_percent = Some(cpu);
        }
    }
    Ok(InvokeStrategy {
        execution_strategy: strategy,
        strategy_type: "execution".into(),
    })
}

fn refs(namespace: &str, names_given: &[String], kind: &str) -> Option<Vec<ObjectRef>> {
    (!names_given.is_empty()).then(|| {
        names_given
            .iter()
            .map(|n| ObjectRef {
                namespace: namespace.to_owned(),
                name: names::kube_name(kind, n),
            })
            .collect()
    })
}

/// The Function `fn create` makes (reference §9.3): Fission's CLI defaults written out.
pub fn build(
    namespace: &str,
    args: &CreateArgs,
    env: &ObjectRef,
    package: &PackageRef,
) -> Result<Function> {
    let name = names::kube_name("function", &args.name);
    let exec = &args.exec;
    let fntimeout = exec
        .fntimeout
        .unwrap_or(rivulet_api::defaults::FUNCTION_TIMEOUT_SECS);
    if fntimeout <= 0 {
        return Err(Error::usage("--fntimeout must be greater than 0"));
    }
    let strategy = invoke_strategy(exec, None)?;
    if strategy.execution_strategy.executor_type != executor_types::POOLMGR {
        for (set, flag) in [
            (exec.concurrency.is_some(), "concurrency"),
            (exec.requestsperpod.is_some(), "requestsperpod"),
            (exec.onceonly.is_some(), "onceonly"),
        ] {
            if set {
                eprintln!(
                    "warning: --{flag} is only valid for executortype; `poolmgr`. Check `fission function create --help`"
                );
            }
        }
    }
    Ok(Function {
        metadata: meta(namespace, &name, args.labels.as_deref(), &args.annotation)?,
        spec: FunctionSpec {
            environment: env.clone(),
            package: FunctionPackageRef {
                packageref: package.clone(),
                function_name: args.entrypoint.clone(),
            },
            secrets: refs(namespace, &exec.secret, "secret"),
            configmaps: refs(namespace, &exec.configmap, "configmap"),
            resources: Some(exec.resources.apply(None)?),
            invoke_strategy: strategy,
            function_timeout: Some(fntimeout),
            idle_timeout: Some(
                exec.idletimeout
                    .unwrap_or(rivulet_api::defaults::IDLE_TIMEOUT_SECS),
            ),
            concurrency: Some(
                exec.concurrency
                    .unwrap_or(rivulet_api::defaults::CONCURRENCY),
            ),
            requests_per_pod: Some(
                exec.requestsperpod
                    .unwrap_or(rivulet_api::defaults::REQUESTS_PER_POD),
            ),
            once_only: exec.onceonly,
            retain_pods: exec.retainpods,
            podspec: None,
        },
        status: None,
    })
}

/// `fn update`'s changes to the function itself (package handled by the caller).
pub fn apply_update(mut function: Function, args: &UpdateArgs) -> Result<Function> {
    let namespace = function.metadata.namespace.clone().unwrap_or_default();
    let exec = &args.exec;
    let spec = &mut function.spec;
    if let Some(env) = &args.env {
        spec.environment = ObjectRef {
            namespace: namespace.clone(),
            name: names::kube_name("environment", env),
        };
    }
    if let Some(entry) = &args.entrypoint {
        spec.package.function_name = Some(entry.clone());
    }
    if let Some(s) = refs(&namespace, &exec.secret, "secret") {
        spec.secrets = Some(s);
    }
    if let Some(c) = refs(&namespace, &exec.configmap, "configmap") {
        spec.configmaps = Some(c);
    }
    if let Some(t) = exec.fntimeout {
        if t <= 0 {
            return Err(Error::usage("--fntimeout must be greater than 0"));
        }
        spec.function_timeout = Some(t);
    }
    if let Some(t) = exec.idletimeout {
        spec.idle_timeout = Some(t);
    }
    if let Some(c) = exec.concurrency {
        spec.concurrency = Some(c);
    }
    if let Some(r) = exec.requestsperpod {
        spec.requests_per_pod = Some(r);
    }
    if let Some(r) = exec.retainpods {
        spec.retain_pods = Some(r);
    }
    if let Some(o) = exec.onceonly {
        spec.once_only = Some(o);
    }
    spec.invoke_strategy = invoke_strategy(exec, Some(&spec.invoke_strategy))?;
    if exec.resources.any() {
        spec.resources = Some(exec.resources.apply(spec.resources.take())?);
    }
    Ok(function)
}

/// Runs a `fission fn` subcommand.
pub async fn run(ctx: &Ctx, command: FnCommand) -> Result<()> {
    match command {
        FnCommand::Create(args) => create(ctx, &args).await,
        FnCommand::Get(args) => {
            let function = get(ctx, &args.name).await?;
            let pkg = package::get(ctx, &function.spec.package.packageref.name).await?;
            package::print_archive(pkg.spec.deployment.as_ref(), "deployment").await
        }
        FnCommand::Getmeta(args) => {
            let f = get(ctx, &args.name).await?;
            println!("Name: {}", f.metadata.name.unwrap_or_default());
            println!("Environment: {}", f.spec.environment.name);
            for (title, map) in [
                ("Labels", f.metadata.labels),
                ("Annotations", f.metadata.annotations),
            ] {
                if let Some(map) = map.filter(|m| !m.is_empty()) {
                    println!("{title}:");
                    for (k, v) in map {
                        println!("  {k}={v}");
                    }
                }
            }
            Ok(())
        }
        FnCommand::Update(args) => update(ctx, &args).await,
        FnCommand::Delete(args) => {
            let name = names::kube_name("function", &args.name);
            if delete::<Function>(
                ctx,
                &format!("delete function '{name}'"),
                &name,
                args.ignorenotfound,
            )
            .await?
            {
                println!("function '{name}' deleted");
            }
            Ok(())
        }
        FnCommand::List => {
            let list = list::<Function>(ctx, "error listing functions").await?;
            let rows: Vec<Vec<String>> = list.items.iter().map(list_row).collect();
            table::print(
                &[
                    "NAME",
                    "ENV",
                    "EXECUTORTYPE",
                    "MINSCALE",
                    "MAXSCALE",
                    "MINCPU",
                    "MAXCPU",
                    "MINMEMORY",
                    "MAXMEMORY",
                    "SECRETS",
                    "CONFIGMAPS",
                    "NAMESPACE",
                ],
                &rows,
            )
        }
        FnCommand::Logs(args) => logs(ctx, &args).await,
        FnCommand::Test(args) => test(ctx, &args).await,
        FnCommand::Pods(args) => {
            let f = get(ctx, &args.name).await?;
            let selector = format!(
                "{}={}",
                fission_labels::FUNCTION_UID,
                f.metadata.uid.unwrap_or_default()
            );
            print_pods(ctx, &selector).await
        }
    }
}

/// The Function named on the command line, or a not-found error.
pub async fn get(ctx: &Ctx, given: &str) -> Result<Function> {
    let name = names::kube_name("function", given);
    ctx.get_opt::<Function>("error getting function", &name)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "function",
            name,
            namespace: ctx.namespace.clone(),
            hint: String::new(),
        })
}

#[allow(clippy::too_many_lines)] // checks, then three creations with their rollbacks
/// Creates Package, Function and HTTPTrigger in that order, deleting what was created when a
/// later step fails, so a failed `fn create` leaves nothing behind.
async fn create(ctx: &Ctx, args: &CreateArgs) -> Result<()> {
    let name = names::kube_name("function", &args.name);
    // Everything that can be checked locally is checked before the first write.
    let trigger_url =
        httptrigger::route_flags(args.url.as_deref(), args.prefix.as_deref(), &args.method)?;
    if ctx
        .get_opt::<Function>("error getting function", &name)
        .await?
        .is_some()
    {
        return Err(Error::usage(format!(
            "a function with the same name already exists (function '{name}' in namespace '{}')",
            ctx.namespace
        )));
    }
    let (env, existing_pkg) = if let Some(pkg) = &args.pkg {
        let pkg = package::get(ctx, pkg).await?;
        if args.env.is_some() {
            eprintln!(
                "warning: Function's environment is different than package's environment, package's environment will be used for creating function"
            );
        }
        (pkg.spec.environment.clone(), Some(pkg))
    } else {
        let env_name = args
            .env
            .as_deref()
            .ok_or_else(|| Error::usage("need --env argument"))?;
        let env = names::kube_name("environment", env_name);
        check_env(ctx, &env).await?;
        (
            ObjectRef {
                namespace: ctx.namespace.clone(),
                name: env,
            },
            None,
        )
    };
    let archives = if existing_pkg.is_none() {
        if !args.archives.any() {
            return Err(Error::usage("need --code or --deploy or --src argument"));
        }
        Some(args.archives.load(ctx).await?)
    } else {
        None
    };
    warn_missing::<Secret>(ctx, &args.exec.secret, "Secret").await?;
    warn_missing::<ConfigMap>(ctx, &args.exec.configmap, "ConfigMap").await?;
    if let Some((url, prefix, methods)) = &trigger_url {
        httptrigger::check_duplicates(ctx, None, url.as_deref(), prefix.as_deref(), methods, None)
            .await?;
    }

    let (pkg, created_pkg) = match (existing_pkg, archives) {
        (Some(pkg), _) => (pkg, None),
        (None, Some((deploy, source))) => {
            let pkg_name = names::package_name(&name, &names::uuid4()?);
            let pkg = package::build(
                &ctx.namespace,
                &pkg_name,
                &env,
                deploy,
                source,
                args.archives.buildcmd.clone(),
                Time(jiff::Timestamp::now()),
            );
            let created = ctx
                .api::<Package>()
                .create(&post(), &pkg)
                .await
                .map_err(|e| ctx.error("error creating package", e))?;
            (created, Some(pkg_name))
        }
        (None, None) => return Err(Error::usage("need --code or --deploy or --src argument")),
    };
    let package_ref = PackageRef {
        namespace: pkg.metadata.namespace.clone().unwrap_or_default(),
        name: pkg.metadata.name.clone().unwrap_or_default(),
        resourceversion: pkg.metadata.resource_version.clone(),
    };
    let rollback_pkg = async |ctx: &Ctx| {
        if let Some(p) = &created_pkg {
            let _ = delete::<Package>(ctx, "rollback", p, true).await;
        }
    };
    let function = match build(&ctx.namespace, args, &env, &package_ref) {
        Ok(f) => f,
        Err(e) => {
            rollback_pkg(ctx).await;
            return Err(e);
        }
    };
    if let Err(e) = ctx.api::<Function>().create(&post(), &function).await {
        rollback_pkg(ctx).await;
        return Err(ctx.error("error creating function", e));
    }
    println!("function '{name}' created");

    let Some((url, prefix, methods)) = trigger_url else {
        return Ok(());
    };
    let trigger = httptrigger::build(
        &ctx.namespace,
        &names::uuid4()?,
        &name,
        url.as_deref(),
        prefix.as_deref().unwrap_or(""),
        &methods,
        None,
        false,
    );
    if let Err(e) = ctx.api::<HTTPTrigger>().create(&post(), &trigger).await {
        let _ = delete::<Function>(ctx, "rollback", &name, true).await;
        rollback_pkg(ctx).await;
        return Err(ctx.error("error creating HTTP trigger", e));
    }
    println!(
        "route created: [{}] {} -> {}",
        methods.join(" "),
        url.as_deref().unwrap_or_default(),
        args.name
    );
    Ok(())
}

/// An unknown environment is an error before anything is created (Fission only warns, and
/// the function then never runs).
async fn check_env(ctx: &Ctx, env: &str) -> Result<()> {
    if ctx
        .get_opt::<Environment>("error retrieving environment information", env)
        .await?
        .is_none()
    {
        return Err(Error::NotFound {
            kind: "environment",
            name: env.to_owned(),
            namespace: ctx.namespace.clone(),
            hint: format!(
                "; create it first, for example: fission env create --name {env} --image <image>"
            ),
        });
    }
    Ok(())
}

async fn warn_missing<K>(ctx: &Ctx, given: &[String], kind: &str) -> Result<()>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    for name in given {
        let name = names::kube_name(kind, name);
        if ctx
            .get_opt::<K>(&format!("error checking {kind} {name}"), &name)
            .await?
            .is_none()
        {
            eprintln!(
                "warning: {kind} {name} not found in Namespace: {}. {kind} needs to be present in the same namespace as function",
                ctx.namespace
            );
        }
    }
    Ok(())
}

/// `fn update`: with archives, the package is updated first and the function's packageref
/// `resourceversion` is set to the package's new one, so running pods are replaced by pods
/// with the new code (as Fission's CLI does).
async fn update(ctx: &Ctx, args: &UpdateArgs) -> Result<()> {
    let function = get(ctx, &args.name).await?;
    let name = function.metadata.name.clone().unwrap_or_default();
    let archives = if args.archives.any() {
        Some(args.archives.load(ctx).await?)
    } else {
        None
    };
    if let Some(env) = &args.env {
        check_env(ctx, &names::kube_name("environment", env)).await?;
    }
    warn_missing::<Secret>(ctx, &args.exec.secret, "secret").await?;
    warn_missing::<ConfigMap>(ctx, &args.exec.configmap, "ConfigMap").await?;
    let mut function = apply_update(function, args)?;
    let pkg_name = args.pkg.as_deref().map_or_else(
        || function.spec.package.packageref.name.clone(),
        |p| names::kube_name("package", p),
    );
    let mut pkg = package::get(ctx, &pkg_name).await.map_err(|e| {
        Error::usage(format!(
            "read package '{pkg_name}.{}'. Pkg should be present in the same ns as the function: {e}",
            ctx.namespace
        ))
    })?;
    if let Some((deploy, source)) = archives {
        let users = package::functions_using(ctx, &pkg_name).await?;
        if !args.force && users.len() > 1 {
            return Err(Error::usage(
                "package is used by multiple functions, use --force to force update",
            ));
        }
        let updated = package::apply_archives(pkg, deploy, source, args.archives.buildcmd.clone());
        pkg = ctx
            .api::<Package>()
            .replace(&pkg_name, &post(), &updated)
            .await
            .map_err(|e| ctx.error(&format!("error updating package '{pkg_name}'"), e))?;
        // Other functions on the same package follow it too (Fission's
        // UpdateFunctionPackageResourceVersion).
        for mut other in users
            .into_iter()
            .filter(|f| f.metadata.name.as_deref() != Some(&name))
        {
            let other_name = other.metadata.name.clone().unwrap_or_default();
            other.spec.package.packageref.resourceversion = pkg.metadata.resource_version.clone();
            ctx.api::<Function>()
                .replace(&other_name, &post(), &other)
                .await
                .map_err(|e| {
                    ctx.error(
                        "error updating function package reference resource version",
                        e,
                    )
                })?;
        }
    }
    function.spec.package.packageref = PackageRef {
        namespace: pkg.metadata.namespace.clone().unwrap_or_default(),
        name: pkg.metadata.name.clone().unwrap_or_default(),
        resourceversion: pkg.metadata.resource_version.clone(),
    };
    ctx.api::<Function>()
        .replace(&name, &post(), &function)
        .await
        .map_err(|e| ctx.error("error updating function", e))?;
    println!("Function '{name}' updated");
    Ok(())
}

/// The router URL: FISSION_ROUTER_URL (scheme optional, like Fission), else
/// [`DEFAULT_ROUTER_URL`].
pub fn router_url(env: Option<String>) -> String {
    match env.filter(|u| !u.trim().is_empty()) {
        Some(u) if u.contains("://") => u.trim_end_matches('/').to_owned(),
        Some(u) => format!("http://{}", u.trim_end_matches('/')),
        None => DEFAULT_ROUTER_URL.to_owned(),
    }
}

/// The path `fn test` calls: the function's own HTTPTrigger when it has a fixed URL or a
/// prefix (Rivulet serves `/fission-function/...` only on the router's internal listener),
/// else Fission's internal URL.
pub fn test_path(
    function: &str,
    namespace: &str,
    triggers: &[HTTPTrigger],
    method: &str,
) -> String {
    let route = triggers.iter().find_map(|t| {
        let s = &t.spec;
        let targets = s.functionref.reference_type == "name"
            && s.functionref.name.as_deref() == Some(function);
        let methods = s.methods.clone().unwrap_or_default();
        let method_ok = methods.is_empty()
            && s.method
                .as_deref()
                .is_none_or(|m| m.is_empty() || m == method)
            || methods.iter().any(|m| m == method)
            || s.method.as_deref() == Some(method);
        if !targets || !method_ok || s.host.as_deref().is_some_and(|h| !h.is_empty()) {
            return None;
        }
        match (s.prefix.as_deref(), s.relativeurl.as_deref()) {
            (Some(p), _) if !p.is_empty() => Some(p.to_owned()),
            (_, Some(u)) if !u.is_empty() && !u.contains('{') => Some(u.to_owned()),
            _ => None,
        }
    });
    route.unwrap_or_else(|| {
        if namespace == "default" {
            format!("/fission-function/{function}")
        } else {
            format!("/fission-function/{namespace}/{function}")
        }
    })
}

async fn test(ctx: &Ctx, args: &TestArgs) -> Result<()> {
    let function = get(ctx, &args.name).await?;
    let name = function.metadata.name.clone().unwrap_or_default();
    let method = args.method.to_ascii_uppercase();
    if !rivulet_api::defaults::HTTP_METHODS.contains(&method.as_str()) {
        return Err(Error::usage(format!(
            "{} is not a valid HTTP method",
            args.method
        )));
    }
    let triggers = list::<HTTPTrigger>(ctx, "error listing HTTP triggers").await?;
    let mut path = test_path(&name, &ctx.namespace, &triggers.items, &method);
    if let Some(sub) = &args.subpath {
        if !sub.starts_with('/') && !path.ends_with('/') {
            path.push('/');
        }
        path.push_str(sub);
    }
    if !args.query.is_empty() {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for q in &args.query {
            let (k, v) = q.split_once('=').unwrap_or((q, ""));
            query.append_pair(k, v);
        }
        path = format!("{path}?{}", query.finish());
    }
    let mut headers = Vec::new();
    for h in &args.header {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| Error::usage("failed to create request without appropriate headers"))?;
        headers.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    let fn_timeout = u64::try_from(function.spec.function_timeout.unwrap_or(0)).unwrap_or(0);
    let timeout = match args.timeout {
        Some(t) if t > 0 && t < fn_timeout => t,
        _ => fn_timeout,
    };
    let url = format!(
        "{}{path}",
        router_url(std::env::var("FISSION_ROUTER_URL").ok())
    );
    let answer = http::request(
        &method,
        &url,
        &headers,
        &args.body,
        Duration::from_secs(timeout),
    )
    .await?;
    if answer.status < 400 {
        use std::io::Write as _;
        std::io::stdout()
            .write_all(&answer.body)
            .map_err(Error::Output)?;
        return Ok(());
    }
    eprintln!(
        "calling function {name}: {}; Please try again or fix the error: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    let logs_args = LogsArgs {
        name: name.clone(),
        pod: None,
        follow: false,
        detail: false,
        recordcount: 20,
        pod_namespace: None,
    };
    if let Err(e) = logs(ctx, &logs_args).await {
        eprintln!("getting function logs: {e}");
    }
    Err(Error::FunctionFailed)
}

/// Pods of a function, as Fission selects them: by function UID (and environment, except
/// for `container` functions).
fn pod_selector(f: &Function) -> String {
    let uid = f.metadata.uid.clone().unwrap_or_default();
    if f.spec.invoke_strategy.execution_strategy.executor_type == executor_types::CONTAINER {
        format!("{}={uid}", fission_labels::FUNCTION_UID)
    } else {
        format!(
            "{}={uid},{}={},{}={}",
            fission_labels::FUNCTION_UID,
            fission_labels::ENVIRONMENT_NAME,
            f.spec.environment.name,
            fission_labels::ENVIRONMENT_NAMESPACE,
            f.spec.environment.namespace
        )
    }
}

async fn logs(ctx: &Ctx, args: &LogsArgs) -> Result<()> {
    use std::io::Write as _;
    let f = get(ctx, &args.name).await?;
    let pod_ns = args
        .pod_namespace
        .clone()
        .unwrap_or_else(|| ctx.namespace.clone());
    let pods_api: kube::Api<Pod> = kube::Api::namespaced(ctx.client.clone(), &pod_ns);
    let mut pods = pods_api
        .list(&ListParams::default().labels(&pod_selector(&f)))
        .await
        .map_err(|e| ctx.error("error listing function pods", e))?
        .items;
    if let Some(pod) = &args.pod {
        pods.retain(|p| p.metadata.name.as_deref() == Some(pod));
    }
    if pods.is_empty() {
        return Err(Error::usage(format!(
            "no active pods found for function in namespace {pod_ns}"
        )));
    }
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let tail = if args.recordcount <= 0 {
        1000
    } else {
        args.recordcount
    };
    let mut streams = Vec::new();
    let mut out = std::io::stdout();
    for pod in &pods {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let containers = pod
            .spec
            .as_ref()
            .map(|s| s.containers.clone())
            .unwrap_or_default();
        for container in containers.iter().filter(|c| c.name != "fetcher") {
            if args.detail {
                let node = pod
                    .spec
                    .as_ref()
                    .and_then(|s| s.node_name.clone())
                    .unwrap_or_default();
                write!(
                    out,
                    "\n=== Function={} Environment={} Namespace={pod_ns} Pod={pod_name} Container={} Node={node}\n",
                    f.metadata.name.as_deref().unwrap_or_default(),
                    f.spec.environment.name,
                    container.name
                )
                .map_err(Error::Output)?;
            }
            let params = LogParams {
                container: Some(container.name.clone()),
                follow: args.follow,
                tail_lines: Some(tail),
                ..LogParams::default()
            };
            if args.follow {
                let stream = pods_api
                    .log_stream(&pod_name, &params)
                    .await
                    .map_err(|e| ctx.error("error streaming pod log", e))?;
                streams.push(stream.lines().boxed());
            } else {
                let text = pods_api
                    .logs(&pod_name, &params)
                    .await
                    .map_err(|e| ctx.error("error getting container logs", e))?;
                out.write_all(text.as_bytes()).map_err(Error::Output)?;
            }
        }
    }
    let mut merged = futures::stream::select_all(streams);
    while let Some(line) = merged.next().await {
        let line = line.map_err(Error::Output)?;
        writeln!(out, "{line}").map_err(Error::Output)?;
        out.flush().map_err(Error::Output)?;
    }
    Ok(())
}

/// `fn pods`/`env pods`: the pods matching `selector` in the working namespace.
pub async fn print_pods(ctx: &Ctx, selector: &str) -> Result<()> {
    let pods = ctx
        .api::<Pod>()
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(|e| ctx.error("error listing pods", e))?;
    let rows: Vec<Vec<String>> = pods
        .items
        .iter()
        .map(|pod| {
            let statuses = pod
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.clone())
                .unwrap_or_default();
            let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
            let ready = statuses.iter().filter(|s| s.ready).count();
            let labels = pod.metadata.labels.clone().unwrap_or_default();
            let label = |k: &str| labels.get(k).cloned().unwrap_or_default();
            vec![
                pod.metadata.name.clone().unwrap_or_default(),
                pod.metadata.namespace.clone().unwrap_or_default(),
                format!("{ready}/{total}"),
                pod.status
                    .as_ref()
                    .and_then(|s| s.phase.clone())
                    .unwrap_or_default(),
                pod.status
                    .as_ref()
                    .and_then(|s| s.pod_ip.clone())
                    .unwrap_or_default(),
                label(fission_labels::EXECUTOR_TYPE),
                label(fission_labels::MANAGED),
                String::new(),
            ]
        })
        .collect();
    table::print(
        &[
            "NAME",
            "NAMESPACE",
            "READY",
            "STATUS",
            "IP",
            "EXECUTORTYPE",
            "MANAGED",
            "",
        ],
        &rows,
    )
}

fn list_row(f: &Function) -> Vec<String> {
    let s = &f.spec.invoke_strategy.execution_strategy;
    let res = f.spec.resources.as_ref();
    let requests = res.and_then(|r| r.requests.as_ref());
    let limits = res.and_then(|r| r.limits.as_ref());
    let join = |refs: &Option<Vec<ObjectRef>>| {
        refs.iter()
            .flatten()
            .map(|r| r.name.clone())
            .collect::<Vec<_>>()
            .join(",")
    };
    vec![
        f.metadata.name.clone().unwrap_or_default(),
        f.spec.environment.name.clone(),
        s.executor_type.clone(),
        s.min_scale.unwrap_or(0).to_string(),
        s.max_scale.unwrap_or(0).to_string(),
        names::quantity(requests, "cpu"),
        names::quantity(limits, "cpu"),
        names::quantity(requests, "memory"),
        names::quantity(limits, "memory"),
        join(&f.spec.secrets),
        join(&f.spec.configmaps),
        f.metadata.namespace.clone().unwrap_or_default(),
    ]
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cmd {
        #[command(subcommand)]
        f: FnCommand,
    }

    fn create_args(args: &[&str]) -> CreateArgs {
        let argv = ["fn", "create"].iter().chain(args).copied();
        match Cmd::parse_from(argv).f {
            FnCommand::Create(a) => *a,
            other => panic!("{other:?}"),
        }
    }

    fn seed() -> CreateArgs {
        create_args(&[
            "--name",
            "hello_world",
            "--env",
            "python",
            "--code",
            "hello_world.py",
            "--url",
            "/hello_world",
            "--method",
            "GET",
        ])
    }

    #[test]
    fn seed_fn_create_matches_fission() {
        let args = seed();
        let env = ObjectRef {
            namespace: "default".into(),
            name: "python".into(),
        };
        let pkg = PackageRef {
            namespace: "default".into(),
            name: "hello-world-0b3c0d5e-0000-4000-8000-000000000000".into(),
            resourceversion: Some("42".into()),
        };
        let f = build("default", &args, &env, &pkg).unwrap();
        insta::assert_yaml_snapshot!("fn_create_seed", f);
        assert_eq!(args.archives.code.as_deref(), Some("hello_world.py"));
        assert_eq!(args.url.as_deref(), Some("/hello_world"));
    }

    #[test]
    fn poolmgr_refuses_scale_flags_and_newdeploy_defaults_them() {
        let env = ObjectRef::default();
        let pkg = PackageRef::default();
        let err = build(
            "d",
            &create_args(&["--name", "a", "--minscale", "2"]),
            &env,
            &pkg,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("--executortype newdeploy"),
            "{err}"
        );
        let f = build(
            "d",
            &create_args(&[
                "--name",
                "a",
                "--executortype",
                "newdeploy",
                "--minscale",
                "2",
            ]),
            &env,
            &pkg,
        )
        .unwrap();
        let s = f.spec.invoke_strategy.execution_strategy;
        assert_eq!((s.min_scale, s.max_scale), (Some(2), Some(2)));
        let err = build(
            "d",
            &create_args(&[
                "--name",
                "a",
                "--executortype",
                "newdeploy",
                "--minscale",
                "3",
                "--maxscale",
                "2",
            ]),
            &env,
            &pkg,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "minscale (3) can not be greater than maxscale (2)"
        );
        assert!(
            build(
                "d",
                &create_args(&["--name", "a", "--executortype", "x"]),
                &env,
                &pkg
            )
            .is_err()
        );
        assert!(
            build(
                "d",
                &create_args(&["--name", "a", "--fntimeout", "0"]),
                &env,
                &pkg
            )
            .is_err()
        );
    }

    #[test]
    fn update_keeps_what_is_not_given() {
        let env = ObjectRef {
            namespace: "default".into(),
            name: "python".into(),
        };
        let f = build("default", &seed(), &env, &PackageRef::default()).unwrap();
        let args = match Cmd::parse_from([
            "fn",
            "update",
            "--name",
            "hello_world",
            "--concurrency",
            "7",
            "--secret",
            "s1",
        ])
        .f
        {
            FnCommand::Update(a) => a,
            other => panic!("{other:?}"),
        };
        let updated = apply_update(f.clone(), &args).unwrap();
        assert_eq!(updated.spec.concurrency, Some(7));
        assert_eq!(updated.spec.secrets.unwrap()[0].name, "s1");
        assert_eq!(updated.spec.invoke_strategy, f.spec.invoke_strategy);
        assert_eq!(updated.spec.idle_timeout, Some(120));
    }

    #[test]
    fn fn_test_uses_the_functions_route_else_the_internal_url() {
        let t = httptrigger::build(
            "default",
            "t1",
            "hello-world",
            Some("/hello_world"),
            "",
            &["GET".into()],
            None,
            false,
        );
        assert_eq!(
            test_path("hello-world", "default", std::slice::from_ref(&t), "GET"),
            "/hello_world"
        );
        assert_eq!(
            test_path("hello-world", "default", std::slice::from_ref(&t), "POST"),
            "/fission-function/hello-world"
        );
        assert_eq!(
            test_path("other", "dev", &[t], "GET"),
            "/fission-function/dev/other"
        );
        assert_eq!(router_url(None), "http://127.0.0.1:8888");
        assert_eq!(
            router_url(Some("127.0.0.1:9000/".into())),
            "http://127.0.0.1:9000"
        );
        assert_eq!(router_url(Some("http://r:1".into())), "http://r:1");
    }
}
