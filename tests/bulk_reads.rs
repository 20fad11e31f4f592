//! A no-op plan reads in bulk and skips kinds the stack never had, without losing sight of
//! anything it owns: a kind dropped from the stack file is still found (through the tagging
//! index, then confirmed by its service) and planned for deletion. Checked with the SDK.

mod common;

use std::time::{Duration, Instant};

use common::{Emulator, StackDir, step};

/// A queue and two roles: no EC2, Kafka, Lambda or Pipes resource.
const STACK: &str = r#"
stack: bulk
region: ap-northeast-1
resources:
  queue_a: {type: sqs_queue, name: bulk-queue-a}
  queue_b: {type: sqs_queue, name: bulk-queue-b, visibility_timeout: 60}
  reader:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]
    policies:
      read:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Action: sqs:ReceiveMessage, Resource: "*"}]
  writer:
    type: iam_role
    trust: [lambda.amazonaws.com]
"#;

/// The same stack without its queues: `sqs_queue` is no longer a kind of the file.
const WITHOUT_QUEUES: &str = r#"
stack: bulk
region: ap-northeast-1
resources:
  reader:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]
    policies:
      read:
        Version: "2012-10-17"
        Statement: [{Effect: Allow, Action: sqs:ReceiveMessage, Resource: "*"}]
  writer:
    type: iam_role
    trust: [lambda.amazonaws.com]
"#;

/// `count  Service.Operation` lines of `plan --stats`.
fn calls(stdout: &str) -> Vec<(usize, String)> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Stats:"))
        .skip(1)
        .filter_map(|l| {
            let (n, op) = l.trim().split_once(char::is_whitespace)?;
            Some((n.parse().ok()?, op.trim().to_string()))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_op_plan_reads_in_bulk_and_a_dropped_kind_is_still_deleted() {
    let em = Emulator::start_with(&[("EMULATOR_TAGGING_LAG_SECONDS", "1")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let sqs = aws_sdk_sqs::Client::new(&conf);

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();

    step("a no-op plan skips kinds the stack never had", async {
        let plan = em
            .run(&["plan", "-f", &file, "--detailed-exitcode", "--stats"])
            .code(0);
        let ops = calls(&plan.stdout);
        let names: Vec<&str> = ops.iter().map(|(_, op)| op.as_str()).collect();
        for skipped in [
            "Pipes.ListPipes",
            "Lambda.ListEventSourceMappings",
            "Kafka.ListClustersV2",
            "EC2.DescribeVpcs",
            "EC2.DescribeAddresses",
        ] {
            assert!(!names.contains(&skipped), "{skipped} in {ops:?}");
        }
        // Both roles' tags and policies come from one details call, not 4 calls per role.
        for per_role in [
            "IAM.ListRoleTags",
            "IAM.ListRolePolicies",
            "IAM.GetRolePolicy",
            "IAM.ListAttachedRolePolicies",
        ] {
            assert!(!names.contains(&per_role), "{per_role} in {ops:?}");
        }
        assert!(
            names.contains(&"IAM.GetAccountAuthorizationDetails"),
            "{ops:?}"
        );
        // Queue URLs from one listing; attributes and tags per queue.
        assert!(!names.contains(&"SQS.GetQueueUrl"), "{ops:?}");
        let total: usize = ops.iter().map(|(n, _)| n).sum();
        assert!(total <= 9, "{total} calls for 4 resources: {ops:?}");
    })
    .await;

    step("drift in a role's inline policy is still seen", async {
        let iam = aws_sdk_iam::Client::new(&conf);
        let roles = iam.list_roles().path_prefix("/mskctl/bulk/").send().await.unwrap();
        let reader = roles
            .roles()
            .iter()
            .find(|r| r.role_name().contains("reader"))
            .expect("the reader role")
            .role_name()
            .to_string();
        iam.put_role_policy()
            .role_name(&reader)
            .policy_name("read")
            .policy_document(
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sqs:*","Resource":"*"}]}"#,
            )
            .send()
            .await
            .unwrap();
        let plan = em.run(&["plan", "-f", &file, "--detailed-exitcode"]).code(2);
        assert!(plan.stdout.contains("sqs:*"), "{}", plan.all());
        em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    })
    .await;

    step(
        "queues dropped from the file are planned for deletion and deleted",
        async {
            // The index must list the queues before the file stops naming them.
            let tagging = aws_sdk_resourcegroupstagging::Client::new(&conf);
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let out = tagging.get_resources().send().await.unwrap();
                let queues = out
                    .resource_tag_mapping_list()
                    .iter()
                    .filter(|m| m.resource_arn().is_some_and(|a| a.contains(":sqs:")))
                    .count();
                if queues == 2 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "the index never listed the queues"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            let file = dir.write("stack.yaml", WITHOUT_QUEUES);
            let plan = em
                .run(&["plan", "-f", &file, "--detailed-exitcode"])
                .code(2);
            assert!(
                plan.stdout.contains("queue_a") && plan.stdout.contains("queue_b"),
                "{}",
                plan.all()
            );
            em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
            let left = sqs.list_queues().send().await.unwrap();
            assert!(left.queue_urls().is_empty(), "{left:?}");
        },
    )
    .await;

    em.run(&["destroy", "-f", &dir.path("stack.yaml"), "--auto-approve"])
        .ok();
}
