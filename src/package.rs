//! Local work before planning: every `Ty::Path` property (function code) is packaged once
//! into a deterministic zip, stored content-addressed in the cache directory, and described by
//! its digest. Plan and apply both use that [`Artifact`]; nothing is packaged twice and
//! nothing is written outside the cache directory. Artifacts unused for a week are removed.

use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::prelude::*;
use sha2::{Digest, Sha256};

use crate::model::{Artifact, Artifacts};
use crate::stack::schema::Ty;
use crate::stack::{Expr, Stack, literal};

/// Lambda accepts at most 50 MB uploaded directly in the request.
const MAX_INLINE_ZIP: usize = 50 * 1024 * 1024;

/// Artifacts not used for this long are deleted when packaging.
const KEEP_UNUSED: Duration = Duration::from_secs(7 * 24 * 3600);

/// A local input that could not be packaged.
#[derive(Debug, thiserror::Error)]
#[error("{id}: {message}")]
pub struct PackageError {
    pub id: String,
    pub message: String,
}

/// Where artifacts live: `MSKCTL_CACHE_DIR`, else `$XDG_CACHE_HOME/mskctl`, else
/// `~/.cache/mskctl`, else the system temp directory's `mskctl-cache`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MSKCTL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("mskctl");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("mskctl");
    }
    std::env::temp_dir().join("mskctl-cache")
}

/// Package every path property of `stack` into `cache`.
pub fn package_stack(stack: &Stack, cache: &Path) -> Result<Artifacts, PackageError> {
    let mut artifacts = Artifacts::new();
    for spec in stack.resources.values() {
        for (prop, expr) in &spec.props {
            if !spec
                .schema
                .prop(prop)
                .is_some_and(|p| matches!(p.ty, Ty::Path))
            {
                continue;
            }
            let Some(path) = literal_path(expr) else {
                continue;
            };
            let artifact = package(&path, cache).map_err(|message| PackageError {
                id: spec.id.clone(),
                message,
            })?;
            artifacts.insert((spec.id.clone(), prop.clone()), artifact);
        }
    }
    clean(cache);
    Ok(artifacts)
}

/// The loader resolves path properties to absolute literal paths.
fn literal_path(expr: &Expr) -> Option<PathBuf> {
    match expr {
        Expr::Str(parts) => literal(parts).map(PathBuf::from),
        _ => None,
    }
}

/// One path: a directory is zipped, a `.zip` used as is; anything else is refused.
pub fn package(path: &Path, cache: &Path) -> Result<Artifact, String> {
    let bytes = if path.is_dir() {
        package_dir(path)?
    } else if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
    {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    } else {
        return Err(format!(
            "`code` must be a directory or a .zip file, but {} is neither",
            path.display()
        ));
    };
    if bytes.len() > MAX_INLINE_ZIP {
        return Err(format!(
            "the package of {} is {} MB; Lambda accepts at most 50 MB uploaded directly (move large dependencies to a layer)",
            path.display(),
            bytes.len() / (1024 * 1024)
        ));
    }
    let stored = store(&bytes, cache)?;
    Ok(Artifact {
        digest: code_sha256(&bytes),
        path: stored,
    })
}

/// Write the package to a content-addressed file in `cache` (atomically, so two runs never
/// see half a file), or refresh its time if it is already there; return its path.
fn store(bytes: &[u8], cache: &Path) -> Result<PathBuf, String> {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dir = cache.join("artifacts");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{hex}.zip"));
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        if let Ok(f) = std::fs::File::options().append(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
        return Ok(path);
    }
    let tmp = dir.join(format!("{hex}.zip.{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// Remove artifacts (and leftovers of interrupted writes) unused for [`KEEP_UNUSED`].
fn clean(cache: &Path) {
    let Ok(entries) = std::fs::read_dir(cache.join("artifacts")) else {
        return;
    };
    let now = SystemTime::now();
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > KEEP_UNUSED);
        if old {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Base64 of the SHA-256 of the package: Lambda's `CodeSha256`.
pub fn code_sha256(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(Sha256::digest(bytes))
}

/// Entries that depend on who ran what locally, not on the code: never packaged.
fn ignored(name: &str) -> bool {
    matches!(name, "__pycache__" | ".git" | ".DS_Store") || name.ends_with(".pyc")
}

/// Files under `dir` as (name in the zip, path on disk, executable), sorted by name.
fn collect_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf, bool)>> {
    fn walk(
        root: &Path,
        dir: &Path,
        depth: usize,
        out: &mut Vec<(String, PathBuf, bool)>,
    ) -> std::io::Result<()> {
        if depth > 64 {
            return Err(std::io::Error::other(format!(
                "{} is nested too deeply (symlink loop?)",
                dir.display()
            )));
        }
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if ignored(&name) {
                continue;
            }
            let path = entry.path();
            let meta = std::fs::metadata(&path)?; // follows symlinks
            if meta.is_dir() {
                walk(root, &path, depth + 1, out)?;
            } else if meta.is_file() {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                let zip_name = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((zip_name, path.clone(), is_executable(&meta)));
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, 0, &mut out)?;
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

/// Zip `dir` so that the same file names, contents and executable bits always give the same
/// bytes: sorted entries, no directory entries, timestamps fixed at 1980-01-01 00:00,
/// permissions 0644 or 0755, Unix as the creating system, Deflate level 6.
pub fn package_dir(dir: &Path) -> Result<Vec<u8>, String> {
    let files = collect_files(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    if files.is_empty() {
        return Err(format!("{} contains no files to package", dir.display()));
    }
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, path, exec) in files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(zip::DateTime::DEFAULT)
            .system(zip::System::Unix)
            .unix_permissions(if exec { 0o755 } else { 0o644 });
        let data =
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        zip.start_file(name.as_str(), options)
            .map_err(|e| format!("cannot zip {name}: {e}"))?;
        zip.write_all(&data)
            .map_err(|e| format!("cannot zip {name}: {e}"))?;
    }
    let cursor = zip
        .finish()
        .map_err(|e| format!("cannot finish the zip: {e}"))?;
    Ok(cursor.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(dir: &Path, rel: &str, content: &str) {
        let path = dir.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, content).unwrap();
    }

    fn set_mtime(dir: &Path, rel: &str, secs: u64) {
        let f = fs::File::options().write(true).open(dir.join(rel)).unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
            .unwrap();
    }

    #[test]
    fn packaging_ignores_mtimes_and_creation_order() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        write(a.path(), "handler.py", "def h(e, c): return 1\n");
        write(a.path(), "lib/util.py", "X = 1\n");
        write(a.path(), "lib/data.json", "{}\n");
        // Same content, created in another order, with other timestamps and cache litter.
        write(b.path(), "lib/data.json", "{}\n");
        write(b.path(), "lib/util.py", "X = 1\n");
        write(b.path(), "handler.py", "def h(e, c): return 1\n");
        write(b.path(), "__pycache__/handler.cpython-311.pyc", "junk");
        set_mtime(b.path(), "handler.py", 1_000_000_000);
        set_mtime(b.path(), "lib/util.py", 1_700_000_000);
        let (za, zb) = (
            package_dir(a.path()).unwrap(),
            package_dir(b.path()).unwrap(),
        );
        assert_eq!(za, zb);
        assert_eq!(code_sha256(&za), code_sha256(&zb));
        // Packaging twice gives the same bytes too.
        assert_eq!(za, package_dir(a.path()).unwrap());
    }

    #[test]
    fn changed_content_changes_the_hash() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "handler.py", "v1\n");
        let before = code_sha256(&package_dir(a.path()).unwrap());
        write(a.path(), "handler.py", "v2\n");
        assert_ne!(before, code_sha256(&package_dir(a.path()).unwrap()));
        write(a.path(), "handler.py", "v1\n");
        write(a.path(), "extra.py", "\n");
        assert_ne!(before, code_sha256(&package_dir(a.path()).unwrap()));
    }

    #[test]
    fn package_is_a_readable_zip_with_fixed_metadata() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "b.py", "b\n");
        write(a.path(), "a/c.py", "c\n");
        let bytes = package_dir(a.path()).unwrap();
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        assert_eq!(zip.len(), 2);
        let first = zip.by_index(0).unwrap();
        assert_eq!(first.name().unwrap(), "a/c.py");
        assert_eq!(first.unix_mode().map(|m| m & 0o777), Some(0o644));
        assert_eq!(first.last_modified(), Some(zip::DateTime::DEFAULT));
        assert_eq!(first.compression(), zip::CompressionMethod::Deflated);
    }

    #[cfg(unix)]
    #[test]
    fn executable_bit_is_kept_as_0755() {
        use std::os::unix::fs::PermissionsExt;
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "bootstrap", "#!/bin/sh\n");
        let plain = package_dir(a.path()).unwrap();
        fs::set_permissions(
            a.path().join("bootstrap"),
            fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let exec = package_dir(a.path()).unwrap();
        assert_ne!(plain, exec);
        let mut zip = zip::ZipArchive::new(Cursor::new(exec)).unwrap();
        assert_eq!(
            zip.by_index(0).unwrap().unix_mode().map(|m| m & 0o777),
            Some(0o755)
        );
    }

    #[test]
    fn empty_directory_is_an_error() {
        let a = tempfile::tempdir().unwrap();
        assert!(package_dir(a.path()).unwrap_err().contains("no files"));
    }

    #[test]
    fn known_sha256_matches_lambdas_format() {
        // `printf hello | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            code_sha256(b"hello"),
            "LPJNul+wow4m6DsqxbninhsWHlwfp0JecwQzYpOLmCQ="
        );
    }

    #[test]
    fn a_directory_gives_the_digest_and_a_stored_zip_in_the_cache() {
        let a = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        write(a.path(), "h.py", "x\n");
        let artifact = package(a.path(), cache.path()).unwrap();
        let zip = fs::read(&artifact.path).unwrap();
        assert_eq!(artifact.digest, code_sha256(&zip));
        assert_eq!(zip, package_dir(a.path()).unwrap());
        assert!(
            artifact.path.starts_with(cache.path().join("artifacts")),
            "{}",
            artifact.path.display()
        );
        // Packaging again is harmless and gives the same artifact.
        assert_eq!(package(a.path(), cache.path()).unwrap(), artifact);
    }

    #[test]
    fn a_zip_is_used_as_is_and_other_files_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        write(a.path(), "f.zip", "not really a zip, but opaque bytes");
        let artifact = package(&a.path().join("f.zip"), cache.path()).unwrap();
        assert_eq!(
            artifact.digest,
            code_sha256(b"not really a zip, but opaque bytes")
        );
        assert_eq!(
            fs::read(&artifact.path).unwrap(),
            b"not really a zip, but opaque bytes"
        );
        write(a.path(), "f.py", "x");
        assert!(
            package(&a.path().join("f.py"), cache.path())
                .unwrap_err()
                .contains("directory or a .zip")
        );
    }
}
