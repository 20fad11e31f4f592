//! The one place that decides what is worth retrying and how waits are paced.
//!
//! The SDK already retries throttling and transient network errors. What remains are AWS
//! behaviours that need time rather than a fix: IAM propagation (including a pipe that failed
//! to create because Pipes checked its role too early: deleted and created again), `DependencyViolation` while
//! network interfaces drain, `QueueDeletedRecently`, EC2 ids not yet visible right after their
//! create. Everything else fails at once.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::aws::{CallError, Ctx};

/// A condition that goes away by itself, and for how long it is worth waiting.
#[derive(Debug)]
pub struct Transient {
    /// AWS error codes that signal the condition.
    pub codes: &'static [&'static str],
    /// If non-empty, the message must also contain one of these (case-insensitive), so an
    /// unrelated error with the same code is not retried blindly.
    pub messages: &'static [&'static str],
    /// Shown in progress lines: what mskctl is waiting for.
    pub why: &'static str,
    pub budget: Duration,
}

/// A deletion blocked by something that still uses the resource (network interfaces of
/// Lambda or pipes drain for many minutes on AWS).
pub const DEPENDENCY_VIOLATION: Transient = Transient {
    codes: &["DependencyViolation", "InvalidNetworkInterface.InUse"],
    messages: &[],
    why: "dependent resources (often network interfaces left by Lambda, pipes or MSK) still use it",
    budget: Duration::from_secs(45 * 60),
};

/// A role created seconds ago that Lambda or Pipes cannot assume yet, or a policy just put on
/// or attached to it that they do not see yet (IAM is eventually consistent). The messages are
/// the ones AWS gives for exactly this, as retried by the Terraform AWS provider
/// (`internal/service/lambda`): "The role defined for the function cannot be assumed by
/// Lambda.", "The provided execution role does not have permissions to call SendMessage on
/// SQS" (a dead-letter queue), and CreateEventSourceMapping's "… Please ensure the role can
/// perform the … Actions …". Other `InvalidParameterValueException`s fail at once.
pub const ROLE_PROPAGATION: Transient = Transient {
    codes: &[
        "InvalidParameterValueException",
        "ValidationException",
        "AccessDeniedException",
    ],
    messages: &[
        "assume",
        "execution role does not have permissions",
        "ensure the role can perform",
    ],
    why: "the IAM role or a policy on it changed moments ago and has not propagated yet (IAM is eventually consistent)",
    budget: Duration::from_secs(90),
};

/// A pipe that ended `CREATE_FAILED` because Pipes, checking the role after CreatePipe
/// answered, did not see its permissions yet ("Input parameter is invalid from the request due
/// to : The provided customer role does not have permissions to call …"). Waiting does not
/// help: the pipe stays failed, so it is deleted and created again, at most
/// [`PIPE_CREATE_ATTEMPTS`] times. The code is the pipe's state, the message its StateReason.
pub const PIPE_ROLE_PROPAGATION: Transient = Transient {
    codes: &["CREATE_FAILED"],
    messages: &[
        "does not have permission",
        "does not have enough permission",
        "cannot be assumed",
        "unable to assume",
        "not authorized",
    ],
    why: "EventBridge Pipes checked the role before its new permissions had propagated (IAM is eventually consistent)",
    budget: Duration::from_secs(90),
};

/// Creations of one pipe in one apply while it fails for [`PIPE_ROLE_PROPAGATION`].
pub const PIPE_CREATE_ATTEMPTS: u32 = 4;

/// SQS refuses to recreate a queue name for 60 seconds after deleting it.
pub const QUEUE_DELETED_RECENTLY: Transient = Transient {
    codes: &[
        "AWS.SimpleQueueService.QueueDeletedRecently",
        "QueueDeletedRecently",
    ],
    messages: &[],
    why: "SQS does not allow reusing a queue name for 60 seconds after deletion",
    budget: Duration::from_secs(90),
};

/// EC2 is eventually consistent: for a moment after a create, other calls naming the new id
/// (describe by id, modify, attach, associate, tag, a create that references it) answer
/// `NotFound` ("Eventual consistency in the Amazon EC2 API"). Only for calls that follow a
/// create: deletes keep reading NotFound as "already gone".
pub const EC2_NOT_YET_VISIBLE: Transient = Transient {
    codes: &[
        "InvalidVpcID.NotFound",
        "InvalidSubnetID.NotFound",
        "InvalidGroup.NotFound",
        "InvalidGroupId.NotFound",
        "InvalidInternetGatewayID.NotFound",
        "InvalidRouteTableID.NotFound",
        "InvalidAllocationID.NotFound",
        "NatGatewayNotFound",
        "InvalidNatGatewayID.NotFound",
    ],
    messages: &[],
    why: "EC2 is eventually consistent and an id created moments ago is not visible to every call yet",
    budget: Duration::from_secs(30),
};

/// Lambda rejects a change while a previous update of the same function is in progress.
pub const FUNCTION_BUSY: Transient = Transient {
    codes: &["ResourceConflictException"],
    messages: &["in progress", "pending"],
    why: "a previous update of the function is still in progress",
    budget: Duration::from_secs(300),
};

impl Transient {
    pub fn matches(&self, err: &CallError) -> bool {
        let code_ok = err.code.as_deref().is_some_and(|c| self.codes.contains(&c));
        let msg = err.message.to_lowercase();
        code_ok && (self.messages.is_empty() || self.messages.iter().any(|m| msg.contains(m)))
    }
}

fn pacing(max: Duration) -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_min_delay(poll_floor())
        .with_max_delay(max)
        .without_max_times()
        .build()
}

/// Smallest pause between polls. AWS resources take seconds to minutes; the local emulator
/// answers in milliseconds, so tests may lower it with `MSKCTL_POLL_MS`.
fn poll_floor() -> Duration {
    std::env::var("MSKCTL_POLL_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(1))
}

/// Run `call`, retrying while its error matches `transient`, with backoff and a progress line
/// for `id` on each retry. Other errors and an exhausted budget return the last error.
pub async fn retry_while<T, F, Fut>(
    cx: &Ctx,
    id: &str,
    transient: &Transient,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let start = Instant::now();
    let mut delays = pacing(Duration::from_secs(15));
    let mut said = Said::default();
    loop {
        match call().await {
            Err(err) if transient.matches(&err) && start.elapsed() < transient.budget => {
                let delay = delays.next().unwrap_or(Duration::from_secs(15));
                said.say(
                    cx,
                    id,
                    format!(
                        "{} returned {}: retrying because {}",
                        err.op,
                        err.code.as_deref().unwrap_or("an error"),
                        transient.why,
                    ),
                );
                tokio::time::sleep(delay).await;
            }
            other => return other,
        }
    }
}

/// Run `attempt` (a create and its wait) up to `attempts` times while its failure matches
/// `transient` and the budget lasts, running `undo` (delete the failed copy) and pausing
/// before the next one, with a progress line for `id`. Other errors return at once.
pub async fn recreate_while<T, A, AFut, U, UFut>(
    cx: &Ctx,
    id: &str,
    transient: &Transient,
    attempts: u32,
    mut attempt: A,
    mut undo: U,
) -> Result<T, CallError>
where
    A: FnMut() -> AFut,
    AFut: Future<Output = Result<T, CallError>>,
    U: FnMut() -> UFut,
    UFut: Future<Output = Result<(), CallError>>,
{
    let start = Instant::now();
    let mut delays = pacing(Duration::from_secs(15));
    let mut n = 1;
    loop {
        match attempt().await {
            Err(err)
                if transient.matches(&err)
                    && n < attempts
                    && start.elapsed() < transient.budget =>
            {
                cx.progress(
                    id,
                    &format!(
                        "{} ended {}: {}; deleting it and creating it again because {} (attempt {}/{attempts})",
                        err.op,
                        err.code.as_deref().unwrap_or("failed"),
                        err.message,
                        transient.why,
                        n + 1,
                    ),
                );
                undo().await?;
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(15))).await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// What one poll of a resource's state found.
pub enum Poll<T> {
    Ready(T),
    /// Still in progress; the string is the current state, shown in progress lines.
    Pending(String),
}

/// Poll `check` until it is ready, reporting "`what`: STATE" for `id` each time the state
/// changes (not on every poll: the reporter shows timestamps and elapsed time); fail after
/// `timeout`.
pub async fn wait_for<T, F, Fut>(
    cx: &Ctx,
    id: &str,
    what: &str,
    timeout: Duration,
    mut check: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, CallError>>,
{
    let start = Instant::now();
    let mut delays = pacing(Duration::from_secs(10));
    let mut said = Said::default();
    loop {
        match check().await? {
            Poll::Ready(v) => return Ok(v),
            Poll::Pending(state) => {
                let elapsed = start.elapsed();
                if elapsed > timeout {
                    return Err(CallError::state(
                        what,
                        format!(
                            "still {state} after {}s; giving up (re-run to keep waiting)",
                            elapsed.as_secs()
                        ),
                    ));
                }
                said.say(cx, id, format!("{what}: {state}"));
                tokio::time::sleep(delays.next().unwrap_or(Duration::from_secs(10))).await;
            }
        }
    }
}

/// The last progress line a wait or retry loop reported: a poll or retry that finds the same
/// state says nothing, so a wait of minutes prints one line per state change, not per poll.
#[derive(Default)]
struct Said(Option<String>);

impl Said {
    fn say(&mut self, cx: &Ctx, id: &str, line: String) {
        if self.changed(&line) {
            cx.progress(id, &line);
        }
    }

    /// True (and remembered) when `line` differs from the last one said.
    fn changed(&mut self, line: &str) -> bool {
        if self.0.as_deref() == Some(line) {
            return false;
        }
        self.0 = Some(line.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_report_state_changes_not_every_poll() {
        let mut said = Said::default();
        let polls = [
            "CREATING", "CREATING", "CREATING", "UPDATING", "UPDATING", "CREATING",
        ];
        let reported: Vec<&str> = polls.iter().copied().filter(|p| said.changed(p)).collect();
        assert_eq!(reported, ["CREATING", "UPDATING", "CREATING"]);
    }

    fn err(code: &str, message: &str) -> CallError {
        CallError::new("CreateFunction", Some(code), message)
    }

    #[test]
    fn role_propagation_retries_only_unassumable_roles() {
        let lambda = err(
            "InvalidParameterValueException",
            "The role defined for the function cannot be assumed by Lambda.",
        );
        assert!(ROLE_PROPAGATION.matches(&lambda));
        let other = err(
            "InvalidParameterValueException",
            "Unzipped size must be smaller than 262144000 bytes",
        );
        assert!(
            !ROLE_PROPAGATION.matches(&other),
            "other errors fail at once"
        );
        let malformed = err(
            "ValidationException",
            "1 validation error: roleArn is not a valid ARN",
        );
        assert!(!ROLE_PROPAGATION.matches(&malformed));
    }

    #[test]
    fn role_propagation_retries_policies_not_yet_visible() {
        let dlq = err(
            "InvalidParameterValueException",
            "The provided execution role does not have permissions to call SendMessage on SQS",
        );
        assert!(ROLE_PROPAGATION.matches(&dlq));
        let esm = CallError::new(
            "CreateEventSourceMapping",
            Some("InvalidParameterValueException"),
            "Cannot access stream arn:aws:kinesis:r:1:stream/s. Please ensure the role can perform \
             the GetRecords, GetShardIterator, DescribeStream, and ListStreams Actions on your stream in IAM.",
        );
        assert!(ROLE_PROPAGATION.matches(&esm));
        // Same code, nothing to do with IAM: fail at once.
        for message in [
            "BatchSize 20000 is out of range: Kafka event sources allow 1 to 10000.",
            "Kafka event sources need exactly one topic in Topics.",
            "Specify either EventSourceArn or SelfManagedEventSource, not both.",
            "Value dlq at 'deadLetterConfig.targetArn' failed to satisfy constraint",
            "The runtime parameter of python2.7 is no longer supported for creating or updating AWS Lambda functions.",
        ] {
            assert!(
                !ROLE_PROPAGATION.matches(&err("InvalidParameterValueException", message)),
                "{message}"
            );
        }
        // The right words under another code (a throttle, a conflict) are not this condition.
        assert!(!ROLE_PROPAGATION.matches(&err(
            "ResourceConflictException",
            "The provided execution role does not have permissions to call SendMessage on SQS"
        )));
    }

    #[test]
    fn pipe_role_propagation_matches_only_permission_failures_of_a_create() {
        let reason = "Input parameter is invalid from the request due to : The provided customer role \
                      does not have permissions to call ReceiveMessage on SQS";
        let failed = |state: &str, reason: &str| CallError::new("CreatePipe", Some(state), reason);
        assert!(PIPE_ROLE_PROPAGATION.matches(&failed("CREATE_FAILED", reason)));
        assert!(PIPE_ROLE_PROPAGATION.matches(&failed(
            "CREATE_FAILED",
            "PROBLEM: Pipes does not have enough permission to process your event source."
        )));
        assert!(!PIPE_ROLE_PROPAGATION.matches(&failed(
            "CREATE_FAILED",
            "Connection error: the pipe cannot reach the cluster"
        )));
        assert!(!PIPE_ROLE_PROPAGATION.matches(&failed("START_FAILED", reason)));
        assert!(!PIPE_ROLE_PROPAGATION.matches(&failed("UPDATE_FAILED", reason)));
    }

    #[test]
    fn dependency_violation_matches_by_code() {
        assert!(DEPENDENCY_VIOLATION.matches(&err("DependencyViolation", "has dependencies")));
        assert!(!DEPENDENCY_VIOLATION.matches(&err("InvalidVpcID.NotFound", "gone")));
    }

    #[test]
    fn ec2_not_yet_visible_matches_the_network_kinds_not_found_codes() {
        for code in [
            "InvalidVpcID.NotFound",
            "InvalidSubnetID.NotFound",
            "InvalidGroup.NotFound",
            "InvalidInternetGatewayID.NotFound",
            "InvalidRouteTableID.NotFound",
            "InvalidAllocationID.NotFound",
            "NatGatewayNotFound",
        ] {
            assert!(
                EC2_NOT_YET_VISIBLE.matches(&err(code, "does not exist")),
                "{code}"
            );
        }
        assert!(!EC2_NOT_YET_VISIBLE.matches(&err("DependencyViolation", "in use")));
        assert!(!EC2_NOT_YET_VISIBLE.matches(&err("InvalidParameterValue", "bad cidr")));
    }

    #[test]
    fn queue_deleted_recently_matches_both_code_styles() {
        assert!(QUEUE_DELETED_RECENTLY.matches(&err(
            "AWS.SimpleQueueService.QueueDeletedRecently",
            "wait 60s"
        )));
        assert!(QUEUE_DELETED_RECENTLY.matches(&err("QueueDeletedRecently", "wait 60s")));
    }
}
