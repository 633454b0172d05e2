//! Fission's `fission` command line, served by the `rivulet` binary (issue 20): Fission's
//! command names, flags, defaults and output lines, talking to the cluster through the
//! kubeconfig with kube-rs (as Fission's CLI does since v1.18). Objects are built with
//! `rivulet-api`'s types, never from text templates. docs/cli.md lists every command.

mod archive;
mod client;
mod cmd;
mod error;
mod http;
mod names;
mod table;

use clap::{Parser, Subcommand};

pub use client::{Ctx, Global};
pub use cmd::function::DEFAULT_ROUTER_URL;
pub use error::{Error, Result};

/// `fission [global flags] <command>`.
#[derive(Debug, Parser)]
#[command(
    name = "fission",
    version,
    about = "Serverless framework for Kubernetes (Fission's CLI, served by Rivulet)"
)]
pub struct Fission {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// The command groups.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, update and manage environments
    #[command(visible_alias = "env")]
    Environment {
        #[command(subcommand)]
        command: cmd::env::EnvCommand,
    },
    /// Create, update and manage functions
    #[command(visible_alias = "fn")]
    Function {
        #[command(subcommand)]
        command: cmd::function::FnCommand,
    },
    /// Create, update and manage packages
    #[command(visible_alias = "pkg")]
    Package {
        #[command(subcommand)]
        command: cmd::package::PkgCommand,
    },
    /// Create, update and manage HTTP triggers
    #[command(visible_aliases = ["ht", "route"])]
    Httptrigger {
        #[command(subcommand)]
        command: cmd::httptrigger::HtCommand,
    },
    /// Create, update and manage time triggers
    #[command(visible_aliases = ["tt", "timer"])]
    Timetrigger {
        #[command(subcommand)]
        command: cmd::timer::TimerCommand,
    },
    /// Create, update and manage kube watcher triggers
    #[command(visible_alias = "w")]
    Watch {
        #[command(subcommand)]
        command: cmd::watch::WatchCommand,
    },
    /// Create, update and manage message queue triggers
    #[command(visible_aliases = ["mqt", "messagequeue"])]
    Mqtrigger {
        #[command(subcommand)]
        command: cmd::mqtrigger::MqtCommand,
    },
    /// Manage archives stored with Fission Storage Service.
    #[command(visible_alias = "ar")]
    Archive {
        #[command(subcommand)]
        command: cmd::archive::ArchiveCommand,
    },
    /// Show client and server version
    Version,
    /// Check the fission installation: API server, fission.io kinds, router
    Check,
}

impl Fission {
    /// Runs the command; on failure prints `Error: <one line>` to stderr and exits with 1, as
    /// Fission's CLI does.
    pub fn run_or_exit(self) {
        if let Err(e) = self.run_blocking() {
            eprintln!("Error: {e}");
            std::process::exit(1);
        }
    }

    /// Runs the command to completion on a runtime of its own.
    pub fn run_blocking(self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Output)?;
        runtime.block_on(self.run())
    }

    /// Runs the command.
    pub async fn run(self) -> Result<()> {
        let ctx = Ctx::connect(&self.global).await;
        match self.command {
            Command::Version => cmd::misc::version(ctx).await,
            Command::Check => cmd::misc::check(&ctx?).await,
            Command::Environment { command } => cmd::env::run(&ctx?, command).await,
            Command::Function { command } => Box::pin(cmd::function::run(&ctx?, command)).await,
            Command::Package { command } => cmd::package::run(&ctx?, command).await,
            Command::Httptrigger { command } => cmd::httptrigger::run(&ctx?, command).await,
            Command::Timetrigger { command } => cmd::timer::run(&ctx?, command).await,
            Command::Watch { command } => cmd::watch::run(&ctx?, command).await,
            Command::Mqtrigger { command } => cmd::mqtrigger::run(&ctx?, command).await,
            Command::Archive { command } => cmd::archive::run(&ctx?, command).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    #[test]
    fn the_command_tree_is_consistent() {
        Fission::command().debug_assert();
    }

    #[test]
    fn fission_aliases_and_global_flags_parse() {
        for argv in [
            &["fission", "fn", "list"][..],
            &["fission", "function", "list", "--namespace", "dev"],
            &["fission", "route", "list"],
            &["fission", "ht", "list"],
            &["fission", "pkg", "list"],
            &["fission", "timer", "list"],
            &["fission", "tt", "list"],
            &["fission", "w", "list"],
            &["fission", "mqt", "list"],
            &["fission", "-n", "dev", "env", "list"],
        ] {
            let parsed = Fission::try_parse_from(argv.iter().copied());
            assert!(parsed.is_ok(), "{argv:?}: {parsed:?}");
        }
        let cli = Fission::try_parse_from(["fission", "fn", "list", "--namespace", "dev"]).unwrap();
        assert_eq!(cli.global.namespace.as_deref(), Some("dev"));
    }
}
