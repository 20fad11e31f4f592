//! The one place that decides what is worth retrying and how waits are paced.
//!
//! The SDK already retries throttling and transient network errors. What remains are AWS
//! behaviours that need time rather than a fix: IAM propagation (including a pipe that failed
//! to create because Pipes checked its role too early: deleted and created again; or failed to
//! update for that reason: updated again), `DependencyViolation` while
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

/// A pipe that ended `UPDATE_FAILED` because Pipes, checking the role after UpdatePipe
/// answered, did not see a role or policy changed moments before (the same StateReason as
/// [`PIPE_ROLE_PROPAGATION`]; aws/aws-cdk#31664: a pipe whose role gained a permission in the
/// same deployment failed to update). Unlike `CREATE_FAILED`, the failed pipe takes another
/// UpdatePipe, which checks the role again: the update is sent again, at most
/// [`PIPE_UPDATE_ATTEMPTS`] times. The code is the pipe's state, the message its StateReason.
pub const PIPE_UPDATE_ROLE_PROPAGATION: Transient = Transient {
    codes: &["UPDATE_FAILED"],
    messages: PIPE_ROLE_PROPAGATION.messages,
    why: PIPE_ROLE_PROPAGATION.why,
    budget: Duration::from_secs(90),
};

/// UpdatePipe calls for one pipe change in one apply while it fails for
/// [`PIPE_UPDATE_ROLE_PROPAGATION`].
pub const PIPE_UPDATE_ATTEMPTS: u32 = 5;

/// Mutating calls that AWS may perform although their reply is lost, and that are not safe to
/// send again: a repeat makes a second resource (`CreateVpc`, `CreateSubnet`,
/// `CreateSecurityGroup`, `CreateInternetGateway`, `AllocateAddress`, API Gateway's `CreateApi`
/// and `CreateIntegration`) or answers "already exists" for what the first one made
/// (`CreateRole`, `CreateFunction`, `CreateEventSourceMapping`, `AddPermission`, `CreatePipe`,
/// `CreateClusterV2`, `CreateRoute`, `CreateStage`, `AssociateRouteTable`,
/// `AttachInternetGateway`, `AuthorizeSecurityGroup*`). None of them takes a client token
/// (EC2's "Ensuring idempotency" lists the ones that do; the others' API models have none).
/// The SDK never retries their lost replies ([`crate::aws::outcome::LostReply`]); mskctl
/// resolves them with [`create_resolving`].
///
/// Not listed, because a repeat is harmless: creates with a client token mskctl sets itself
/// (`CreateNatGateway`, `CreateRouteTable`, `CreateVpcEndpoint`: EC2 returns the first
/// result), `CreateQueue` (SQS returns the existing queue when the attributes match),
/// `Put*`/`Modify*`/`Update*`/`Tag*` (they set a value), and the lock's `PutParameter`
/// (a repeat answers `ParameterAlreadyExists` and the lock then finds itself the holder).
pub const NOT_IDEMPOTENT: &[&str] = &[
    "CreateVpc",
    "CreateSubnet",
    "CreateSecurityGroup",
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "CreateInternetGateway",
    "AttachInternetGateway",
    "AllocateAddress",
    "CreateRoute",
    "AssociateRouteTable",
    "CreateRole",
    "CreateFunction",
    "CreateEventSourceMapping",
    "AddPermission",
    "CreatePipe",
    "CreateClusterV2",
    "CreateApi",
    "CreateIntegration",
    "CreateStage",
];

/// Whether `operation` is in [`NOT_IDEMPOTENT`].
pub fn not_idempotent(operation: &str) -> bool {
    NOT_IDEMPOTENT.contains(&operation)
}

/// "Already exists" answers to a create (or to a call that follows it: an attach, a route,
/// a rule): what the create would make is there. Whether it is this stack's decides between
/// adopting it and failing ([`create_resolving`]).
pub const ALREADY_EXISTS: Transient = Transient {
    codes: &[
        "EntityAlreadyExists",
        "InvalidGroup.Duplicate",
        "InvalidSubnet.Conflict",
        "RouteAlreadyExists",
        "Resource.AlreadyAssociated",
        "InvalidPermission.Duplicate",
        "AlreadyExistsException",
        "ResourceConflictException",
        "ConflictException",
    ],
    // Lambda's and Pipes' conflict codes also mean "an update is in progress".
    messages: &["exist", "duplicate", "conflict", "already associated"],
    why: "what the create would make is already there",
    budget: Duration::ZERO,
};

/// True when a call may have had its effect although it failed: its reply was lost, or AWS
/// says what it would add is already there.
pub fn outcome_unknown_or_exists(err: &CallError) -> bool {
    err.reply_lost() || ALREADY_EXISTS.matches(err)
}

/// How a create ended: made by this call, or found (made by a call whose reply was lost, or
/// left by an earlier run) and to be adopted.
#[derive(Debug)]
pub enum Made<T> {
    Created(T),
    Found(T),
}

/// Times a create is sent again when its reply was lost and nothing it would have made is
/// found.
pub const LOST_REPLY_ATTEMPTS: u32 = 3;

/// Looks for what a lost create made: the first look, then again after each pause (EC2's
/// describes can lag behind a create for a moment).
pub const LOST_REPLY_LOOKS: usize = 3;

/// Run `create`. When its reply is lost (AWS may have performed it) or AWS answers that it
/// already exists, `find` looks for what it would have made (by ownership tags or name)
/// before anything is sent again: found, it is [`Made::Found`] (the caller adopts it); not
/// found after a lost reply, the create is sent again (at most [`LOST_REPLY_ATTEMPTS`]
/// times); not found after "already exists", the error stands (it is not this stack's).
pub async fn create_resolving<T, C, CFut, F, FFut>(
    cx: &Ctx,
    id: &str,
    mut create: C,
    mut find: F,
) -> Result<Made<T>, CallError>
where
    C: FnMut() -> CFut,
    CFut: Future<Output = Result<T, CallError>>,
    F: FnMut() -> FFut,
    FFut: Future<Output = Result<Option<T>, CallError>>,
{
    let mut sent = 1;
    loop {
        let err = match create().await {
            Ok(made) => return Ok(Made::Created(made)),
            Err(err) if outcome_unknown_or_exists(&err) => err,
            Err(err) => return Err(err),
        };
        let lost = err.reply_lost();
        cx.progress(
            id,
            &if lost {
                format!(
                    "{}: outcome unknown ({}): looking for what it made before sending anything again",
                    err.op, err.message
                )
            } else {
                format!(
                    "{} answered {}: looking for this stack's copy",
                    err.op,
                    err.code.as_deref().unwrap_or("already exists")
                )
            },
        );
        let looks = if lost { LOST_REPLY_LOOKS } else { 1 };
        let mut pauses = pacing(Duration::from_secs(2));
        for look in 0..looks {
            if look > 0 {
                tokio::time::sleep(pauses.next().unwrap_or(Duration::from_secs(2))).await;
            }
            if let Some(found) = find().await? {
                cx.progress(id, "found what the create made: adopting it");
                return Ok(Made::Found(found));
            }
        }
        if !lost {
            return Err(CallError {
                message: format!(
                    "{} (it is not this stack's: no resource tagged {}={} {}={id} was found)",
                    err.message,
                    crate::model::TAG_STACK,
                    cx.stack,
                    crate::model::TAG_ID,
                ),
                ..err
            });
        }
        if sent >= LOST_REPLY_ATTEMPTS {
            return Err(err);
        }
        sent += 1;
        cx.progress(
            id,
            &format!("nothing made by {} found: sending it again", err.op),
        );
    }
}

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

/// IAM serialises changes to one role: a change that arrives while another change of the
/// same role is in progress is refused with `ConcurrentModification` ("Another request
/// updating the entity is in progress. Please try again later.", IAM API reference; retried
/// by the Terraform AWS provider since terraform-provider-aws#34378 and #39429).
pub const IAM_CONCURRENT_MODIFICATION: Transient = Transient {
    codes: &["ConcurrentModification", "ConcurrentModificationException"],
    messages: &[],
    why: "IAM is still applying another change to the same role",
    budget: Duration::from_secs(120),
};

/// A topic-admin request that cannot succeed yet: the function is still being created or
/// updated (`ResourceConflictException`), its network interface or the cluster's DNS is not
/// ready (`Unreachable`), or its role's Kafka permissions have not propagated (Kafka's
/// authorization failures; IAM is eventually consistent), or a topic recreated moments after
/// its deletion is still being removed by the brokers (`TopicAlreadyExists`).
pub const TOPIC_ADMIN_NOT_READY: Transient = Transient {
    codes: &[
        "ResourceConflictException",
        "Unreachable",
        "TopicAuthorizationFailed",
        "ClusterAuthorizationFailed",
        "SaslAuthenticationFailed",
        "TopicAlreadyExists",
    ],
    messages: &[],
    why: "the topic-admin function, its network or its role's Kafka permissions are not ready yet",
    budget: Duration::from_secs(180),
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

/// How often a wait polls one kind of resource: from the first pause (1 s, or `MSKCTL_POLL_MS`)
/// doubling up to `interval`, then every `interval`. The cap bounds the overshoot: the resource is
/// seen ready at most one interval after it became ready (plus one call's round trip).
///
/// Intervals follow what AWS's own tools use (sources, checked 2026-11):
/// - Terraform AWS provider: `internal/service/kafka` `waitClusterCreated`/`Deleted` and
///   `internal/service/pipes` `waitPipeCreated`/`Updated`/`Deleted` set neither `Delay`,
///   `MinTimeout` nor `PollInterval`, so the plugin SDK's `StateChangeConf` default applies:
///   refresh after 100 ms, doubling, capped at 10 s. Event source mappings get the same cap
///   (they leave `Creating`/`Enabling` in seconds to a minute).
/// - botocore `ec2/waiters-2.json` `NatGatewayAvailable`/`NatGatewayDeleted`: every 15 s;
///   `VpcEndpointExists` (and the Ansible amazon.aws `VpcEndpointExists` waiter): every 5 s.
/// - botocore `lambda/waiters-2.json` `FunctionActiveV2`/`FunctionUpdatedV2` (the SDK-generated
///   waiters, also in aws-sdk-rust): every 1 s (the older `FunctionActive`: 5 s).
/// - SQS: a deleted queue's name frees within 60 s (`DeleteQueue` reference); 5 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    pub interval: Duration,
}

pub const MSK_CLUSTER_PACE: Pace = Pace {
    interval: Duration::from_secs(10),
};
pub const PIPE_PACE: Pace = Pace {
    interval: Duration::from_secs(10),
};
pub const EVENT_SOURCE_MAPPING_PACE: Pace = Pace {
    interval: Duration::from_secs(10),
};
pub const NAT_GATEWAY_PACE: Pace = Pace {
    interval: Duration::from_secs(15),
};
pub const VPC_ENDPOINT_PACE: Pace = Pace {
    interval: Duration::from_secs(5),
};
pub const LAMBDA_FUNCTION_PACE: Pace = Pace {
    interval: Duration::from_secs(1),
};
pub const SQS_QUEUE_PACE: Pace = Pace {
    interval: Duration::from_secs(5),
};
/// A deletion refused while network interfaces that outlive their owner (Lambda's, pollers',
/// a cluster's) still use the subnet, group or VPC: AWS releases them in the background, so
/// the refused call is a poll ([`retry_paced`]). The Terraform AWS provider retries these
/// `DependencyViolation`s with the plugin SDK's `RetryContext` (500 ms doubling, capped at 10 s).
pub const INTERFACES_RELEASED_PACE: Pace = Pace {
    interval: Duration::from_secs(10),
};

impl Pace {
    /// The pauses between polls: `floor`, doubling, capped at `interval`, all multiplied by
    /// `scale` (`MSKCTL_POLL_SCALE`). Pure, so the schedule is unit-tested.
    pub fn delays(self, floor: Duration, scale: f64) -> impl Iterator<Item = Duration> {
        let cap = self.interval.mul_f64(scale);
        let mut next = floor.mul_f64(scale).min(cap);
        std::iter::from_fn(move || {
            let d = next;
            next = (next * 2).min(cap);
            Some(d)
        })
    }
}

/// Multiplier on every readiness poll's pauses, for the local emulator whose provisioning
/// delays are AWS's compressed ~50–100 times (`scripts/bench` sets 0.02). Unset, unparsable or
/// not positive: 1.
fn poll_scale() -> f64 {
    std::env::var("MSKCTL_POLL_SCALE")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(1.0)
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
    call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    retry_on(cx, id, transient, pacing(Duration::from_secs(15)), call).await
}

/// [`retry_while`] for a condition AWS clears in the background like a resource becoming
/// ready (network interfaces released after their owner is gone): the retries are a readiness
/// wait's polls at `pace` ([`Pace::delays`], scaled by `MSKCTL_POLL_SCALE`), so the call gets
/// through at most one interval after the condition clears.
pub async fn retry_paced<T, F, Fut>(
    cx: &Ctx,
    id: &str,
    transient: &Transient,
    pace: Pace,
    call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let delays = pace.delays(poll_floor(), poll_scale());
    retry_on(cx, id, transient, delays, call).await
}

async fn retry_on<T, F, Fut>(
    cx: &Ctx,
    id: &str,
    transient: &Transient,
    mut delays: impl Iterator<Item = Duration>,
    mut call: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CallError>>,
{
    let start = Instant::now();
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
    attempt: A,
    undo: U,
) -> Result<T, CallError>
where
    A: FnMut() -> AFut,
    AFut: Future<Output = Result<T, CallError>>,
    U: FnMut() -> UFut,
    UFut: Future<Output = Result<(), CallError>>,
{
    again_while(
        cx,
        id,
        transient,
        attempts,
        "deleting it and creating it again",
        attempt,
        undo,
    )
    .await
}

/// Run `attempt` (a change and the wait for its outcome) up to `attempts` times while its
/// failure matches `transient` and the budget lasts, pausing before sending it again, with a
/// progress line for `id`. For changes whose failure AWS reports afterwards, as a state, and
/// that the same call can repair. Other errors return at once.
pub async fn resend_while<T, A, AFut>(
    cx: &Ctx,
    id: &str,
    transient: &Transient,
    attempts: u32,
    attempt: A,
) -> Result<T, CallError>
where
    A: FnMut() -> AFut,
    AFut: Future<Output = Result<T, CallError>>,
{
    let nothing_to_undo = || async { Ok(()) };
    again_while(
        cx,
        id,
        transient,
        attempts,
        "sending it again",
        attempt,
        nothing_to_undo,
    )
    .await
}

/// The loop of [`recreate_while`] and [`resend_while`]: `doing` says what happens before the
/// next attempt ("sending it again").
async fn again_while<T, A, AFut, U, UFut>(
    cx: &Ctx,
    id: &str,
    transient: &Transient,
    attempts: u32,
    doing: &str,
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
                        "{} ended {}: {}; {doing} because {} (attempt {}/{attempts})",
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

/// Poll `check` until it is ready, paced by `pace`, reporting "`what`: STATE" for `id` each
/// time the state changes (not on every poll: the reporter shows timestamps and elapsed time);
/// fail after `timeout`.
pub async fn wait_for<T, F, Fut>(
    cx: &Ctx,
    id: &str,
    what: &str,
    pace: Pace,
    timeout: Duration,
    mut check: F,
) -> Result<T, CallError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Poll<T>, CallError>>,
{
    let start = Instant::now();
    let mut delays = pace.delays(poll_floor(), poll_scale());
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
                tokio::time::sleep(delays.next().unwrap_or(pace.interval)).await;
            }
        }
    }
}

/// How long a wait or retry loop stays silent about an unchanged state: CI systems kill a job
/// that prints nothing for a while (CircleCI and Travis CI: 10 minutes by default), and an MSK
/// creation or a network-interface drain can take longer than that.
const HEARTBEAT: Duration = Duration::from_secs(5 * 60);

/// The last progress line a wait or retry loop reported: a poll or retry that finds the same
/// state says nothing, so a wait of minutes prints one line per state change, not per poll,
/// plus a line saying how long it has been unchanged every [`HEARTBEAT`].
#[derive(Default)]
struct Said {
    last: Option<String>,
    /// When `last` was first said, and when anything was last said.
    since: Option<Instant>,
    spoken: Option<Instant>,
}

impl Said {
    fn say(&mut self, cx: &Ctx, id: &str, line: String) {
        if let Some(line) = self.line_at(line, Instant::now()) {
            cx.progress(id, &line);
        }
    }

    /// What to report at `now` for a poll that found `line`: the line when it changed, a
    /// heartbeat when it has been unchanged and unsaid for [`HEARTBEAT`], else nothing.
    fn line_at(&mut self, line: String, now: Instant) -> Option<String> {
        if self.changed(&line) {
            self.since = Some(now);
            self.spoken = Some(now);
            return Some(line);
        }
        let spoken = self.spoken.unwrap_or(now);
        if now.duration_since(spoken) < HEARTBEAT {
            return None;
        }
        self.spoken = Some(now);
        let minutes = now.duration_since(self.since.unwrap_or(now)).as_secs() / 60;
        Some(format!("{line} (unchanged for {minutes} min)"))
    }

    /// True (and remembered) when `line` differs from the last one said.
    fn changed(&mut self, line: &str) -> bool {
        if self.last.as_deref() == Some(line) {
            return false;
        }
        self.last = Some(line.to_string());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_repeat_would_duplicate_are_not_idempotent_and_token_creates_are() {
        for op in [
            "CreateVpc",
            "CreateRole",
            "CreateClusterV2",
            "CreateRoute",
            "AddPermission",
        ] {
            assert!(not_idempotent(op), "{op}");
        }
        for op in [
            "CreateNatGateway",
            "CreateRouteTable",
            "CreateVpcEndpoint",
            "CreateQueue",
            "PutParameter",
            "PutRolePolicy",
            "DescribeVpcs",
        ] {
            assert!(!not_idempotent(op), "{op}");
        }
    }

    #[test]
    fn already_exists_answers_are_recognised_and_busy_conflicts_are_not() {
        let e = |op: &str, code: &str, msg: &str| CallError::new(op, Some(code), msg);
        for err in [
            e(
                "CreateRole",
                "EntityAlreadyExists",
                "Role with name r already exists.",
            ),
            e(
                "CreateFunction",
                "ResourceConflictException",
                "Function already exist: f",
            ),
            e("CreatePipe", "ConflictException", "Pipe p already exists."),
            e(
                "CreateSubnet",
                "InvalidSubnet.Conflict",
                "The CIDR '10.0.0.0/24' conflicts with another subnet",
            ),
            e(
                "CreateRoute",
                "RouteAlreadyExists",
                "The route identified by 0.0.0.0/0 already exists.",
            ),
            e(
                "AttachInternetGateway",
                "Resource.AlreadyAssociated",
                "resource igw-1 is already associated",
            ),
        ] {
            assert!(outcome_unknown_or_exists(&err), "{err}");
        }
        let busy = e(
            "UpdateFunctionConfiguration",
            "ResourceConflictException",
            "The operation cannot be performed at this time. An update is in progress for resource: f",
        );
        assert!(!outcome_unknown_or_exists(&busy));
        assert!(!outcome_unknown_or_exists(&e(
            "CreateVpc",
            "VpcLimitExceeded",
            "limit"
        )));
        assert!(outcome_unknown_or_exists(&e(
            "CreateVpc",
            "ReplyLost",
            "no reply"
        )));
        assert!(outcome_unknown_or_exists(&e(
            "CreateVpc",
            "Timeout",
            "no answer"
        )));
    }

    const ALL_PACES: [(&str, Pace); 8] = [
        ("msk cluster", MSK_CLUSTER_PACE),
        ("pipe", PIPE_PACE),
        ("event source mapping", EVENT_SOURCE_MAPPING_PACE),
        ("nat gateway", NAT_GATEWAY_PACE),
        ("vpc endpoint", VPC_ENDPOINT_PACE),
        ("lambda function", LAMBDA_FUNCTION_PACE),
        ("sqs queue", SQS_QUEUE_PACE),
        ("released interfaces", INTERFACES_RELEASED_PACE),
    ];

    fn secs(v: &[Duration]) -> Vec<f64> {
        v.iter().map(|d| d.as_secs_f64()).collect()
    }

    /// When readiness is first seen: polls at 0 and after each delay (call time ignored).
    fn seen_at(pace: Pace, floor: Duration, scale: f64, ready: Duration) -> Duration {
        let mut t = Duration::ZERO;
        let mut delays = pace.delays(floor, scale);
        while t < ready {
            t += delays.next().unwrap();
        }
        t
    }

    #[test]
    fn each_kind_polls_from_the_floor_doubling_up_to_its_interval() {
        let one = Duration::from_secs(1);
        let first = |p: Pace| secs(&p.delays(one, 1.0).take(7).collect::<Vec<_>>());
        assert_eq!(
            first(MSK_CLUSTER_PACE),
            [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
        );
        assert_eq!(first(PIPE_PACE), [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]);
        assert_eq!(
            first(EVENT_SOURCE_MAPPING_PACE),
            [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
        );
        assert_eq!(
            first(NAT_GATEWAY_PACE),
            [1.0, 2.0, 4.0, 8.0, 15.0, 15.0, 15.0]
        );
        assert_eq!(
            first(VPC_ENDPOINT_PACE),
            [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
        );
        assert_eq!(first(LAMBDA_FUNCTION_PACE), [1.0; 7]);
        assert_eq!(first(SQS_QUEUE_PACE), [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]);
        assert_eq!(
            first(INTERFACES_RELEASED_PACE),
            [1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0]
        );
        // The tests' floor (MSKCTL_POLL_MS=100) and the bench's scale (0.02).
        let ms = |p: Pace, floor: u64, scale: f64| {
            p.delays(Duration::from_millis(floor), scale)
                .take(6)
                .map(|d| d.as_millis())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ms(MSK_CLUSTER_PACE, 100, 1.0),
            [100, 200, 400, 800, 1600, 3200]
        );
        assert_eq!(
            ms(MSK_CLUSTER_PACE, 1000, 0.02),
            [20, 40, 80, 160, 200, 200]
        );
        assert_eq!(
            ms(LAMBDA_FUNCTION_PACE, 1000, 0.02),
            [20, 20, 20, 20, 20, 20]
        );
    }

    #[test]
    fn readiness_is_seen_at_most_one_interval_late() {
        for (kind, pace) in ALL_PACES {
            for (floor, scale) in [(1000, 1.0), (100, 1.0), (1000, 0.02), (1, 1.0)] {
                let floor = Duration::from_millis(floor);
                let interval = pace.interval.mul_f64(scale);
                // Readiness every 250 ms (scaled) over the first 20 minutes (scaled).
                for step in 1..=4_800u32 {
                    let ready = Duration::from_millis(250).mul_f64(scale) * step;
                    let seen = seen_at(pace, floor, scale, ready);
                    assert!(
                        seen - ready <= interval,
                        "{kind}: ready at {ready:?}, seen at {seen:?} (interval {interval:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn a_seeded_cluster_is_seen_within_one_scaled_interval_and_long_waits_poll_at_the_interval() {
        // The seed stack's emulated 2 s cluster with the tests' floor: no worse than before
        // (3.1 s), and with the bench's scale within 0.2 s.
        let ready = Duration::from_secs(2);
        let tests = seen_at(MSK_CLUSTER_PACE, Duration::from_millis(100), 1.0, ready);
        assert_eq!(tests, Duration::from_millis(3100));
        let bench = seen_at(MSK_CLUSTER_PACE, Duration::from_secs(1), 0.02, ready);
        assert!(bench - ready <= Duration::from_millis(200), "{bench:?}");
        // A 20-minute cluster on AWS: 4 ramp polls then one every 10 s, so about 120 calls,
        // and seen within 10 s.
        let polls = MSK_CLUSTER_PACE
            .delays(Duration::from_secs(1), 1.0)
            .scan(Duration::ZERO, |t, d| {
                *t += d;
                Some(*t)
            })
            .take_while(|t| *t < Duration::from_secs(20 * 60))
            .count();
        assert_eq!(polls, 4 + 118);
    }

    #[test]
    fn waits_report_state_changes_not_every_poll() {
        let mut said = Said::default();
        let polls = [
            "CREATING", "CREATING", "CREATING", "UPDATING", "UPDATING", "CREATING",
        ];
        let reported: Vec<&str> = polls.iter().copied().filter(|p| said.changed(p)).collect();
        assert_eq!(reported, ["CREATING", "UPDATING", "CREATING"]);
    }

    #[test]
    fn a_long_unchanged_wait_says_so_every_five_minutes() {
        let mut said = Said::default();
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut poll = |s: u64, line: &str| said.line_at(line.to_string(), at(s));
        assert_eq!(poll(0, "CREATING").as_deref(), Some("CREATING"));
        assert_eq!(poll(60, "CREATING"), None);
        assert_eq!(poll(299, "CREATING"), None);
        assert_eq!(
            poll(300, "CREATING").as_deref(),
            Some("CREATING (unchanged for 5 min)")
        );
        assert_eq!(poll(420, "CREATING"), None);
        assert_eq!(
            poll(610, "CREATING").as_deref(),
            Some("CREATING (unchanged for 10 min)")
        );
        assert_eq!(poll(620, "ACTIVE").as_deref(), Some("ACTIVE"));
        assert_eq!(poll(900, "ACTIVE"), None);
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
    fn pipe_update_role_propagation_matches_only_permission_failures_of_an_update() {
        let reason = "Input parameter is invalid from the request due to : The provided customer role \
                      does not have permissions to call DescribeClusterV2 on Kafka";
        let failed = |state: &str, reason: &str| CallError::new("UpdatePipe", Some(state), reason);
        assert!(PIPE_UPDATE_ROLE_PROPAGATION.matches(&failed("UPDATE_FAILED", reason)));
        assert!(!PIPE_UPDATE_ROLE_PROPAGATION.matches(&failed(
            "UPDATE_FAILED",
            "Connection error: the pipe cannot reach the cluster"
        )));
        assert!(!PIPE_UPDATE_ROLE_PROPAGATION.matches(&failed("CREATE_FAILED", reason)));
        assert!(!PIPE_UPDATE_ROLE_PROPAGATION.matches(&failed("START_FAILED", reason)));
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
