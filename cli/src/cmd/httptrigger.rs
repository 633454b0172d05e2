//! `fission httptrigger` (aliases `route`, `ht`): create, get, list, update, delete.

use clap::{Args, Subcommand};
use rivulet_api::{FunctionReference, HTTPTrigger, HTTPTriggerSpec, IngressConfig};

use super::{delete, list, post};
use crate::client::Ctx;
use crate::error::{Error, Result};
use crate::{names, table};

/// `fission httptrigger` subcommands.
#[derive(Debug, Subcommand)]
pub enum HtCommand {
    /// Create an HTTP trigger
    Create(CreateArgs),
    /// Get HTTP trigger details
    Get(NameArgs),
    /// Update an HTTP trigger
    Update(UpdateArgs),
    /// Delete an HTTP trigger
    Delete(DeleteArgs),
    /// List HTTP triggers
    List(ListArgs),
}

/// Flags of `httptrigger create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// HTTP trigger name (a UUID when absent)
    #[arg(long)]
    pub name: Option<String>,
    /// Name of the function for this trigger
    #[arg(long)]
    pub function: Option<String>,
    /// URL pattern (See gorilla/mux supported patterns)
    #[arg(long)]
    pub url: Option<String>,
    /// HTTP Methods: --method GET --method POST
    #[arg(long, value_delimiter = ',', default_value = "GET")]
    pub method: Vec<String>,
    /// Prefix with which functions are exposed. NOTE: Prefix takes precedence over URL/RelativeURL
    #[arg(long)]
    pub prefix: Option<String>,
    /// Keep the prefix in the URL while forwarding request to the function
    #[arg(long)]
    pub keepprefix: bool,
    /// Host for the route (deprecated in Fission, use --ingressrule)
    #[arg(long)]
    pub host: Option<String>,
    /// Creates ingress with same URL
    #[arg(long)]
    pub createingress: bool,
    /// Host for Ingress rule: --ingressrule host=path
    #[arg(long)]
    pub ingressrule: Option<String>,
    /// Annotation for Ingress: --ingressannotation key=value
    #[arg(long)]
    pub ingressannotation: Vec<String>,
    /// Name of the Secret contains TLS key and crt for Ingress
    #[arg(long)]
    pub ingresstls: Option<String>,
}

/// Flags of `httptrigger update`.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// HTTP trigger name
    #[arg(long)]
    pub name: String,
    /// Name of the function for this trigger
    #[arg(long)]
    pub function: Option<String>,
    /// URL pattern
    #[arg(long)]
    pub url: Option<String>,
    /// HTTP Methods: --method GET --method POST
    #[arg(long, value_delimiter = ',')]
    pub method: Vec<String>,
    /// Prefix with which functions are exposed
    #[arg(long)]
    pub prefix: Option<String>,
    /// Keep the prefix in the URL while forwarding request to the function
    #[arg(long)]
    pub keepprefix: Option<bool>,
    /// Host for the route
    #[arg(long)]
    pub host: Option<String>,
    /// Creates ingress with same URL
    #[arg(long)]
    pub createingress: Option<bool>,
}

/// `--name` only.
#[derive(Debug, Args)]
pub struct NameArgs {
    /// HTTP trigger name
    #[arg(long)]
    pub name: String,
}

/// Flags of `httptrigger list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Name of the function for trigger(s)
    #[arg(long)]
    pub function: Option<String>,
}

/// Flags of `httptrigger delete`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// HTTP trigger name
    #[arg(long)]
    pub name: Option<String>,
    /// Delete all HTTP triggers of this function
    #[arg(long)]
    pub function: Option<String>,
    /// Treat "resource not found" as a successful delete.
    #[arg(long)]
    pub ignorenotfound: bool,
}

/// A route's URL, prefix and checked methods; `None` when neither URL nor prefix is given.
pub type Route = (Option<String>, Option<String>, Vec<String>);

/// Checks `--url/--prefix/--method` (Fission's `GetMethod`) before anything is created.
pub fn route_flags(
    url: Option<&str>,
    prefix: Option<&str>,
    methods: &[String],
) -> Result<Option<Route>> {
    let url = url.filter(|u| !u.is_empty());
    let prefix = prefix.filter(|p| !p.is_empty());
    if url.is_none() && prefix.is_none() {
        return Ok(None);
    }
    if url.is_some() && prefix.is_some() {
        eprintln!("warning: Prefix will take precedence over URL/RelativeURL");
    }
    if url == Some("/") {
        return Err(Error::usage("url with only root path is not allowed"));
    }
    if methods.is_empty() {
        return Err(Error::usage("HTTP methods not mentioned"));
    }
    let methods = methods
        .iter()
        .map(|m| {
            let up = m.to_ascii_uppercase();
            if rivulet_api::defaults::HTTP_METHODS.contains(&up.as_str()) {
                Ok(up)
            } else {
                Err(Error::usage(format!("invalid HTTP Method {m}")))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some((
        url.map(str::to_owned),
        prefix.map(str::to_owned),
        methods,
    )))
}

/// The HTTPTrigger Fission's CLI writes (reference §9.3): `prefix`, `method`, `host` and the
/// ingress config present even when empty.
#[allow(clippy::too_many_arguments)]
pub fn build(
    namespace: &str,
    name: &str,
    function: &str,
    url: Option<&str>,
    prefix: &str,
    methods: &[String],
    host: Option<&str>,
    createingress: bool,
) -> HTTPTrigger {
    HTTPTrigger {
        metadata: kube::core::ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            ..kube::core::ObjectMeta::default()
        },
        spec: HTTPTriggerSpec {
            host: Some(host.unwrap_or_default().to_owned()),
            relativeurl: Some(url.unwrap_or_default().to_owned()),
            prefix: Some(prefix.to_owned()),
            keep_prefix: None,
            method: Some(String::new()),
            methods: Some(methods.to_vec()),
            functionref: FunctionReference {
                reference_type: "name".into(),
                name: Some(function.to_owned()),
                functionweights: None,
            },
            createingress: Some(createingress),
            ingressconfig: Some(IngressConfig {
                annotations: None,
                path: Some(String::new()),
                host: Some(String::new()),
                tls: Some(String::new()),
            }),
        },
        status: None,
    }
}

fn sorted(methods: &[String]) -> Vec<String> {
    let mut m = methods.to_vec();
    m.sort();
    m.dedup();
    m
}

/// Fission's client-side duplicate check: same host, same URL or same non-empty prefix, and the
/// same set of methods.
pub async fn check_duplicates(
    ctx: &Ctx,
    host: Option<&str>,
    url: Option<&str>,
    prefix: Option<&str>,
    methods: &[String],
    except: Option<&str>,
) -> Result<()> {
    let list = list::<HTTPTrigger>(ctx, "error listing HTTP triggers").await?;
    for t in list.items {
        if except.is_some() && t.metadata.name.as_deref() == except {
            continue;
        }
        let s = &t.spec;
        let same_host = s.host.as_deref().unwrap_or("") == host.unwrap_or("");
        let same_path = match prefix.filter(|p| !p.is_empty()) {
            Some(p) => s.prefix.as_deref() == Some(p),
            None => {
                s.prefix.as_deref().is_none_or(str::is_empty)
                    && s.relativeurl.as_deref().unwrap_or("") == url.unwrap_or("")
            }
        };
        let theirs = sorted(&s.methods.clone().unwrap_or_default());
        if same_host && same_path && theirs == sorted(methods) {
            return Err(Error::usage(format!(
                "HTTPTrigger with same Host, URL & method already exists ({})",
                t.metadata.name.unwrap_or_default()
            )));
        }
    }
    Ok(())
}

/// Runs a `fission httptrigger` subcommand.
#[allow(clippy::too_many_lines)] // one arm per subcommand
pub async fn run(ctx: &Ctx, command: HtCommand) -> Result<()> {
    match command {
        HtCommand::Create(args) => {
            let function = args
                .function
                .as_deref()
                .map(|f| names::kube_name("function", f))
                .ok_or_else(|| {
                    Error::usage("need a function name to create a trigger, use --function")
                })?;
            let (url, prefix, methods) =
                route_flags(args.url.as_deref(), args.prefix.as_deref(), &args.method)?
                    .ok_or_else(|| Error::usage("need --url or --prefix argument"))?;
            let name = match &args.name {
                Some(n) => names::kube_name("httptrigger", n),
                None => names::uuid4()?,
            };
            check_duplicates(
                ctx,
                args.host.as_deref(),
                url.as_deref(),
                prefix.as_deref(),
                &methods,
                None,
            )
            .await?;
            let mut trigger = build(
                &ctx.namespace,
                &name,
                &function,
                url.as_deref(),
                prefix.as_deref().unwrap_or(""),
                &methods,
                args.host.as_deref(),
                args.createingress,
            );
            trigger.spec.keep_prefix = args.keepprefix.then_some(true);
            if let Some(ic) = trigger.spec.ingressconfig.as_mut() {
                if let Some(rule) = &args.ingressrule {
                    let (h, p) = rule
                        .split_once('=')
                        .ok_or_else(|| Error::usage("--ingressrule must be host=path"))?;
                    ic.host = Some(h.to_owned());
                    ic.path = Some(p.to_owned());
                }
                if !args.ingressannotation.is_empty() {
                    ic.annotations = Some(names::parse_annotations(&args.ingressannotation)?);
                }
                if let Some(tls) = &args.ingresstls {
                    ic.tls = Some(tls.clone());
                }
            }
            ctx.api::<HTTPTrigger>()
                .create(&post(), &trigger)
                .await
                .map_err(|e| ctx.error("error creating HTTP trigger", e))?;
            println!("trigger '{name}' created");
        }
        HtCommand::Get(args) => {
            let name = names::kube_name("httptrigger", &args.name);
            let t = ctx
                .get_opt::<HTTPTrigger>("error getting HTTP trigger", &name)
                .await?
                .ok_or_else(|| Error::NotFound {
                    kind: "httptrigger",
                    name,
                    namespace: ctx.namespace.clone(),
                    hint: String::new(),
                })?;
            print_triggers(&[t])?;
        }
        HtCommand::List(args) => {
            let function = args
                .function
                .as_deref()
                .map(|f| names::kube_name("function", f));
            let list = list::<HTTPTrigger>(ctx, "error listing HTTP triggers").await?;
            let items: Vec<HTTPTrigger> = list
                .items
                .into_iter()
                .filter(|t| function.is_none() || t.spec.functionref.name == function)
                .collect();
            print_triggers(&items)?;
        }
        HtCommand::Update(args) => {
            let name = names::kube_name("httptrigger", &args.name);
            let mut t = ctx
                .get_opt::<HTTPTrigger>("error getting HTTP trigger", &name)
                .await?
                .ok_or_else(|| Error::NotFound {
                    kind: "httptrigger",
                    name: name.clone(),
                    namespace: ctx.namespace.clone(),
                    hint: String::new(),
                })?;
            if let Some(f) = &args.function {
                t.spec.functionref = FunctionReference {
                    reference_type: "name".into(),
                    name: Some(names::kube_name("function", f)),
                    functionweights: None,
                };
            }
            if let Some(url) = &args.url {
                if url == "/" {
                    return Err(Error::usage("url with only root path is not allowed"));
                }
                t.spec.relativeurl = Some(url.clone());
            }
            if let Some(p) = &args.prefix {
                t.spec.prefix = Some(p.clone());
            }
            if !args.method.is_empty() {
                let (_, _, methods) = route_flags(Some("x"), None, &args.method)?
                    .ok_or_else(|| Error::usage("HTTP methods not mentioned"))?;
                t.spec.methods = Some(methods);
            }
            if let Some(k) = args.keepprefix {
                t.spec.keep_prefix = Some(k);
            }
            if let Some(h) = &args.host {
                t.spec.host = Some(h.clone());
            }
            if let Some(c) = args.createingress {
                t.spec.createingress = Some(c);
            }
            check_duplicates(
                ctx,
                t.spec.host.as_deref(),
                t.spec.relativeurl.as_deref(),
                t.spec.prefix.as_deref(),
                &t.spec.methods.clone().unwrap_or_default(),
                Some(&name),
            )
            .await?;
            ctx.api::<HTTPTrigger>()
                .replace(&name, &post(), &t)
                .await
                .map_err(|e| ctx.error("error updating HTTP trigger", e))?;
            println!("trigger '{name}' updated");
        }
        HtCommand::Delete(args) => {
            let targets: Vec<String> = match (&args.name, &args.function) {
                (Some(n), _) => vec![names::kube_name("httptrigger", n)],
                (None, Some(f)) => {
                    let f = names::kube_name("function", f);
                    list::<HTTPTrigger>(ctx, "error listing HTTP triggers")
                        .await?
                        .items
                        .into_iter()
                        .filter(|t| t.spec.functionref.name.as_deref() == Some(&f))
                        .filter_map(|t| t.metadata.name)
                        .collect()
                }
                (None, None) => return Err(Error::usage("need --name or --function argument")),
            };
            for name in targets {
                if delete::<HTTPTrigger>(
                    ctx,
                    "error deleting HTTP trigger",
                    &name,
                    args.ignorenotfound,
                )
                .await?
                {
                    println!("trigger '{name}' deleted");
                }
            }
        }
    }
    Ok(())
}

fn print_triggers(items: &[HTTPTrigger]) -> Result<()> {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|t| {
            let s = &t.spec;
            let url = match s.prefix.as_deref() {
                Some(p) if !p.is_empty() => p.to_owned(),
                _ => s.relativeurl.clone().unwrap_or_default(),
            };
            let ic = s.ingressconfig.clone().unwrap_or_default();
            vec![
                t.metadata.name.clone().unwrap_or_default(),
                format!("[{}]", s.methods.clone().unwrap_or_default().join(" ")),
                url,
                s.functionref.name.clone().unwrap_or_default(),
                s.createingress.unwrap_or(false).to_string(),
                ic.host.unwrap_or_default(),
                ic.path.unwrap_or_default(),
                ic.tls.unwrap_or_default(),
                ic.annotations
                    .map(|a| {
                        a.iter()
                            .map(|(k, v)| format!("{k}={v}"))
                            .collect::<Vec<_>>()
                            .join(",")
                    })
                    .unwrap_or_default(),
                t.metadata.namespace.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table::print(
        &[
            "NAME",
            "METHOD",
            "URL",
            "FUNCTION(s)",
            "INGRESS",
            "HOST",
            "PATH",
            "TLS",
            "ANNOTATIONS",
            "NAMESPACE",
        ],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_route_matches_fission() {
        let (url, prefix, methods) = route_flags(Some("/hello_world"), None, &["get".into()])
            .unwrap()
            .unwrap();
        let t = build(
            "default",
            "9b2e5c1a-0000-4000-8000-000000000000",
            "hello-world",
            url.as_deref(),
            prefix.as_deref().unwrap_or(""),
            &methods,
            None,
            false,
        );
        insta::assert_yaml_snapshot!("httptrigger_seed", t);
    }

    #[test]
    fn route_flags_are_checked() {
        assert!(route_flags(None, None, &[]).unwrap().is_none());
        assert_eq!(
            route_flags(Some("/"), None, &["GET".into()])
                .unwrap_err()
                .to_string(),
            "url with only root path is not allowed"
        );
        assert_eq!(
            route_flags(Some("/a"), None, &["FETCH".into()])
                .unwrap_err()
                .to_string(),
            "invalid HTTP Method FETCH"
        );
    }
}
