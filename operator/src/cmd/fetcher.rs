//! `rivulet fetcher`: the fetcher sidecar of function pods (Fission's fetcher protocol, port 8000).
//!
//! Arguments are handed to `rivulet_fetcher::cli` untouched, so Fission's own fetcher command line
//! (`-secret-dir /secrets -cfgmap-dir /configs /userfunc`, Go's single-dash flags) works as is.

use anyhow::Context as _;

#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true)]
pub struct Args {
    /// Fetcher arguments, Fission style or GNU style (`rivulet fetcher --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let args = rivulet_fetcher::cli::Args::parse_from_args(args.args).unwrap_or_else(|e| e.exit());
    let config = args.into_config()?;
    // Logs go to stderr like any container's; RUST_LOG refines the level.
    super::common::init_tracing();
    // One sidecar per pod: a single-threaded runtime keeps each process small.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(rivulet_fetcher::run(config))?;
    Ok(())
}
