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

use std::fmt;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    Error, FinalizerInterceptorContextMut,
};
use aws_smithy_runtime_api::client::orchestrator::{Metadata, OrchestratorError};
use aws_smithy_runtime_api::client::result::ConnectorError;
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
            "no reply to {} ({}); AWS may or may not have performed it",
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
