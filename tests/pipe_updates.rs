//! Pipe updates right after a change of the pipe's role. EventBridge Pipes checks the role
//! after UpdatePipe answered, as after CreatePipe: an update that follows a new policy on the
//! role, or a new role, answers UPDATING and the pipe then goes UPDATE_FAILED with a
//! permissions StateReason (aws/aws-cdk#31664). The emulator models it with its IAM
//! propagation window; mskctl must end with the pipe RUNNING with the new settings, and a
//! pipe left UPDATE_FAILED must show in the plan as an update, not as clean.

mod common;

use aws_sdk_pipes::operation::describe_pipe::DescribePipeOutput;
use common::{Emulator, StackDir, edit, repo_path};

const PIPE: &str = "msk-pipe-to-processor";

/// The seed stack and its handler, applied without the IAM window, so each test starts it
/// when the edit it checks begins.
async fn seeded() -> (Emulator, StackDir, String, aws_sdk_pipes::Client) {
    let em = Emulator::start_with(&[("EMULATOR_IAM_PROPAGATION_SECONDS", "0")]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write(
        "stack.yaml",
        &std::fs::read_to_string(repo_path("stacks/msk-serverless-pipe.yaml")).unwrap(),
    );
    em.apply(&file);
    let pipes = aws_sdk_pipes::Client::new(&em.sdk().await);
    (em, dir, file, pipes)
}

async fn describe(pipes: &aws_sdk_pipes::Client) -> DescribePipeOutput {
    pipes.describe_pipe().name(PIPE).send().await.unwrap()
}

fn state(pipe: &DescribePipeOutput) -> &str {
    pipe.current_state().map(|s| s.as_str()).unwrap_or_default()
}

fn batch_size(pipe: &DescribePipeOutput) -> Option<i32> {
    pipe.source_parameters()
        .and_then(|p| p.managed_streaming_kafka_parameters())
        .and_then(|k| k.batch_size())
}

/// The pipe's batch size and a new statement on its role's policy change in one apply: the
/// role's policy is written first, so Pipes checks the updated pipe before the new policy
/// has propagated.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_updated_with_its_role_policy_is_updated_again_until_it_runs() {
    let (em, _dir, file, pipes) = seeded().await;
    let created = describe(&pipes).await.creation_time().cloned();
    em.control("/_emulator/faults", r#"{"delays": {"iam": 5}}"#);
    edit(
        &file,
        "Action: [kafka-cluster:Connect, kafka-cluster:AlterCluster, kafka-cluster:DescribeCluster]",
        "Action: [kafka-cluster:Connect, kafka-cluster:AlterCluster, kafka-cluster:DescribeCluster, kafka-cluster:DescribeClusterDynamicConfiguration]",
    );
    edit(&file, "batch_size: 10", "batch_size: 25");
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]);
    let out = out.ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("pipe: UpdatePipe ended UPDATE_FAILED")
                && l.contains("does not have permissions")
                && l.contains("sending it again")),
        "the update that failed on the role's new policy was not sent again:\n{}",
        out.all()
    );
    let pipe = describe(&pipes).await;
    assert_eq!(state(&pipe), "RUNNING", "{pipe:?}");
    assert_eq!(batch_size(&pipe), Some(25));
    assert_eq!(
        pipe.creation_time().cloned(),
        created,
        "the pipe was updated in place, not replaced"
    );
    em.plan_exits(&file, 0);
}

/// The pipe moves to a new role (its `name` changed, so the role is replaced): Pipes checks
/// the new role after UpdatePipe, while it is still propagating.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_moved_to_a_new_role_is_updated_again_until_it_runs() {
    let (em, _dir, file, pipes) = seeded().await;
    em.control("/_emulator/faults", r#"{"delays": {"iam": 5}}"#);
    edit(
        &file,
        "name: ${stack.name}-pipe\n",
        "name: ${stack.name}-pipe-v2\n",
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("pipe: UpdatePipe ended UPDATE_FAILED")),
        "the update onto the new role never failed (the test would prove nothing):\n{}",
        out.all()
    );
    let pipe = describe(&pipes).await;
    assert_eq!(state(&pipe), "RUNNING", "{pipe:?}");
    assert!(
        pipe.role_arn()
            .is_some_and(|r| r.ends_with("/msk-pipe-pipe-v2")),
        "{pipe:?}"
    );
    let iam = aws_sdk_iam::Client::new(&em.sdk().await);
    let old = iam.get_role().role_name("msk-pipe-pipe").send().await;
    assert!(old.is_err(), "the old role is deleted: {old:?}");
    em.plan_exits(&file, 0);
}

/// A pipe left UPDATE_FAILED (an update out of band, right after its role's policy was
/// written again) is not clean: the plan shows an update, and apply re-sends the settings.
#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_left_update_failed_is_planned_as_an_update_and_repaired() {
    let (em, _dir, file, pipes) = seeded().await;
    let conf = em.sdk().await;
    let iam = aws_sdk_iam::Client::new(&conf);
    em.control("/_emulator/faults", r#"{"delays": {"iam": 600}}"#);
    // The same document written again: the role does not drift, but its policy is new.
    let doc = iam
        .get_role_policy()
        .role_name("msk-pipe-pipe")
        .policy_name("msk-access")
        .send()
        .await
        .unwrap()
        .policy_document
        .clone();
    let doc = percent_encoding::percent_decode_str(&doc)
        .decode_utf8_lossy()
        .into_owned();
    iam.put_role_policy()
        .role_name("msk-pipe-pipe")
        .policy_name("msk-access")
        .policy_document(doc)
        .send()
        .await
        .unwrap();
    let live = describe(&pipes).await;
    pipes
        .update_pipe()
        .name(PIPE)
        .role_arn(live.role_arn().unwrap())
        .desired_state(aws_sdk_pipes::types::RequestedPipeState::Running)
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while state(&describe(&pipes).await) != "UPDATE_FAILED" {
        assert!(
            std::time::Instant::now() < deadline,
            "the out-of-band update did not fail: {:?}",
            describe(&pipes).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let plan = em.plan_exits(&file, 2);
    assert!(
        plan.stdout.contains("~ pipe (pipe)") && plan.stdout.contains("UPDATE_FAILED"),
        "the UPDATE_FAILED pipe must be planned as an update:\n{}",
        plan.all()
    );
    em.control("/_emulator/reset-faults", "{}");
    em.apply(&file);
    let pipe = describe(&pipes).await;
    assert_eq!(state(&pipe), "RUNNING", "{pipe:?}");
    assert_eq!(batch_size(&pipe), Some(10));
    em.plan_exits(&file, 0);
}
