//! `rivulet`: one binary, one subcommand per component (ARCHITECTURE §8).

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "rivulet", version, about = "Fission-compatible serverless on Kubernetes and Liqo")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions of every kind Rivulet serves, as multi-document YAML.
    Crds(cmd::crds::Args),
    /// Run the fetcher sidecar of function pods (Fission's fetcher protocol on port 8000).
    Fetcher(cmd::fetcher::Args),
    /// Run the router (HTTP triggers, on-demand specialization) against any cluster.
    Router(cmd::router::Args),
    /// Run the reconcilers against any cluster (in-cluster config or KUBECONFIG), with leader
    /// election, /metrics, /healthz and /readyz.
    Controller(cmd::controller::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds(args) => cmd::crds::run(&args),
        Command::Fetcher(args) => cmd::fetcher::run(args),
        Command::Router(args) => cmd::router::run(args),
        Command::Controller(args) => cmd::controller::run(args),
    }
}
