//! `fission archive upload|list|download|delete|get-url`: archive storage (Fission's
//! storagesvc, docs/storage.md) found as Fission's CLI finds it.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::archive::storage_client;
use crate::client::Ctx;
use crate::error::{Error, Result};

/// `fission archive` (`ar`) subcommands.
#[derive(Debug, Subcommand)]
pub enum ArchiveCommand {
    /// Upload an archive
    Upload {
        /// Name of the archive file
        #[arg(long)]
        name: PathBuf,
    },
    /// List all uploaded archives
    List,
    /// Delete an archive
    Delete {
        /// Id for the archive file
        #[arg(long)]
        id: String,
    },
    /// Get URL of an uploaded archive
    #[command(name = "get-url")]
    GetUrl {
        /// Id for the archive file
        #[arg(long)]
        id: String,
    },
    /// Download an archive
    Download {
        /// Id for the archive file
        #[arg(long)]
        id: String,
        /// Download file with this name (default: the id)
        #[arg(short = 'o', long)]
        output: Option<PathBuf>,
    },
}

/// Runs an `archive` subcommand.
pub async fn run(ctx: &Ctx, command: ArchiveCommand) -> Result<()> {
    let (storage, archive_base) = storage_client(&ctx.client)
        .await
        .map_err(Error::ArchiveStorage)?;
    let failed = |e: rivulet_storage::StorageError| Error::ArchiveStorage(e.to_string());
    match command {
        ArchiveCommand::Upload { name } => {
            if !name.is_file() {
                return Err(Error::NoFiles(name.display().to_string()));
            }
            let uploaded = storage.upload_file(&name).await.map_err(failed)?;
            println!("File successfully uploaded with ID: {}", uploaded.id);
        }
        ArchiveCommand::List => {
            print!("{}", list_text(&storage.list().await.map_err(failed)?));
        }
        ArchiveCommand::Delete { id } => {
            storage.delete(&id).await.map_err(failed)?;
            println!("Deleted archive with id: {id}");
        }
        ArchiveCommand::GetUrl { id } => {
            // Fission checks the archive exists before printing its URL.
            storage.info(&id).await.map_err(failed)?;
            println!("URL: {}", rivulet_storage::archive_url(&archive_base, &id));
        }
        ArchiveCommand::Download { id, output } => {
            let output = output.unwrap_or_else(|| default_output(&id));
            storage.download(&id, &output).await.map_err(failed)?;
            println!("File download complete. File name: {}", output.display());
        }
    }
    Ok(())
}

/// Fission's `archive list` output: a header, then one id a line.
fn list_text(ids: &[String]) -> String {
    let mut out = String::from("ARCHIVES\n");
    for id in ids {
        out.push_str(id);
        out.push('\n');
    }
    out
}

/// Where `download` writes without `--output`: the id, without the path prefix Fission's
/// local storage ids carry, and never outside the working directory.
fn default_output(id: &str) -> PathBuf {
    let trimmed = id.trim_start_matches("/fission/fission-functions/");
    let file = Path::new(trimmed)
        .file_name()
        .map_or_else(|| "archive".into(), std::ffi::OsStr::to_os_string);
    PathBuf::from(file)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::{Command, Fission};

    #[test]
    fn list_prints_a_header_and_one_id_a_line() {
        assert_eq!(list_text(&[]), "ARCHIVES\n");
        assert_eq!(list_text(&["a".into(), "b".into()]), "ARCHIVES\na\nb\n");
    }

    #[test]
    fn download_defaults_to_the_id_in_the_working_directory() {
        assert_eq!(default_output("abc-123"), PathBuf::from("abc-123"));
        assert_eq!(
            default_output("/fission/fission-functions/abc"),
            PathBuf::from("abc")
        );
        assert_eq!(default_output("../../etc/x"), PathBuf::from("x"));
    }

    #[test]
    fn fission_flags_parse() {
        let cli =
            Fission::try_parse_from(["fission", "ar", "download", "--id", "x", "-o", "f.zip"])
                .unwrap();
        let Command::Archive {
            command: ArchiveCommand::Download { id, output },
        } = cli.command
        else {
            panic!("download expected")
        };
        assert_eq!(id, "x");
        assert_eq!(output, Some(PathBuf::from("f.zip")));
        assert!(Fission::try_parse_from(["fission", "archive", "get-url", "--id", "x"]).is_ok());
        assert!(Fission::try_parse_from(["fission", "archive", "upload"]).is_err());
    }
}
