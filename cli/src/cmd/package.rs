//! `fission package` (alias `pkg`): create, info, list, update, delete, getsrc, getdeploy.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rivulet_api::{Archive, Environment, Function, ObjectRef, Package, PackageSpec, PackageStatus};

use super::function::ArchiveFlags;
use super::{delete, list, post};
use crate::client::Ctx;
use crate::error::{Error, Result};
use crate::{http, names, table};

/// `fission package` subcommands.
#[derive(Debug, Subcommand)]
pub enum PkgCommand {
    /// Create a new package
    Create(CreateArgs),
    /// Show package information
    Info(NameArgs),
    /// List all packages
    List(ListArgs),
    /// Update a package
    Update(UpdateArgs),
    /// Delete a package
    Delete(DeleteArgs),
    /// Get source archive content
    Getsrc(GetArgs),
    /// Get deployment archive content
    Getdeploy(GetArgs),
}

/// Flags of `package create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Package name (generated when absent)
    #[arg(long)]
    pub name: Option<String>,
    /// Environment name
    #[arg(long)]
    pub env: String,
    #[command(flatten)]
    pub archives: ArchiveFlags,
}

/// Flags of `package update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Package name
    #[arg(long)]
    pub name: String,
    /// Environment name
    #[arg(long)]
    pub env: Option<String>,
    #[command(flatten)]
    pub archives: ArchiveFlags,
    /// Force update a package even if it is used by one or more functions
    #[arg(short, long)]
    pub force: bool,
}

/// `--name` only.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// Package name
    #[arg(long)]
    pub name: String,
}

/// Flags of `package list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Orphan packages that are not referenced by any function
    #[arg(long)]
    pub orphan: bool,
    /// Filter packages by status
    #[arg(long)]
    pub status: Option<String>,
}

/// Flags of `package delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Package name
    #[arg(long)]
    pub name: Option<String>,
    /// Force delete a package even if it is used by one or more functions
    #[arg(short, long)]
    pub force: bool,
    /// Delete the packages that are not referenced by any function
    #[arg(long)]
    pub orphan: bool,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

/// Flags of `package getsrc`/`getdeploy`.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Package name
    #[arg(long)]
    pub name: String,
    /// Output filename to save archive content
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// A Package as Fission's CLI writes it: `succeeded` for a deployment archive alone (nothing
/// to build), `pending` when there is a source archive.
pub fn build(
    namespace: &str,
    name: &str,
    env: &ObjectRef,
    deployment: Option<Archive>,
    source: Option<Archive>,
    buildcmd: Option<String>,
    now: Time,
) -> Package {
    let status = if source.is_some() {
        "pending"
    } else {
        "succeeded"
    };
    Package {
        metadata: kube::core::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..kube::core::ObjectMeta::default()
        },
        spec: PackageSpec {
            environment: env.clone(),
            source,
            deployment,
            buildcmd,
        },
        status: Some(PackageStatus {
            buildstatus: Some(status.into()),
            last_update_timestamp: Some(now),
            ..PackageStatus::default()
        }),
    }
}

/// `pkg` with new archives; the status restarts as at creation.
pub fn apply_archives(
    mut pkg: Package,
    deployment: Option<Archive>,
    source: Option<Archive>,
    buildcmd: Option<String>,
) -> Package {
    if deployment.is_some() {
        pkg.spec.deployment = deployment;
    }
    if source.is_some() {
        pkg.spec.source = source;
    }
    if buildcmd.is_some() {
        pkg.spec.buildcmd = buildcmd;
    }
    let status = if pkg.spec.source.as_ref().is_some_and(|s| !s.is_empty())
        && pkg.spec.deployment.as_ref().is_none_or(Archive::is_empty)
    {
        "pending"
    } else {
        "succeeded"
    };
    let st = pkg.status.get_or_insert_with(PackageStatus::default);
    st.buildstatus = Some(status.into());
    st.last_update_timestamp = Some(Time(jiff::Timestamp::now()));
    pkg
}

/// The Package named on the command line, or a not-found error.
pub async fn get(ctx: &Ctx, given: &str) -> Result<Package> {
    let name = names::kube_name("package", given);
    ctx.get_opt::<Package>("error getting package", &name)
        .await?
        .ok_or_else(|| Error::NotFound {
            kind: "package",
            name,
            namespace: ctx.namespace.clone(),
            hint: String::new(),
        })
}

/// Functions in the working namespace whose packageref names `pkg`.
pub async fn functions_using(ctx: &Ctx, pkg: &str) -> Result<Vec<Function>> {
    let list = list::<Function>(ctx, "error getting function list").await?;
    Ok(list
        .items
        .into_iter()
        .filter(|f| f.spec.package.packageref.name == pkg)
        .collect())
}

/// Writes an archive's bytes (literal, or downloaded from its URL) to stdout.
pub async fn print_archive(archive: Option<&Archive>, what: &str) -> Result<()> {
    let bytes = archive_bytes(archive, what).await?;
    std::io::stdout().write_all(&bytes).map_err(Error::Output)
}

async fn archive_bytes(archive: Option<&Archive>, what: &str) -> Result<Vec<u8>> {
    let archive = archive
        .filter(|a| !a.is_empty())
        .ok_or_else(|| Error::usage(format!("package has no {what} archive")))?;
    if let Some(literal) = &archive.literal {
        return Ok(literal.0.clone());
    }
    let url = archive.url.clone().unwrap_or_default();
    let answer = http::request("GET", &url, &[], "", Duration::from_mins(1)).await?;
    if answer.status >= 400 {
        return Err(Error::usage(format!(
            "downloading {url}: HTTP {}",
            answer.status
        )));
    }
    Ok(answer.body)
}

/// Runs a `fission package` subcommand.
#[allow(clippy::too_many_lines)] // one arm per subcommand
pub async fn run(ctx: &Ctx, command: PkgCommand) -> Result<()> {
    match command {
        PkgCommand::Create(args) => {
            let env = names::kube_name("environment", &args.env);
            if !args.archives.any() {
                return Err(Error::usage("need --code or --deploy or --src argument"));
            }
            let (deploy, source) = args.archives.load(ctx).await?;
            if ctx
                .get_opt::<Environment>("error retrieving environment information", &env)
                .await?
                .is_none()
            {
                return Err(Error::NotFound {
                    kind: "environment",
                    name: env,
                    namespace: ctx.namespace.clone(),
                    hint: "; create it first with fission env create".into(),
                });
            }
            let name = match &args.name {
                Some(n) => names::kube_name("package", n),
                None => names::uuid4()?,
            };
            let env_ref = ObjectRef {
                namespace: ctx.namespace.clone(),
                name: env,
            };
            let pkg = build(
                &ctx.namespace,
                &name,
                &env_ref,
                deploy,
                source,
                args.archives.buildcmd.clone(),
                Time(jiff::Timestamp::now()),
            );
            ctx.api::<Package>()
                .create(&post(), &pkg)
                .await
                .map_err(|e| ctx.error("error creating package", e))?;
            println!("Package '{name}' created");
        }
        PkgCommand::Info(args) => {
            let pkg = get(ctx, &args.name).await?;
            let status = pkg.status.clone().unwrap_or_default();
            table::print(
                &["Name:", &pkg.metadata.name.clone().unwrap_or_default()],
                &[
                    vec!["Environment:".into(), pkg.spec.environment.name.clone()],
                    vec!["Status:".into(), status.buildstatus.unwrap_or_default()],
                    vec!["Build Logs:".into(), status.buildlog.unwrap_or_default()],
                ],
            )?;
        }
        PkgCommand::List(args) => {
            let packages = list::<Package>(ctx, "error listing packages").await?;
            let used: Vec<String> = if args.orphan {
                list::<Function>(ctx, "error listing functions")
                    .await?
                    .items
                    .into_iter()
                    .map(|f| f.spec.package.packageref.name)
                    .collect()
            } else {
                Vec::new()
            };
            let rows: Vec<Vec<String>> = packages
                .items
                .iter()
                .filter(|p| {
                    !args.orphan || !used.contains(&p.metadata.name.clone().unwrap_or_default())
                })
                .filter(|p| {
                    args.status.as_deref().is_none_or(|s| {
                        p.status.as_ref().and_then(|st| st.buildstatus.as_deref()) == Some(s)
                    })
                })
                .map(|p| {
                    let st = p.status.clone().unwrap_or_default();
                    vec![
                        p.metadata.name.clone().unwrap_or_default(),
                        st.buildstatus.unwrap_or_default(),
                        p.spec.environment.name.clone(),
                        st.last_update_timestamp
                            .map(|t| t.0.strftime("%d %b %y %H:%M UTC").to_string())
                            .unwrap_or_default(),
                        p.metadata.namespace.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            table::print(
                &["NAME", "BUILD_STATUS", "ENV", "LASTUPDATEDAT", "NAMESPACE"],
                &rows,
            )?;
        }
        PkgCommand::Update(args) => {
            let pkg = get(ctx, &args.name).await?;
            let name = pkg.metadata.name.clone().unwrap_or_default();
            let users = functions_using(ctx, &name).await?;
            if !args.force && users.len() > 1 {
                return Err(Error::usage(
                    "package is used by multiple functions, use --force to force update",
                ));
            }
            let (deploy, source) = args.archives.load(ctx).await?;
            let mut updated = apply_archives(pkg, deploy, source, args.archives.buildcmd.clone());
            if let Some(env) = &args.env {
                updated.spec.environment.name = names::kube_name("environment", env);
            }
            let new = ctx
                .api::<Package>()
                .replace(&name, &post(), &updated)
                .await
                .map_err(|e| ctx.error(&format!("error updating package '{name}'"), e))?;
            for mut f in users {
                let fname = f.metadata.name.clone().unwrap_or_default();
                f.spec.package.packageref.resourceversion = new.metadata.resource_version.clone();
                ctx.api::<Function>()
                    .replace(&fname, &post(), &f)
                    .await
                    .map_err(|e| {
                        ctx.error(
                            "error updating function package reference resource version",
                            e,
                        )
                    })?;
            }
            println!("Package '{name}' updated");
        }
        PkgCommand::Delete(args) => {
            if args.orphan {
                let used: Vec<String> = list::<Function>(ctx, "error listing functions")
                    .await?
                    .items
                    .into_iter()
                    .map(|f| f.spec.package.packageref.name)
                    .collect();
                let list = list::<Package>(ctx, "error listing packages").await?;
                for p in list.items {
                    let n = p.metadata.name.unwrap_or_default();
                    if !used.contains(&n) {
                        delete::<Package>(ctx, "error deleting package", &n, true).await?;
                    }
                }
                println!("Orphan packages deleted");
                return Ok(());
            }
            let given = args
                .name
                .as_deref()
                .ok_or_else(|| Error::usage("need --name argument or --orphan"))?;
            let name = names::kube_name("package", given);
            if !args.force && !functions_using(ctx, &name).await?.is_empty() {
                return Err(Error::usage(
                    "package is used by at least one function, use -f to force delete",
                ));
            }
            if delete::<Package>(ctx, "error deleting package", &name, args.ignorenotfound).await? {
                println!("Package '{name}' deleted");
            }
        }
        PkgCommand::Getsrc(args) => get_archive(ctx, &args, true).await?,
        PkgCommand::Getdeploy(args) => get_archive(ctx, &args, false).await?,
    }
    Ok(())
}

async fn get_archive(ctx: &Ctx, args: &GetArgs, source: bool) -> Result<()> {
    let pkg = get(ctx, &args.name).await?;
    let (archive, what) = if source {
        (pkg.spec.source.as_ref(), "source")
    } else {
        (pkg.spec.deployment.as_ref(), "deployment")
    };
    let bytes = archive_bytes(archive, what).await?;
    match &args.output {
        Some(path) => std::fs::write(path, &bytes).map_err(|source| Error::File {
            path: path.clone(),
            source,
        }),
        None => std::io::stdout().write_all(&bytes).map_err(Error::Output),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deploy_only_package_is_succeeded_and_a_source_one_pending() {
        let env = ObjectRef {
            namespace: "default".into(),
            name: "python".into(),
        };
        let now = Time(jiff::Timestamp::UNIX_EPOCH);
        let code = Archive {
            archive_type: Some("literal".into()),
            literal: Some(k8s_openapi::ByteString(
                b"def main():\n    return 'hi'\n".to_vec(),
            )),
            ..Archive::default()
        };
        let pkg = build(
            "default",
            "hello-world-id",
            &env,
            Some(code.clone()),
            None,
            None,
            now.clone(),
        );
        insta::assert_yaml_snapshot!("package_seed", pkg);
        let src = build("default", "p", &env, None, Some(code.clone()), None, now);
        assert_eq!(src.status.unwrap().buildstatus.as_deref(), Some("pending"));
        let updated = apply_archives(pkg, Some(code), None, None);
        assert_eq!(
            updated.status.unwrap().buildstatus.as_deref(),
            Some("succeeded")
        );
    }
}
