//! Owner-only files and directories. A data directory holds every Secret (in the store's log and
//! snapshot), the admin token and the CA key, so nothing in it may be readable by other local
//! users: directories are 0700 and files 0600, created so from the start (no window in which a
//! file exists with wider bits), and an existing directory or file with wider bits is narrowed
//! at start with a warning, since it was readable until then.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Mode of every directory this crate creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file this crate creates.
pub const FILE_MODE: u32 = 0o600;

/// Create `dir` (and missing parents) as 0700, or narrow an existing one to 0700.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)?;
        // `recursive` applies the mode under the umask; say it exactly.
        return fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE));
    }
    narrow(dir, DIR_MODE)
}

/// Narrow an existing `path` to `mode` if group or others have any access; a missing path is
/// fine (it will be created with the right mode).
pub fn narrow(path: &Path, mode: u32) -> io::Result<()> {
    let current = match fs::metadata(path) {
        Ok(m) => m.permissions().mode() & 0o777,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if current & 0o077 != 0 {
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{mode:o}"),
            "narrowing permissions: this data was readable by other local users"
        );
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Open options for an owner-only file (mode 0600 when created).
pub fn file_options() -> fs::OpenOptions {
    let mut o = fs::OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// Write `contents` to `path` with mode 0600, atomically (temp file + rename).
pub fn write_file(path: &Path, contents: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_dirs_and_files_are_owner_only() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("a/b");
        ensure_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let f = dir.join("f");
        write_file(&f, "x").unwrap();
        assert_eq!(mode(&f), 0o600);
    }

    #[test]
    fn existing_wide_dirs_and_files_are_narrowed() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("d");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let f = dir.join("wal.log");
        fs::write(&f, "x").unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
        ensure_dir(&dir).unwrap();
        narrow(&f, FILE_MODE).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&f), 0o600);
    }
}
