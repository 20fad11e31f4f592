//! A cluster's bootstrap brokers cost a `GetBootstrapBrokers` call of their own, in every plan:
//! mskctl reads them only when the stack file uses `${cluster.bootstrap_brokers}` (in a
//! property or an output). Once an output names them, the plan reads them and `mskctl outputs`
//! shows what Kafka answers (checked with the SDK).

mod common;

use common::{Emulator, StackDir, step};

const STACK: &str = r#"
stack: brokers
region: ap-northeast-1
resources:
  vpc: {type: vpc, cidr_block: 10.50.0.0/16}
  subnet_a: {type: subnet, vpc: vpc, cidr_block: 10.50.0.0/24, availability_zone: ap-northeast-1a}
  subnet_c: {type: subnet, vpc: vpc, cidr_block: 10.50.1.0/24, availability_zone: ap-northeast-1c}
  kafka_sg: {type: security_group, vpc: vpc, description: kafka clients}
  cluster: {type: msk_serverless_cluster, subnets: [subnet_a, subnet_c], security_groups: [kafka_sg]}
outputs:
  cluster_arn: {value: "${cluster.arn}"}
"#;

const BROKERS_OUTPUT: &str = "  brokers: {value: \"${cluster.bootstrap_brokers}\"}\n";

/// How many `Kafka.GetBootstrapBrokers` calls `plan --stats` reports.
fn brokers_calls(stdout: &str) -> usize {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("Stats:"))
        .filter_map(|l| {
            let (n, op) = l.trim().split_once(char::is_whitespace)?;
            (op.trim() == "Kafka.GetBootstrapBrokers").then(|| n.parse::<usize>().ok())?
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_clusters_brokers_are_read_only_when_the_stack_file_uses_them() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", STACK);
    let log = dir.path("calls.log");
    let kafka = aws_sdk_kafka::Client::new(&em.sdk().await);

    step(
        "apply: the new cluster's brokers are not asked for",
        async {
            let run = common::Run::from(
                em.mskctl()
                    .env("MSKCTL_CALL_LOG", &log)
                    .args(["apply", "-f", &file, "--auto-approve"])
                    .output()
                    .unwrap(),
            )
            .ok();
            let calls = std::fs::read_to_string(&log).unwrap();
            assert!(
                calls.contains("Kafka.DescribeClusterV2"),
                "no call log:\n{calls}"
            );
            assert!(
                !calls.contains("GetBootstrapBrokers"),
                "{calls}\n{}",
                run.all()
            );
        },
    )
    .await;

    step("a no-op plan does not read them", async {
        let plan = em
            .run(&["plan", "-f", &file, "--detailed-exitcode", "--stats"])
            .code(0);
        assert!(
            plan.stdout.contains("Kafka.ListClustersV2"),
            "{}",
            plan.all()
        );
        assert_eq!(brokers_calls(&plan.stdout), 0, "{}", plan.all());
    })
    .await;

    step(
        "an output names them: read once, shown as Kafka answers",
        async {
            let file = dir.write("stack.yaml", &format!("{STACK}{BROKERS_OUTPUT}"));
            let plan = em.run(&["plan", "-f", &file, "--stats"]).ok();
            assert_eq!(brokers_calls(&plan.stdout), 1, "{}", plan.all());
            let arn = kafka
                .list_clusters_v2()
                .send()
                .await
                .unwrap()
                .cluster_info_list()[0]
                .cluster_arn()
                .unwrap()
                .to_string();
            let brokers = kafka
                .get_bootstrap_brokers()
                .cluster_arn(&arn)
                .send()
                .await
                .unwrap()
                .bootstrap_broker_string_sasl_iam()
                .unwrap()
                .to_string();
            assert!(!brokers.is_empty());
            let outputs = em.run(&["outputs", "-f", &file]).ok();
            assert!(
                outputs
                    .stdout
                    .lines()
                    .any(|l| l.trim().starts_with("brokers ")
                        && l.trim().ends_with(&format!("= {brokers}"))),
                "{}",
                outputs.all()
            );
        },
    )
    .await;

    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
}
