//! Faults: a killed apply, throttling. A re-run converges and nothing is duplicated.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, StackDir};

const STACK: &str = r#"
stack: killtest
resources:
  vpc:
    type: vpc
    cidr_block: 10.20.0.0/16
  subnet_a:
    type: subnet
    vpc: vpc
    cidr_block: 10.20.0.0/24
    availability_zone: ap-northeast-1a
  subnet_c:
    type: subnet
    vpc: vpc
    cidr_block: 10.20.1.0/24
    availability_zone: ap-northeast-1c
  sg:
    type: security_group
    vpc: vpc
    description: cluster clients
  cluster:
    type: msk_serverless_cluster
    subnets: [subnet_a, subnet_c]
    security_groups: [sg]
  queue:
    type: sqs_queue
    depends_on: [cluster]
"#;

fn owned() -> Filter {
    Filter::builder()
        .name("tag:mskctl:stack")
        .values("killtest")
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_killed_midway_then_rerun_converges_without_duplicates() {
    let em = Emulator::start_with(&[("EMULATOR_MSK_CREATE_SECONDS", "8")]);
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);

    // Start apply and kill it (SIGKILL: no cleanup) while it waits for the cluster.
    let seen = em.kill_at(&["apply", "-f", &file, "--auto-approve"], |line| {
        line.contains("cluster:") && line.contains("CREATING")
    });
    assert!(
        seen.iter().any(|l| l.contains("CREATING")),
        "apply never reached the cluster wait:\n{}",
        seen.join("\n")
    );

    // The queue (after the cluster) was never created; everything before it was.
    let conf = em.sdk().await;
    let ec2 = aws_sdk_ec2::Client::new(&conf);
    let kafka = aws_sdk_kafka::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    assert!(
        sqs.list_queues()
            .send()
            .await
            .unwrap()
            .queue_urls()
            .is_empty()
    );

    // Re-run: converges, one of everything. SIGKILL left the stack lock behind: break it first.
    em.run(&["unlock", "-f", &file, "--force"]).ok();
    let rerun = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(
        rerun.stdout.contains("1 to add") || rerun.stdout.contains("2 to add"),
        "{}",
        rerun.all()
    );
    assert_eq!(
        ec2.describe_vpcs()
            .filters(owned())
            .send()
            .await
            .unwrap()
            .vpcs()
            .len(),
        1
    );
    assert_eq!(
        ec2.describe_subnets()
            .filters(owned())
            .send()
            .await
            .unwrap()
            .subnets()
            .len(),
        2
    );
    assert_eq!(
        ec2.describe_security_groups()
            .filters(owned())
            .send()
            .await
            .unwrap()
            .security_groups()
            .len(),
        1
    );
    let clusters = kafka.list_clusters_v2().send().await.unwrap();
    assert_eq!(clusters.cluster_info_list().len(), 1);
    assert_eq!(
        clusters.cluster_info_list()[0].state().map(|s| s.as_str()),
        Some("ACTIVE")
    );
    assert_eq!(
        sqs.list_queues().send().await.unwrap().queue_urls().len(),
        1
    );
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(
        kafka
            .list_clusters_v2()
            .send()
            .await
            .unwrap()
            .cluster_info_list()
            .is_empty()
    );
    assert!(
        ec2.describe_vpcs()
            .filters(owned())
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn throttled_calls_are_retried_and_create_exactly_once() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        "stack: throttled\nresources:\n  vpc:\n    type: vpc\n    cidr_block: 10.30.0.0/16\n",
    );
    em.control(
        "/_emulator/faults",
        r#"{"throttle": [{"action": "DescribeVpcs", "count": 2}, {"action": "CreateVpc", "count": 2}]}"#,
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();

    // Every injected throttle was answered to mskctl (checked before this test's own SDK
    // calls, which would otherwise consume what is left): its reads and its create each met
    // two throttling errors and were retried through them.
    let faults = em.faults();
    for action in ["DescribeVpcs", "CreateVpc"] {
        assert_eq!(
            faults["throttle"][action]["remaining"],
            serde_json::json!(0),
            "mskctl never met all the {action} throttles: {faults}\n{}",
            out.all()
        );
    }

    // The twice-throttled create made exactly one VPC, the one in the file.
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let f = Filter::builder()
        .name("tag:mskctl:stack")
        .values("throttled")
        .build();
    let vpcs = ec2
        .describe_vpcs()
        .filters(f)
        .send()
        .await
        .unwrap()
        .vpcs
        .unwrap_or_default();
    let cidrs: Vec<Option<&str>> = vpcs.iter().map(|v| v.cidr_block()).collect();
    assert_eq!(
        cidrs,
        [Some("10.30.0.0/16")],
        "expected exactly one VPC after the throttled apply"
    );
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
}

#[test]
fn secrets_never_appear_in_output() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.write(
        "fn/handler.py",
        "def handler(event, context):\n    return 1\n",
    );
    let file = dir.write(
        "stack.yaml",
        r#"
stack: secrets
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
  fn:
    type: lambda_function
    code: fn
    handler: handler.handler
    runtime: python3.11
    role: role
    environment: {LOG_LEVEL: INFO}
    secret_environment: {DB_PASSWORD: s3cr3t-value-xyz}
"#,
    );
    let mut outputs = Vec::new();
    outputs.push(em.run(&["plan", "-f", &file]).ok());
    outputs.push(em.run(&["apply", "-f", &file, "--auto-approve"]).ok());
    outputs.push(
        em.run(&["plan", "-f", &file, "--detailed-exitcode"])
            .code(0),
    );
    std::fs::write(
        &file,
        std::fs::read_to_string(&file)
            .unwrap()
            .replace("s3cr3t-value-xyz", "n3w-s3cr3t-abc"),
    )
    .unwrap();
    let changed = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(
        changed.stdout.contains("secret_environment"),
        "{}",
        changed.all()
    );
    outputs.push(changed);
    outputs.push(em.run(&["plan", "-f", &file, "--json"]).ok());
    outputs.push(
        em.mskctl()
            .env("MSKCTL_LOG", "trace")
            .args(["apply", "-f", &file, "--auto-approve"])
            .output()
            .unwrap()
            .into(),
    );
    for out in &outputs {
        let all = out.all();
        for secret in [
            "s3cr3t-value-xyz",
            "n3w-s3cr3t-abc",
            "test-secret-key-never-printed",
        ] {
            assert!(!all.contains(secret), "secret {secret} leaked:\n{all}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn destroy_needs_only_the_stack_file() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.write(
        "fn/handler.py",
        "def handler(event, context):\n    return 1\n",
    );
    let file = dir.write(
        "stack.yaml",
        "stack: onlyfile\nresources:\n  role: {type: iam_role, trust: [lambda.amazonaws.com]}\n  fn:\n    type: lambda_function\n    code: fn\n    handler: handler.handler\n    runtime: python3.11\n    role: role\noutputs:\n  arn: \"${fn.arn}\"\n",
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    std::fs::remove_dir_all(dir.path("fn")).unwrap();
    // Everything but the stack file is gone: outputs and destroy still work from live state.
    let outputs = em.run(&["outputs", "-f", &file]).ok();
    assert!(
        outputs.stdout.contains(":function:onlyfile-fn"),
        "{}",
        outputs.all()
    );
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);
    assert!(
        lambda
            .list_functions()
            .send()
            .await
            .unwrap()
            .functions()
            .is_empty()
    );
    let iam = aws_sdk_iam::Client::new(&em.sdk().await);
    assert!(
        iam.list_roles()
            .path_prefix("/mskctl/onlyfile/")
            .send()
            .await
            .unwrap()
            .roles()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queue_made_by_someone_else_is_never_taken_over() {
    let em = Emulator::start();
    let sqs = aws_sdk_sqs::Client::new(&em.sdk().await);
    // Someone else's queue, with SQS's default attributes.
    let theirs = sqs
        .create_queue()
        .queue_name("shared-name")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dir = StackDir::new();
    let file = dir.write(
        "s.yaml",
        "stack: mine\nresources:\n  q: {type: sqs_queue, name: shared-name}\n",
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);
    assert!(
        out.stderr.contains("already exists") && out.stderr.contains("q"),
        "{}",
        out.all()
    );
    let tags = sqs
        .list_queue_tags()
        .queue_url(&theirs)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tags().is_none_or(|t| !t.contains_key("mskctl:stack")),
        "the foreign queue was tagged: {tags:?}"
    );
}
