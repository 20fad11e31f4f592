//! `pipe` on AWS: CreatePipe, UpdatePipe (UpdatePipeSourceManagedStreamingKafkaParameters
//! only carries BatchSize, MaximumBatchingWindowInSeconds and Credentials, hence the
//! replacements), StartPipe/StopPipe, DeletePipe and TagResource/UntagResource; the stack's
//! pipes are found with ListPipes and DescribePipe (tags). Apply waits until the pipe is
//! RUNNING (or STOPPED) and fails with the pipe's StateReason otherwise, so a green apply
//! means a working pipe. Pipes checks the role after CreatePipe and UpdatePipe answered: a
//! pipe that fails for a role changed moments before is created again (CREATE_FAILED) or
//! updated again (UPDATE_FAILED), see `retry.rs`.

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

use crate::aws::concurrent::{READ_WINDOW, try_join_windowed};
use crate::aws::kinds::KindApi;
use crate::aws::retry::{
    PIPE_CREATE_ATTEMPTS, PIPE_PACE, PIPE_ROLE_PROPAGATION, PIPE_UPDATE_ATTEMPTS,
    PIPE_UPDATE_ROLE_PROPAGATION, Poll, ROLE_PROPAGATION, recreate_while, resend_while,
    retry_while, wait_for,
};
use crate::aws::{CallError, CallResult, Ctx};
use crate::model::kinds::pipe as model;
use crate::model::kinds::pipe::{Settled, desired_state, kafka, settled};
use crate::model::{
    Desired, KindModel, Observed, Props, TAG_ID, TAG_STACK, s, tag_changes, tags_of, tags_value,
};

pub struct Pipe;

/// Pipes with a Kafka source create network interfaces in the cluster's VPC: minutes on AWS.
const TIMEOUT: Duration = Duration::from_secs(30 * 60);

#[async_trait]
impl KindApi for Pipe {
    fn model(&self) -> &'static dyn KindModel {
        &model::Pipe
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
        let described =
            try_join_windowed(names.iter().map(|name| describe(cx, name)), READ_WINDOW).await?;
        let mut out = Vec::new();
        for pipe in described.into_iter().flatten() {
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
        // Pipes checks the role only after CreatePipe answered: a role or policy written
        // moments ago leaves the pipe CREATE_FAILED, and only a new pipe checks again.
        let want = desired_state(p);
        recreate_while(
            cx,
            &desired.id,
            &PIPE_ROLE_PROPAGATION,
            PIPE_CREATE_ATTEMPTS,
            || async {
                match create_pipe(cx, desired, &name, &source, &tags).await {
                    // Its reply was lost: a pipe of that name is the one it made (the wait
                    // below then sees it fail or run, as after any create); none, and the
                    // provider looks again before sending it anew.
                    Err(e) if e.reply_lost() && describe(cx, &name).await?.is_some() => {}
                    other => other?,
                }
                match wait_outcome(cx, &desired.id, &name, want).await? {
                    Ok(observed) => Ok(observed),
                    Err((state, reason)) => Err(CallError {
                        op: "CreatePipe".into(),
                        code: Some(state),
                        message: reason,
                    }),
                }
            },
            || delete_and_wait(cx, &desired.id, &name),
        )
        .await
        .map_err(|e| match e.code.as_deref() {
            Some(state) if state.ends_with("_FAILED") => {
                failed_error(&e.op, &name, state, &e.message)
            }
            _ => e,
        })
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
            // Pipes checks the role only after UpdatePipe answered: a role or policy written
            // moments ago (a new statement, a new role) leaves the pipe UPDATE_FAILED, and the
            // same update sent again checks it again. A pipe read as UPDATE_FAILED comes here
            // too (`failed`), so a later run repairs it.
            resend_while(
                cx,
                &desired.id,
                &PIPE_UPDATE_ROLE_PROPAGATION,
                PIPE_UPDATE_ATTEMPTS,
                || async {
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
                    match wait_outcome(cx, &desired.id, &name, want).await? {
                        Ok(observed) => Ok(observed),
                        Err((state, reason)) => Err(CallError {
                            op: "UpdatePipe".into(),
                            code: Some(state),
                            message: reason,
                        }),
                    }
                },
            )
            .await
            .map_err(|e| match e.code.as_deref() {
                Some(state) if state.ends_with("_FAILED") => {
                    failed_error(&e.op, &name, state, &e.message)
                }
                _ => e,
            })?;
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
        delete_and_wait(cx, &observed.id, &name).await
    }
}

/// One CreatePipe (retried while the role is not yet assumable). A create that went through
/// although its answer was an error leaves our own pipe, which is used as is.
async fn create_pipe(
    cx: &Ctx,
    desired: &Desired,
    name: &str,
    source: &PipeSourceManagedStreamingKafkaParameters,
    tags: &std::collections::HashMap<String, String>,
) -> Result<(), CallError> {
    let p = &desired.props;
    let created = retry_while(cx, &desired.id, &ROLE_PROPAGATION, || {
        let mut call = cx
            .aws
            .pipes
            .create_pipe()
            .name(name)
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
        Ok(_) => Ok(()),
        // A retried create whose first attempt went through: continue with our own pipe.
        Err(e) if e.code_is("ConflictException") => {
            let ours = describe(cx, name).await?.is_some_and(|pipe| {
                let tags = pipe.tags();
                tags.and_then(|t| t.get(TAG_STACK))
                    .is_some_and(|v| v == &cx.stack)
                    && tags
                        .and_then(|t| t.get(TAG_ID))
                        .is_some_and(|v| v == &desired.id)
            });
            if ours { Ok(()) } else { Err(e) }
        }
        Err(e) => Err(e),
    }
}

/// DeletePipe (once the pipe is not busy), then wait until it is gone: its pollers must be gone
/// before the function and role it uses are deleted, and its name is free again.
async fn delete_and_wait(cx: &Ctx, id: &str, name: &str) -> Result<(), CallError> {
    // DeletePipe is refused (ConflictException) while the pipe is creating/updating/starting.
    wait_for(
        cx,
        id,
        "waiting to delete the pipe",
        PIPE_PACE,
        TIMEOUT,
        || {
            let name = name.to_string();
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
        id,
        "waiting for the pipe to be deleted",
        PIPE_PACE,
        TIMEOUT,
        || {
            let name = name.to_string();
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

async fn wait_settled(
    cx: &Ctx,
    id: &str,
    op: &str,
    name: &str,
    want: &str,
) -> Result<Observed, CallError> {
    wait_outcome(cx, id, name, want)
        .await?
        .map_err(|(state, reason)| failed_error(op, name, &state, &reason))
}

/// Wait until the pipe reaches `want` (the observed pipe) or a `*_FAILED` state (that state
/// and AWS's StateReason).
async fn wait_outcome(
    cx: &Ctx,
    id: &str,
    name: &str,
    want: &str,
) -> Result<Result<Observed, (String, String)>, CallError> {
    let what = format!("waiting for the pipe to be {want}");
    wait_for(cx, id, &what, PIPE_PACE, TIMEOUT, || async move {
        let pipe = describe(cx, name)
            .await?
            .ok_or_else(|| CallError::state("DescribePipe", format!("pipe {name} disappeared")))?;
        let current = pipe
            .current_state()
            .map(|s| s.as_str().to_string())
            .unwrap_or_default();
        match settled(&current, want) {
            Settled::Done => Ok(Poll::Ready(Ok(observed(&pipe)))),
            Settled::Failed => Ok(Poll::Ready(Err((
                current,
                pipe.state_reason()
                    .unwrap_or("EventBridge Pipes gave no reason")
                    .to_string(),
            )))),
            Settled::Pending => Ok(Poll::Pending(current)),
        }
    })
    .await
}

fn failed_error(op: &str, name: &str, state: &str, reason: &str) -> CallError {
    CallError::state(op, format!("pipe {name} is {state}: {reason}"))
}

async fn wait_not_transitional(cx: &Ctx, id: &str, name: &str) -> Result<(), CallError> {
    wait_for(
        cx,
        id,
        "waiting for the pipe to finish its current change",
        PIPE_PACE,
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
/// `desired_state`, so the plan shows an in-place update that re-sends the whole configuration,
/// except `CREATE_FAILED`, which the model plans as a replacement (`broken`).
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
        ])
        .into_iter()
        // The oldest of duplicate pipes is kept (`provider::keep_used_copies_first`).
        .chain(pipe.creation_time().map(crate::aws::provider::created_attr))
        .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
