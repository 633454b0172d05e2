//! `rivulet`: one binary, one subcommand per component (ARCHITECTURE §8).

mod cmd;
mod local;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rivulet",
    version,
    about = "Fission-compatible serverless on Kubernetes and Liqo"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run only the embedded Kubernetes API server (localcluster) on 127.0.0.1.
    Localcluster(cmd::localcluster::Args),
    /// Print the CustomResourceDefinitions of every kind Rivulet serves, as multi-document YAML.
    Crds(cmd::crds::Args),
    /// Run the fetcher sidecar of function pods (Fission's fetcher protocol on port 8000).
    Fetcher(cmd::fetcher::Args),
    /// Run the reconcilers against any cluster (in-cluster config or KUBECONFIG), with leader
    /// election, /metrics, /healthz and /readyz.
    Controller(cmd::controller::Args),
    /// Run the router (HTTP triggers, on-demand specialization) against any cluster.
    Router(cmd::router::Args),
    /// Run archive storage (Fission's storagesvc protocol on port 8000) and its archive pruner.
    Storage(cmd::storage::Args),
    /// Local mode in one process: embedded Kubernetes with pods as local processes, Rivulet's
    /// CRDs, every reconciler and the router. Prints the KUBECONFIG line and the router URL.
    Up(cmd::up::Args),
    /// Fission's CLI (`rivulet fission fn create ...`); also what runs when this binary is
    /// invoked as `fission` (docs/cli.md).
    Fission(rivulet_cli::Fission),
}

fn main() -> anyhow::Result<()> {
    // Invoked through a `fission` symlink or copy: Fission's CLI, argv as Fission's.
    let invoked_as = std::env::args_os().next().map(std::path::PathBuf::from);
    if invoked_as.as_deref().and_then(std::path::Path::file_stem) == Some("fission".as_ref()) {
        rivulet_cli::Fission::parse().run_or_exit();
        return Ok(());
    }
    let cli = Cli::parse();
    match cli.command {
        Command::Localcluster(args) => cmd::localcluster::run(&args),
        Command::Crds(args) => cmd::crds::run(&args),
        Command::Fetcher(args) => cmd::fetcher::run(args),
        Command::Controller(args) => cmd::controller::run(args),
        Command::Router(args) => cmd::router::run(args),
        Command::Storage(args) => cmd::storage::run(&args),
        Command::Up(args) => cmd::up::run(&args),
        Command::Fission(args) => {
            args.run_or_exit();
            Ok(())
        }
    }
}
