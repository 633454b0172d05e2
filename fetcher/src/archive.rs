//! Safe zip extraction. A package archive is untrusted input: entries may try to escape the target
//! directory (`../x`, `/etc/x`, a symlink to `/`), or expand to far more than they weigh. Every
//! refusal names the offending entry.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use zip::ZipArchive;

/// Bounds on what one archive may expand to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Sum of the uncompressed sizes of all entries.
    pub max_total_bytes: u64,
    /// Number of entries (files, directories and symlinks).
    pub max_entries: usize,
    /// Uncompressed size of one file.
    pub max_file_bytes: u64,
}

impl Default for ExtractLimits {
    /// Generous enough for Python or Node dependency trees, small enough to stop a zip bomb from
    /// filling the node's disk.
    fn default() -> Self {
        Self {
            max_total_bytes: 1 << 30,
            max_entries: 100_000,
            max_file_bytes: 512 << 20,
        }
    }
}

/// What an extraction produced, for logs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtractSummary {
    pub files: usize,
    pub dirs: usize,
    pub symlinks: usize,
    pub bytes: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("zip entry {entry:?} has an absolute path")]
    AbsolutePath { entry: String },
    #[error("zip entry {entry:?} contains '..' and would escape the target directory")]
    PathTraversal { entry: String },
    #[error("zip entry {entry:?} has an invalid name")]
    InvalidName { entry: String },
    #[error("zip entry {entry:?} is a symlink to {target:?}, which points outside the archive")]
    SymlinkEscape { entry: String, target: String },
    #[error(
        "zip entry {entry:?} is a symlink to {target:?}: only targets of the form '../../dir/file' are accepted ('..' after a name is refused)"
    )]
    SymlinkUnsupported { entry: String, target: String },
    #[error("zip entry {entry:?} would be created through the symlink {through:?}")]
    ThroughSymlink { entry: String, through: String },
    #[error("archive has {count} entries, more than the limit of {limit}")]
    TooManyEntries { count: usize, limit: usize },
    #[error("zip entry {entry:?} is larger than the per-file limit of {limit} bytes")]
    FileTooLarge { entry: String, limit: u64 },
    #[error("archive expands to more than the limit of {limit} bytes (reached at entry {entry:?})")]
    TotalTooLarge { entry: String, limit: u64 },
    #[error("invalid zip archive: {0}")]
    Zip(String),
    #[error("zip entry {entry:?} cannot be read: {reason}")]
    Entry { entry: String, reason: String },
    #[error("cannot write zip entry {entry:?} to {}: {source}", path.display())]
    Write {
        entry: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Longest symlink target read from an archive; real ones are short paths.
const MAX_SYMLINK_TARGET: u64 = 4096;

/// Whether the file starts with a zip signature (local header, or the end record of an empty zip).
pub fn is_zip(path: &Path) -> io::Result<bool> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path)?;
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(matches!(&magic, b"PK\x03\x04" | b"PK\x05\x06"))
}

/// Extracts `archive` into `dest`, which must not exist yet. Regular files and directories are
/// written first and symlinks last, so no file is ever written through a symlink; each symlink
/// must resolve inside `dest`.
pub fn extract_zip(
    archive: &Path,
    dest: &Path,
    limits: &ExtractLimits,
) -> Result<ExtractSummary, ArchiveError> {
    let file = File::open(archive).map_err(|e| ArchiveError::Zip(e.to_string()))?;
    let mut zip =
        ZipArchive::new(BufReader::new(file)).map_err(|e| ArchiveError::Zip(e.to_string()))?;
    if zip.len() > limits.max_entries {
        return Err(ArchiveError::TooManyEntries {
            count: zip.len(),
            limit: limits.max_entries,
        });
    }
    fs::create_dir(dest).map_err(|source| ArchiveError::Write {
        entry: String::new(),
        path: dest.to_path_buf(),
        source,
    })?;

    let mut summary = ExtractSummary::default();
    let mut links = Vec::new();
    for index in 0..zip.len() {
        let label = entry_name_at(&zip, index);
        let mut entry = zip.by_index(index).map_err(|e| ArchiveError::Entry {
            entry: label,
            reason: e.to_string(),
        })?;
        let name = String::from_utf8_lossy(entry.name_raw()).into_owned();
        let Some(relative) = entry_relative_path(&name)? else {
            continue;
        };
        let path = dest.join(&relative);
        if entry.is_dir() {
            create_dirs(&path, &name)?;
            summary.dirs += 1;
        } else if entry.is_symlink() {
            let target = read_symlink_target(&mut entry, &name)?;
            check_symlink_target(&relative, &target, &name)?;
            links.push((relative, target, name));
        } else {
            if entry.size() > limits.max_file_bytes {
                return Err(ArchiveError::FileTooLarge {
                    entry: name,
                    limit: limits.max_file_bytes,
                });
            }
            if let Some(parent) = path.parent() {
                create_dirs(parent, &name)?;
            }
            let remaining = limits.max_total_bytes.saturating_sub(summary.bytes);
            let allowed = remaining.min(limits.max_file_bytes);
            let mode = entry.unix_mode().map_or(0o644, |m| (m & 0o777) | 0o600);
            let written = write_bounded(&mut entry, &path, mode, allowed, &name)?;
            if written > allowed {
                return Err(if written > limits.max_file_bytes {
                    ArchiveError::FileTooLarge {
                        entry: name,
                        limit: limits.max_file_bytes,
                    }
                } else {
                    ArchiveError::TotalTooLarge {
                        entry: name,
                        limit: limits.max_total_bytes,
                    }
                });
            }
            summary.bytes += written;
            summary.files += 1;
        }
    }

    for (relative, target, name) in links {
        refuse_symlinked_ancestors(dest, &relative, &name)?;
        let path = dest.join(&relative);
        if let Some(parent) = path.parent() {
            create_dirs(parent, &name)?;
        }
        std::os::unix::fs::symlink(&target, &path).map_err(|source| ArchiveError::Write {
            entry: name,
            path,
            source,
        })?;
        summary.symlinks += 1;
    }
    Ok(summary)
}

/// The entry's path relative to the target directory, or `None` for a name that denotes the
/// target itself (`./`). Refuses absolute paths and any `..` component; `\` counts as a separator
/// because archives made on Windows use it.
pub fn entry_relative_path(name: &str) -> Result<Option<PathBuf>, ArchiveError> {
    if name.is_empty() || name.contains('\0') {
        return Err(ArchiveError::InvalidName { entry: name.into() });
    }
    if is_absolute(name) {
        return Err(ArchiveError::AbsolutePath { entry: name.into() });
    }
    let mut relative = PathBuf::new();
    for part in name.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => return Err(ArchiveError::PathTraversal { entry: name.into() }),
            part => relative.push(part),
        }
    }
    Ok((!relative.as_os_str().is_empty()).then_some(relative))
}

/// Accepts a symlink target only if it resolves inside the target directory. Targets must be
/// relative and of the form `../../a/b` (all `..` first): with `..` after a name the result would
/// depend on whether that name is itself a symlink, which a lexical check cannot know.
pub fn check_symlink_target(link: &Path, target: &str, entry: &str) -> Result<(), ArchiveError> {
    let escape = || ArchiveError::SymlinkEscape {
        entry: entry.into(),
        target: target.into(),
    };
    if target.is_empty() || target.contains('\0') {
        return Err(ArchiveError::InvalidName {
            entry: entry.into(),
        });
    }
    if is_absolute(target) {
        return Err(escape());
    }
    let mut ups = 0usize;
    let mut seen_name = false;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." if seen_name => {
                return Err(ArchiveError::SymlinkUnsupported {
                    entry: entry.into(),
                    target: target.into(),
                });
            }
            ".." => ups += 1,
            _ => seen_name = true,
        }
    }
    let depth = link.parent().map_or(0, |p| p.components().count());
    if ups > depth {
        return Err(escape());
    }
    Ok(())
}

fn is_absolute(name: &str) -> bool {
    let bytes = name.as_bytes();
    let drive = bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':';
    name.starts_with(['/', '\\']) || drive
}

fn entry_name_at<R: Read + io::Seek>(zip: &ZipArchive<R>, index: usize) -> String {
    match zip.name_for_index(index) {
        Some(Ok(name)) => name.into_owned(),
        _ => format!("#{index}"),
    }
}

fn create_dirs(path: &Path, entry: &str) -> Result<(), ArchiveError> {
    fs::create_dir_all(path).map_err(|source| ArchiveError::Write {
        entry: entry.into(),
        path: path.to_path_buf(),
        source,
    })
}

fn read_symlink_target(entry: &mut impl Read, name: &str) -> Result<String, ArchiveError> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_SYMLINK_TARGET + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ArchiveError::Entry {
            entry: name.into(),
            reason: e.to_string(),
        })?;
    if bytes.len() as u64 > MAX_SYMLINK_TARGET {
        return Err(ArchiveError::InvalidName { entry: name.into() });
    }
    String::from_utf8(bytes).map_err(|_| ArchiveError::InvalidName { entry: name.into() })
}

/// Copies at most `allowed + 1` bytes, so the caller can tell "exactly at the limit" from "over".
fn write_bounded(
    entry: &mut impl Read,
    path: &Path,
    mode: u32,
    allowed: u64,
    name: &str,
) -> Result<u64, ArchiveError> {
    let write_err = |source| ArchiveError::Write {
        entry: name.into(),
        path: path.to_path_buf(),
        source,
    };
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(write_err)?;
    let mut limited = entry.take(allowed.saturating_add(1));
    let mut buf = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = limited.read(&mut buf).map_err(|e| ArchiveError::Entry {
            entry: name.into(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(write_err)?;
        written += n as u64;
    }
    Ok(written)
}

/// Refuses to create `relative` below a directory that is actually a symlink (made by an earlier
/// entry), which would place it outside the path we validated.
fn refuse_symlinked_ancestors(
    dest: &Path,
    relative: &Path,
    entry: &str,
) -> Result<(), ArchiveError> {
    let mut current = dest.to_path_buf();
    let Some(parent) = relative.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        current.push(part);
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(ArchiveError::ThroughSymlink {
                    entry: entry.into(),
                    through: current
                        .strip_prefix(dest)
                        .unwrap_or(&current)
                        .display()
                        .to_string(),
                });
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, ZipWriter};

    enum Entry<'a> {
        File(&'a str, &'a [u8]),
        Dir(&'a str),
        Link(&'a str, &'a str),
    }

    fn make_zip(entries: &[Entry<'_>]) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        for entry in entries {
            match entry {
                Entry::File(name, data) => {
                    writer.start_file(*name, options).unwrap();
                    writer.write_all(data).unwrap();
                }
                Entry::Dir(name) => writer.add_directory(*name, options).unwrap(),
                Entry::Link(name, target) => writer.add_symlink(*name, *target, options).unwrap(),
            }
        }
        writer.finish().unwrap().into_inner()
    }

    fn extract(
        entries: &[Entry<'_>],
        limits: &ExtractLimits,
    ) -> (tempfile::TempDir, Result<ExtractSummary, ArchiveError>) {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.zip");
        fs::write(&archive, make_zip(entries)).unwrap();
        let result = extract_zip(&archive, &dir.path().join("out"), limits);
        (dir, result)
    }

    #[test]
    fn extracts_files_dirs_and_inner_symlinks() {
        let (dir, result) = extract(
            &[
                Entry::File("hello.py", b"def main():\n    return 'hi'\n"),
                Entry::Dir("pkg/"),
                Entry::File("pkg/mod.py", b"x = 1\n"),
                Entry::File("node_modules/lib/bin/cli.js", b"run()"),
                Entry::Link("node_modules/.bin/cli", "../lib/bin/cli.js"),
            ],
            &ExtractLimits::default(),
        );
        let summary = result.unwrap();
        let out = dir.path().join("out");
        assert_eq!(summary.files, 3);
        assert_eq!(summary.symlinks, 1);
        assert_eq!(fs::read(out.join("pkg/mod.py")).unwrap(), b"x = 1\n");
        assert_eq!(
            fs::read(out.join("node_modules/.bin/cli")).unwrap(),
            b"run()"
        );
    }

    #[test]
    fn keeps_the_executable_bit() {
        use std::os::unix::fs::PermissionsExt;
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        writer
            .start_file(
                "run.sh",
                SimpleFileOptions::default().unix_permissions(0o755),
            )
            .unwrap();
        writer.write_all(b"#!/bin/sh\n").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.zip");
        fs::write(&archive, writer.finish().unwrap().into_inner()).unwrap();
        extract_zip(&archive, &dir.path().join("out"), &ExtractLimits::default()).unwrap();
        let mode = fs::metadata(dir.path().join("out/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o100, 0o100, "mode {mode:o}");
    }

    #[test]
    fn refuses_path_traversal() {
        let (dir, result) = extract(
            &[Entry::File("../evil.py", b"x")],
            &ExtractLimits::default(),
        );
        let err = result.unwrap_err();
        assert!(
            matches!(err, ArchiveError::PathTraversal { ref entry } if entry == "../evil.py"),
            "{err}"
        );
        assert!(err.to_string().contains("\"../evil.py\""));
        assert!(!dir.path().join("evil.py").exists());
    }

    #[test]
    fn refuses_traversal_hidden_in_the_middle_and_with_backslashes() {
        for name in ["a/../../evil", "a\\..\\..\\evil"] {
            assert!(
                matches!(
                    entry_relative_path(name),
                    Err(ArchiveError::PathTraversal { .. })
                ),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_absolute_paths() {
        for name in ["/etc/passwd", "\\evil", "C:\\evil", "c:/evil"] {
            assert!(
                matches!(
                    entry_relative_path(name),
                    Err(ArchiveError::AbsolutePath { .. })
                ),
                "{name}"
            );
        }
        let (_dir, result) = extract(&[Entry::File("/tmp/evil", b"x")], &ExtractLimits::default());
        // The zip writer may strip the leading slash itself; either way nothing lands in /tmp.
        if let Err(err) = result {
            assert!(err.to_string().contains("evil"), "{err}");
        }
    }

    #[test]
    fn normalises_dot_components() {
        assert_eq!(
            entry_relative_path("./a/./b.py").unwrap(),
            Some(PathBuf::from("a/b.py"))
        );
        assert_eq!(entry_relative_path("./").unwrap(), None);
    }

    #[test]
    fn refuses_symlinks_that_escape() {
        for (link, target) in [
            ("escape", "/etc/passwd"),
            ("escape", "../outside"),
            ("a/b/escape", "../../../outside"),
        ] {
            let (dir, result) = extract(&[Entry::Link(link, target)], &ExtractLimits::default());
            let err = result.unwrap_err();
            assert!(
                matches!(err, ArchiveError::SymlinkEscape { ref entry, .. } if entry == link),
                "{link} -> {target}: {err}"
            );
            assert!(err.to_string().contains(target));
            assert!(fs::symlink_metadata(dir.path().join("out").join(link)).is_err());
        }
    }

    #[test]
    fn refuses_dotdot_after_a_name_in_symlink_targets() {
        // d/b -> .. is fine on its own, but x -> d/b/../.. would climb out through it.
        let err = check_symlink_target(Path::new("x"), "d/b/../..", "x").unwrap_err();
        assert!(
            matches!(err, ArchiveError::SymlinkUnsupported { .. }),
            "{err}"
        );
    }

    #[test]
    fn refuses_entries_created_through_a_symlink() {
        let (_dir, result) = extract(
            &[
                Entry::Dir("real/"),
                Entry::Link("a", "real"),
                Entry::Link("a/b", "x"),
            ],
            &ExtractLimits::default(),
        );
        let err = result.unwrap_err();
        assert!(
            matches!(err, ArchiveError::ThroughSymlink { ref entry, .. } if entry == "a/b"),
            "{err}"
        );
    }

    #[test]
    fn refuses_too_many_entries() {
        let limits = ExtractLimits {
            max_entries: 2,
            ..ExtractLimits::default()
        };
        let (_dir, result) = extract(
            &[
                Entry::File("a", b"1"),
                Entry::File("b", b"2"),
                Entry::File("c", b"3"),
            ],
            &limits,
        );
        assert!(matches!(
            result,
            Err(ArchiveError::TooManyEntries { count: 3, limit: 2 })
        ));
    }

    #[test]
    fn refuses_a_file_over_the_per_file_limit() {
        let limits = ExtractLimits {
            max_file_bytes: 1000,
            ..ExtractLimits::default()
        };
        let big = vec![0u8; 1001];
        let (_dir, result) = extract(&[Entry::File("big.bin", &big)], &limits);
        let err = result.unwrap_err();
        assert!(
            matches!(err, ArchiveError::FileTooLarge { ref entry, limit: 1000 } if entry == "big.bin"),
            "{err}"
        );
        // Exactly at the limit is fine.
        let (_dir, result) = extract(&[Entry::File("ok.bin", &big[..1000])], &limits);
        assert_eq!(result.unwrap().bytes, 1000);
    }

    #[test]
    fn refuses_a_zip_bomb_over_the_total_limit() {
        // 4 MiB of zeros compresses to a few KiB: the check must count real output bytes.
        let limits = ExtractLimits {
            max_total_bytes: 6 << 20,
            ..ExtractLimits::default()
        };
        let zeros = vec![0u8; 4 << 20];
        let entries = [Entry::File("a", &zeros), Entry::File("b", &zeros)];
        let compressed = make_zip(&entries);
        assert!(compressed.len() < 64 * 1024, "{}", compressed.len());
        let (_dir, result) = extract(&entries, &limits);
        let err = result.unwrap_err();
        assert!(
            matches!(err, ArchiveError::TotalTooLarge { ref entry, .. } if entry == "b"),
            "{err}"
        );
    }

    #[test]
    fn detects_zip_by_content() {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("code");
        fs::write(&zip, make_zip(&[Entry::File("a", b"1")])).unwrap();
        let empty_zip = dir.path().join("empty");
        fs::write(&empty_zip, make_zip(&[])).unwrap();
        let plain = dir.path().join("hello.py");
        fs::write(&plain, b"def main(): pass\n").unwrap();
        let tiny = dir.path().join("tiny");
        fs::write(&tiny, b"PK").unwrap();
        assert!(is_zip(&zip).unwrap());
        assert!(is_zip(&empty_zip).unwrap());
        assert!(!is_zip(&plain).unwrap());
        assert!(!is_zip(&tiny).unwrap());
    }

    #[test]
    fn garbage_after_the_magic_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("bad");
        fs::write(&archive, b"PK\x03\x04 definitely not a zip").unwrap();
        let err =
            extract_zip(&archive, &dir.path().join("out"), &ExtractLimits::default()).unwrap_err();
        assert!(err.to_string().starts_with("invalid zip archive"), "{err}");
    }
}
