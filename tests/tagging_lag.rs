//! The Resource Groups Tagging index lags behind creates and deletes (the emulator models it,
//! as AWS documents): mskctl must find what it created seconds ago and must not report what
//! it deleted seconds ago. Checked with the SDK directly.

mod common;

use common::{Emulator, StackDir, step};

/// A cluster (listed by ListClustersV2), a queue and a function (looked up by their names too):
/// the three kinds whose read used to depend on the tagging index.
const STACK: &str = r#"
stack: lag
region: ap-northeast-1
resources:
  vpc: {type: vpc, cidr_block: 10.30.0.0/16}
  subnet_a: {type: subnet, vpc: vpc, cidr_block: 10.30.0.0/24, availability_zone: ap-northeast-1a}
  subnet_c: {type: subnet, vpc: vpc, cidr_block: 10.30.1.0/24, availability_zone: ap-northeast-1c}
  kafka_sg: {type: security_group, vpc: vpc, description: kafka clients}
  cluster: {type: msk_serverless_cluster, subnets: [subnet_a, subnet_c], security_groups: [kafka_sg]}
  queue: {type: sqs_queue}
  role:
    type: iam_role
    trust: [lambda.amazonaws.com]
  fn:
    type: lambda_function
    code: functions/msk_processor
    handler: msk_processor.lambda_handler
    runtime: python3.11
    role: role
"#;

/// Long enough that every resource of one apply is still missing from the index when the next
/// command runs right after it (and still listed after a destroy).
const LAG: &str = "60";

#[tokio::test(flavor = "multi_thread")]
async fn resources_are_found_and_gone_despite_a_lagging_tagging_index() {
    let em = Emulator::start_with(&[("EMULATOR_TAGGING_LAG_SECONDS", LAG)]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let lambda = aws_sdk_lambda::Client::new(&conf);
    let sqs = aws_sdk_sqs::Client::new(&conf);
    let kafka = aws_sdk_kafka::Client::new(&conf);
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&conf);

    step("apply", async {
        em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
        // The premise: the index does not list them yet.
        let listed = tagging.get_resources().send().await.unwrap();
        assert!(
            listed.resource_tag_mapping_list().is_empty(),
            "the index should lag: {listed:?}"
        );
    })
    .await;

    step("re-plan right after apply shows no changes", async {
        let plan = em
            .run(&["plan", "-f", &file, "--detailed-exitcode"])
            .code(0);
        assert!(plan.stdout.contains("No changes"), "{}", plan.all());
    })
    .await;

    step("re-apply right after apply creates no duplicate", async {
        let run = em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
        assert!(run.stdout.contains("No changes"), "{}", run.all());
        let functions = lambda.list_functions().send().await.unwrap();
        assert_eq!(functions.functions().len(), 1);
        let queues = sqs.list_queues().send().await.unwrap();
        assert_eq!(queues.queue_urls().len(), 1);
        let clusters = kafka.list_clusters_v2().send().await.unwrap();
        assert_eq!(clusters.cluster_info_list().len(), 1);
    })
    .await;

    step(
        "destroy right after apply deletes everything and reports clean",
        async {
            let run = em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
            assert!(!run.all().contains("still there"), "{}", run.all());
            let functions = lambda.list_functions().send().await.unwrap();
            assert!(functions.functions().is_empty());
            let queues = sqs.list_queues().send().await.unwrap();
            assert!(queues.queue_urls().is_empty());
            let clusters = kafka.list_clusters_v2().send().await.unwrap();
            assert!(clusters.cluster_info_list().is_empty());
        },
    )
    .await;

    step("a second destroy finds nothing", async {
        let run = em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
        assert!(run.stdout.contains("Nothing to destroy"), "{}", run.all());
    })
    .await;
}

/// The index still lists what a destroy deleted seconds ago when the destroy's final check
/// runs: that check must confirm with each service, and report clean.
#[tokio::test(flavor = "multi_thread")]
async fn destroy_reports_clean_while_the_index_still_lists_deleted_resources() {
    // Long enough to outlast the destroy, short enough to wait for after the apply.
    let lag = 8;
    let em = Emulator::start_with(&[("EMULATOR_TAGGING_LAG_SECONDS", &lag.to_string())]);
    let dir = StackDir::new();
    dir.with_handler();
    let file = dir.write("stack.yaml", STACK);
    let conf = em.sdk().await;
    let tagging = aws_sdk_resourcegroupstagging::Client::new(&conf);
    let listed = || async {
        let out = tagging.get_resources().send().await.unwrap();
        let arns: Vec<String> = out
            .resource_tag_mapping_list()
            .iter()
            .filter_map(|m| m.resource_arn().map(String::from))
            .collect();
        arns
    };
    let has_all = |arns: &[String]| {
        [":function:", ":sqs:", ":kafka:"]
            .iter()
            .all(|kind| arns.iter().any(|a| a.contains(kind)))
    };

    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    // Let the index catch up with the creates.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(lag + 10);
    while !has_all(&listed().await) {
        assert!(
            std::time::Instant::now() < deadline,
            "the index never listed the stack"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let run = em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(run.stdout.contains("Destroy complete"), "{}", run.all());
    assert!(!run.all().contains("still there"), "{}", run.all());
    assert!(
        has_all(&listed().await),
        "the premise: the index still lists the deleted function, queue and cluster"
    );
    let again = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    assert!(again.stdout.contains("8 to add"), "{}", again.all());
}
