//! `rivulet router`: the data plane against any cluster (in-cluster config or `KUBECONFIG`).
//!
//! SIGINT or SIGTERM stops accepting connections and waits up to `--drain-timeout` for the
//! requests in flight; a second signal exits at once.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use rivulet_api::specialize::FetcherKey;
use rivulet_router::admission::Overload;
use rivulet_router::kube::Client;
use rivulet_router::proxy::ProxyConfig;
use rivulet_router::{Router, RouterConfig};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Public port (triggers, `/router-healthz`, `/_version`), on all interfaces.
    #[arg(long, env = "ROUTER_PORT", default_value_t = 8888)]
    pub port: u16,
    /// Internal listener: `/fission-function/...` for timers, watchers and `fission fn test`,
    /// `/router-healthz`, and `/metrics` unless `--metrics-addr` is given.
    #[arg(
        long,
        env = "RIVULET_ROUTER_INTERNAL_ADDR",
        default_value = "127.0.0.1:8889"
    )]
    pub internal_addr: SocketAddr,
    /// A separate listener for `/metrics` [default: served on the internal listener].
    #[arg(long, env = "RIVULET_ROUTER_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Also serve `/fission-function/...` on the public port, as Fission does.
    #[arg(long)]
    pub internal_routes_on_public: bool,
    /// Seconds to wait for in-flight requests on shutdown.
    #[arg(long, default_value_t = 30)]
    pub drain_timeout: u64,
    /// Seconds a cold request waits for a ready warm pod before answering 503.
    #[arg(long, default_value_t = 30)]
    pub pool_wait: u64,
    /// Data-plane worker threads, each with its own single-threaded runtime and upstream
    /// connections [default: one per core].
    #[arg(long, env = "RIVULET_ROUTER_WORKERS")]
    pub workers: Option<usize>,
    /// Largest request body forwarded to a function, in bytes; larger ones get 413.
    #[arg(long, env = "RIVULET_ROUTER_MAX_REQUEST_BODY", default_value_t = rivulet_router::proxy::DEFAULT_MAX_REQUEST_BODY)]
    pub max_request_body: u64,
    /// Specializations in flight per function at most; more cold requests queue (docs/router.md,
    /// "Overload").
    #[arg(long, env = "RIVULET_ROUTER_MAX_SPECIALIZING", default_value_t = rivulet_router::admission::DEFAULT_MAX_SPECIALIZING, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_specializing: u32,
    /// Requests queued per function for a free pod at most; beyond it the answer is 429.
    #[arg(long, env = "RIVULET_ROUTER_MAX_QUEUED", default_value_t = rivulet_router::admission::DEFAULT_MAX_QUEUED)]
    pub max_queued: u32,
    /// Milliseconds a queued request waits for a busy pod before it may specialize another.
    #[arg(long, env = "RIVULET_ROUTER_QUEUE_PATIENCE_MS", default_value_t = rivulet_router::admission::DEFAULT_PATIENCE_MS)]
    pub queue_patience_ms: u64,
    /// No new pod for a function while its requests take more than this many times their best
    /// time: the node or a backend is saturated, not the pods (0: off; docs/router.md).
    #[arg(long, env = "RIVULET_ROUTER_MAX_SLOWDOWN", default_value_t = rivulet_router::admission::DEFAULT_MAX_SLOWDOWN)]
    pub max_slowdown: u32,
    /// Function calls on the internal listener need `Authorization: Bearer <token>`, the router
    /// internal token derived from `--fetcher-key-file` (the controller's trigger deliveries send
    /// it). Without a key there is no token and the listener stays open.
    #[arg(long, env = "RIVULET_ROUTER_INTERNAL_TOKEN", default_value_t = true, action = clap::ArgAction::Set)]
    pub internal_token: bool,
    #[command(flatten)]
    pub fetcher_key: super::common::FetcherKeyArgs,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    super::common::init_tracing();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let fetcher_key = args.fetcher_key.load()?;
    let internal_token = internal_token(args.internal_token, fetcher_key.as_ref());
    let client = Client::try_default()
        .await
        .context("cannot build a Kubernetes client (in-cluster config or KUBECONFIG)")?;
    let defaults = RouterConfig::default();
    let config = RouterConfig {
        public_addr: SocketAddr::from(([0, 0, 0, 0], args.port)),
        internal_addr: args.internal_addr,
        metrics_addr: args.metrics_addr,
        internal_routes_on_public: args.internal_routes_on_public,
        drain_timeout: Duration::from_secs(args.drain_timeout),
        pool_wait: Duration::from_secs(args.pool_wait),
        workers: args.workers.unwrap_or(defaults.workers),
        proxy: ProxyConfig {
            max_request_body: args.max_request_body,
            ..defaults.proxy
        },
        fetcher_key,
        internal_token,
        overload: Overload {
            max_specializing: args.max_specializing,
            max_queued: args.max_queued,
            patience: Duration::from_millis(args.queue_patience_ms),
            max_slowdown: args.max_slowdown,
        },
        ..defaults
    };
    let router = Router::start(client, config).await?;
    eprintln!(
        "router listening on {} (internal {})",
        router.public_addr, router.internal_addr
    );
    wait_for_signal().await?;
    eprintln!("draining in-flight requests (a second signal exits at once)");
    tokio::select! {
        drained = router.shutdown() => {
            if !drained {
                eprintln!("drain timeout reached; remaining requests were cut");
            }
        }
        result = wait_for_signal() => result?,
    }
    Ok(())
}

/// The internal listener's token: on whenever there is a key, unless turned off.
fn internal_token(wanted: bool, key: Option<&FetcherKey>) -> Option<String> {
    match key {
        Some(key) if wanted => Some(key.router_internal_token()),
        Some(_) => {
            tracing::warn!(
                "--internal-token=false: the internal listener calls any function for anyone who reaches it"
            );
            None
        }
        None => None,
    }
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for SIGINT")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_internal_token_is_on_with_a_key_unless_turned_off() {
        let key = FetcherKey::from_file_bytes(&[b'k'; 32]).unwrap();
        assert_eq!(
            internal_token(true, Some(&key)),
            Some(key.router_internal_token())
        );
        assert_eq!(internal_token(false, Some(&key)), None);
        assert_eq!(internal_token(true, None), None);
    }

    #[test]
    fn the_flag_defaults_on_and_takes_false() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            router: Args,
        }
        let on = Cli::try_parse_from(["router"]).unwrap();
        assert!(on.router.internal_token);
        let off = Cli::try_parse_from(["router", "--internal-token=false"]).unwrap();
        assert!(!off.router.internal_token);
    }
}
