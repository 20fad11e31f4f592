//! Renaming a logical id: a named queue (matched by its name) and a VPC (`renamed_from:`) keep
//! their AWS resources, which take the new `mskctl:id`; the plan shows moves, not a delete and
//! a create; a saved plan with moves applies; a re-plan is clean; destroy leaves nothing.

mod common;

use aws_sdk_ec2::types::Filter;
use common::{Emulator, StackDir};

const BEFORE: &str = "stack: rename
resources:
  dlq:
    type: sqs_queue
    name: rename-orders-dlq
  net:
    type: vpc
    cidr_block: 10.70.0.0/16
  a:
    type: subnet
    vpc: net
    cidr_block: 10.70.1.0/24
    availability_zone: ap-northeast-1a
";

const AFTER: &str = "stack: rename
resources:
  dead_letters:
    type: sqs_queue
    name: rename-orders-dlq
  network:
    type: vpc
    cidr_block: 10.70.0.0/16
    renamed_from: net
  a:
    type: subnet
    vpc: network
    cidr_block: 10.70.1.0/24
    availability_zone: ap-northeast-1a
";

/// The stack's VPCs: (VPC id, `mskctl:id` tag).
async fn vpcs(em: &Emulator) -> Vec<(String, String)> {
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let filter = Filter::builder()
        .name("tag:mskctl:stack")
        .values("rename")
        .build();
    let out = ec2.describe_vpcs().filters(filter).send().await.unwrap();
    out.vpcs()
        .iter()
        .map(|v| {
            let id = v
                .tags()
                .iter()
                .find(|t| t.key() == Some("mskctl:id"))
                .and_then(|t| t.value())
                .unwrap_or_default();
            (v.vpc_id().unwrap_or_default().to_string(), id.to_string())
        })
        .collect()
}

/// The stack's subnets: (subnet id, VPC id).
async fn subnets(em: &Emulator) -> Vec<(String, String)> {
    let ec2 = aws_sdk_ec2::Client::new(&em.sdk().await);
    let filter = Filter::builder()
        .name("tag:mskctl:stack")
        .values("rename")
        .build();
    let out = ec2.describe_subnets().filters(filter).send().await.unwrap();
    out.subnets()
        .iter()
        .map(|s| {
            (
                s.subnet_id().unwrap_or_default().to_string(),
                s.vpc_id().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Every queue of the account: (URL, `mskctl:id` tag).
async fn queues(em: &Emulator) -> Vec<(String, Option<String>)> {
    let sqs = aws_sdk_sqs::Client::new(&em.sdk().await);
    let urls = sqs
        .list_queues()
        .send()
        .await
        .unwrap()
        .queue_urls()
        .to_vec();
    let mut out = Vec::new();
    for url in urls {
        let tags = sqs.list_queue_tags().queue_url(&url).send().await.unwrap();
        let id = tags.tags().and_then(|t| t.get("mskctl:id")).cloned();
        out.push((url, id));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn renamed_logical_ids_keep_their_resources() {
    let em = Emulator::start();
    let dir = StackDir::new();
    let file = dir.write("stack.yaml", BEFORE);
    em.run(&["apply", "-f", &file, "--auto-approve"]).ok();
    let queue = queues(&em).await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    assert_eq!(queue[0].1.as_deref(), Some("dlq"));
    let vpc = vpcs(&em).await;
    assert_eq!(vpc.len(), 1, "{vpc:?}");
    assert_eq!(vpc[0].1, "net");
    let subnet = subnets(&em).await;

    dir.write("stack.yaml", AFTER);
    let out = em
        .run(&["plan", "-f", &file, "--detailed-exitcode"])
        .code(2);
    let text = out.stdout.clone();
    assert!(
        text.contains("~ dead_letters (sqs_queue)")
            && text.contains("renamed from dlq, will be updated in place"),
        "{}",
        out.all()
    );
    assert!(
        text.contains(&format!(
            "~ network (vpc) [{}] renamed from net, will be updated in place",
            vpc[0].0
        )),
        "{}",
        out.all()
    );
    assert!(
        text.contains("Plan: 0 to add, 2 to change, 0 to replace, 0 to destroy."),
        "{}",
        out.all()
    );

    // Through a saved plan, which must accept the moves it recorded.
    let saved = dir.path("rename.plan");
    em.run(&["plan", "-f", &file, "--out", &saved]).ok();
    em.run(&["apply", &saved]).ok();

    let after = queues(&em).await;
    assert_eq!(
        after,
        [(queue[0].0.clone(), Some("dead_letters".to_string()))],
        "the same queue, now tagged with its new id"
    );
    assert_eq!(
        vpcs(&em).await,
        [(vpc[0].0.clone(), "network".to_string())],
        "the same VPC, now tagged with its new id"
    );
    assert_eq!(subnets(&em).await, subnet, "the subnet is untouched");

    let out = em.run(&["plan", "-f", &file, "--detailed-exitcode"]);
    assert_eq!(out.code, 0, "re-plan is clean:\n{}", out.all());

    em.run(&["destroy", "-f", &file, "--auto-approve"]).ok();
    assert!(vpcs(&em).await.is_empty());
    assert!(subnets(&em).await.is_empty());
    assert!(queues(&em).await.is_empty());
}
