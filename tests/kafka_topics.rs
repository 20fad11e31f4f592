//! `kafka_topic` end to end: mskctl invokes the topic-admin function (run for real by the
//! emulator from the package mskctl built, kafka-python included), which talks Kafka to the
//! emulator's local broker (Tansu). Every check of the topic goes to the broker directly with
//! an independent Kafka client (kafka-python from .venv/functions), never through mskctl or
//! the function.
//!
//! Tansu has no CreatePartitions, so raising partitions in place is covered by the handler's
//! decision tests, not here; lowering them (a replacement) is.

mod common;

use common::{Emulator, StackDir, edit, kafka};

/// A small stack: a topic-admin function (not in a VPC) and a topic on a self-managed
/// cluster, i.e. the emulator's broker reached with `bootstrap_servers`.
fn self_managed(dir: &StackDir, bootstrap: &str) -> String {
    common::copy_function("topic_admin", &dir.dir.path().join("functions/topic_admin"));
    dir.write(
        "stack.yaml",
        &format!(
            r#"stack: topics
region: ap-northeast-1
resources:
  admin_role:
    type: iam_role
    trust: [lambda.amazonaws.com]
    managed_policy_arns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]
  topic_admin:
    type: lambda_function
    code: functions/topic_admin
    handler: topic_admin.handler
    runtime: python3.12
    timeout: 60
    role: admin_role
  events:
    type: kafka_topic
    bootstrap_servers: ["{bootstrap}"]
    security: plaintext
    admin_function: topic_admin
    name: events
    partitions: 2
    configs:
      retention.ms: "3600000"
"#
        ),
    )
}

#[test]
fn topic_is_created_read_back_repaired_recreated_and_deleted() {
    let emu = Emulator::start();
    let boot = emu.kafka_bootstrap();
    let dir = StackDir::new();
    let file = self_managed(&dir, &boot);

    // Create: the broker has the topic with the declared partitions and configs.
    let out = emu.apply(&file);
    assert!(out.all().contains("events"), "{}", out.all());
    assert_eq!(
        kafka(&boot, "print(json.dumps(topics()))"),
        serde_json::json!(["events"])
    );
    assert_eq!(kafka(&boot, "print(partitions('events'))"), 2);
    assert_eq!(
        kafka(&boot, "print(json.dumps(configs('events')))")["retention.ms"],
        "3600000"
    );
    emu.plan_exits(&file, 0);

    // Drift: retention changed and another config set out of band are shown and repaired.
    kafka(
        &boot,
        r#"set_configs("events", {"retention.ms": "60000", "retention.bytes": "1000000"}); print(json.dumps(configs("events")))"#,
    );
    let drift = emu.plan_exits(&file, 2);
    assert!(
        drift.all().contains("retention.ms") && drift.all().contains("60000"),
        "{}",
        drift.all()
    );
    emu.apply(&file);
    let now = kafka(&boot, "print(json.dumps(configs('events')))");
    assert_eq!(now["retention.ms"], "3600000", "{now}");
    assert!(now.get("retention.bytes").is_none(), "not reset: {now}");
    emu.plan_exits(&file, 0);

    // Deleted out of band: planned as a creation and created again.
    kafka(&boot, "admin().delete_topics(['events']); print(1)");
    assert!(common::eventually(
        std::time::Duration::from_secs(10),
        || { kafka(&boot, "print(json.dumps(topics()))") == serde_json::json!([]) }
    ));
    let plan = emu.plan_exits(&file, 2);
    assert!(plan.all().contains("create"), "{}", plan.all());
    emu.apply(&file);
    assert_eq!(kafka(&boot, "print(partitions('events'))"), 2);

    // Lowering partitions recreates the topic, and the plan says why and what is lost.
    edit(&file, "partitions: 2", "partitions: 1");
    let plan = emu.plan_exits(&file, 2);
    let text = common::flat(&plan.all());
    assert!(text.contains("cannot remove partitions"), "{text}");
    assert!(text.contains("deletes every record"), "{text}");
    emu.apply(&file);
    assert_eq!(kafka(&boot, "print(partitions('events'))"), 1);
    emu.plan_exits(&file, 0);

    // Destroy: the topic and its record are gone, the function too.
    let out = emu.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(
        common::flat(&out.all()).contains("deletes every record"),
        "{}",
        out.all()
    );
    assert_eq!(
        kafka(&boot, "print(json.dumps(topics()))"),
        serde_json::json!([])
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ssm = aws_sdk_ssm::Client::new(&emu.sdk().await);
        let left = ssm
            .get_parameters_by_path()
            .path("/mskctl/topics/")
            .recursive(true)
            .send()
            .await
            .unwrap();
        assert!(left.parameters().is_empty(), "{:?}", left.parameters());
    });
}

#[test]
fn a_topic_dropped_from_the_file_is_deleted() {
    let emu = Emulator::start();
    let boot = emu.kafka_bootstrap();
    let dir = StackDir::new();
    let file = self_managed(&dir, &boot);
    emu.apply(&file);
    // A second topic, then the first one removed from the file.
    let text = std::fs::read_to_string(&file).unwrap();
    let second = text
        .replace("  events:\n", "  audit:\n")
        .replace("name: events", "name: audit");
    let (head, _) = text.split_once("  events:\n").unwrap();
    let audit = second.split_once("  audit:\n").unwrap().1;
    std::fs::write(&file, format!("{head}  audit:\n{audit}")).unwrap();
    let plan = emu.plan_exits(&file, 2);
    let all = common::flat(&plan.all());
    assert!(all.contains("deletes every record"), "{all}");
    emu.apply(&file);
    assert_eq!(
        kafka(&boot, "print(json.dumps(topics()))"),
        serde_json::json!(["audit"])
    );
    emu.plan_exits(&file, 0);
}

#[test]
fn bad_topic_settings_are_refused_at_their_place_before_any_call() {
    let dir = StackDir::new();
    let file = dir.write(
        "stack.yaml",
        r#"stack: bad-topics
region: ap-northeast-1
resources:
  cluster:
    type: msk_serverless_cluster
    subnets: [subnet-0123456789abcdef0, subnet-0123456789abcdef1]
    security_groups: [sg-0123456789abcdef0]
  t:
    type: kafka_topic
    cluster: cluster
    admin_function: arn:aws:lambda:ap-northeast-1:123456789012:function:admin
    partitions: 3
    configs:
      segment.bytes: "1048576"
"#,
    );
    // Nothing listens on this port: any AWS call would fail differently.
    let out = common::mskctl_at("http://127.0.0.1:9")
        .args(["validate", "-f", &file])
        .output()
        .unwrap();
    let text = common::flat(&String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("stack.yaml:13:5"), "{text}");
    assert!(
        text.contains("segment.bytes") && text.contains("retention.ms"),
        "{text}"
    );
}
