//! `lambda_function` on AWS: CreateFunction with the zip inline (adopting its own function
//! after a conflict), UpdateFunctionCode and UpdateFunctionConfiguration (each followed by
//! GetFunctionConfiguration until the update settles), PutFunctionEventInvokeConfig for the
//! asynchronous-invocation settings, TagResource/UntagResource (the secret-key marker first),
//! PutFunctionConcurrency/DeleteFunctionConcurrency for the reserved concurrency,
//! GetFunction (configuration with `TracingConfig`, tags, and `Concurrency`) and
//! GetFunctionEventInvokeConfig to read, DeleteFunction. The function's own
//! resources are found through the shared tagging lookup.
//!
//! A function in a VPC (`vpc`) is `Pending` after CreateFunction, and its update `InProgress`
//! after a VpcConfig change, while Lambda attaches its network interfaces (minutes on AWS):
//! apply waits for `Active` and `Successful` with progress. Leaving the VPC sends empty lists.
//! The interfaces outlive the function's VPC configuration for up to ~40 minutes on AWS; the
//! subnet and security group kinds wait them out on delete (`DependencyViolation`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Architecture, DeadLetterConfig, Environment, FunctionCode, FunctionConfiguration,
    LastUpdateStatus, PackageType, Runtime, State, TracingConfig, TracingMode, VpcConfig,
};
use serde_json::{Value, json};

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::{KindApi, tagged_resources};
use crate::aws::retry::{
    FUNCTION_BUSY, LAMBDA_FUNCTION_PACE, Poll, ROLE_PROPAGATION, retry_while, wait_for,
};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::lambda_function::{
    self as model, SECRET_TAG, desired_tags, parse_secret_tag, secret_tag_value, str_map, vpc_ids,
};
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, i, s, strs, tag_diff, tags_of,
    tags_value,
};
use crate::package::code_sha256;

pub struct LambdaFunction;

/// Lambda's asynchronous-invocation behaviour when no event invoke config exists.
const DEFAULT_RETRIES: i64 = 2;
const DEFAULT_EVENT_AGE: i64 = 21_600;

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
    "vpc",
    "tracing",
];

// ---------------------------------------------------------------------------------------------
// Helpers for props

/// All environment variables as Lambda stores them: plain and secret together.
fn all_variables(props: &Props) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = str_map(props, "environment").into_iter().collect();
    vars.extend(str_map(props, "secret_environment"));
    vars
}

/// What GetFunction says beside the configuration and tags: the reserved concurrency
/// (`Concurrency`, absent without a reservation) and the event invoke config (`None` where
/// unset: Lambda then behaves as with the defaults).
#[derive(Default)]
struct Extras {
    reserved: Option<i32>,
    retries: Option<i32>,
    event_age: Option<i32>,
}

/// Observed state from a function's configuration, its live tags and [`Extras`].
fn observed(
    id: String,
    cfg: &FunctionConfiguration,
    tags: &HashMap<String, String>,
    extras: Extras,
) -> Observed {
    let Extras {
        reserved,
        retries,
        event_age,
    } = extras;
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
    props.insert("vpc".into(), observed_vpc(cfg));
    let tracing = cfg
        .tracing_config
        .as_ref()
        .and_then(|t| t.mode.as_ref())
        .map(TracingMode::as_str)
        .unwrap_or("PassThrough");
    props.insert("tracing".into(), json!(tracing));
    props.insert(
        "reserved_concurrency".into(),
        reserved.map_or(Value::Null, |n| json!(n)),
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

/// The `VpcConfig` to send: the desired subnets and groups, empty lists to leave a VPC.
fn vpc_config(props: &Props) -> VpcConfig {
    let (subnets, groups) = vpc_ids(props);
    VpcConfig::builder()
        .set_subnet_ids(Some(subnets))
        .set_security_group_ids(Some(groups))
        .build()
}

/// The `vpc` prop of a live function (empty lists when it is not in a VPC).
fn observed_vpc(cfg: &FunctionConfiguration) -> Value {
    let vpc = cfg.vpc_config.as_ref();
    let mut subnets: Vec<String> = vpc.map(|v| v.subnet_ids().to_vec()).unwrap_or_default();
    let mut groups: Vec<String> = vpc
        .map(|v| v.security_group_ids().to_vec())
        .unwrap_or_default();
    subnets.sort();
    groups.sort();
    json!({"subnets": subnets, "security_groups": groups})
}

/// What the wait after a create or VPC change says it waits for.
fn attach_wait(props: &Props, what: &str) -> String {
    let (subnets, _) = vpc_ids(props);
    if subnets.is_empty() {
        what.to_string()
    } else {
        format!(
            "{what} (Lambda attaches its network interfaces in {} subnet(s); often minutes on AWS)",
            subnets.len()
        )
    }
}

fn is_not_found(err: &CallError) -> bool {
    err.code_is("ResourceNotFoundException")
}

/// The package planned for `code`: the zip the engine passes as the `code` artifact, refused
/// when it no longer has the digest the plan was made with (so apply deploys what was planned).
fn code_bytes(d: &Desired) -> Result<Vec<u8>, CallError> {
    let path = d.artifacts.get("code").ok_or_else(|| {
        CallError::state(
            "package code",
            "the function code was not packaged (no `code` artifact was given)",
        )
    })?;
    let bytes = std::fs::read(path).map_err(|e| {
        CallError::state(
            "package code",
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    if s(&d.props, "code") != Some(code_sha256(&bytes).as_str()) {
        return Err(CallError::state(
            "package code",
            format!(
                "{}: the package changed since it was planned; re-run plan",
                path.display()
            ),
        ));
    }
    Ok(bytes)
}

/// The `TracingConfig` to send (Lambda's default, `PassThrough`, unless `Active`).
fn tracing_config(props: &Props) -> TracingConfig {
    let mode = s(props, "tracing").unwrap_or("PassThrough");
    TracingConfig::builder()
        .mode(TracingMode::from(mode))
        .build()
}

/// Lambda's refusal of a reservation that leaves fewer than 100 executions of the account's
/// limit unreserved, with what to do about it.
fn explain_unreserved_minimum(err: CallError) -> CallError {
    if !err.message.contains("UnreservedConcurrentExecution") {
        return err;
    }
    CallError {
        message: format!(
            "{} (AWS keeps 100 of the account's concurrency limit unreserved: the reservations \
             of all functions in the account and region must stay at or below the limit minus \
             100; lower `reserved_concurrency` or ask AWS for a higher concurrency limit)",
            err.message
        ),
        ..err
    }
}

/// The desired reserved concurrency (`None`: no reservation).
fn reserved_concurrency(props: &Props) -> Option<i32> {
    i(props, "reserved_concurrency").and_then(|n| i32::try_from(n).ok())
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
    /// invoke config. `None` when the function does not exist. `likely_exists`: both reads at
    /// once (one round); otherwise the invoke config only once GetFunction found this stack's
    /// function (no second call for a function not created yet).
    async fn read_one(
        cx: &Ctx,
        id: Option<&str>,
        name: &str,
        likely_exists: bool,
    ) -> Result<Option<Observed>, CallError> {
        let function = async {
            cx.aws
                .lambda
                .get_function()
                .function_name(name)
                .send()
                .await
                .call("GetFunction")
        };
        let invoke = || async {
            cx.aws
                .lambda
                .get_function_event_invoke_config()
                .function_name(name)
                .send()
                .await
                .call("GetFunctionEventInvokeConfig")
        };
        let (function, early_invoke) = if likely_exists {
            let (function, invoke) = tokio::join!(function, invoke());
            (function, Some(invoke))
        } else {
            (function.await, None)
        };
        let out = match function {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let reserved = out
            .concurrency
            .as_ref()
            .and_then(|c| c.reserved_concurrent_executions);
        let Some(cfg) = out.configuration else {
            return Ok(None);
        };
        let tags = out.tags.unwrap_or_default();
        let Some(id) = id.map(String::from).or_else(|| tags.get(TAG_ID).cloned()) else {
            return Ok(None);
        };
        let invoke = match early_invoke {
            Some(invoke) => invoke,
            None => invoke().await,
        };
        let (retries, age) = match invoke {
            Ok(c) => (c.maximum_retry_attempts, c.maximum_event_age_in_seconds),
            Err(e) if is_not_found(&e) => (None, None),
            Err(e) => return Err(e),
        };
        let extras = Extras {
            reserved,
            retries,
            event_age: age,
        };
        Ok(Some(observed(id, &cfg, &tags, extras)))
    }

    async fn must_read(cx: &Ctx, id: &str, name: &str) -> Result<Observed, CallError> {
        Self::read_one(cx, Some(id), name, true)
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
        wait_for(
            cx,
            id,
            what,
            LAMBDA_FUNCTION_PACE,
            Duration::from_secs(15 * 60),
            || async {
                let cfg = cx
                    .aws
                    .lambda
                    .get_function_configuration()
                    .function_name(name)
                    .send()
                    .await
                    .call("GetFunctionConfiguration")?;
                if cfg.state == Some(State::Pending) {
                    return Ok(Poll::Pending(with_reason(
                        "Pending",
                        cfg.state_reason.as_deref(),
                    )));
                }
                if cfg.last_update_status == Some(LastUpdateStatus::InProgress) {
                    return Ok(Poll::Pending(with_reason(
                        "update InProgress",
                        cfg.last_update_status_reason.as_deref(),
                    )));
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
            },
        )
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
            .vpc_config(vpc_config(props))
            .tracing_config(tracing_config(props))
            .send()
            .await
            .call("UpdateFunctionConfiguration")?;
        Ok(())
    }

    /// Reserve the desired concurrency, or delete the reservation when none is desired.
    async fn sync_concurrency(cx: &Ctx, name: &str, props: &Props) -> Result<(), CallError> {
        match reserved_concurrency(props) {
            Some(n) => {
                cx.aws
                    .lambda
                    .put_function_concurrency()
                    .function_name(name)
                    .reserved_concurrent_executions(n)
                    .send()
                    .await
                    .call("PutFunctionConcurrency")
                    .map_err(explain_unreserved_minimum)?;
            }
            None => {
                cx.aws
                    .lambda
                    .delete_function_concurrency()
                    .function_name(name)
                    .send()
                    .await
                    .call("DeleteFunctionConcurrency")?;
            }
        }
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

    /// The asynchronous-invocation settings (`invoke_config`) and the reserved concurrency
    /// (`reserve`): separate Lambda resources of the function, set at once, each call to its
    /// end; the first error (invoke config first) is returned.
    async fn put_settings(
        cx: &Ctx,
        id: &str,
        name: &str,
        props: &Props,
        invoke_config: bool,
        reserve: bool,
    ) -> Result<(), CallError> {
        let invoke = async {
            if invoke_config {
                retry_while(cx, id, &FUNCTION_BUSY, || {
                    Self::put_invoke_config(cx, name, props)
                })
                .await?;
            }
            Ok(())
        };
        let concurrency = async {
            if reserve {
                retry_while(cx, id, &FUNCTION_BUSY, || {
                    Self::sync_concurrency(cx, name, props)
                })
                .await?;
            }
            Ok(())
        };
        let (invoke, concurrency) = tokio::join!(invoke, concurrency);
        invoke.and(concurrency)
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
        if !vpc_ids(props).0.is_empty() {
            call = call.vpc_config(vpc_config(props));
        }
        call = call.tracing_config(tracing_config(props));
        for (k, v) in desired_tags(props) {
            call = call.tags(k, v);
        }
        call.send().await.call("CreateFunction")?;
        Ok(())
    }
}

#[async_trait]
impl KindApi for LambdaFunction {
    fn model(&self) -> &'static dyn KindModel {
        &model::LambdaFunction
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        // The tagging index lags behind creates and deletes: look up the names the stack file
        // gives too, and trust only GetFunction (a listed function it says is gone is gone;
        // ownership is checked on the tags it returns).
        // A name the index lists most likely exists: its two reads go at once.
        let mut names: BTreeMap<String, bool> = cx
            .names_of(model::SCHEMA.kind)
            .iter()
            .map(|name| (name.clone(), false))
            .collect();
        for (arn, _) in tagged_resources(cx, "lambda:function").await? {
            // arn:aws:lambda:REGION:ACCOUNT:function:NAME
            if let Some(name) = arn.split(':').nth(6) {
                names.insert(name.to_string(), true);
            }
        }
        // All functions at once (a bounded window), not one after another.
        let reads = names
            .iter()
            .map(|(name, indexed)| Self::read_one(cx, None, name, *indexed));
        let mut found = Vec::new();
        for obs in try_join_windowed(reads, READ_WINDOW)
            .await?
            .into_iter()
            .flatten()
        {
            let stack = obs
                .props
                .get("tags")
                .and_then(|t| t.get(TAG_STACK))
                .and_then(Value::as_str);
            if stack == Some(cx.stack.as_str()) {
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
            let existing = Self::read_one(cx, None, &name, true).await?;
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
            let all: Vec<String> = model::SCHEMA
                .props
                .iter()
                .map(|p| p.name.to_string())
                .collect();
            return self.update(cx, d, &existing, &all).await;
        }
        let what = attach_wait(&d.props, "waiting for the function to become Active");
        Self::wait_settled(cx, &d.id, &name, &what, true).await?;
        let retries = i(&d.props, "maximum_retry_attempts").unwrap_or(DEFAULT_RETRIES);
        let age = i(&d.props, "maximum_event_age").unwrap_or(DEFAULT_EVENT_AGE);
        let invoke_config = retries != DEFAULT_RETRIES || age != DEFAULT_EVENT_AGE;
        let reserve = reserved_concurrency(&d.props).is_some();
        Self::put_settings(cx, &d.id, &name, &d.props, invoke_config, reserve).await?;
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
            let what = if has("vpc") {
                attach_wait(&d.props, "waiting for the VPC configuration update")
            } else {
                "waiting for the configuration update".to_string()
            };
            Self::wait_settled(cx, id, name, &what, true).await?;
        }
        let invoke_config = has("maximum_retry_attempts") || has("maximum_event_age");
        let reserve = has("reserved_concurrency");
        Self::put_settings(cx, id, name, &d.props, invoke_config, reserve).await?;
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
            LAMBDA_FUNCTION_PACE,
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

/// A state with Lambda's reason for it, when it gives one.
fn with_reason(state: &str, reason: Option<&str>) -> String {
    match reason.filter(|r| !r.is_empty()) {
        Some(r) => format!("{state} ({r})"),
        None => state.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_lambda::types::{
        EnvironmentResponse, Layer, TracingConfigResponse, VpcConfigResponse,
    };
    use std::path::Path;

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
            Extras::default(),
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
        let o = observed(
            "fn".into(),
            &config(&[]),
            &HashMap::new(),
            Extras::default(),
        );
        for p in model::SCHEMA.props {
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
    fn vpc_is_read_as_sorted_lists_and_sent_as_given() {
        let mut cfg = config(&[]);
        assert_eq!(
            observed_vpc(&cfg),
            json!({"subnets": [], "security_groups": []})
        );
        cfg.vpc_config = Some(
            VpcConfigResponse::builder()
                .subnet_ids("subnet-b")
                .subnet_ids("subnet-a")
                .security_group_ids("sg-1")
                .vpc_id("vpc-1")
                .build(),
        );
        let o = observed("fn".into(), &cfg, &HashMap::new(), Extras::default());
        assert_eq!(
            o.props["vpc"],
            json!({"subnets": ["subnet-a", "subnet-b"], "security_groups": ["sg-1"]})
        );
        let sent = vpc_config(&o.props);
        assert_eq!(sent.subnet_ids(), ["subnet-a", "subnet-b"]);
        assert_eq!(sent.security_group_ids(), ["sg-1"]);
        // Leaving the VPC: empty lists, not an absent config (which would change nothing).
        let out = vpc_config(&Props::new());
        assert_eq!(
            (out.subnet_ids.as_deref(), out.security_group_ids.as_deref()),
            (Some(&[][..]), Some(&[][..]))
        );
        assert!(attach_wait(&o.props, "waiting").contains("2 subnet(s)"));
        assert_eq!(attach_wait(&Props::new(), "waiting"), "waiting");
    }

    #[test]
    fn tracing_and_reserved_concurrency_are_read_back_and_sent() {
        let mut cfg = config(&[]);
        cfg.tracing_config = Some(
            TracingConfigResponse::builder()
                .mode(TracingMode::Active)
                .build(),
        );
        let extras = Extras {
            reserved: Some(0),
            ..Extras::default()
        };
        let o = observed("fn".into(), &cfg, &HashMap::new(), extras);
        assert_eq!(o.props["tracing"], json!("Active"));
        // Zero is a reservation (every invocation throttled), not "none".
        assert_eq!(o.props["reserved_concurrency"], json!(0));
        assert_eq!(reserved_concurrency(&o.props), Some(0));
        assert_eq!(tracing_config(&o.props).mode, Some(TracingMode::Active));
        let none = observed(
            "fn".into(),
            &config(&[]),
            &HashMap::new(),
            Extras::default(),
        );
        assert_eq!(none.props["reserved_concurrency"], Value::Null);
        assert_eq!(reserved_concurrency(&none.props), None);
        assert_eq!(
            tracing_config(&none.props).mode,
            Some(TracingMode::PassThrough)
        );
    }

    #[test]
    fn a_reservation_over_the_account_limit_says_what_to_do() {
        let err = CallError::new(
            "PutFunctionConcurrency",
            Some("InvalidParameterValueException"),
            "Specified ReservedConcurrentExecutions for function decreases account's \
             UnreservedConcurrentExecution below its minimum value of [100].",
        );
        let explained = explain_unreserved_minimum(err);
        assert!(explained.message.contains("lower `reserved_concurrency`"));
        assert!(explained.code_is("InvalidParameterValueException"));
        let other = CallError::new("PutFunctionConcurrency", Some("Throttling"), "slow down");
        assert_eq!(explain_unreserved_minimum(other).message, "slow down");
    }

    #[test]
    fn missing_eni_permissions_right_after_a_policy_change_are_retried_as_iam_propagation() {
        let err = CallError::new(
            "CreateFunction",
            Some("InvalidParameterValueException"),
            "The provided execution role does not have permissions to call CreateNetworkInterface on EC2",
        );
        assert!(ROLE_PROPAGATION.matches(&err));
    }

    /// A desired function whose `code` is the digest of `planned` and whose `code` artifact is
    /// `zip` (when given).
    fn desired(planned: &[u8], zip: Option<&Path>) -> Desired {
        let props: Props = [("code".to_string(), json!(code_sha256(planned)))].into();
        Desired {
            id: "fn".into(),
            props,
            artifacts: zip
                .map(|z| ("code".to_string(), z.to_path_buf()))
                .into_iter()
                .collect(),
        }
    }

    #[test]
    fn code_bytes_are_the_planned_package() {
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("p.zip");
        std::fs::write(&zip, b"package").unwrap();
        assert_eq!(
            code_bytes(&desired(b"package", Some(&zip))).unwrap(),
            b"package"
        );
    }

    #[test]
    fn code_bytes_refuse_a_missing_or_changed_package() {
        let err = code_bytes(&desired(b"package", None)).unwrap_err();
        assert!(err.message.contains("not packaged"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let zip = dir.path().join("p.zip");
        let err = code_bytes(&desired(b"package", Some(&zip))).unwrap_err();
        assert!(err.message.contains("cannot read"), "{err}");
        std::fs::write(&zip, b"edited since plan").unwrap();
        let err = code_bytes(&desired(b"package", Some(&zip))).unwrap_err();
        assert!(
            err.message
                .contains("the package changed since it was planned; re-run plan"),
            "{err}"
        );
    }
}
