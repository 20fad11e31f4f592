//! Error handling as AWS really runs it: which retry and dead-letter settings apply to the way
//! a function is invoked.

use super::{Ctx, Finding};
use crate::model::s;

pub fn check(cx: &Ctx, out: &mut Vec<Finding>) {
    request_response_pipes(cx, out);
    mappings_without_destination(cx, out);
}

/// ERR001: a pipe invoking with REQUEST_RESPONSE calls the function synchronously; Lambda's
/// asynchronous retries, maximum event age and dead-letter queue only apply to asynchronous
/// invocations, so they never run. The pipe itself retries the batch until records expire.
fn request_response_pipes(cx: &Ctx, out: &mut Vec<Finding>) {
    for (pipe, props) in cx.of_kind("pipe") {
        if s(props, "invocation_type") != Some("REQUEST_RESPONSE") {
            continue;
        }
        let Some(function) = cx.target(pipe, &["target"]) else {
            continue;
        };
        let async_settings: Vec<&str> = [
            "dead_letter_queue",
            "maximum_retry_attempts",
            "maximum_event_age",
        ]
        .into_iter()
        .filter(|p| function.props.contains_key(*p))
        .collect();
        if async_settings.is_empty() {
            continue;
        }
        let list: Vec<String> = async_settings.iter().map(|p| format!("`{p}`")).collect();
        out.push(
            Finding::new(
                "ERR001",
                &pipe.id,
                &["invocation_type"],
                format!(
                    "with REQUEST_RESPONSE the pipe invokes `{}` synchronously, so its {} (asynchronous invocation \
                     settings) never apply: a failing batch is retried by the pipe until its records expire",
                    function.id,
                    list.join(", ")
                ),
            )
            .label("synchronous invocation")
            .fix(
                "set `invocation_type: FIRE_AND_FORGET` so Lambda's retries and dead-letter queue handle failures, \
                 or remove those settings from the function and handle errors in the function",
            ),
        );
    }
}

/// ERR002: without an on-failure destination a Kafka mapping retries a failing batch until
/// its records expire, blocking the partition; nothing keeps what it gave up on.
fn mappings_without_destination(cx: &Ctx, out: &mut Vec<Finding>) {
    for (mapping, _) in cx.of_kind("event_source_mapping") {
        if mapping.props.contains_key("on_failure_destination") {
            continue;
        }
        out.push(
            Finding::new(
                "ERR002",
                &mapping.id,
                &[],
                "this Kafka event source mapping has no `on_failure_destination`: a batch the function keeps \
                 failing is retried until its records expire, blocking its partition, and nothing keeps the records \
                 Lambda gave up on"
                    .into(),
            )
            .label("no on_failure_destination")
            .fix("add `on_failure_destination: <sqs_queue id>` (and let the function's role sqs:SendMessage to it)"),
        );
    }
}
