//! `rivulet crds`: print the generated CRDs, or write them one file per kind.

use std::path::PathBuf;

use anyhow::Context;
use rivulet_api::crds;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write one file per CRD, and the kustomization listing them, into this directory (as
    /// committed in `crds/`) instead of printing.
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    match &args.out_dir {
        None => {
            use std::io::Write as _;
            // A closed pipe (`rivulet crds | head`) is the reader's choice, not an error.
            match std::io::stdout().write_all(crds::fission_crds_yaml()?.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
                _ => {}
            }
        }
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in crds::fission_crds() {
                let path = dir.join(crds::file_name(&crd));
                std::fs::write(&path, crds::to_yaml(&crd)?)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            let path = dir.join(crds::KUSTOMIZATION_FILE);
            std::fs::write(&path, crds::kustomization_yaml())
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(())
}
