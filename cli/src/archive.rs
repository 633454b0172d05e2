//! `--code`, `--deploy` and `--src` arguments into Package archives (Fission's
//! `CreateArchive`): a single file (with `--code`) or a single zip is used as is; a directory,
//! a glob or several files are zipped. Archives under Fission's 256 KiB limit become literals.

use std::io::Write;
use std::path::{Path, PathBuf};

use k8s_openapi::ByteString;
use rivulet_api::defaults::ARCHIVE_LITERAL_SIZE_LIMIT;
use rivulet_api::{Archive, Checksum};

use crate::error::{Error, Result};

/// Where an archive's content comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    /// A URL the fetcher downloads.
    Url(String),
    /// Bytes read or zipped here; `what` names the inputs for messages.
    Bytes {
        /// The archive.
        bytes: Vec<u8>,
        /// The command-line paths it was made from.
        what: String,
    },
}

/// Reads or zips `args`; `no_zip` is `--code` (a single file is sent as it is).
pub fn load(args: &[String], no_zip: bool) -> Result<Content> {
    if let [url] = args
        && (url.starts_with("http://") || url.starts_with("https://"))
    {
        return Ok(Content::Url(url.clone()));
    }
    if let Some(url) = args.iter().find(|a| a.contains("://")) {
        return Err(Error::usage(format!(
            "{url}: a URL must be the only archive argument (http:// or https://)"
        )));
    }
    let what = args.join(",");
    if let [single] = args {
        let path = Path::new(single);
        if path.is_file() {
            let bytes = read(path)?;
            if no_zip || bytes.starts_with(b"PK\x03\x04") {
                return Ok(Content::Bytes { bytes, what });
            }
        }
    }
    let mut entries = Vec::new();
    for arg in args {
        entries.extend(expand(arg)?);
    }
    entries.sort();
    entries.dedup();
    Ok(Content::Bytes {
        bytes: zip(&entries)?,
        what,
    })
}

/// The Package archive for `content`: a literal under the limit, a URL with its checksum.
pub fn to_archive(content: Content, checksum: Option<&str>) -> Result<Archive> {
    match content {
        Content::Url(url) => Ok(Archive {
            archive_type: Some("url".into()),
            url: Some(url),
            checksum: checksum.map(|sum| Checksum {
                checksum_type: Some("sha256".into()),
                sum: Some(sum.to_owned()),
            }),
            ..Archive::default()
        }),
        Content::Bytes { bytes, what } => {
            // Fission: literal when strictly under the limit, else uploaded to storage.
            if bytes.len() >= ARCHIVE_LITERAL_SIZE_LIMIT {
                return Err(Error::TooLarge {
                    path: what,
                    size: bytes.len(),
                    limit: ARCHIVE_LITERAL_SIZE_LIMIT,
                });
            }
            Ok(Archive {
                archive_type: Some("literal".into()),
                literal: Some(ByteString(bytes)),
                ..Archive::default()
            })
        }
    }
}

/// [`to_archive`], uploading archives at or over the literal limit to archive storage (found
/// as Fission's CLI finds storagesvc: FISSION_STORAGESVC_URL, else the labelled Service) and
/// recording the URL with its sha256, as Fission's CLI does.
pub async fn resolve(
    client: &kube::Client,
    content: Content,
    checksum: Option<&str>,
) -> Result<Archive> {
    let (bytes, what) = match content {
        Content::Bytes { bytes, what } if bytes.len() >= ARCHIVE_LITERAL_SIZE_LIMIT => {
            (bytes, what)
        }
        other => return to_archive(other, checksum),
    };
    let size = bytes.len();
    let fail = |reason: String| Error::Storage {
        path: what.clone(),
        size,
        reason,
    };
    let (storage, archive_base) = storage_client(client).await.map_err(fail)?;
    let name = Path::new(what.split(',').next().unwrap_or("archive"))
        .file_name()
        .map_or_else(
            || "archive".to_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
    let uploaded = storage
        .upload_bytes(&name, bytes.into())
        .await
        .map_err(|e| fail(e.to_string()))?;
    Ok(Archive {
        archive_type: Some("url".into()),
        url: Some(rivulet_storage::archive_url(&archive_base, &uploaded.id)),
        checksum: Some(Checksum {
            checksum_type: Some("sha256".into()),
            sum: Some(uploaded.sha256),
        }),
        ..Archive::default()
    })
}

/// A client for archive storage, found as Fission's CLI finds storagesvc
/// (FISSION_STORAGESVC_URL, else the labelled Service), and the base URL Packages record.
pub async fn storage_client(
    client: &kube::Client,
) -> std::result::Result<(rivulet_storage::Client, String), String> {
    let endpoint = rivulet_storage::discovery::discover(client)
        .await
        .map_err(|e| e.to_string())?;
    let base = match &endpoint.access {
        rivulet_storage::discovery::Access::Direct(url) => url.clone(),
        rivulet_storage::discovery::Access::PortForward {
            namespace,
            service,
            port,
        } => {
            return Err(format!(
                "service {namespace}/{service} is only reachable inside the cluster; port-forward to port {port} and set FISSION_STORAGESVC_URL"
            ));
        }
    };
    let storage = rivulet_storage::Client::new(&base).map_err(|e| e.to_string())?;
    Ok((storage, endpoint.archive_base))
}

/// The files an argument names, each with its name inside the zip.
fn expand(arg: &str) -> Result<Vec<(String, PathBuf)>> {
    let path = Path::new(arg);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.contains(['*', '?', '[']) {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let listing = std::fs::read_dir(&dir).map_err(|_| Error::NoFiles(arg.to_owned()))?;
        let mut out = Vec::new();
        for entry in listing.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if glob_match(&name, &file) {
                out.extend(walk(&entry.path(), &file)?);
            }
        }
        if out.is_empty() {
            return Err(Error::NoFiles(arg.to_owned()));
        }
        return Ok(out);
    }
    if path.is_dir() {
        return walk(path, "");
    }
    if path.is_file() {
        return Ok(vec![(name, path.to_path_buf())]);
    }
    Err(Error::NoFiles(arg.to_owned()))
}

/// `path` (a file, or a directory walked recursively) with zip names under `prefix`.
fn walk(path: &Path, prefix: &str) -> Result<Vec<(String, PathBuf)>> {
    if path.is_file() {
        return Ok(vec![(prefix.to_owned(), path.to_path_buf())]);
    }
    let mut out = Vec::new();
    let listing = std::fs::read_dir(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        source,
    })?;
    for entry in listing.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        let name = if prefix.is_empty() {
            file
        } else {
            format!("{prefix}/{file}")
        };
        out.extend(walk(&entry.path(), &name)?);
    }
    Ok(out)
}

/// Shell-style `*`, `?` and `[...]` matching of one path component.
fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some('[') => match p.iter().position(|&c| c == ']') {
                Some(end) if !t.is_empty() => {
                    let set = &p[1..end];
                    let (negate, set) = match set.first() {
                        Some('!' | '^') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    let mut hit = false;
                    let mut i = 0;
                    while i < set.len() {
                        if i + 2 < set.len() && set[i + 1] == '-' {
                            hit |= set[i] <= t[0] && t[0] <= set[i + 2];
                            i += 3;
                        } else {
                            hit |= set[i] == t[0];
                            i += 1;
                        }
                    }
                    hit != negate && go(&p[end + 1..], &t[1..])
                }
                _ => false,
            },
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::NoFiles(path.display().to_string())
        } else {
            Error::File {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

/// A deflated zip of `entries`, keeping Unix permissions (executables stay executable).
fn zip(entries: &[(String, PathBuf)]) -> Result<Vec<u8>> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, path) in entries {
        let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode());
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(mode & 0o777);
        writer
            .start_file(name.as_str(), options)
            .map_err(|e| Error::Zip(e.to_string()))?;
        writer
            .write_all(&read(path)?)
            .map_err(|e| Error::Zip(e.to_string()))?;
    }
    let cursor = writer.finish().map_err(|e| Error::Zip(e.to_string()))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(bytes: &[u8]) -> Vec<String> {
        let archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut names: Vec<String> = archive
            .file_names()
            .map(|n| n.unwrap().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn code_is_sent_as_is_and_becomes_a_literal() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hello_world.py");
        std::fs::write(&file, "def main():\n    return 'Hello, World!'\n").unwrap();
        let content = load(&[file.display().to_string()], true).unwrap();
        let archive = to_archive(content, None).unwrap();
        assert_eq!(archive.archive_type.as_deref(), Some("literal"));
        assert_eq!(
            archive.literal.unwrap().0,
            b"def main():\n    return 'Hello, World!'\n"
        );
    }

    #[test]
    fn directories_and_globs_are_zipped_with_relative_names() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("lib")).unwrap();
        std::fs::write(dir.path().join("main.py"), "x").unwrap();
        std::fs::write(dir.path().join("lib/util.py"), "y").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "z").unwrap();
        let Content::Bytes { bytes, .. } =
            load(&[dir.path().display().to_string()], false).unwrap()
        else {
            panic!("bytes expected")
        };
        assert_eq!(names(&bytes), ["lib/util.py", "main.py", "notes.txt"]);
        let glob = dir.path().join("*.py").display().to_string();
        let Content::Bytes { bytes, .. } = load(&[glob], false).unwrap() else {
            panic!("bytes expected")
        };
        assert_eq!(names(&bytes), ["main.py"]);
    }

    #[test]
    fn a_zip_is_kept_a_url_is_referenced_and_missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.py"), "x").unwrap();
        let Content::Bytes { bytes: zipped, .. } =
            load(&[dir.path().join("a.py").display().to_string()], false).unwrap()
        else {
            panic!("bytes expected")
        };
        let zip_path = dir.path().join("fn.zip");
        std::fs::write(&zip_path, &zipped).unwrap();
        let again = load(&[zip_path.display().to_string()], false).unwrap();
        assert_eq!(
            again,
            Content::Bytes {
                bytes: zipped,
                what: zip_path.display().to_string()
            }
        );

        let url = to_archive(
            load(&["https://example.com/fn.zip".into()], false).unwrap(),
            Some("abc"),
        )
        .unwrap();
        assert_eq!(url.archive_type.as_deref(), Some("url"));
        assert_eq!(url.checksum.unwrap().sum.as_deref(), Some("abc"));

        let err = load(&["/nonexistent/hello.py".into()], true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "/nonexistent/hello.py: no such file or directory (check the --code/--deploy/--src path)"
        );
    }

    #[test]
    fn archives_at_the_literal_limit_are_refused_with_the_limit_named() {
        let err = to_archive(
            Content::Bytes {
                bytes: vec![0; ARCHIVE_LITERAL_SIZE_LIMIT],
                what: "big.zip".into(),
            },
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("limited to 262144 bytes"), "{err}");
    }

    #[test]
    fn glob_classes() {
        assert!(glob_match("*.py", "a.py"));
        assert!(!glob_match("*.py", "a.js"));
        assert!(glob_match("f[a-c]?.txt", "fb1.txt"));
        assert!(!glob_match("f[!a-c]?.txt", "fb1.txt"));
    }
}
