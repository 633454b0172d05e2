//! `fission version` and `fission check`.

use std::time::Duration;

use crate::client::Ctx;
use crate::cmd::function::router_url;
use crate::error::{Error, Result};
use crate::http;

/// Kinds whose CRDs `check` expects to be served.
const KINDS: [&str; 8] = [
    "environments",
    "functions",
    "packages",
    "httptriggers",
    "kuberneteswatchtriggers",
    "timetriggers",
    "messagequeuetriggers",
    "canaryconfigs",
];

/// `fission version`: the client's version and the server's (the API server's, since the
/// CLI talks to Kubernetes directly).
pub async fn version(ctx: Result<Ctx>) -> Result<()> {
    println!("client:");
    println!("  fission/core:");
    println!("    Version: {} (rivulet)", env!("CARGO_PKG_VERSION"));
    let ctx = ctx?;
    let info = ctx
        .client
        .apiserver_version()
        .await
        .map_err(|e| ctx.error("error getting server version", e))?;
    println!("server:");
    println!("  kubernetes:");
    println!("    GitVersion: {}", info.git_version);
    println!("    Platform: {}", info.platform);
    Ok(())
}

/// `fission check`: the API server answers, every fission.io/v1 kind is served, the router
/// answers `/router-healthz`. Exit non-zero when one fails.
pub async fn check(ctx: &Ctx) -> Result<()> {
    println!("fission-services");
    println!("--------------------");
    let mut failed = Vec::new();
    match ctx.client.list_api_group_resources("fission.io/v1").await {
        Ok(list) => {
            println!("√ kubernetes API server {} is reachable", ctx.server);
            for kind in KINDS {
                if list.resources.iter().any(|r| r.name == kind) {
                    println!("√ {kind}.fission.io is served");
                } else {
                    println!(
                        "☒ {kind}.fission.io is not served (install the CRDs: rivulet crds | kubectl apply -f -)"
                    );
                    failed.push(kind.to_owned());
                }
            }
        }
        Err(e) => {
            let err = ctx.error("fission.io/v1 is not served", e);
            println!("☒ {err}");
            failed.push("fission.io/v1".into());
        }
    }
    let router = router_url(std::env::var("FISSION_ROUTER_URL").ok());
    match http::request(
        "GET",
        &format!("{router}/router-healthz"),
        &[],
        "",
        Duration::from_secs(5),
    )
    .await
    {
        Ok(a) if a.status < 400 => println!("√ router {router} is running fine"),
        Ok(a) => {
            println!("☒ router {router} answered {} to /router-healthz", a.status);
            failed.push("router".into());
        }
        Err(e) => {
            println!("☒ {e}");
            failed.push("router".into());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::usage(format!("check failed: {}", failed.join(", "))))
    }
}
