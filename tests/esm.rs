//! Lambda event source mappings from MSK and from self-managed Kafka, end to end against the
//! local emulator, checked through the SDK directly.

mod common;

use aws_sdk_lambda::types::SourceAccessType;
use common::{Emulator, StackDir, edit, repo_path};

/// Copy an example stack and the handler it packages into a temp dir.
fn example(dir: &StackDir, name: &str) -> String {
    dir.with_handler();
    dir.write(
        "stack.yaml",
        &std::fs::read_to_string(repo_path(&format!("stacks/{name}"))).unwrap(),
    )
}

async fn mappings(
    lambda: &aws_sdk_lambda::Client,
) -> Vec<aws_sdk_lambda::operation::get_event_source_mapping::GetEventSourceMappingOutput> {
    let list = lambda.list_event_source_mappings().send().await.unwrap();
    let mut out = Vec::new();
    for m in list.event_source_mappings() {
        out.push(
            lambda
                .get_event_source_mapping()
                .uuid(m.uuid().unwrap())
                .send()
                .await
                .unwrap(),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn msk_esm_example_round_trips_updates_and_destroys() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = example(&dir, "msk-esm.yaml");
    let conf = em.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let kafka = aws_sdk_kafka::Client::new(&conf);

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let cluster_arn = kafka
        .list_clusters_v2()
        .send()
        .await
        .unwrap()
        .cluster_info_list()[0]
        .cluster_arn()
        .unwrap()
        .to_string();
    let all = mappings(&lambda).await;
    assert_eq!(all.len(), 1);
    let m = &all[0];
    assert_eq!(m.event_source_arn(), Some(cluster_arn.as_str()));
    assert!(
        m.function_arn()
            .unwrap()
            .ends_with(":function:msk-esm-processor")
    );
    assert_eq!(m.topics(), ["test-topic"]);
    assert_eq!(m.starting_position().map(|p| p.as_str()), Some("LATEST"));
    assert_eq!(m.batch_size(), Some(10));
    assert_eq!(m.state(), Some("Enabled"));
    let group = m
        .amazon_managed_kafka_event_source_config()
        .and_then(|c| c.consumer_group_id());
    assert_eq!(group, Some("msk-esm-processor"));
    let on_failure = m
        .destination_config()
        .and_then(|d| d.on_failure())
        .and_then(|f| f.destination())
        .unwrap();
    assert!(
        on_failure.ends_with(":msk-esm-failed-records"),
        "{on_failure}"
    );
    let tags = lambda
        .list_tags()
        .resource(m.event_source_mapping_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags.tags().unwrap().get("mskctl:id").map(String::as_str),
        Some("consumer")
    );
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);

    // Batch size: in place, same mapping.
    edit(&file, "batch_size: 10", "batch_size: 500");
    let plan = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 1 to change, 0 to replace, 0 to destroy."),
        "{}",
        plan.all()
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let after = mappings(&lambda).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].uuid(), m.uuid());
    assert_eq!(after[0].batch_size(), Some(500));

    // Disabled in place.
    edit(
        &file,
        "    batch_size: 500",
        "    batch_size: 500\n    enabled: false",
    );
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert_eq!(mappings(&lambda).await[0].state(), Some("Disabled"));
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);

    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(
        lambda
            .list_event_source_mappings()
            .send()
            .await
            .unwrap()
            .event_source_mappings()
            .is_empty()
    );
    assert!(
        kafka
            .list_clusters_v2()
            .send()
            .await
            .unwrap()
            .cluster_info_list()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn self_managed_kafka_example_round_trips() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = example(&dir, "self-managed-kafka.yaml");
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let all = mappings(&lambda).await;
    assert_eq!(all.len(), 1);
    let m = &all[0];
    let servers = m
        .self_managed_event_source()
        .and_then(|s| s.endpoints())
        .unwrap();
    let mut servers: Vec<&String> = servers.values().flatten().collect();
    servers.sort();
    assert_eq!(
        servers,
        [
            "kafka-1.example.internal:9096",
            "kafka-2.example.internal:9096"
        ]
    );
    let kinds: Vec<&SourceAccessType> = m
        .source_access_configurations()
        .iter()
        .filter_map(|c| c.r#type())
        .collect();
    assert!(
        kinds.contains(&&SourceAccessType::SaslScram512Auth),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| ***k == SourceAccessType::VpcSubnet)
            .count(),
        2
    );
    assert_eq!(
        kinds
            .iter()
            .filter(|k| ***k == SourceAccessType::VpcSecurityGroup)
            .count(),
        1
    );
    let group = m
        .self_managed_kafka_event_source_config()
        .and_then(|c| c.consumer_group_id());
    assert_eq!(group, Some("self-managed-kafka-processor"));
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(
        lambda
            .list_event_source_mappings()
            .send()
            .await
            .unwrap()
            .event_source_mappings()
            .is_empty()
    );
}

const SMALL: &str = r#"
stack: esmsmall
resources:
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
  processor:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.11
    role: role
  consumer:
    type: event_source_mapping
    function: processor
    bootstrap_servers: ["broker-1.example.internal:9092"]
    topics: [orders]
    starting_position: TRIM_HORIZON
"#;

#[tokio::test(flavor = "multi_thread")]
async fn topic_change_replaces_with_an_offsets_warning() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", SMALL);
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert_eq!(
        mappings(&lambda).await[0].batch_size(),
        Some(100),
        "default batch size"
    );
    let old = mappings(&lambda).await[0].uuid().unwrap().to_string();

    edit(&file, "topics: [orders]", "topics: [payments]");
    let plan = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(
        plan.stdout
            .contains("Plan: 0 to add, 0 to change, 1 to replace, 0 to destroy."),
        "{}",
        plan.all()
    );
    assert!(
        plan.stdout.contains("topics") && plan.stdout.contains("forces replacement"),
        "{}",
        plan.all()
    );
    let text = plan.stdout.to_lowercase();
    assert!(
        text.contains("offset") && text.contains("consumer_group_id"),
        "missing offsets warning:\n{}",
        plan.all()
    );

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let all = mappings(&lambda).await;
    assert_eq!(all.len(), 1);
    assert_ne!(all[0].uuid(), Some(old.as_str()));
    assert_eq!(all[0].topics(), ["payments"]);
}

#[test]
fn mapping_disabled_with_a_reason_fails_the_apply_with_that_reason() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", SMALL);
    em.control(
        "/_emulator/faults",
        r#"{"esm": [{"topic": "orders", "state": "Disabled", "stateTransitionReason": "PROBLEM: EVENT_SOURCE_AUTHN_ERROR - Lambda failed to authenticate with the broker."}]}"#,
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).code(1);
    assert!(
        out.stderr.contains("consumer"),
        "the failure names the resource:\n{}",
        out.all()
    );
    assert!(
        out.all()
            .contains("Lambda failed to authenticate with the broker"),
        "{}",
        out.all()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn interrupted_create_rerun_leaves_exactly_one_mapping() {
    let em = Emulator::start_with(&[("EMULATOR_ESM_SECONDS", "8")]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", SMALL);
    let seen = em.kill_at(&["apply", "-f", &file, "--auto-approve"], |line| {
        line.contains("consumer:") && line.contains("Creating")
    });
    assert!(
        seen.iter().any(|l| l.contains("Creating")),
        "never reached the mapping wait:\n{}",
        seen.join("\n")
    );

    // SIGKILL left the stack lock behind: break it, as a person would.
    em.run(&["unlock", "-f", &file, "--force"]).ok();
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);
    let all = mappings(&lambda).await;
    assert_eq!(all.len(), 1, "a re-run must not create a second mapping");
    assert_eq!(all[0].state(), Some("Enabled"));
    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(mappings(&lambda).await.is_empty());
}

/// IAM propagation (modelled by the emulator, on by default): a mapping created moments after
/// its function's role got a new policy is refused with AWS's "… Please ensure the role can
/// perform …" until IAM catches up. The apply retries it, says so, and ends with one mapping.
#[tokio::test(flavor = "multi_thread")]
async fn mapping_created_right_after_a_role_policy_change_is_retried_until_it_propagates() {
    let em = Emulator::start();
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", SMALL);
    let lambda = aws_sdk_lambda::Client::new(&em.sdk().await);
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();

    // One apply writes a new inline policy on the role, then replaces the mapping (new topic).
    edit(
        &file,
        "    trust: [lambda.amazonaws.com]\n",
        "    trust: [lambda.amazonaws.com]\n    policies:\n      logs:\n        Version: \"2012-10-17\"\n        Statement:\n          - Effect: Allow\n            Action: [logs:CreateLogGroup]\n            Resource: \"*\"\n",
    );
    edit(&file, "topics: [orders]", "topics: [payments]");
    edit(
        &file,
        "    function: processor\n",
        "    function: processor\n    depends_on: [role]\n",
    );
    let out = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    assert!(
        out.stdout.lines().any(|l| l.contains(
            "consumer: CreateEventSourceMapping returned InvalidParameterValueException"
        ) && l.contains("retrying because the IAM role")),
        "CreateEventSourceMapping was not refused and retried while the new policy propagated:\n{}",
        out.all()
    );
    let all = mappings(&lambda).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].topics(), ["payments"]);
    em.run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(0);
}
