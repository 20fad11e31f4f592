//! `pipe`: an EventBridge pipe from an MSK cluster topic to a Lambda function.
//!
//! A pipe polls Kafka with its own consumer group. AWS fixes the source, topic, starting
//! position and consumer group at creation (UpdatePipeSourceManagedStreamingKafkaParameters
//! only carries BatchSize, MaximumBatchingWindowInSeconds and Credentials), so changing those
//! replaces the pipe; target, role, description, batching, invocation type and desired state
//! change in place. Apply waits until the pipe is RUNNING (or STOPPED) and fails with the
//! pipe's StateReason otherwise, so a green apply means a working pipe.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_pipes::operation::describe_pipe::DescribePipeOutput;
use aws_sdk_pipes::types::{
    MskStartPosition, PipeSourceManagedStreamingKafkaParameters, PipeSourceParameters, PipeState,
    PipeTargetInvocationType, PipeTargetLambdaFunctionParameters, PipeTargetParameters,
    RequestedPipeState, UpdatePipeSourceManagedStreamingKafkaParameters,
    UpdatePipeSourceParameters,
};
use serde_json::{Value, json};

use crate::aws::{CallError, CallResult};
use crate::resources::{
    Ctx, Desired, Kind, Observed, Props, TAG_ID, TAG_STACK, s, tag_changes, tags_of, tags_value,
};
use crate::retry::{Poll, ROLE_PROPAGATION, retry_while, wait_for};
use crate::schema::{Prop, Schema, Ty, Update, dflt, opt, req};

pub struct Pipe;

static KAFKA: &[Prop] = &[
    req("topic", Ty::Str, Update::Replace, "Kafka topic to consume."),
    dflt(
        "starting_position",
        Ty::Enum(&["LATEST", "TRIM_HORIZON"]),
        Update::Replace,
        "\"LATEST\"",
        "Where a new consumer group starts reading: LATEST (new records only) or TRIM_HORIZON (oldest retained).",
    ),
    dflt(
        "batch_size",
        Ty::Int { min: 1, max: 10000 },
        Update::InPlace,
        "100",
        "Maximum records per invocation.",
    ),
    dflt(
        "maximum_batching_window",
        Ty::Int { min: 0, max: 300 },
        Update::InPlace,
        "0",
        "Seconds to gather records before invoking the target.",
    ),
    opt(
        "consumer_group_id",
        Ty::Str,
        Update::Replace,
        "Kafka consumer group. Pin it so a replaced pipe resumes from the committed offsets.",
    ),
];

static PROPS: &[Prop] = &[
    dflt(
        "name",
        Ty::Str,
        Update::Replace,
        "\"$name\"",
        "Pipe name (up to 64 characters).",
    ),
    dflt(
        "description",
        Ty::Str,
        Update::InPlace,
        "\"\"",
        "Free-text description.",
    ),
    req(
        "source",
        Ty::Ref {
            kinds: &["msk_serverless_cluster"],
            attr: "arn",
            literal: true,
        },
        Update::Replace,
        "The MSK cluster to read from (logical id or cluster ARN).",
    ),
    req(
        "target",
        Ty::Ref {
            kinds: &["lambda_function"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "The Lambda function to invoke (logical id or function ARN).",
    ),
    req(
        "role",
        Ty::Ref {
            kinds: &["iam_role"],
            attr: "arn",
            literal: true,
        },
        Update::InPlace,
        "Execution role the pipe assumes (pipes.amazonaws.com) with kafka-cluster and lambda:InvokeFunction permissions.",
    ),
    req(
        "kafka",
        Ty::Object(KAFKA),
        Update::InPlace,
        "Kafka source parameters.",
    ),
    dflt(
        "invocation_type",
        Ty::Enum(&["REQUEST_RESPONSE", "FIRE_AND_FORGET"]),
        Update::InPlace,
        "\"REQUEST_RESPONSE\"",
        "REQUEST_RESPONSE waits for the function (errors retry the batch); FIRE_AND_FORGET invokes asynchronously.",
    ),
    dflt(
        "desired_state",
        Ty::Enum(&["RUNNING", "STOPPED"]),
        Update::InPlace,
        "\"RUNNING\"",
        "Whether the pipe polls its source.",
    ),
    opt(
        "tags",
        Ty::StrMap,
        Update::InPlace,
        "Tags for the pipe (stack tags and ownership tags are added).",
    ),
];

static SCHEMA: Schema = Schema {
    kind: "pipe",
    doc: "An EventBridge pipe from an MSK topic to a Lambda function.",
    props: PROPS,
    attrs: &["arn", "name"],
    taggable: true,
};

/// Pipes with a Kafka source create network interfaces in the cluster's VPC: minutes on AWS.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[async_trait]
impl Kind for Pipe {
    fn schema(&self) -> &'static Schema {
        &SCHEMA
    }

    fn check_references(
        &self,
        _props: &Props,
        referenced: &dyn Fn(&str) -> Option<Props>,
    ) -> Result<(), String> {
        super::role_must_trust(referenced, "role", "pipes.amazonaws.com")
    }

    fn normalize(&self, prop: &str, value: &Value) -> Value {
        match prop {
            "kafka" => normalize_kafka(value),
            _ => value.clone(),
        }
    }

    fn replace_warning(&self, desired: &Props, observed: &Props) -> Option<String> {
        replace_warning(desired, observed)
    }

    fn settling(&self, observed: &Observed) -> Option<String> {
        let state = observed.attrs.get("state")?;
        matches!(
            state.as_str(),
            "CREATING" | "UPDATING" | "STARTING" | "STOPPING"
        )
        .then(|| state.clone())
    }

    async fn settle(&self, cx: &Ctx, observed: &Observed) -> Result<Observed, CallError> {
        let want = s(&observed.props, "desired_state").unwrap_or("RUNNING");
        let name = s(&observed.props, "name").unwrap_or_default();
        wait_settled(cx, &observed.id, "DescribePipe", name, want).await
    }

    async fn read(&self, cx: &Ctx) -> Result<Vec<Observed>, CallError> {
        let mut names = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = cx
                .aws
                .pipes
                .list_pipes()
                .set_next_token(token.clone())
                .send()
                .await
                .call("ListPipes")?;
            for p in page.pipes() {
                if p.current_state() != Some(&PipeState::Deleting) {
                    names.extend(p.name().map(String::from));
                }
            }
            token = page.next_token().map(String::from);
            if token.is_none() {
                break;
            }
        }
        let mut out = Vec::new();
        for name in names {
            let Some(pipe) = describe(cx, &name).await? else {
                continue;
            };
            let owned = pipe
                .tags()
                .and_then(|t| t.get(TAG_STACK))
                .is_some_and(|v| v == &cx.stack);
            if owned && pipe.current_state() != Some(&PipeState::Deleting) {
                out.push(observed(&pipe));
            }
        }
        Ok(out)
    }

    async fn create(&self, cx: &Ctx, desired: &Desired) -> Result<Observed, CallError> {
        let p = &desired.props;
        let name = s(p, "name").unwrap_or(&desired.id).to_string();
        let k = kafka(p);
        let source = PipeSourceManagedStreamingKafkaParameters::builder()
            .topic_name(&k.topic)
            .starting_position(MskStartPosition::from(k.starting_position.as_str()))
            .batch_size(k.batch_size)
            .maximum_batching_window_in_seconds(k.maximum_batching_window)
            .set_consumer_group_id(k.consumer_group_id.clone())
            .build()
            .map_err(|e| CallError::state("CreatePipe", e.to_string()))?;
        let tags: std::collections::HashMap<String, String> = tags_of(p).into_iter().collect();
        let created = retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
            let mut call = cx
                .aws
                .pipes
                .create_pipe()
                .name(&name)
                .source(s(p, "source").unwrap_or_default())
                .source_parameters(
                    PipeSourceParameters::builder()
                        .managed_streaming_kafka_parameters(source.clone())
                        .build(),
                )
                .target(s(p, "target").unwrap_or_default())
                .target_parameters(target_parameters(p))
                .role_arn(s(p, "role").unwrap_or_default())
                .desired_state(RequestedPipeState::from(desired_state(p)))
                .set_tags(Some(tags.clone()));
            if let Some(d) = s(p, "description").filter(|d| !d.is_empty()) {
                call = call.description(d);
            }
            async move { call.send().await.call("CreatePipe") }
        })
        .await;
        match created {
            Ok(_) => {}
            // A retried create whose first attempt went through: continue with our own pipe.
            Err(e) if e.code_is("ConflictException") => {
                let ours = describe(cx, &name).await?.is_some_and(|pipe| {
                    let tags = pipe.tags();
                    tags.and_then(|t| t.get(TAG_STACK))
                        .is_some_and(|v| v == &cx.stack)
                        && tags
                            .and_then(|t| t.get(TAG_ID))
                            .is_some_and(|v| v == &desired.id)
                });
                if !ours {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        wait_settled(cx, &desired.id, "CreatePipe", &name, desired_state(p)).await
    }

    async fn update(
        &self,
        cx: &Ctx,
        desired: &Desired,
        observed: &Observed,
        changed: &[String],
    ) -> Result<Observed, CallError> {
        let p = &desired.props;
        let name = observed
            .attrs
            .get("name")
            .cloned()
            .unwrap_or_else(|| observed.physical_id.clone());
        let arn = observed.attrs.get("arn").cloned().unwrap_or_default();
        let want = desired_state(p);
        let failed = s(&observed.props, "desired_state").is_some_and(|st| st.ends_with("_FAILED"));
        let config_changed = failed
            || changed.iter().any(|c| {
                matches!(
                    c.as_str(),
                    "description" | "target" | "role" | "kafka" | "invocation_type"
                )
            });
        let mut op = "UpdatePipe";
        if config_changed {
            let k = kafka(p);
            let source = UpdatePipeSourceManagedStreamingKafkaParameters::builder()
                .batch_size(k.batch_size)
                .maximum_batching_window_in_seconds(k.maximum_batching_window)
                .build();
            wait_not_transitional(cx, &desired.id, &name).await?;
            retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
                let call = cx
                    .aws
                    .pipes
                    .update_pipe()
                    .name(&name)
                    .description(s(p, "description").unwrap_or_default())
                    .source_parameters(
                        UpdatePipeSourceParameters::builder()
                            .managed_streaming_kafka_parameters(source.clone())
                            .build(),
                    )
                    .target(s(p, "target").unwrap_or_default())
                    .target_parameters(target_parameters(p))
                    .role_arn(s(p, "role").unwrap_or_default())
                    .desired_state(RequestedPipeState::from(want));
                async move { call.send().await.call("UpdatePipe") }
            })
            .await?;
        } else if changed.iter().any(|c| c == "desired_state") {
            wait_not_transitional(cx, &desired.id, &name).await?;
            op = if want == "STOPPED" {
                "StopPipe"
            } else {
                "StartPipe"
            };
            if want == "STOPPED" {
                cx.aws
                    .pipes
                    .stop_pipe()
                    .name(&name)
                    .send()
                    .await
                    .call("StopPipe")?;
            } else {
                cx.aws
                    .pipes
                    .start_pipe()
                    .name(&name)
                    .send()
                    .await
                    .call("StartPipe")?;
            }
        }
        if changed.iter().any(|c| c == "tags") {
            let (set, remove) = tag_changes(p, &observed.props);
            if !remove.is_empty() {
                cx.aws
                    .pipes
                    .untag_resource()
                    .resource_arn(&arn)
                    .set_tag_keys(Some(remove))
                    .send()
                    .await
                    .call("UntagResource")?;
            }
            if !set.is_empty() {
                cx.aws
                    .pipes
                    .tag_resource()
                    .resource_arn(&arn)
                    .set_tags(Some(set.into_iter().collect()))
                    .send()
                    .await
                    .call("TagResource")?;
            }
        }
        wait_settled(cx, &desired.id, op, &name, want).await
    }

    async fn delete(&self, cx: &Ctx, observed: &Observed) -> Result<(), CallError> {
        let name = observed
            .attrs
            .get("name")
            .cloned()
            .unwrap_or_else(|| observed.physical_id.clone());
        // DeletePipe is refused (ConflictException) while the pipe is creating/updating/starting.
        wait_for(
            cx,
            &observed.id,
            "waiting to delete the pipe",
            TIMEOUT,
            || {
                let name = name.clone();
                async move {
                    match cx
                        .aws
                        .pipes
                        .delete_pipe()
                        .name(&name)
                        .send()
                        .await
                        .call("DeletePipe")
                    {
                        Ok(_) => Ok(Poll::Ready(())),
                        Err(e) if e.code_is("NotFoundException") => Ok(Poll::Ready(())),
                        Err(e) if e.code_is("ConflictException") => {
                            Ok(Poll::Pending(format!("busy ({})", e.message)))
                        }
                        Err(e) => Err(e),
                    }
                }
            },
        )
        .await?;
        // The pipe's pollers must be gone before the function and role it uses are deleted.
        wait_for(
            cx,
            &observed.id,
            "waiting for the pipe to be deleted",
            TIMEOUT,
            || {
                let name = name.clone();
                async move {
                    match describe(cx, &name).await? {
                        None => Ok(Poll::Ready(())),
                        Some(pipe) => match pipe.current_state() {
                            Some(PipeState::DeleteFailed) => Err(CallError::state(
                                "DeletePipe",
                                format!(
                                    "pipe {name} is DELETE_FAILED: {}",
                                    pipe.state_reason().unwrap_or("no reason given")
                                ),
                            )),
                            other => Ok(Poll::Pending(
                                other
                                    .map(|s| s.as_str().to_string())
                                    .unwrap_or_else(|| "DELETING".into()),
                            )),
                        },
                    }
                }
            },
        )
        .await
    }
}

/// The `kafka` object with defaults applied.
#[derive(Debug, Clone, PartialEq)]
struct KafkaParams {
    topic: String,
    starting_position: String,
    batch_size: i32,
    maximum_batching_window: i32,
    consumer_group_id: Option<String>,
}

fn kafka(props: &Props) -> KafkaParams {
    let k = props.get("kafka").and_then(Value::as_object);
    let str_of = |key: &str| {
        k.and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(String::from)
    };
    let int_of = |key: &str, d: i64| {
        k.and_then(|m| m.get(key))
            .and_then(Value::as_i64)
            .unwrap_or(d) as i32
    };
    KafkaParams {
        topic: str_of("topic").unwrap_or_default(),
        starting_position: str_of("starting_position").unwrap_or_else(|| "LATEST".into()),
        batch_size: int_of("batch_size", 100),
        maximum_batching_window: int_of("maximum_batching_window", 0),
        consumer_group_id: str_of("consumer_group_id").filter(|g| !g.is_empty()),
    }
}

/// Defaults filled in, so `{topic: t}` equals what AWS reports for a pipe created from it.
/// `consumer_group_id` stays absent when unset: it is only compared when the file pins it.
fn normalize_kafka(value: &Value) -> Value {
    let mut props = Props::new();
    props.insert("kafka".into(), value.clone());
    let k = kafka(&props);
    let mut out = json!({
        "topic": k.topic,
        "starting_position": k.starting_position,
        "batch_size": k.batch_size,
        "maximum_batching_window": k.maximum_batching_window,
    });
    if let Some(g) = k.consumer_group_id {
        out["consumer_group_id"] = Value::String(g);
    }
    out
}

fn desired_state(props: &Props) -> &'static str {
    if s(props, "desired_state") == Some("STOPPED") {
        "STOPPED"
    } else {
        "RUNNING"
    }
}

fn target_parameters(props: &Props) -> PipeTargetParameters {
    let invocation = s(props, "invocation_type").unwrap_or("REQUEST_RESPONSE");
    PipeTargetParameters::builder()
        .lambda_function_parameters(
            PipeTargetLambdaFunctionParameters::builder()
                .invocation_type(PipeTargetInvocationType::from(invocation))
                .build(),
        )
        .build()
}

/// The plain-words consequence of replacing a pipe: a new pipe means a new consumer group
/// unless the group is pinned (and unchanged).
pub(crate) fn replace_warning(desired: &Props, observed: &Props) -> Option<String> {
    let want = kafka(desired);
    let have = kafka(observed).consumer_group_id;
    match &want.consumer_group_id {
        Some(g) if have.as_deref() == Some(g.as_str()) => None,
        Some(g) => Some(format!(
            "the pipe joins consumer group `{g}` instead of `{}`: the committed offsets of the old group are not used, \
             so it starts from {}",
            have.unwrap_or_else(|| "its current group".into()),
            start_words(&want.starting_position)
        )),
        None => Some(format!(
            "the new pipe starts a new Kafka consumer group and loses the committed offsets of the old one, \
             so it starts from {}. Pin `kafka.consumer_group_id` to keep the offsets across replacements",
            start_words(&want.starting_position)
        )),
    }
}

fn start_words(position: &str) -> &'static str {
    if position == "TRIM_HORIZON" {
        "the oldest retained record (records are processed again)"
    } else {
        "the latest record (records published while the pipe is swapped are skipped)"
    }
}

async fn describe(cx: &Ctx, name: &str) -> Result<Option<DescribePipeOutput>, CallError> {
    match cx
        .aws
        .pipes
        .describe_pipe()
        .name(name)
        .send()
        .await
        .call("DescribePipe")
    {
        Ok(out) => Ok(Some(out)),
        Err(e) if e.code_is("NotFoundException") => Ok(None),
        Err(e) => Err(e),
    }
}

/// What a pipe's CurrentState means for a wait towards `want` (RUNNING or STOPPED).
#[derive(Debug, PartialEq)]
enum Settled {
    Done,
    Pending,
    Failed,
}

fn settled(current: &str, want: &str) -> Settled {
    match current {
        c if c.ends_with("_FAILED") => Settled::Failed,
        c if c == want => Settled::Done,
        _ => Settled::Pending,
    }
}

async fn wait_settled(
    cx: &Ctx,
    id: &str,
    op: &str,
    name: &str,
    want: &str,
) -> Result<Observed, CallError> {
    let what = format!("waiting for the pipe to be {want}");
    wait_for(cx, id, &what, TIMEOUT, || async move {
        let pipe = describe(cx, name)
            .await?
            .ok_or_else(|| CallError::state("DescribePipe", format!("pipe {name} disappeared")))?;
        let current = pipe
            .current_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        match settled(&current, want) {
            Settled::Done => Ok(Poll::Ready(observed(&pipe))),
            Settled::Failed => Err(CallError::state(
                op,
                format!(
                    "pipe {name} is {current}: {}",
                    pipe.state_reason()
                        .unwrap_or("EventBridge Pipes gave no reason")
                ),
            )),
            Settled::Pending => Ok(Poll::Pending(current)),
        }
    })
    .await
}

async fn wait_not_transitional(cx: &Ctx, id: &str, name: &str) -> Result<(), CallError> {
    wait_for(
        cx,
        id,
        "waiting for the pipe to finish its current change",
        TIMEOUT,
        || async move {
            let pipe = describe(cx, name).await?.ok_or_else(|| {
                CallError::state("DescribePipe", format!("pipe {name} no longer exists"))
            })?;
            match pipe.current_state() {
                Some(
                    st @ (PipeState::Creating
                    | PipeState::Updating
                    | PipeState::Starting
                    | PipeState::Stopping
                    | PipeState::Deleting),
                ) => Ok(Poll::Pending(st.as_str().to_string())),
                _ => Ok(Poll::Ready(())),
            }
        },
    )
    .await
}

/// Observed state from DescribePipe. A pipe in a *_FAILED state reports that state as its
/// `desired_state`, so the plan shows an in-place update that re-sends the whole configuration.
fn observed(pipe: &DescribePipeOutput) -> Observed {
    let name = pipe.name().unwrap_or_default().to_string();
    let arn = pipe.arn().unwrap_or_default().to_string();
    let msk = pipe
        .source_parameters()
        .and_then(|sp| sp.managed_streaming_kafka_parameters());
    let mut kafka = json!({
        "topic": msk.map(|m| m.topic_name()).unwrap_or_default(),
        "starting_position": msk.and_then(|m| m.starting_position()).map(|p| p.as_str()).unwrap_or("LATEST"),
        "batch_size": msk.and_then(|m| m.batch_size()).unwrap_or(100),
        "maximum_batching_window": msk.and_then(|m| m.maximum_batching_window_in_seconds()).unwrap_or(0),
    });
    if let Some(g) = msk.and_then(|m| m.consumer_group_id()) {
        kafka["consumer_group_id"] = Value::String(g.to_string());
    }
    let invocation = pipe
        .target_parameters()
        .and_then(|t| t.lambda_function_parameters())
        .and_then(|l| l.invocation_type())
        .map(|i| i.as_str())
        .unwrap_or("REQUEST_RESPONSE");
    let current = pipe.current_state().map(|s| s.as_str()).unwrap_or_default();
    let state = if current.ends_with("_FAILED") {
        current.to_string()
    } else {
        pipe.desired_state()
            .map(|d| d.as_str().to_string())
            .unwrap_or_else(|| "RUNNING".into())
    };
    let tags = pipe.tags().cloned().unwrap_or_default();
    let mut props = Props::new();
    props.insert("name".into(), Value::String(name.clone()));
    props.insert(
        "description".into(),
        Value::String(pipe.description().unwrap_or_default().to_string()),
    );
    props.insert(
        "source".into(),
        Value::String(pipe.source().unwrap_or_default().to_string()),
    );
    props.insert(
        "target".into(),
        Value::String(pipe.target().unwrap_or_default().to_string()),
    );
    props.insert(
        "role".into(),
        Value::String(pipe.role_arn().unwrap_or_default().to_string()),
    );
    props.insert("kafka".into(), kafka);
    props.insert(
        "invocation_type".into(),
        Value::String(invocation.to_string()),
    );
    props.insert("desired_state".into(), Value::String(state));
    props.insert(
        "tags".into(),
        tags_value(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
    );
    Observed {
        id: tags.get(TAG_ID).cloned().unwrap_or_default(),
        physical_id: name.clone(),
        props,
        attrs: BTreeMap::from([
            ("arn".to_string(), arn),
            ("name".to_string(), name),
            // Not referenceable (not in the schema): tells the engine whether the pipe settles.
            ("state".to_string(), current.to_string()),
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(v: Value) -> Props {
        v.as_object().unwrap().clone().into_iter().collect()
    }

    #[test]
    fn kafka_defaults_equal_what_aws_reports() {
        let k = Pipe;
        let desired = k.normalize("kafka", &json!({"topic": "t"}));
        let live = k.normalize(
            "kafka",
            &json!({"topic": "t", "starting_position": "LATEST", "batch_size": 100, "maximum_batching_window": 0}),
        );
        assert_eq!(desired, live);
        assert!(desired.get("consumer_group_id").is_none());
    }

    #[test]
    fn kafka_batch_size_difference_is_seen() {
        let k = Pipe;
        assert_ne!(
            k.normalize("kafka", &json!({"topic": "t", "batch_size": 10})),
            k.normalize("kafka", &json!({"topic": "t"}))
        );
    }

    #[test]
    fn replace_without_pinned_group_warns_about_offsets() {
        let d = props(json!({"kafka": {"topic": "t"}}));
        let o = props(json!({"kafka": {"topic": "old"}}));
        let w = replace_warning(&d, &o).unwrap();
        assert!(w.contains("new Kafka consumer group"), "{w}");
        assert!(w.contains("skipped"), "{w}");
        assert!(w.contains("kafka.consumer_group_id"), "{w}");
    }

    #[test]
    fn replace_with_trim_horizon_mentions_reprocessing() {
        let d = props(json!({"kafka": {"topic": "t", "starting_position": "TRIM_HORIZON"}}));
        let w = replace_warning(&d, &Props::new()).unwrap();
        assert!(w.contains("processed again"), "{w}");
    }

    #[test]
    fn replace_with_same_pinned_group_is_silent() {
        let d = props(json!({"kafka": {"topic": "t", "consumer_group_id": "g"}}));
        let o = props(json!({"kafka": {"topic": "old", "consumer_group_id": "g"}}));
        assert_eq!(replace_warning(&d, &o), None);
        let o2 = props(json!({"kafka": {"topic": "old", "consumer_group_id": "h"}}));
        assert!(
            replace_warning(&d, &o2)
                .unwrap()
                .contains("`g` instead of `h`")
        );
    }

    #[test]
    fn settled_states() {
        assert_eq!(settled("RUNNING", "RUNNING"), Settled::Done);
        assert_eq!(settled("STOPPED", "STOPPED"), Settled::Done);
        assert_eq!(settled("CREATING", "RUNNING"), Settled::Pending);
        assert_eq!(settled("RUNNING", "STOPPED"), Settled::Pending);
        assert_eq!(settled("CREATE_FAILED", "RUNNING"), Settled::Failed);
        assert_eq!(settled("START_FAILED", "RUNNING"), Settled::Failed);
        assert_eq!(settled("UPDATE_FAILED", "STOPPED"), Settled::Failed);
    }

    #[test]
    fn failed_pipe_reports_its_state_as_desired_state() {
        let out = DescribePipeOutput::builder()
            .name("s-p")
            .arn("arn:aws:pipes:r:1:pipe/s-p")
            .current_state(PipeState::StartFailed)
            .desired_state(aws_sdk_pipes::types::RequestedPipeStateDescribeResponse::Running)
            .tags(TAG_ID, "p")
            .build();
        let o = observed(&out);
        assert_eq!(o.id, "p");
        assert_eq!(o.props["desired_state"], "START_FAILED");
        assert_eq!(o.props["invocation_type"], "REQUEST_RESPONSE");
        assert_eq!(o.attrs["arn"], "arn:aws:pipes:r:1:pipe/s-p");
    }
}
