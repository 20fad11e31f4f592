//! Calls whose outcome is unknown: a create that AWS may have performed although its reply
//! never arrived (the connection dropped, the attempt timed out, the body came back
//! truncated).
//!
//! The SDK's standard retry strategy retries every timeout and I/O error whatever the
//! operation (`TransientErrorClassifier` in aws-smithy-runtime's `retries/classifiers.rs`),
//! so a create whose reply was lost would be sent again: a second VPC, or "already exists" for
//! a role that the first call made. [`LostReply`] stops that for the operations
//! [`crate::aws::retry::NOT_IDEMPOTENT`] lists: their transport failure becomes a
//! [`ReplyLost`] error that no classifier retries, and the call fails with the code
//! [`REPLY_LOST`]. The provider then looks up what the create may have made (the kind's own
//! read: ownership tags, names) before it creates anything again
//! ([`crate::aws::retry::create_resolving`]).
//!
//! A 5xx answer (`InternalError`, `ServiceUnavailable`, `InternalFailure`…) leaves the outcome
//! just as unknown: the service may have performed the create before failing to answer
//! (EC2's idempotency guide counts "other server issues" with timeouts). The SDK's
//! `HttpStatusCodeClassifier` retries 500/502/503/504 whatever the operation, so such an
//! answer to a non-idempotent call is also turned into [`ReplyLost`], and [`NoBlindRetry`]
//! keeps every retry classifier from repeating it. Throttling answers sent with a 5xx status
//! (EC2's `RequestLimitExceeded` is a 503) are left alone: the call was refused, not performed.

use std::fmt;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    Error, FinalizerInterceptorContextMut, InterceptorContext,
};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::retry::ErrorKind;

use crate::aws::retry::not_idempotent;

/// The [`crate::aws::CallError`] code of a mutating call whose reply never arrived.
pub const REPLY_LOST: &str = "ReplyLost";

/// A non-idempotent call sent to AWS whose reply never arrived.
#[derive(Debug)]
pub struct ReplyLost {
    pub operation: String,
    /// What the transport said (connection closed, timed out…).
    pub cause: String,
}

impl fmt::Display for ReplyLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "no usable reply to {} ({}); AWS may or may not have performed it",
            self.operation, self.cause
        )
    }
}

impl std::error::Error for ReplyLost {}

/// Turns the transport failure of a non-idempotent call into [`ReplyLost`], before the retry
/// strategy sees it, so the SDK never repeats the call blindly. Errors AWS answered
/// (throttling included) are left alone: their call did not happen and retrying is safe.
#[derive(Debug, Clone, Default)]
pub struct LostReply;

impl Intercept for LostReply {
    fn name(&self) -> &'static str {
        "mskctl-lost-reply"
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(meta) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        if !not_idempotent(meta.name()) {
            return Ok(());
        }
        let cause = match context.output_or_error() {
            Some(Err(e)) if unknown_outcome(e) => innermost(e),
            Some(Err(_)) => {
                let Some(response) = context.response() else {
                    return Ok(());
                };
                let header = response.headers().get("x-amzn-ErrorType");
                match server_error(
                    response.status().as_u16(),
                    response.body().bytes().unwrap_or_default(),
                    header,
                ) {
                    Some(cause) => cause,
                    None => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        let lost = ReplyLost {
            operation: meta.name().to_string(),
            cause,
        };
        if let Some(slot) = context.output_or_error_mut() {
            *slot = Err(OrchestratorError::connector(ConnectorError::other(
                Box::new(lost),
                None,
            )));
        }
        Ok(())
    }
}

/// True for failures after which AWS may have performed the call: a timeout, an I/O error
/// (connection reset), a connection closed before the whole reply came (hyper's
/// `IncompleteMessage`, which the SDK's connector marks as a transient "other" error), a reply
/// that could not be read.
fn unknown_outcome(e: &OrchestratorError<Error>) -> bool {
    e.is_timeout_error()
        || e.is_response_error()
        || e.as_connector_error().is_some_and(|c| {
            c.is_io() || c.is_timeout() || c.as_other() == Some(ErrorKind::TransientError)
        })
}

/// AWS's throttling codes (as aws-runtime's `retries::classifiers::THROTTLING_ERRORS`): an
/// answer with one of them was refused, whatever its status.
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// For a 5xx answer that is not throttling, what it said ("AWS answered HTTP 500
/// InternalError"); `None` otherwise. The code comes from `x-amzn-ErrorType` (REST-JSON), the
/// JSON body's `__type`/`code` (JSON protocols, `…#Code` shapes included) or the XML body's
/// `<Code>` (EC2, IAM, STS). Pure, so it is unit-tested.
pub fn server_error(status: u16, body: &[u8], error_type: Option<&str>) -> Option<String> {
    if !(500..600).contains(&status) {
        return None;
    }
    let code = error_type
        .map(|h| h.split(':').next().unwrap_or(h).trim().to_string())
        .filter(|c| !c.is_empty())
        .or_else(|| json_code(body))
        .or_else(|| xml_code(body));
    if code.as_deref().is_some_and(|c| THROTTLING.contains(&c)) {
        return None;
    }
    Some(match code {
        Some(code) => format!("AWS answered HTTP {status} {code}"),
        None => format!("AWS answered HTTP {status}"),
    })
}

fn json_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let raw = v.get("__type").or_else(|| v.get("code"))?.as_str()?;
    let code = raw.rsplit('#').next().unwrap_or(raw);
    Some(code.split(':').next().unwrap_or(code).to_string())
}

fn xml_code(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<Code>")? + "<Code>".len();
    let end = start + text[start..].find("</Code>")?;
    Some(text[start..end].trim().to_string())
}

/// Forbids every retry of a call whose outcome is unknown ([`ReplyLost`]): the SDK's
/// `HttpStatusCodeClassifier` would otherwise retry a non-idempotent create answered with a
/// 5xx by its status alone. Classifiers stop at the first `RetryForbidden`, so its place
/// among them does not matter.
#[derive(Debug, Clone, Default)]
pub struct NoBlindRetry;

impl ClassifyRetry for NoBlindRetry {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        match ctx.output_or_error() {
            Some(Err(e))
                if find_reply_lost(Some(e as &(dyn std::error::Error + 'static))).is_some() =>
            {
                RetryAction::RetryForbidden
            }
            _ => RetryAction::NoActionIndicated,
        }
    }

    fn name(&self) -> &'static str {
        "mskctl: no blind retry of an unknown outcome"
    }
}

/// What the transport said, without the SDK's wrapping: the deepest source's message
/// ("connection closed before message completed", "timed out").
fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// The [`ReplyLost`] among an error's sources, if any.
pub fn find_reply_lost<'a>(
    mut source: Option<&'a (dyn std::error::Error + 'static)>,
) -> Option<&'a ReplyLost> {
    while let Some(e) = source {
        if let Some(lost) = e.downcast_ref::<ReplyLost>() {
            return Some(lost);
        }
        source = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_are_recognised_in_each_protocol_and_throttling_is_not() {
        let ec2 = b"<Response><Errors><Error><Code>InternalError</Code><Message>An internal error has occurred</Message></Error></Errors></Response>";
        assert_eq!(
            server_error(500, ec2, None).as_deref(),
            Some("AWS answered HTTP 500 InternalError")
        );
        let iam = b"<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceFailure</Code></Error></ErrorResponse>";
        assert_eq!(
            server_error(500, iam, None).as_deref(),
            Some("AWS answered HTTP 500 ServiceFailure")
        );
        let json = br#"{"__type": "com.amazonaws.lambda#ServiceException", "message": "x"}"#;
        assert_eq!(
            server_error(500, json, None).as_deref(),
            Some("AWS answered HTTP 500 ServiceException")
        );
        assert_eq!(
            server_error(
                503,
                b"",
                Some("ServiceUnavailable:http://internal.amazon.com/")
            )
            .as_deref(),
            Some("AWS answered HTTP 503 ServiceUnavailable")
        );
        assert_eq!(
            server_error(502, b"<html>bad gateway</html>", None).as_deref(),
            Some("AWS answered HTTP 502")
        );
        // Refused, not performed: EC2 throttles with a 503.
        let throttled = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>";
        assert_eq!(server_error(503, throttled, None), None);
        assert_eq!(server_error(503, b"", Some("ThrottlingException")), None);
        // 4xx: answered, and the call did not happen.
        assert_eq!(server_error(400, ec2, None), None);
        assert_eq!(server_error(409, json, None), None);
    }
}
