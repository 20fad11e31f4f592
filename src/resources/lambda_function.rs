//! `lambda_function`: a Lambda function deployed from a local directory or `.zip`, with its
//! asynchronous-invocation settings (retries, event age, dead-letter queue).
//!
//! The package is built in `prepare` as a byte-for-byte deterministic zip so that its SHA-256
//! (what Lambda reports as `CodeSha256`) only changes when the code does: an unchanged
//! directory plans as a no-op whatever its timestamps. `secret_environment` is stored as
//! ordinary environment variables; the tag `mskctl:secret-env` remembers which keys are secret
//! so a later read can keep them out of plans.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, DeadLetterConfig, Environment, FunctionCode, FunctionConfiguration,
    LastUpdateStatus, PackageType, Runtime, State,
};
use base64::prelude::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::aws::{CallError, CallResult};
use crate::resources::{
    Ctx, Desired, Kind, Observed, Props, TAG_ID, TAG_STACK, i, s, strs, tags_of, tags_value,
};
use crate::retry::{FUNCTION_BUSY, Poll, ROLE_PROPAGATION, retry_while, wait_for};
use crate::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

use super::{tag_diff, tagged_resources};

pub struct LambdaFunction;

/// Tag listing the environment variable names that came from `secret_environment`.
pub const SECRET_TAG: &str = "mskctl:secret-env";
/// Where `prepare` leaves the zip to upload (a snapshot, so apply deploys what was planned).
const ZIP_KEY: &str = "_code_zip";
/// Largest package `CreateFunction` accepts inline (larger ones need S3).
const MAX_INLINE_ZIP: usize = 50 * 1024 * 1024;
/// Lambda's asynchronous-invocation behaviour when no event invoke config exists.
const DEFAULT_RETRIES: i64 = 2;
const DEFAULT_EVENT_AGE: i64 = 21_600;

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Function name. Defaults to `<stack>-<id>`.",
    ),
    req(
        "code",
        Ty::Path,
        Update::InPlace,
        "Directory (packaged as a deterministic zip) or `.zip` file with the function code.",
    ),
    req(
        "handler",
        Ty::Str,
        Update::InPlace,
        "Entry point, e.g. `msk_processor.lambda_handler`.",
    ),
    req(
        "runtime",
        Ty::Str,
        Update::InPlace,
        "Runtime identifier, e.g. `python3.11`.",
    ),
    dflt(
        "architectures",
        Ty::List(&Ty::Enum(&["x86_64", "arm64"])),
        Update::InPlace,
        "[\"x86_64\"]",
        "Instruction set: `[x86_64]` or `[arm64]`.",
    ),
    dflt(
        "timeout",
        Ty::Int { min: 1, max: 900 },
        Update::InPlace,
        "3",
        "Maximum run time in seconds.",
    ),
    dflt(
        "memory_size",
        Ty::Int {
            min: 128,
            max: 10_240,
        },
        Update::InPlace,
        "128",
        "Memory in MB (CPU scales with it).",
    ),
    req(
        "role",
        Ty::Ref {
            kinds: &["iam_role"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "Execution role: an `iam_role` id or a role ARN.",
    ),
    dflt(
        "layers",
        Ty::List(&Ty::Str),
        Update::InPlace,
        "[]",
        "Layer version ARNs, in order.",
    ),
    dflt(
        "environment",
        Ty::StrMap,
        Update::InPlace,
        "{}",
        "Environment variables.",
    ),
    dflt(
        "secret_environment",
        Ty::StrMap,
        Update::InPlace,
        "{}",
        "Environment variables whose values are never printed in plans.",
    ),
    dflt(
        "maximum_retry_attempts",
        Ty::Int { min: 0, max: 2 },
        Update::InPlace,
        "2",
        "Retries of a failed asynchronous invocation.",
    ),
    dflt(
        "maximum_event_age",
        Ty::Int {
            min: 60,
            max: 21_600,
        },
        Update::InPlace,
        "21600",
        "Seconds an asynchronous event may wait before it is discarded (or sent to the dead-letter queue).",
    ),
    dflt(
        "dead_letter_queue",
        Ty::Ref {
            kinds: &["sqs_queue"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "\"\"",
        "Where failed asynchronous events go: an `sqs_queue` id or a queue ARN.",
    ),
    dflt(
        "description",
        Ty::Str,
        Update::InPlace,
        "\"\"",
        "Description of the function.",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the function.",
    ),
];

static SCHEMA: Schema = Schema {
    kind: "lambda_function",
    doc: "A Lambda function from a local directory or zip, with asynchronous-invocation settings.",
    props: PROPS,
    attrs: &["arn", "name"],
    taggable: true,
};

/// Props changed with `UpdateFunctionConfiguration`.
const CONFIG_PROPS: &[&str] = &[
    "handler",
    "runtime",
    "timeout",
    "memory_size",
    "role",
    "layers",
    "environment",
    "secret_environment",
    "dead_letter_queue",
    "description",
];

// ---------------------------------------------------------------------------------------------
// Packaging

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

/// Base64 of the SHA-256 of the package: Lambda's `CodeSha256`.
pub fn code_sha256(bytes: &[u8]) -> String {
    BASE64_STANDARD.encode(Sha256::digest(bytes))
}

/// Write the package to a content-addressed file in the temp directory (atomically, so two
/// runs never see half a file) and return its path.
fn snapshot(bytes: &[u8]) -> Result<PathBuf, String> {
    let digest = Sha256::digest(bytes);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let path = std::env::temp_dir().join(format!("mskctl-lambda-{hex}.zip"));
    if std::fs::read(&path).is_ok_and(|existing| existing == bytes) {
        return Ok(path);
    }
    let tmp = path.with_extension(format!("zip.{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

// ---------------------------------------------------------------------------------------------
// Pure helpers for props

fn str_map(props: &Props, key: &str) -> BTreeMap<String, String> {
    match props.get(key) {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.as_str()
                        .map(String::from)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect(),
        _ => BTreeMap::new(),
    }
}

/// All environment variables as Lambda stores them: plain and secret together.
fn all_variables(props: &Props) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = str_map(props, "environment").into_iter().collect();
    vars.extend(str_map(props, "secret_environment"));
    vars
}

/// The value of [`SECRET_TAG`] for the desired secret keys (space-separated: commas are not
/// allowed in tag values by every AWS API), or `None` when there are none.
fn secret_tag_value(props: &Props) -> Option<String> {
    let keys: Vec<String> = str_map(props, "secret_environment").into_keys().collect();
    (!keys.is_empty()).then(|| keys.join(" "))
}

fn parse_secret_tag(value: &str) -> BTreeSet<String> {
    value
        .split([' ', ','])
        .filter(|k| !k.is_empty())
        .map(String::from)
        .collect()
}

/// The complete tag set to write: the planner's tags plus the secret-key marker.
fn desired_tags(props: &Props) -> BTreeMap<String, String> {
    let mut tags: BTreeMap<String, String> = tags_of(props).into_iter().collect();
    if let Some(v) = secret_tag_value(props) {
        tags.insert(SECRET_TAG.into(), v);
    }
    tags
}

/// Observed state from a function's configuration, its live tags and its event invoke config
/// (`None` where unset: Lambda then behaves as with the defaults).
fn observed(
    id: String,
    cfg: &FunctionConfiguration,
    tags: &HashMap<String, String>,
    retries: Option<i32>,
    event_age: Option<i32>,
) -> Observed {
    let secret_keys = tags
        .get(SECRET_TAG)
        .map(|v| parse_secret_tag(v))
        .unwrap_or_default();
    let vars = cfg
        .environment
        .as_ref()
        .and_then(|e| e.variables.clone())
        .unwrap_or_default();
    let (mut env, mut secret) = (serde_json::Map::new(), serde_json::Map::new());
    for (k, v) in vars {
        let target = if secret_keys.contains(&k) {
            &mut secret
        } else {
            &mut env
        };
        target.insert(k, Value::String(v));
    }
    let name = cfg.function_name.clone().unwrap_or_default();
    let arn = cfg.function_arn.clone().unwrap_or_default();
    let architectures: Vec<&str> = match cfg.architectures.as_deref() {
        Some(a) if !a.is_empty() => a.iter().map(Architecture::as_str).collect(),
        _ => vec!["x86_64"],
    };
    let layers: Vec<String> = cfg
        .layers
        .iter()
        .flatten()
        .filter_map(|l| l.arn.clone())
        .collect();
    let visible_tags = tags
        .iter()
        .filter(|(k, _)| k.as_str() != SECRET_TAG)
        .map(|(k, v)| (k.as_str(), v.as_str()));
    let mut props = Props::new();
    props.insert("name".into(), json!(name));
    props.insert(
        "code".into(),
        json!(cfg.code_sha256.clone().unwrap_or_default()),
    );
    props.insert(
        "handler".into(),
        json!(cfg.handler.clone().unwrap_or_default()),
    );
    props.insert(
        "runtime".into(),
        json!(
            cfg.runtime
                .as_ref()
                .map(Runtime::as_str)
                .unwrap_or_default()
        ),
    );
    props.insert("architectures".into(), json!(architectures));
    props.insert("timeout".into(), json!(cfg.timeout.unwrap_or(3)));
    props.insert("memory_size".into(), json!(cfg.memory_size.unwrap_or(128)));
    props.insert("role".into(), json!(cfg.role.clone().unwrap_or_default()));
    props.insert("layers".into(), json!(layers));
    props.insert("environment".into(), Value::Object(env));
    props.insert("secret_environment".into(), Value::Object(secret));
    props.insert(
        "maximum_retry_attempts".into(),
        json!(retries.map(i64::from).unwrap_or(DEFAULT_RETRIES)),
    );
    props.insert(
        "maximum_event_age".into(),
        json!(event_age.map(i64::from).unwrap_or(DEFAULT_EVENT_AGE)),
    );
    let dlq = cfg
        .dead_letter_config
        .as_ref()
        .and_then(|d| d.target_arn.clone())
        .unwrap_or_default();
    props.insert("dead_letter_queue".into(), json!(dlq));
    props.insert(
        "description".into(),
        json!(cfg.description.clone().unwrap_or_default()),
    );
    props.insert("tags".into(), tags_value(visible_tags));
    let attrs = BTreeMap::from([("arn".to_string(), arn), ("name".to_string(), name.clone())]);
    Observed {
        id,
        physical_id: name,
        props,
        attrs,
    }
}

fn is_not_found(err: &CallError) -> bool {
    err.code_is("ResourceNotFoundException")
}

/// The package `prepare` snapshotted.
fn code_bytes(d: &Desired) -> Result<Vec<u8>, CallError> {
    let path = s(&d.props, ZIP_KEY).ok_or_else(|| {
        CallError::state(
            "package code",
            "the function code was not packaged (prepare did not run)",
        )
    })?;
    std::fs::read(path)
        .map_err(|e| CallError::state("package code", format!("cannot read {path}: {e}")))
}

fn architectures(props: &Props) -> Vec<Architecture> {
    strs(props, "architectures")
        .iter()
        .map(|a| Architecture::from(a.as_str()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// AWS calls

impl LambdaFunction {
    /// One function's observed state: GetFunction (configuration and tags) and its event
    /// invoke config. `None` when the function does not exist.
    async fn read_one(
        cx: &Ctx,
        id: Option<&str>,
        name: &str,
    ) -> Result<Option<Observed>, CallError> {
        let out = match cx
            .aws
            .lambda
            .get_function()
            .function_name(name)
            .send()
            .await
            .call("GetFunction")
        {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(cfg) = out.configuration else {
            return Ok(None);
        };
        let tags = out.tags.unwrap_or_default();
        let Some(id) = id.map(String::from).or_else(|| tags.get(TAG_ID).cloned()) else {
            return Ok(None);
        };
        let invoke = cx
            .aws
            .lambda
            .get_function_event_invoke_config()
            .function_name(name)
            .send()
            .await;
        let (retries, age) = match invoke.call("GetFunctionEventInvokeConfig") {
            Ok(c) => (c.maximum_retry_attempts, c.maximum_event_age_in_seconds),
            Err(e) if is_not_found(&e) => (None, None),
            Err(e) => return Err(e),
        };
        Ok(Some(observed(id, &cfg, &tags, retries, age)))
    }

    async fn must_read(cx: &Ctx, id: &str, name: &str) -> Result<Observed, CallError> {
        Self::read_one(cx, Some(id), name)
            .await?
            .ok_or_else(|| CallError::state("GetFunction", format!("function {name} disappeared")))
    }

    /// Wait until the function is neither `Pending` nor mid-update. With `check_failed`, a
    /// `Failed` state or last update fails with Lambda's own reason.
    async fn wait_settled(
        cx: &Ctx,
        id: &str,
        name: &str,
        what: &str,
        check_failed: bool,
    ) -> Result<(), CallError> {
        wait_for(cx, id, what, Duration::from_secs(15 * 60), || async {
            let cfg = cx
                .aws
                .lambda
                .get_function_configuration()
                .function_name(name)
                .send()
                .await
                .call("GetFunctionConfiguration")?;
            if cfg.state == Some(State::Pending) {
                return Ok(Poll::Pending("Pending".into()));
            }
            if cfg.last_update_status == Some(LastUpdateStatus::InProgress) {
                return Ok(Poll::Pending("update InProgress".into()));
            }
            if check_failed && cfg.state == Some(State::Failed) {
                let reason = cfg.state_reason.unwrap_or_else(|| "no reason given".into());
                return Err(CallError::state(
                    "function state",
                    format!("function {name} is Failed: {reason}"),
                ));
            }
            if check_failed && cfg.last_update_status == Some(LastUpdateStatus::Failed) {
                let reason = cfg
                    .last_update_status_reason
                    .unwrap_or_else(|| "no reason given".into());
                return Err(CallError::state(
                    "function update",
                    format!("update of {name} failed: {reason}"),
                ));
            }
            Ok(Poll::Ready(()))
        })
        .await
    }

    async fn update_code(
        cx: &Ctx,
        name: &str,
        bytes: &[u8],
        arch: &[Architecture],
    ) -> Result<(), CallError> {
        cx.aws
            .lambda
            .update_function_code()
            .function_name(name)
            .zip_file(Blob::new(bytes.to_vec()))
            .set_architectures(Some(arch.to_vec()))
            .send()
            .await
            .call("UpdateFunctionCode")?;
        Ok(())
    }

    async fn update_configuration(cx: &Ctx, name: &str, props: &Props) -> Result<(), CallError> {
        cx.aws
            .lambda
            .update_function_configuration()
            .function_name(name)
            .handler(s(props, "handler").unwrap_or_default())
            .runtime(Runtime::from(s(props, "runtime").unwrap_or_default()))
            .set_timeout(i(props, "timeout").map(|v| v as i32))
            .set_memory_size(i(props, "memory_size").map(|v| v as i32))
            .role(s(props, "role").unwrap_or_default())
            .set_layers(Some(strs(props, "layers")))
            .environment(
                Environment::builder()
                    .set_variables(Some(all_variables(props)))
                    .build(),
            )
            // An empty target removes the dead-letter queue.
            .dead_letter_config(
                DeadLetterConfig::builder()
                    .target_arn(s(props, "dead_letter_queue").unwrap_or_default())
                    .build(),
            )
            .description(s(props, "description").unwrap_or_default())
            .send()
            .await
            .call("UpdateFunctionConfiguration")?;
        Ok(())
    }

    async fn put_invoke_config(cx: &Ctx, name: &str, props: &Props) -> Result<(), CallError> {
        cx.aws
            .lambda
            .put_function_event_invoke_config()
            .function_name(name)
            .maximum_retry_attempts(
                i(props, "maximum_retry_attempts").unwrap_or(DEFAULT_RETRIES) as i32,
            )
            .maximum_event_age_in_seconds(
                i(props, "maximum_event_age").unwrap_or(DEFAULT_EVENT_AGE) as i32,
            )
            .send()
            .await
            .call("PutFunctionEventInvokeConfig")?;
        Ok(())
    }

    /// Bring live tags to `want` (which includes the secret-key marker).
    async fn sync_tags(
        cx: &Ctx,
        arn: &str,
        want: &BTreeMap<String, String>,
        have: &BTreeMap<String, String>,
    ) -> Result<(), CallError> {
        let (set, removed) = tag_diff(want, have);
        if !set.is_empty() {
            let call = cx.aws.lambda.tag_resource().resource(arn);
            call.set_tags(Some(set.into_iter().collect()))
                .send()
                .await
                .call("TagResource")?;
        }
        if !removed.is_empty() {
            cx.aws
                .lambda
                .untag_resource()
                .resource(arn)
                .set_tag_keys(Some(removed))
                .send()
                .await
                .call("UntagResource")?;
        }
        Ok(())
    }

    /// Live tags including the secret marker, reconstructed from an observed state.
    fn live_tags(o: &Observed) -> BTreeMap<String, String> {
        let mut tags: BTreeMap<String, String> = tags_of(&o.props).into_iter().collect();
        if let Some(v) = secret_tag_value(&o.props) {
            tags.insert(SECRET_TAG.into(), v);
        }
        tags
    }

    async fn create_function(
        cx: &Ctx,
        d: &Desired,
        name: &str,
        bytes: &[u8],
    ) -> Result<(), CallError> {
        let props = &d.props;
        let mut call = cx
            .aws
            .lambda
            .create_function()
            .function_name(name)
            .package_type(PackageType::Zip)
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(bytes.to_vec()))
                    .build(),
            )
            .handler(s(props, "handler").unwrap_or_default())
            .runtime(Runtime::from(s(props, "runtime").unwrap_or_default()))
            .role(s(props, "role").unwrap_or_default())
            .set_architectures(Some(architectures(props)))
            .set_timeout(i(props, "timeout").map(|v| v as i32))
            .set_memory_size(i(props, "memory_size").map(|v| v as i32))
            .set_layers(Some(strs(props, "layers")))
            .environment(
                Environment::builder()
                    .set_variables(Some(all_variables(props)))
                    .build(),
            )
            .description(s(props, "description").unwrap_or_default());
        if let Some(dlq) = s(props, "dead_letter_queue").filter(|v| !v.is_empty()) {
            call = call.dead_letter_config(DeadLetterConfig::builder().target_arn(dlq).build());
        }
        for (k, v) in desired_tags(props) {
            call = call.tags(k, v);
        }
        call.send().await.call("CreateFunction")?;
        Ok(())
    }
}

#[async_trait]
impl Kind for LambdaFunction {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn check_references(
        &self,
        _props: &Props,
        referenced: &dyn Fn(&str) -> Option<Props>,
    ) -> Result<(), String> {
        super::role_must_trust(referenced, "role", "lambda.amazonaws.com")
    }

    fn check(&self, props: &Props) -> Result<(), String> {
        let env = str_map(props, "environment");
        let both: Vec<String> = str_map(props, "secret_environment")
            .into_keys()
            .filter(|k| env.contains_key(k))
            .collect();
        if !both.is_empty() {
            return Err(format!(
                "{} set in both `environment` and `secret_environment`; keep each variable in one of them",
                both.join(", ")
            ));
        }
        if secret_tag_value(props).is_some_and(|v| v.len() > 256) {
            return Err(
                "the names of `secret_environment` variables add up to more than 256 characters, \
                    which does not fit in the tag that marks them secret"
                    .into(),
            );
        }
        Ok(())
    }

    fn prepare(&self, d: &mut Desired) -> Result<(), String> {
        if d.props.contains_key(ZIP_KEY) {
            return Ok(()); // already packaged
        }
        let Some(code) = s(&d.props, "code") else {
            return Ok(());
        };
        let path = d.base_dir.join(code); // a no-op for the absolute paths the loader gives
        let bytes = if path.is_dir() {
            package_dir(&path)?
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
        {
            std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?
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
        let zip_path = if path.is_dir() {
            snapshot(&bytes)?
        } else {
            path.clone()
        };
        d.props.insert("code".into(), json!(code_sha256(&bytes)));
        d.props
            .insert(ZIP_KEY.into(), json!(zip_path.to_string_lossy()));
        d.props
            .insert("_code_source".into(), json!(path.to_string_lossy()));
        Ok(())
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut found = Vec::new();
        for (arn, tags) in tagged_resources(cx, "lambda:function").await? {
            if tags.get(TAG_STACK) != Some(&cx.stack) {
                continue;
            }
            if let Some(obs) = Self::read_one(cx, None, &arn).await? {
                found.push(obs);
            }
        }
        Ok(found)
    }

    async fn create(&self, cx: &Ctx, d: &Desired) -> Result<Observed, CallError> {
        let name = s(&d.props, "name").unwrap_or(&d.id).to_string();
        let bytes = code_bytes(d)?;
        let (name_ref, bytes_ref) = (name.as_str(), bytes.as_slice());
        // A role created moments ago may not be assumable yet; other errors fail at once.
        let created = retry_while(cx, &d.id, &ROLE_PROPAGATION, move || {
            Self::create_function(cx, d, name_ref, bytes_ref)
        })
        .await;
        if let Err(err) = created {
            // An apply interrupted after CreateFunction left a function this stack owns but
            // the tagging API may not list yet: adopt it instead of failing.
            if !(err.code_is("ResourceConflictException")
                && err.message.to_lowercase().contains("exist"))
            {
                return Err(err);
            }
            let existing = Self::read_one(cx, None, &name).await?;
            let owned = existing.filter(|o| {
                o.props
                    .get("tags")
                    .and_then(|t| t.get(TAG_STACK))
                    .and_then(Value::as_str)
                    == Some(cx.stack.as_str())
                    && o.id == d.id
            });
            let Some(existing) = owned else {
                return Err(CallError {
                    message: format!(
                        "{} (a function named {name} exists and does not belong to this stack resource)",
                        err.message
                    ),
                    ..err
                });
            };
            let all: Vec<String> = SCHEMA.props.iter().map(|p| p.name.to_string()).collect();
            return self.update(cx, d, &existing, &all).await;
        }
        Self::wait_settled(
            cx,
            &d.id,
            &name,
            "waiting for the function to become Active",
            true,
        )
        .await?;
        let retries = i(&d.props, "maximum_retry_attempts").unwrap_or(DEFAULT_RETRIES);
        let age = i(&d.props, "maximum_event_age").unwrap_or(DEFAULT_EVENT_AGE);
        if retries != DEFAULT_RETRIES || age != DEFAULT_EVENT_AGE {
            retry_while(cx, &d.id, &FUNCTION_BUSY, || {
                Self::put_invoke_config(cx, &name, &d.props)
            })
            .await?;
        }
        Self::must_read(cx, &d.id, &name).await
    }

    async fn update(
        &self,
        cx: &Ctx,
        d: &Desired,
        o: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let name = o.physical_id.as_str();
        let id = d.id.as_str();
        let has = |p: &str| changed.iter().any(|c| c == p);
        Self::wait_settled(
            cx,
            id,
            name,
            "waiting for a previous update of the function",
            false,
        )
        .await?;
        // Tags first: the secret marker must be in place before secret values are written, so
        // a failure half-way never makes a later plan print them.
        if has("tags") || has("secret_environment") {
            let arn = o.attrs.get("arn").map(String::as_str).unwrap_or(name);
            Self::sync_tags(cx, arn, &desired_tags(&d.props), &Self::live_tags(o)).await?;
        }
        if has("code") || has("architectures") {
            let bytes = code_bytes(d)?;
            let arch = architectures(&d.props);
            retry_while(cx, id, &FUNCTION_BUSY, || {
                Self::update_code(cx, name, &bytes, &arch)
            })
            .await?;
            Self::wait_settled(cx, id, name, "waiting for the code update", true).await?;
        }
        if CONFIG_PROPS.iter().any(|p| has(p)) {
            // A new role may not be assumable yet, and Lambda may still be busy.
            retry_while(cx, id, &ROLE_PROPAGATION, || {
                retry_while(cx, id, &FUNCTION_BUSY, || {
                    Self::update_configuration(cx, name, &d.props)
                })
            })
            .await?;
            Self::wait_settled(cx, id, name, "waiting for the configuration update", true).await?;
        }
        if has("maximum_retry_attempts") || has("maximum_event_age") {
            retry_while(cx, id, &FUNCTION_BUSY, || {
                Self::put_invoke_config(cx, name, &d.props)
            })
            .await?;
        }
        Self::must_read(cx, id, name).await
    }

    async fn delete(&self, cx: &Ctx, o: &Observed) -> Result<(), CallError> {
        let name = o.physical_id.as_str();
        match retry_while(cx, &o.id, &FUNCTION_BUSY, || async {
            cx.aws
                .lambda
                .delete_function()
                .function_name(name)
                .send()
                .await
                .call("DeleteFunction")
        })
        .await
        {
            Err(e) if !is_not_found(&e) => return Err(e),
            _ => {}
        }
        wait_for(
            cx,
            &o.id,
            "waiting for the function to be deleted",
            Duration::from_secs(300),
            || async {
                match cx
                    .aws
                    .lambda
                    .get_function()
                    .function_name(name)
                    .send()
                    .await
                    .call("GetFunction")
                {
                    Err(e) if is_not_found(&e) => Ok(Poll::Ready(())),
                    Err(e) => Err(e),
                    Ok(_) => Ok(Poll::Pending("deleting".into())),
                }
            },
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{EnvironmentResponse, Layer};
    use std::fs;
    use std::time::SystemTime;

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

    fn desired(dir: &Path, extra: serde_json::Value) -> Desired {
        let mut props: Props = SCHEMA
            .props
            .iter()
            .filter_map(|p| {
                p.default
                    .map(|d| (p.name.to_string(), serde_json::from_str(d).unwrap()))
            })
            .collect();
        props.insert("name".into(), json!("s-fn"));
        props.insert("code".into(), json!(dir.to_string_lossy()));
        for (k, v) in extra.as_object().unwrap() {
            props.insert(k.clone(), v.clone());
        }
        Desired {
            id: "fn".into(),
            props,
            base_dir: PathBuf::from("/"),
        }
    }

    #[test]
    fn prepare_sets_the_hash_and_a_snapshot() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "h.py", "x\n");
        let mut d = desired(a.path(), json!({}));
        LambdaFunction.prepare(&mut d).unwrap();
        let zip = fs::read(s(&d.props, ZIP_KEY).unwrap()).unwrap();
        assert_eq!(s(&d.props, "code").unwrap(), code_sha256(&zip));
        assert_eq!(zip, package_dir(a.path()).unwrap());
        // Running it again is harmless.
        let code = d.props["code"].clone();
        LambdaFunction.prepare(&mut d).unwrap();
        assert_eq!(d.props["code"], code);
    }

    #[test]
    fn prepare_uses_a_zip_as_is_and_rejects_other_files() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "f.zip", "not really a zip, but opaque bytes");
        let mut d = desired(&a.path().join("f.zip"), json!({}));
        LambdaFunction.prepare(&mut d).unwrap();
        assert_eq!(
            s(&d.props, "code").unwrap(),
            code_sha256(b"not really a zip, but opaque bytes")
        );
        write(a.path(), "f.py", "x");
        let mut d = desired(&a.path().join("f.py"), json!({}));
        assert!(
            LambdaFunction
                .prepare(&mut d)
                .unwrap_err()
                .contains("directory or a .zip")
        );
    }

    #[test]
    fn check_rejects_a_variable_in_both_maps() {
        let a = tempfile::tempdir().unwrap();
        write(a.path(), "h.py", "x\n");
        let d = desired(
            a.path(),
            json!({"environment": {"K": "1"}, "secret_environment": {"K": "2"}}),
        );
        assert!(
            LambdaFunction
                .check(&d.props)
                .unwrap_err()
                .contains("K set in both")
        );
    }

    fn config(vars: &[(&str, &str)]) -> FunctionConfiguration {
        FunctionConfiguration::builder()
            .function_name("s-fn")
            .function_arn("arn:aws:lambda:ap-northeast-1:123456789012:function:s-fn")
            .runtime(Runtime::Python311)
            .handler("msk_processor.lambda_handler")
            .role("arn:aws:iam::123456789012:role/mskctl/s/s-role")
            .code_sha256("abc=")
            .timeout(3)
            .memory_size(128)
            .description("")
            .architectures(Architecture::X8664)
            .layers(
                Layer::builder()
                    .arn("arn:aws:lambda:ap-northeast-1:1:layer:x:1")
                    .build(),
            )
            .environment(
                EnvironmentResponse::builder()
                    .set_variables(Some(
                        vars.iter()
                            .map(|(k, v)| (k.to_string(), v.to_string()))
                            .collect(),
                    ))
                    .build(),
            )
            .build()
    }

    #[test]
    fn secret_variables_are_split_by_the_marker_tag_and_the_tag_is_hidden() {
        let tags: HashMap<String, String> = [
            ("mskctl:stack", "s"),
            ("mskctl:id", "fn"),
            (SECRET_TAG, "API_KEY"),
            ("aws:cloudformation:stack-name", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let o = observed(
            "fn".into(),
            &config(&[("LOG_LEVEL", "INFO"), ("API_KEY", "hunter2")]),
            &tags,
            None,
            None,
        );
        assert_eq!(o.props["environment"], json!({"LOG_LEVEL": "INFO"}));
        assert_eq!(o.props["secret_environment"], json!({"API_KEY": "hunter2"}));
        assert_eq!(
            o.props["tags"],
            json!({"mskctl:stack": "s", "mskctl:id": "fn"})
        );
        assert_eq!(
            LambdaFunction::live_tags(&o)
                .get(SECRET_TAG)
                .map(String::as_str),
            Some("API_KEY")
        );
        assert_eq!(
            o.attrs["arn"],
            "arn:aws:lambda:ap-northeast-1:123456789012:function:s-fn"
        );
    }

    #[test]
    fn defaults_match_a_function_created_with_nothing_optional() {
        let o = observed("fn".into(), &config(&[]), &HashMap::new(), None, None);
        for p in SCHEMA.props {
            if let (Some(d), true) = (p.default, p.name != "name") {
                let d: Value = serde_json::from_str(d).unwrap();
                if p.name == "layers" {
                    continue; // the fixture has a layer
                }
                assert_eq!(o.props[p.name], d, "{}", p.name);
            }
        }
    }

    #[test]
    fn desired_tags_carry_the_secret_marker() {
        let mut props = Props::new();
        props.insert("tags".into(), json!({"mskctl:id": "fn"}));
        props.insert("secret_environment".into(), json!({"B": "1", "A": "2"}));
        let tags = desired_tags(&props);
        assert_eq!(tags[SECRET_TAG], "A B");
        assert_eq!(parse_secret_tag("A B"), parse_secret_tag("B,A"));
        props.insert("secret_environment".into(), json!({}));
        assert!(!desired_tags(&props).contains_key(SECRET_TAG));
    }
}
