//! Local work before planning: every `Ty::Path` property (function code) is packaged once
//! into a deterministic zip, stored content-addressed in the cache directory, and described by
//! its digest. Plan and apply both use that [`Artifact`]; nothing is packaged twice and
//! nothing is written outside the cache directory. Artifacts unused for a week are removed.
//!
//! A Python function's directory that holds `requirements.txt` is packaged with its
//! requirements installed, as `sam build` does: `pip install --target` into a staging
//! directory of the cache, for the function's runtime and architecture (manylinux2014 wheels
//! only), then code and installed packages are zipped together. The build is keyed by the
//! content of the directory, the runtime and the architecture (`builds/<key>` names the
//! artifact), so pip runs only when one of them changed; a cached build costs one hash of the
//! directory and prints nothing.

use std::ffi::OsString;
use std::io::{Cursor, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use base64::prelude::*;
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use sha2::{Digest, Sha256};

use crate::model::{Artifact, Artifacts};
use crate::stack::load::{MAX_LINE, clip};
use crate::stack::schema::Ty;
use crate::stack::{Expr, SourceMap, Stack, literal};

/// Lambda accepts at most 50 MB uploaded directly in the request.
const MAX_INLINE_ZIP: usize = 50 * 1024 * 1024;

/// Artifacts not used for this long are deleted when packaging.
const KEEP_UNUSED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Staging directories older than this are leftovers of an interrupted build.
const KEEP_STAGING: Duration = Duration::from_secs(24 * 3600);

/// The file whose presence makes mskctl install a Python function's requirements.
pub const REQUIREMENTS: &str = "requirements.txt";

/// Changes whenever what a build puts in the package changes, so older cache entries are not
/// reused for a different result.
const BUILD_FORMAT: &str = "mskctl-requirements-v1";

/// How many lines of pip's error output a failure repeats.
const PIP_TAIL_LINES: usize = 12;

/// A local input that could not be packaged. `Display` is `<file>:<line>:<col>: <id>:
/// <message>` when the stack file could be read again; as a miette [`Diagnostic`] it points at
/// the property's key (`code:`) in the file, like the loader's diagnostics.
#[derive(Debug, thiserror::Error)]
#[error("{}{id}: {message}", location.as_deref().map(|l| format!("{l}: ")).unwrap_or_default())]
pub struct PackageError {
    /// `<stack file>:<line>:<col>` of the property, when the file can be read again.
    pub location: Option<String>,
    pub id: String,
    pub message: String,
    /// The stack file and the span of the property's key in it.
    place: Option<(Source, Range<usize>)>,
}

/// The stack file as a diagnostic shows it.
type Source = Arc<NamedSource<Arc<str>>>;

impl Diagnostic for PackageError {
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let (_, span) = self.place.as_ref()?;
        let label = LabeledSpan::new(Some("packaged from here".into()), span.start, span.len());
        Some(Box::new(std::iter::once(label)))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.place
            .as_ref()
            .map(|(source, _)| &**source as &dyn SourceCode)
    }
}

/// What a package is built for: the function's runtime and architecture, and the local
/// Python whose pip installs a `requirements.txt`.
#[derive(Debug, Clone)]
pub struct Target {
    /// Lambda runtime identifier (`python3.12`), when the resource has one.
    pub runtime: Option<String>,
    /// `x86_64` or `arm64`.
    pub architecture: String,
    /// `MSKCTL_PYTHON`, else `python3`.
    pub python: OsString,
    /// How progress lines name the package (`processor.code`); empty: no progress lines.
    pub label: String,
}

impl Default for Target {
    fn default() -> Target {
        Target {
            runtime: None,
            architecture: "x86_64".into(),
            python: python_from_env(),
            label: String::new(),
        }
    }
}

/// The Python that runs pip: `MSKCTL_PYTHON`, else `python3`.
pub fn python_from_env() -> OsString {
    std::env::var_os("MSKCTL_PYTHON")
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "python3".into())
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

/// How many packages are built at once (pip runs are mostly waiting on the index).
const PARALLEL_BUILDS: usize = 4;

/// Package every path property of `stack` into `cache`, up to [`PARALLEL_BUILDS`] at a time.
/// The first failure by logical id is reported (the packages that did build stay cached).
pub fn package_stack(stack: &Stack, cache: &Path) -> Result<Artifacts, PackageError> {
    let python = python_from_env();
    let mut jobs = Vec::new();
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
            let target = Target {
                runtime: spec.props.get("runtime").and_then(literal_str),
                architecture: match spec.props.get("architectures") {
                    Some(Expr::List(items)) => items.first().and_then(literal_str),
                    _ => None,
                }
                .unwrap_or_else(|| "x86_64".into()),
                python: python.clone(),
                label: format!("{}.{prop}", spec.id),
            };
            jobs.push((spec.id.clone(), prop.clone(), path, target));
        }
    }
    let mut artifacts = Artifacts::new();
    let mut first_error = None;
    for chunk in jobs.chunks(PARALLEL_BUILDS) {
        let results: Vec<Result<Artifact, String>> = std::thread::scope(|scope| {
            let running: Vec<_> = chunk
                .iter()
                .map(|(_, _, path, target)| scope.spawn(move || package(path, cache, target)))
                .collect();
            running
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("packaging stopped unexpectedly".into()))
                })
                .collect()
        });
        for ((id, prop, _, _), result) in chunk.iter().zip(results) {
            match result {
                Ok(artifact) => {
                    artifacts.insert((id.clone(), prop.clone()), artifact);
                }
                Err(message) if first_error.is_none() => {
                    let place = locate(stack, id, prop);
                    first_error = Some(PackageError {
                        location: place.as_ref().map(|p| p.0.clone()),
                        id: id.clone(),
                        message,
                        place: place.map(|(_, source, span)| (source, span)),
                    });
                }
                Err(_) => {}
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    clean(cache);
    Ok(artifacts)
}

/// `resources.<id>.<prop>` (its key) in the stack file: `<file>:<line>:<col>`, the file and
/// the key's span.
type Place = (String, Source, Range<usize>);

fn locate(stack: &Stack, id: &str, prop: &str) -> Option<Place> {
    let text = std::fs::read_to_string(&stack.path).ok()?;
    // The loader keeps the absolute path; name the file as the user would, from here.
    let shown = std::env::current_dir()
        .ok()
        .and_then(|cwd| stack.path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| stack.path.clone());
    let map = SourceMap::new(&shown.display().to_string(), &text);
    let (node, _) = map.nearest(&["resources", id, prop])?;
    let span = node.key.clone().unwrap_or(node.value.clone());
    let span = span.start.min(text.len())..span.end.min(text.len());
    let (line, col) = map.line_col(span.start);
    let source = NamedSource::new(&map.file, map.text.clone()).with_language("yaml");
    Some((
        format!("{}:{line}:{col}", shown.display()),
        Arc::new(source),
        span,
    ))
}

/// The loader resolves path properties to absolute literal paths.
fn literal_path(expr: &Expr) -> Option<PathBuf> {
    literal_str(expr).map(PathBuf::from)
}

fn literal_str(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Str(parts) => literal(parts),
        _ => None,
    }
}

/// One path: a directory is zipped (with its Python requirements installed, if it has a
/// `requirements.txt`), a `.zip` used as is; anything else is refused.
pub fn package(path: &Path, cache: &Path, target: &Target) -> Result<Artifact, String> {
    if path.is_dir() && path.join(REQUIREMENTS).is_file() {
        return package_with_requirements(path, cache, target);
    }
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
    check_size(path, &bytes)?;
    let stored = store(&bytes, cache)?;
    Ok(Artifact {
        digest: code_sha256(&bytes),
        path: stored,
    })
}

fn check_size(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if bytes.len() > MAX_INLINE_ZIP {
        return Err(format!(
            "the package of {} is {} MB; Lambda accepts at most 50 MB uploaded directly (move large dependencies to a layer)",
            path.display(),
            bytes.len() / (1024 * 1024)
        ));
    }
    Ok(())
}

/// Hex SHA-256.
fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Write the package to a content-addressed file in `cache` (atomically, so two runs never
/// see half a file), or refresh its time if it is already there; return its path.
fn store(bytes: &[u8], cache: &Path) -> Result<PathBuf, String> {
    let hex = hex(bytes);
    let dir = cache.join("artifacts");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{hex}.zip"));
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        touch(&path);
        return Ok(path);
    }
    write_atomically(&path, bytes)?;
    Ok(path)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(
        ".{}.{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}

/// Mark a cache file as used now (cleaning removes what is unused for a week).
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// Remove artifacts and build records (and leftovers of interrupted writes) unused for
/// [`KEEP_UNUSED`], and staging directories of builds interrupted a day ago or more.
fn clean(cache: &Path) {
    let now = SystemTime::now();
    let age = |entry: &std::fs::DirEntry| {
        entry
            .metadata()
            .and_then(|m| m.modified())
            .map(|t| now.duration_since(t).unwrap_or_default())
            .unwrap_or_default()
    };
    for sub in ["artifacts", "builds"] {
        let Ok(entries) = std::fs::read_dir(cache.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            if age(&entry) > KEEP_UNUSED {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(cache.join("staging")) {
        for entry in entries.flatten() {
            if age(&entry) > KEEP_STAGING {
                let _ = std::fs::remove_dir_all(entry.path());
            }
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

/// A file to package: (name in the zip, path on disk, executable).
type Entry = (String, PathBuf, bool);

/// Files under `dir` as (name in the zip, path on disk, executable), sorted by name.
fn collect_files(dir: &Path) -> std::io::Result<Vec<Entry>> {
    fn walk(root: &Path, dir: &Path, depth: usize, out: &mut Vec<Entry>) -> std::io::Result<()> {
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
    zip_files(&files)
}

/// The deterministic zip of `files` (already sorted by name, names unique).
fn zip_files(files: &[Entry]) -> Result<Vec<u8>, String> {
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for (name, path, exec) in files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .compression_level(Some(6))
            .last_modified_time(zip::DateTime::DEFAULT)
            .system(zip::System::Unix)
            .unix_permissions(if *exec { 0o755 } else { 0o644 });
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
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

// ---------------------------------------------------------------------------------------------
// Python requirements

/// `python3.12` → `3.12`; `None` for a runtime that is not Python 3.
fn python_version(runtime: &str) -> Option<&str> {
    let version = runtime.strip_prefix("python")?;
    let (major, minor) = version.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (major == "3" && digits(minor)).then_some(version)
}

/// pip's platform tag for a Lambda architecture (Lambda runs Amazon Linux 2 or 2023, both
/// manylinux2014-compatible; pip also accepts the older manylinux1/2010 wheels for it).
fn pip_platform(architecture: &str) -> Result<&'static str, String> {
    match architecture {
        "x86_64" => Ok("manylinux2014_x86_64"),
        "arm64" => Ok("manylinux2014_aarch64"),
        other => Err(format!(
            "cannot install {REQUIREMENTS} for architecture `{other}` (x86_64 or arm64)"
        )),
    }
}

/// The build key: the directory's files (names, executable bits, contents, `requirements.txt`
/// included), the runtime and the architecture.
fn build_key(files: &[Entry], runtime: &str, architecture: &str) -> Result<String, String> {
    let mut h = Sha256::new();
    for part in [BUILD_FORMAT, runtime, architecture] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    for (name, path, exec) in files {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        h.update(name.as_bytes());
        h.update([0, u8::from(*exec)]);
        h.update(Sha256::digest(&data));
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The artifact recorded for `key`, if it is still in the cache. The record holds the zip's
/// hex SHA-256 (its file name), length and base64 SHA-256, so a hit reads no package bytes;
/// artifacts are written atomically under their hash, so a file of that name and length is
/// that package.
fn cached_build(cache: &Path, key: &str) -> Option<Artifact> {
    let record_path = cache.join("builds").join(key);
    let record = std::fs::read_to_string(&record_path).ok()?;
    let mut fields = record.split_whitespace();
    let (hex_digest, len, digest) = (fields.next()?, fields.next()?, fields.next()?);
    let hex_ok = hex_digest.len() == 64 && hex_digest.bytes().all(|b| b.is_ascii_hexdigit());
    let path = cache.join("artifacts").join(format!("{hex_digest}.zip"));
    let meta = std::fs::metadata(&path).ok()?;
    if !hex_ok || len.parse::<u64>().ok()? != meta.len() {
        return None;
    }
    touch(&record_path);
    touch(&path);
    Some(Artifact {
        digest: digest.to_string(),
        path,
    })
}

/// A directory with `requirements.txt`: the cached build for its content, runtime and
/// architecture, or a new one (pip into a staging directory, then one deterministic zip).
fn package_with_requirements(
    dir: &Path,
    cache: &Path,
    target: &Target,
) -> Result<Artifact, String> {
    let runtime = target.runtime.as_deref().unwrap_or("");
    let Some(version) = python_version(runtime) else {
        let runtime = if runtime.is_empty() {
            "none".to_string()
        } else {
            format!("`{runtime}`")
        };
        return Err(format!(
            "{} holds {REQUIREMENTS}, which mskctl installs only for a Python runtime \
             (python3.x), but the runtime is {runtime}: build the package yourself and give \
             `code` the .zip, or remove {REQUIREMENTS}",
            dir.display()
        ));
    };
    let platform = pip_platform(&target.architecture)?;
    let files = collect_files(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let key = build_key(&files, runtime, &target.architecture)?;
    if let Some(artifact) = cached_build(cache, &key) {
        return Ok(artifact);
    }

    let started = Instant::now();
    let say = |line: String| {
        if !target.label.is_empty() {
            eprintln!("{}: {line}", target.label);
        }
    };
    for warning in unpinned(&dir.join(REQUIREMENTS)) {
        say(format!("warning: {warning}"));
    }
    say(format!(
        "installing {REQUIREMENTS} with pip for {runtime} on {} (once: the package is cached until the directory, runtime or architecture changes)",
        target.architecture
    ));
    static N: AtomicUsize = AtomicUsize::new(0);
    let staging = cache.join("staging").join(format!(
        "{}-{}-{}",
        &key[..16],
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let result = build_in(&staging, dir, &files, target, version, platform);
    let _ = std::fs::remove_dir_all(&staging);
    let (bytes, count) = result?;
    check_size(dir, &bytes)?;
    let stored = store(&bytes, cache)?;
    let builds = cache.join("builds");
    std::fs::create_dir_all(&builds)
        .map_err(|e| format!("cannot create {}: {e}", builds.display()))?;
    let record = format!("{} {} {}\n", hex(&bytes), bytes.len(), code_sha256(&bytes));
    write_atomically(&builds.join(&key), record.as_bytes())?;
    say(format!(
        "packaged {count} files ({} zipped) in {:.1} s",
        size(bytes.len()),
        started.elapsed().as_secs_f64()
    ));
    Ok(Artifact {
        digest: code_sha256(&bytes),
        path: stored,
    })
}

/// `0.6 MB`, `12 KB`.
fn size(bytes: usize) -> String {
    if bytes >= 1024 * 1024 {
        format!("{:.1} MB", bytes as f64 / (1024.0 * 1024.0))
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

/// Install the requirements into `staging` and zip them with the code: (zip, file count).
fn build_in(
    staging: &Path,
    dir: &Path,
    code: &[Entry],
    target: &Target,
    version: &str,
    platform: &str,
) -> Result<(Vec<u8>, usize), String> {
    let deps = staging.join("python");
    std::fs::create_dir_all(&deps).map_err(|e| format!("cannot create {}: {e}", deps.display()))?;
    run_pip(dir, &deps, target, version, platform)?;
    let installed =
        collect_files(&deps).map_err(|e| format!("cannot read {}: {e}", deps.display()))?;
    // The function's own files win over an installed file of the same name.
    let mut files: Vec<Entry> = code.to_vec();
    let names: std::collections::BTreeSet<String> = code.iter().map(|f| f.0.clone()).collect();
    files.extend(
        installed
            .into_iter()
            .filter(|(name, _, _)| !machine_specific(name) && !names.contains(name)),
    );
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let count = files.len();
    Ok((zip_files(&files)?, count))
}

/// Installed files whose content depends on the machine or the moment of the install, not on
/// the resolved versions: `bin/` (console scripts name the local interpreter in their `#!`
/// line; Lambda never runs them), a distribution's `RECORD` (hashes of those scripts, and
/// only needed to uninstall) and `direct_url.json` (the local path or URL it came from).
fn machine_specific(name: &str) -> bool {
    if name.starts_with("bin/") {
        return true;
    }
    let mut parts = name.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(top), Some(file), None) if top.ends_with(".dist-info") => {
            matches!(file, "RECORD" | "direct_url.json")
        }
        _ => false,
    }
}

/// `<python> -m pip install -r requirements.txt --target <deps>` for the function's platform,
/// run in the function's directory (relative paths in the file are relative to it).
fn run_pip(
    dir: &Path,
    deps: &Path,
    target: &Target,
    version: &str,
    platform: &str,
) -> Result<(), String> {
    let python = &target.python;
    let output = Command::new(python)
        .args(["-m", "pip", "install", "-r", REQUIREMENTS, "--target"])
        .arg(deps)
        .args([
            "--only-binary=:all:",
            "--platform",
            platform,
            "--implementation",
            "cp",
            "--python-version",
            version,
            "--no-compile",
            "--no-input",
            "--disable-pip-version-check",
            "--quiet",
        ])
        .current_dir(dir)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("PIP_NO_INPUT", "1")
        // A user's pip configuration that would refuse a --target install: requiring an
        // active virtualenv, or installing into the user site (which --target excludes).
        .env("PIP_REQUIRE_VIRTUALENV", "0")
        .env("PIP_USER", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            format!(
                "cannot run `{}` to install {REQUIREMENTS} ({e}); install Python 3 with pip, or \
                 set MSKCTL_PYTHON to one",
                python.to_string_lossy()
            )
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    if stderr.contains("No module named pip") {
        return Err(format!(
            "`{}` has no pip, which mskctl needs to install {REQUIREMENTS}: install pip for it \
             (`{0} -m ensurepip`, or the python3-pip package), or set MSKCTL_PYTHON to a Python \
             with pip",
            python.to_string_lossy()
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        &stdout
    } else {
        &stderr
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail: Vec<String> = lines[lines.len().saturating_sub(PIP_TAIL_LINES)..]
        .iter()
        .map(|l| format!("  | {}", clip(l.trim_end(), MAX_LINE)))
        .collect();
    Err(format!(
        "pip could not install {REQUIREMENTS} (`{} -m pip install` {}){}\n  \
         (pip needs the package index, or --no-index with --find-links in {REQUIREMENTS}; every \
         requirement needs a wheel for the runtime's Python version and platform, as mskctl \
         installs with --only-binary=:all:)",
        python.to_string_lossy(),
        output.status,
        if tail.is_empty() {
            String::new()
        } else {
            format!(":\n{}", tail.join("\n"))
        }
    ))
}

/// Lines of a requirements file that do not pin one version (`name==1.2.3`, a wheel file or a
/// URL), as warnings: what they install depends on the index on the day of the build.
fn unpinned(file: &Path) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = match raw.find(" #") {
            Some(i) => &raw[..i],
            None => raw,
        }
        .trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('-') {
            continue;
        }
        let spec = line.split(';').next().unwrap_or(line);
        let pinned = (spec.contains("==") && !spec.contains(".*") && !spec.contains(','))
            || spec.contains(" @ ")
            || spec.contains("://")
            || spec.starts_with('.')
            || spec.starts_with('/')
            || spec.ends_with(".whl");
        if !pinned {
            out.push(format!(
                "{REQUIREMENTS} line {}: `{line}` is not pinned to one version (`name==x.y.z`): \
                 the package depends on what the index offers on the day it is built; pin it \
                 for a reproducible package",
                n + 1
            ));
        }
    }
    out
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
        let artifact = package(a.path(), cache.path(), &Target::default()).unwrap();
        let zip = fs::read(&artifact.path).unwrap();
        assert_eq!(artifact.digest, code_sha256(&zip));
        assert_eq!(zip, package_dir(a.path()).unwrap());
        assert!(
            artifact.path.starts_with(cache.path().join("artifacts")),
            "{}",
            artifact.path.display()
        );
        // Packaging again is harmless and gives the same artifact.
        assert_eq!(
            package(a.path(), cache.path(), &Target::default()).unwrap(),
            artifact
        );
    }

    #[test]
    fn a_zip_is_used_as_is_and_other_files_are_refused() {
        let a = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        write(a.path(), "f.zip", "not really a zip, but opaque bytes");
        let artifact = package(&a.path().join("f.zip"), cache.path(), &Target::default()).unwrap();
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
            package(&a.path().join("f.py"), cache.path(), &Target::default())
                .unwrap_err()
                .contains("directory or a .zip")
        );
    }

    // --- requirements.txt -----------------------------------------------------------------

    /// A pure-Python wheel of distribution `name` (module `name` with `VALUE = value` and a
    /// console script) in `dir`, as a build backend would write it; returns its path.
    fn wheel(dir: &Path, name: &str, version: &str, value: &str) -> PathBuf {
        tagged_wheel(dir, name, version, value, "py3-none-any")
    }

    /// A wheel as [`wheel`] for the compatibility tag `tag` (`cp312-cp312-manylinux2014_x86_64`).
    fn tagged_wheel(dir: &Path, name: &str, version: &str, value: &str, tag: &str) -> PathBuf {
        let pure = tag == "py3-none-any";
        let dist_info = format!("{name}-{version}.dist-info");
        let files = [
            (
                format!("{name}/__init__.py"),
                format!("VALUE = {value}\n\ndef main():\n    print(VALUE)\n"),
            ),
            (
                format!("{dist_info}/METADATA"),
                format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"),
            ),
            (
                format!("{dist_info}/WHEEL"),
                format!(
                    "Wheel-Version: 1.0\nGenerator: mskctl-test\nRoot-Is-Purelib: {pure}\nTag: {tag}\n"
                ),
            ),
            (
                format!("{dist_info}/entry_points.txt"),
                format!("[console_scripts]\n{name}-cli = {name}:main\n"),
            ),
        ];
        let mut record = String::new();
        let path = dir.join(format!("{name}-{version}-{tag}.whl"));
        let mut zip = zip::ZipWriter::new(fs::File::create(&path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        for (file, content) in &files {
            zip.start_file(file.as_str(), options).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
            let digest = BASE64_URL_SAFE_NO_PAD.encode(Sha256::digest(content.as_bytes()));
            record.push_str(&format!("{file},sha256={digest},{}\n", content.len()));
        }
        record.push_str(&format!("{dist_info}/RECORD,,\n"));
        zip.start_file(format!("{dist_info}/RECORD"), options)
            .unwrap();
        zip.write_all(record.as_bytes()).unwrap();
        zip.finish().unwrap();
        path
    }

    /// A function directory whose requirements.txt pins `tinydep==1.0` from a local wheel
    /// directory (no index, so no network): (function dir, wheel dir).
    fn function_with_requirements() -> (tempfile::TempDir, tempfile::TempDir) {
        let wheels = tempfile::tempdir().unwrap();
        wheel(wheels.path(), "tinydep", "1.0", "42");
        let code = tempfile::tempdir().unwrap();
        write(
            code.path(),
            "handler.py",
            "import tinydep\n\ndef handler(e, c):\n    return tinydep.VALUE\n",
        );
        write(
            code.path(),
            "requirements.txt",
            &format!(
                "--no-index\n--find-links {}\ntinydep==1.0\n",
                wheels.path().display()
            ),
        );
        (code, wheels)
    }

    fn python_target(python: impl Into<OsString>, architecture: &str) -> Target {
        Target {
            runtime: Some("python3.12".into()),
            architecture: architecture.into(),
            python: python.into(),
            label: String::new(),
        }
    }

    fn names_in(zip_path: &Path) -> Vec<String> {
        let zip = zip::ZipArchive::new(fs::File::open(zip_path).unwrap()).unwrap();
        zip.file_names().map(|n| n.unwrap().into_owned()).collect()
    }

    /// A `python3` that counts its runs in `<dir>/runs`: (the script, the counter file).
    #[cfg(unix)]
    fn counting_python(dir: &Path) -> (PathBuf, PathBuf) {
        use std::os::unix::fs::PermissionsExt;
        let runs = dir.join("runs");
        let script = dir.join("python");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\necho run >> '{}'\nexec python3 \"$@\"\n",
                runs.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        (script, runs)
    }

    #[cfg(unix)]
    fn runs(counter: &Path) -> usize {
        fs::read_to_string(counter).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn installed_requirements_land_in_the_zip_and_import_from_it() {
        let (code, _wheels) = function_with_requirements();
        let cache = tempfile::tempdir().unwrap();
        let artifact = package(
            code.path(),
            cache.path(),
            &python_target("python3", "x86_64"),
        )
        .unwrap();
        let names = names_in(&artifact.path);
        for expected in [
            "handler.py",
            "requirements.txt",
            "tinydep/__init__.py",
            "tinydep-1.0.dist-info/METADATA",
        ] {
            assert!(
                names.contains(&expected.to_string()),
                "{expected} missing: {names:?}"
            );
        }
        // Machine-specific install output is left out: console scripts (their #! line names the
        // local interpreter), RECORD (their hashes), bytecode.
        for name in &names {
            assert!(
                !name.starts_with("bin/")
                    && !name.ends_with("/RECORD")
                    && !name.ends_with(".pyc")
                    && !name.contains("__pycache__"),
                "{name} packaged: {names:?}"
            );
        }
        assert_eq!(
            artifact.digest,
            code_sha256(&fs::read(&artifact.path).unwrap())
        );
        // The package works as Lambda uses it: the zip's root is on the import path.
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!(
                "import sys; sys.path.insert(0, {:?}); import handler; print(handler.handler(None, None))",
                artifact.path.display().to_string()
            ))
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
        // The staging directory is gone.
        let staging: Vec<_> = fs::read_dir(cache.path().join("staging"))
            .unwrap()
            .collect();
        assert!(staging.is_empty(), "{staging:?}");
    }

    #[test]
    fn the_digest_is_stable_across_builds_interpreters_and_copies() {
        let (code, _wheels) = function_with_requirements();
        // The same interpreter under another path (what pip writes into the #! line of
        // console scripts), as on another machine.
        let out = Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .unwrap();
        let real = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let elsewhere = tempfile::tempdir().unwrap();
        let full_python = elsewhere.path().join("python3");
        #[cfg(unix)]
        std::os::unix::fs::symlink(&real, &full_python).unwrap();
        #[cfg(not(unix))]
        fs::copy(&real, &full_python).unwrap();
        let (c1, c2, c3) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let first = package(code.path(), c1.path(), &python_target("python3", "x86_64")).unwrap();
        let second = package(
            code.path(),
            c2.path(),
            &python_target(&full_python, "x86_64"),
        )
        .unwrap();
        assert_eq!(first.digest, second.digest);
        // A copy elsewhere, written in another order with other timestamps, built again.
        let copy = tempfile::tempdir().unwrap();
        for name in ["requirements.txt", "handler.py"] {
            fs::copy(code.path().join(name), copy.path().join(name)).unwrap();
        }
        set_mtime(copy.path(), "handler.py", 1_000_000_000);
        let third = package(copy.path(), c3.path(), &python_target("python3", "x86_64")).unwrap();
        assert_eq!(first.digest, third.digest);
        assert_eq!(
            fs::read(&first.path).unwrap(),
            fs::read(&third.path).unwrap()
        );
    }

    #[cfg(unix)]
    #[test]
    fn pip_runs_only_when_the_directory_runtime_or_architecture_changed() {
        let (code, _wheels) = function_with_requirements();
        let cache = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        let (python, counter) = counting_python(bin.path());
        let target = python_target(&python, "x86_64");
        let first = package(code.path(), cache.path(), &target).unwrap();
        assert_eq!(runs(&counter), 1);
        // Cached: pip does not run, even if there is no Python at all.
        assert_eq!(package(code.path(), cache.path(), &target).unwrap(), first);
        assert_eq!(
            package(
                code.path(),
                cache.path(),
                &python_target("/nonexistent/python3", "x86_64")
            )
            .unwrap(),
            first
        );
        // Touching a file changes nothing; a new timestamp is not a change.
        set_mtime(code.path(), "handler.py", 1_500_000_000);
        package(code.path(), cache.path(), &target).unwrap();
        assert_eq!(runs(&counter), 1);
        // Another architecture, another runtime: built (the wheel is pure, so same content).
        let arm = package(code.path(), cache.path(), &python_target(&python, "arm64")).unwrap();
        assert_eq!(runs(&counter), 2);
        assert_eq!(arm.digest, first.digest);
        let mut py313 = target.clone();
        py313.runtime = Some("python3.13".into());
        package(code.path(), cache.path(), &py313).unwrap();
        assert_eq!(runs(&counter), 3);
        // New code: built again, with the change.
        write(code.path(), "handler.py", "import tinydep\n# v2\n");
        let changed = package(code.path(), cache.path(), &target).unwrap();
        assert_eq!(runs(&counter), 4);
        assert_ne!(changed.digest, first.digest);
        // A cached artifact that went missing (cleaned) or is cut short is built again.
        fs::remove_file(&changed.path).unwrap();
        assert_eq!(
            package(code.path(), cache.path(), &target).unwrap(),
            changed
        );
        assert_eq!(runs(&counter), 5);
        let bytes = fs::read(&changed.path).unwrap();
        fs::write(&changed.path, &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(
            package(code.path(), cache.path(), &target).unwrap(),
            changed
        );
        assert_eq!(runs(&counter), 6);
        assert_eq!(fs::read(&changed.path).unwrap(), bytes);
    }

    #[test]
    fn pip_selects_wheels_for_the_runtimes_python_and_the_architecture() {
        // One platform-specific distribution, built for CPython 3.12 on each Lambda
        // architecture (and a macOS build that must never be chosen).
        let wheels = tempfile::tempdir().unwrap();
        for (value, platform) in [
            ("'x86_64'", "manylinux2014_x86_64"),
            ("'aarch64'", "manylinux2014_aarch64"),
            ("'macos'", "macosx_11_0_arm64"),
        ] {
            tagged_wheel(
                wheels.path(),
                "native",
                "1.0",
                value,
                &format!("cp312-cp312-{platform}"),
            );
        }
        let code = tempfile::tempdir().unwrap();
        write(code.path(), "handler.py", "import native\n");
        write(
            code.path(),
            "requirements.txt",
            &format!(
                "--no-index\n--find-links {}\nnative==1.0\n",
                wheels.path().display()
            ),
        );
        let cache = tempfile::tempdir().unwrap();
        let built = |architecture: &str| {
            let artifact = package(
                code.path(),
                cache.path(),
                &python_target("python3", architecture),
            )
            .unwrap();
            let mut zip = zip::ZipArchive::new(fs::File::open(&artifact.path).unwrap()).unwrap();
            let mut module = String::new();
            std::io::Read::read_to_string(
                &mut zip.by_name("native/__init__.py").unwrap(),
                &mut module,
            )
            .unwrap();
            module
        };
        assert!(built("x86_64").starts_with("VALUE = 'x86_64'"));
        assert!(built("arm64").starts_with("VALUE = 'aarch64'"));
        // No wheel for Python 3.11: pip says so, whatever Python runs it.
        let mut py311 = python_target("python3", "x86_64");
        py311.runtime = Some("python3.11".into());
        let err = package(code.path(), cache.path(), &py311).unwrap_err();
        assert!(
            err.contains("No matching distribution found for native==1.0"),
            "{err}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_pip_configuration_for_virtualenvs_or_the_user_site_does_not_stop_the_build() {
        use std::os::unix::fs::PermissionsExt;
        let (code, _wheels) = function_with_requirements();
        let cache = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        // A pip.conf many developers have: pip refuses installs outside a virtualenv, or
        // installs into the user site.
        let conf = bin.path().join("pip.conf");
        fs::write(
            &conf,
            "[global]\nrequire-virtualenv = true\n[install]\nuser = true\n",
        )
        .unwrap();
        let script = bin.path().join("python3");
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nPIP_CONFIG_FILE='{}' exec python3 \"$@\"\n",
                conf.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let artifact =
            package(code.path(), cache.path(), &python_target(&script, "x86_64")).unwrap();
        assert!(names_in(&artifact.path).contains(&"tinydep/__init__.py".to_string()));
    }

    #[test]
    fn requirements_with_a_non_python_runtime_are_refused() {
        let (code, _wheels) = function_with_requirements();
        let cache = tempfile::tempdir().unwrap();
        for runtime in [
            Some("nodejs20.x"),
            Some("java21"),
            Some("provided.al2023"),
            None,
        ] {
            let target = Target {
                runtime: runtime.map(String::from),
                python: "/nonexistent/python3".into(),
                ..Target::default()
            };
            let err = package(code.path(), cache.path(), &target).unwrap_err();
            assert!(
                err.contains("only for a Python runtime") && err.contains("requirements.txt"),
                "{err}"
            );
            if let Some(runtime) = runtime {
                assert!(err.contains(&format!("`{runtime}`")), "{err}");
            }
        }
        assert!(!cache.path().join("artifacts").exists());
    }

    #[test]
    fn a_pip_failure_repeats_pips_last_lines_and_stores_nothing() {
        let (code, _wheels) = function_with_requirements();
        let reqs = fs::read_to_string(code.path().join("requirements.txt")).unwrap();
        write(
            code.path(),
            "requirements.txt",
            &reqs.replace("tinydep==1.0", "tinydep==2.0"),
        );
        let cache = tempfile::tempdir().unwrap();
        let err = package(
            code.path(),
            cache.path(),
            &python_target("python3", "x86_64"),
        )
        .unwrap_err();
        assert!(
            err.contains("pip could not install requirements.txt"),
            "{err}"
        );
        assert!(
            err.contains("| ERROR: No matching distribution found for tinydep==2.0"),
            "{err}"
        );
        assert!(!cache.path().join("artifacts").exists(), "{err}");
        assert!(!cache.path().join("builds").exists(), "{err}");
        let staging: Vec<_> = fs::read_dir(cache.path().join("staging"))
            .unwrap()
            .collect();
        assert!(staging.is_empty(), "{staging:?}");
    }

    #[test]
    fn a_missing_python_says_how_to_choose_one() {
        let (code, _wheels) = function_with_requirements();
        let cache = tempfile::tempdir().unwrap();
        let err = package(
            code.path(),
            cache.path(),
            &python_target("/nonexistent/python3", "x86_64"),
        )
        .unwrap_err();
        assert!(err.contains("cannot run `/nonexistent/python3`"), "{err}");
        assert!(err.contains("MSKCTL_PYTHON"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_python_without_pip_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let (code, _wheels) = function_with_requirements();
        let cache = tempfile::tempdir().unwrap();
        let bin = tempfile::tempdir().unwrap();
        // What `python3 -m pip` answers on a Python without pip.
        let script = bin.path().join("python3");
        fs::write(
            &script,
            "#!/bin/sh\necho \"/usr/bin/python3: No module named pip\" >&2\nexit 1\n",
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        let err =
            package(code.path(), cache.path(), &python_target(&script, "x86_64")).unwrap_err();
        assert!(err.contains("has no pip"), "{err}");
        assert!(err.contains("MSKCTL_PYTHON"), "{err}");
    }

    #[test]
    fn package_stack_names_the_code_line_and_column_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "fn/index.js",
            "exports.handler = async () => 1;\n",
        );
        write(dir.path(), "fn/requirements.txt", "tinydep==1.0\n");
        write(
            dir.path(),
            "stack.yaml",
            "stack: s\nresources:\n  role:\n    type: iam_role\n    trust: [lambda.amazonaws.com]\n  \
             fn:\n    type: lambda_function\n    handler: index.handler\n    code: fn\n    \
             runtime: nodejs20.x\n    role: role\n",
        );
        let checks = crate::plan::Checks::new(crate::model::kinds::catalog());
        let stack =
            crate::stack::load_file(&dir.path().join("stack.yaml"), &Default::default(), &checks)
                .unwrap_or_else(|e| panic!("{e:?}"));
        let cache = tempfile::tempdir().unwrap();
        let err = package_stack(&stack, cache.path()).unwrap_err();
        assert_eq!(err.id, "fn");
        let location = err.location.clone().unwrap();
        assert!(location.ends_with("stack.yaml:9:5"), "{location}");
        let text = err.to_string();
        assert!(text.starts_with(&format!("{location}: fn: ")), "{text}");
        assert!(text.contains("`nodejs20.x`"), "{text}");
        // As a diagnostic it points at `code:` in the file (text form and --json alike).
        let report = miette::Report::new(err);
        let json = crate::ui::json::error_json(&report);
        assert_eq!(
            (&json["type"], &json["line"], &json["column"]),
            (&"diagnostic".into(), &9.into(), &5.into()),
            "{json}"
        );
        assert!(
            json["message"].as_str().unwrap().starts_with("fn: "),
            "{json}"
        );
    }

    #[test]
    fn runtimes_and_architectures_map_to_pip_targets() {
        assert_eq!(python_version("python3.12"), Some("3.12"));
        assert_eq!(python_version("python3.9"), Some("3.9"));
        for other in [
            "nodejs20.x",
            "python2.7",
            "python3",
            "python3.x",
            "java21",
            "",
        ] {
            assert_eq!(python_version(other), None, "{other}");
        }
        assert_eq!(pip_platform("x86_64").unwrap(), "manylinux2014_x86_64");
        assert_eq!(pip_platform("arm64").unwrap(), "manylinux2014_aarch64");
        assert!(pip_platform("mips").is_err());
    }

    #[test]
    fn only_machine_specific_install_output_is_dropped() {
        for dropped in [
            "bin/tinydep-cli",
            "tinydep-1.0.dist-info/RECORD",
            "tinydep-1.0.dist-info/direct_url.json",
        ] {
            assert!(machine_specific(dropped), "{dropped}");
        }
        for kept in [
            "tinydep/__init__.py",
            "tinydep-1.0.dist-info/METADATA",
            "tinydep/bin/tool.py",
            "tinydep/RECORD",
            "tinydep-1.0.dist-info/licenses/RECORD",
        ] {
            assert!(!machine_specific(kept), "{kept}");
        }
    }

    #[test]
    fn unpinned_requirements_are_warned_about() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "requirements.txt",
            "# comment\n--no-index\nkafka-python==3.0.12\nboto3>=1.34\nrequests\n\
             attrs==23.*\nx @ https://example.com/x.whl\n./wheels/y-1.0-py3-none-any.whl\n\
             six==1.16.0 ; python_version >= '3'  # pinned\n",
        );
        let warnings = unpinned(&dir.path().join("requirements.txt"));
        assert_eq!(warnings.len(), 3, "{warnings:?}");
        assert!(
            warnings[0].contains("line 4: `boto3>=1.34`"),
            "{warnings:?}"
        );
        assert!(warnings[1].contains("line 5: `requests`"), "{warnings:?}");
        assert!(
            warnings[2].contains("line 6: `attrs==23.*`"),
            "{warnings:?}"
        );
    }
}
