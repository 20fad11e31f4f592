//! Throttling at AWS's default request rates (the emulator's `EMULATOR_THROTTLE=aws`): a
//! stack larger than a bucket (60 security groups, each with a rule, and 20 Lambda functions:
//! EC2's per-API buckets hold 50 tokens, Lambda's control plane 15) applies, re-plans clean
//! and destroys with few throttled answers because mskctl paces itself (src/aws/pace.rs);
//! the same runs with pacing off (`MSKCTL_PACE=off`) trip many, which proves the stack does
//! exceed the buckets and that the pacing is what keeps it within them.

mod common;

use std::time::Instant;

use common::{Emulator, Run, StackDir};

const GROUPS: usize = 60;
const FUNCTIONS: usize = 20;
/// Throttled answers a paced run may still meet: the tagging index's and the emulator's
/// own callers share the account, and a run starts with full buckets in mind while the
/// previous run may have drained AWS's.
const FEW: u64 = 10;
/// Throttled answers the unpaced apply meets at least (measured: 60–130).
const MANY: u64 = 25;

fn stack() -> String {
    let mut s = String::from(
        "stack: throttle\nregion: ap-northeast-1\nresources:\n  vpc: {type: vpc, cidr_block: 10.40.0.0/16}\n",
    );
    s.push_str(
        "  role:\n    type: iam_role\n    trust: [lambda.amazonaws.com]\n    managed_policy_arns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]\n",
    );
    for i in 0..GROUPS {
        s.push_str(&format!(
            "  group_{i:02}:\n    type: security_group\n    vpc: vpc\n    description: group {i}\n    ingress: [{{protocol: tcp, from_port: 443, cidr: 10.40.0.0/16, description: https}}]\n"
        ));
    }
    for i in 0..FUNCTIONS {
        s.push_str(&format!(
            "  function_{i:02}:\n    type: lambda_function\n    code: functions/msk_processor\n    handler: msk_processor.lambda_handler\n    runtime: python3.12\n    role: role\n"
        ));
    }
    s
}

/// Throttled answers so far (`GET /_emulator/faults`), and by `service:Action`.
fn throttled(em: &Emulator) -> (u64, serde_json::Value) {
    let f = em.faults();
    (
        f["throttled_total"].as_u64().expect("throttling counts"),
        f["throttled"].clone(),
    )
}

/// Run mskctl (`pace`: pacing on or off) and return its result, the throttled answers it met
/// and its wall time.
fn run(em: &Emulator, pace: bool, args: &[&str]) -> (Run, u64, serde_json::Value, f64) {
    em.control("/_emulator/reset-faults", "{}");
    let started = Instant::now();
    let mut cmd = em.mskctl();
    if !pace {
        cmd.env("MSKCTL_PACE", "off");
    }
    let run = Run::from(cmd.args(args).output().expect("run mskctl"));
    let secs = started.elapsed().as_secs_f64();
    let (total, by_action) = throttled(em);
    (run, total, by_action, secs)
}

fn emulator() -> Emulator {
    Emulator::start_with(&[("EMULATOR_THROTTLE", "aws"), ("EMULATOR_KAFKA_BROKER", "0")])
}

#[test]
fn a_stack_beyond_aws_buckets_applies_replans_and_destroys_within_them() {
    let em = emulator();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", &stack());

    let (apply, total, by, secs) = run(&em, true, &["apply", "-f", &file, "--auto-approve"]);
    let apply = apply.ok();
    eprintln!("paced apply: {secs:.1} s, {total} throttled {by}");
    assert!(
        total <= FEW,
        "the paced apply met {total} throttled answers: {by}\n{}",
        apply.all()
    );

    let (plan, total, by, _) = run(&em, true, &["plan", "-f", &file, "--detailed-exitcode"]);
    let plan = plan.code(0);
    assert!(
        total <= FEW,
        "the re-plan met {total} throttled answers: {by}\n{}",
        plan.all()
    );

    let (destroy, total, by, secs) = run(&em, true, &["destroy", "-f", &file, "--auto-approve"]);
    let destroy = destroy.ok();
    eprintln!("paced destroy: {secs:.1} s, {total} throttled {by}");
    assert!(
        total <= FEW,
        "the paced destroy met {total} throttled answers: {by}\n{}",
        destroy.all()
    );
}

#[test]
fn without_pacing_the_same_stack_trips_many_throttles() {
    let em = emulator();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", &stack());

    // The SDK's retries may carry the run through, or its retry quota may run dry: either
    // way AWS would have answered many throttles.
    let (apply, total, by, secs) = run(&em, false, &["apply", "-f", &file, "--auto-approve"]);
    eprintln!(
        "unpaced apply: exit {}, {secs:.1} s, {total} throttled {by}",
        apply.code
    );
    assert!(
        total >= MANY,
        "the unpaced apply met only {total} throttled answers: the stack no longer exceeds a bucket, so the paced test proves nothing\n{by}"
    );
    let ec2 = by
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("ec2:"));
    let lambda = by
        .as_object()
        .unwrap()
        .keys()
        .any(|k| k.starts_with("lambda:"));
    assert!(ec2 && lambda, "both EC2 and Lambda buckets ran dry: {by}");
}
