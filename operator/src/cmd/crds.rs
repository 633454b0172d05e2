//! `rivulet crds`: print or write the generated CRDs.

use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per CRD into this directory instead of printing to stdout.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

pub fn run(_args: &Args) -> anyhow::Result<()> {
    Ok(())
}
